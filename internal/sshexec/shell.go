package sshexec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	readBufSize = 32 << 10
	// maxPending bounds a line without a line ending; beyond it the line is
	// passed on in pieces (a prompt is far shorter).
	maxPending = 64 << 10
	// markerLines is how many output lines are searched for error markers:
	// CLIs report a rejected command at the start of its output, and a
	// running configuration may well contain the text "syntax error".
	markerLines = 12
)

// shell drives a PTY shell session.
type shell struct {
	r       *run
	stdin   io.Writer
	stdout  io.Reader
	buf     []byte
	pending []byte
	emit    []byte
	scratch []byte
	prompt  string // the learned prompt, trailing spaces trimmed
	base    string // the prompt without its final mode character
	last    string // the most recent prompt seen
}

// question answers the unterminated last line tail when one of the command's
// prompts matches it, and otherwise, when it looks like a question, gives the
// device Options.AskTimeout to go on before the run ends prompt_unanswered.
func (s *shell) question(c *collect, tail string) error {
	if c == nil || tail == "" || c.answered {
		return nil
	}
	an, repeat := c.ask.match(tail)
	switch {
	case an != nil:
		c.answered = true
		return s.send(an.text + "\n")
	case repeat && c.repeat != nil:
		return c.repeat
	case looksLikeQuestion(tail):
		c.asking = true
		s.r.phase(s.r.opts.AskTimeout, s.r.unansweredCause(tail), false)
	}
	return nil
}

func (r *run) runShell(client *ssh.Client) Result {
	sess, err := client.NewSession()
	if err != nil {
		if c := r.getCause(); c != nil {
			return fromCause(c)
		}
		return fail(StatusFailed, ReasonShellRefused, "device refused a session channel", fmt.Errorf("open session: %w", err))
	}
	defer sess.Close()
	r.phase(r.opts.PromptTimeout, r.promptCause("the first prompt"), false)
	modes := ssh.TerminalModes{ssh.ECHO: 1, ssh.TTY_OP_ISPEED: 38400, ssh.TTY_OP_OSPEED: 38400}
	if err := sess.RequestPty("vt100", 0, r.opts.TerminalWidth, modes); err != nil {
		return r.shellErr(ReasonShellRefused, "device refused the PTY request", fmt.Errorf("request pty: %w", err))
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return r.shellErr(ReasonShellRefused, "stdin", fmt.Errorf("stdin pipe: %w", err))
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return r.shellErr(ReasonShellRefused, "stdout", fmt.Errorf("stdout pipe: %w", err))
	}
	if err := sess.Shell(); err != nil {
		return r.shellErr(ReasonShellRefused, "device refused the shell request", fmt.Errorf("shell: %w", err))
	}
	s := &shell{r: r, stdin: stdin, stdout: stdout, buf: make([]byte, readBufSize)}

	if err := s.readToPrompt(nil); err != nil {
		return r.shellErr(ReasonDisconnected, "connection closed before the first prompt", err)
	}
	if res := s.enable(); res != nil {
		return *res
	}
	for _, cmd := range r.prof.PagingDisable {
		r.phase(r.opts.PromptTimeout, r.promptCause(fmt.Sprintf("the prompt after %q", cmd)), false)
		if err := s.send(cmd + "\n"); err != nil {
			return r.shellErr(ReasonDisconnected, "connection closed while disabling paging", err)
		}
		if err := s.readToPrompt(nil); err != nil {
			return r.shellErr(ReasonDisconnected, "connection closed while disabling paging", err)
		}
	}

	for i := range r.seq.Commands {
		if err := r.startCommand(i); err != nil {
			return fromCause(r.getCause())
		}
		cr, err := s.command(i)
		if err != nil {
			return r.shellErr(ReasonDisconnected, "connection closed before the command finished", err)
		}
		if !r.endCommand(cr) {
			break
		}
	}
	// Leave politely; the connection is closed right after either way.
	_ = s.send(r.prof.Exit + "\n")
	return r.sequenceResult()
}

// command sends command i and reads its output up to the prompt.
func (s *shell) command(i int) (CommandResult, error) {
	r := s.r
	cmd := r.seq.Commands[i]
	r.phase(r.opts.IdleTimeout, r.idleCause(), true)
	if r.sentAt.IsZero() {
		r.sentAt = time.Now()
	}
	if err := s.send(cmd.Text + "\n"); err != nil {
		return CommandResult{}, err
	}
	c := &collect{command: strings.TrimSpace(cmd.Text), ask: newAsker(cmd.Prompts)}
	if err := s.readToPrompt(c); err != nil {
		return CommandResult{}, err
	}
	r.stopPhase()
	if c.errorLine != "" {
		return CommandResult{Status: StatusFailed, Reason: ReasonCommandError, Message: c.errorLine}, nil
	}
	return CommandResult{Status: StatusSucceeded}, nil
}

func (r *run) promptCause(what string) *abortCause {
	return &abortCause{StatusTimedOut, ReasonPromptTimeout, fmt.Sprintf("no %s within %s", what, r.opts.PromptTimeout)}
}

// shellErr prefers the abort cause (timeouts, cap, cancel) over the I/O error
// it provoked.
func (r *run) shellErr(reason Reason, msg string, err error) Result {
	if c := r.getCause(); c != nil {
		return fromCause(c)
	}
	return fail(StatusFailed, reason, msg, err)
}

func (s *shell) send(line string) error {
	_, err := io.WriteString(s.stdin, line)
	return err
}

// collect is the state of reading a command's output.
type collect struct {
	command string
	lines   int
	// ask answers the command's questions; answered is set from an answer to
	// the end of that line, asking while output rests on an unanswered question.
	ask      *asker
	answered bool
	asking   bool
	// repeat, when set, is returned as soon as the device repeats a question
	// already answered (enable: the secret was refused).
	repeat error
	// discard drops the output (enable); lastLine keeps its last non-empty line.
	discard  bool
	lastLine string
	// errorLine is the first line with a platform error marker.
	errorLine string
}

// readToPrompt reads until the prompt. With c == nil the output is discarded
// (banner, paging commands) and the first prompt is learned; otherwise lines
// are cleaned, the echo is dropped, error markers are looked for and the
// output goes to the sink.
func (s *shell) readToPrompt(c *collect) error {
	r := s.r
	for {
		n, err := s.stdout.Read(s.buf)
		if n > 0 {
			if c != nil {
				r.touch()
				if c.asking {
					c.asking = false
					r.phase(r.opts.IdleTimeout, r.idleCause(), true)
				}
			}
			s.pending = append(s.pending, s.buf[:n]...)
			start := 0
			for {
				i := bytes.IndexByte(s.pending[start:], '\n')
				if i < 0 {
					break
				}
				s.line(c, s.pending[start:start+i], true)
				start += i + 1
			}
			s.pending = s.pending[:copy(s.pending, s.pending[start:])]
			if len(s.pending) > maxPending {
				keep := 1024
				s.line(c, s.pending[:len(s.pending)-keep], false)
				s.pending = s.pending[:copy(s.pending, s.pending[len(s.pending)-keep:])]
			}
			s.scratch = cleanLine(s.scratch[:0], s.pending)
			tail := string(s.scratch)
			switch {
			case r.prof.More.MatchString(tail):
				s.pending = s.pending[:0]
				if err := s.flush(); err != nil {
					return err
				}
				if err := s.send(" "); err != nil {
					return err
				}
				continue
			case s.isPrompt(tail):
				s.pending = s.pending[:0]
				s.last = strings.TrimRight(tail, " ")
				if s.prompt == "" {
					s.prompt = s.last
					s.base = s.prompt[:len(s.prompt)-1]
				}
				return s.flush()
			}
			if err := s.flush(); err != nil {
				return err
			}
			if err := s.question(c, tail); err != nil {
				return err
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
}

// isPrompt reports whether the partial last line is the device's prompt: it
// must match the platform's prompt pattern and, once the prompt is known,
// start with the same host part (so "r1(config)#" counts, "r2#" in the
// output does not).
func (s *shell) isPrompt(tail string) bool {
	if tail == "" || !s.r.prof.Prompt.MatchString(tail) {
		return false
	}
	return s.prompt == "" || strings.HasPrefix(tail, s.base)
}

// line handles one line of output (full: it ended with "\n").
func (s *shell) line(c *collect, raw []byte, full bool) {
	if c == nil {
		return
	}
	if full {
		c.answered = false
	}
	start := len(s.emit)
	s.emit = cleanLine(s.emit, raw)
	text := s.emit[start:]
	if c.discard {
		if t := strings.TrimSpace(string(text)); t != "" && (c.lines > 0 || !strings.Contains(t, c.command)) {
			c.lastLine = t
		}
		c.lines++
		s.emit = s.emit[:start]
		return
	}
	if c.lines == 0 && full && c.command != "" && bytes.Contains(text, []byte(c.command)) {
		// The echo of the command.
		s.emit = s.emit[:start]
		c.lines++
		return
	}
	if c.lines < markerLines && c.errorLine == "" {
		if m := s.r.prof.ErrorMarker(string(text)); m != "" {
			c.errorLine = strings.TrimSpace(string(text))
		}
	}
	c.lines++
	if full {
		s.emit = append(s.emit, '\n')
	}
}

func (s *shell) flush() error {
	if len(s.emit) == 0 {
		return nil
	}
	err := s.r.out.write(s.emit)
	s.emit = s.emit[:0]
	return err
}

// cleanLine appends line to dst the way a terminal would show it: trailing
// carriage returns dropped, a carriage return inside the line restarts it,
// backspaces erase, ANSI escape sequences and other control characters
// vanish.
func cleanLine(dst, line []byte) []byte {
	for len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if bytes.IndexFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) < 0 {
		return append(dst, line...)
	}
	start := len(dst)
	for i := 0; i < len(line); i++ {
		switch b := line[i]; {
		case b == '\r':
			dst = dst[:start]
		case b == '\b':
			if len(dst) > start {
				dst = dst[:len(dst)-1]
			}
		case b == 0x1b:
			if i+1 < len(line) && line[i+1] == '[' {
				i += 2
				for i < len(line) && (line[i] < 0x40 || line[i] > 0x7e) {
					i++
				}
			} else {
				i++
			}
		case b == '\t' || b >= 0x20 && b != 0x7f:
			dst = append(dst, b)
		}
	}
	return dst
}
