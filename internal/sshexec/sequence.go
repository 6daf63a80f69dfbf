package sshexec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RunSequence connects to t and runs seq's commands in order on one SSH
// session (shell platforms: one PTY shell; exec platforms: one connection, one
// exec channel per command), streaming each command's output to sink after
// calling sink.StartCommand(i) (nil discards the output). It answers each
// command's Prompts, ends the run timed_out / prompt_unanswered when output
// rests on a question none of them answers, and returns one CommandResult per
// command started. The run succeeds when every command succeeded; otherwise it
// has the status, reason and message of the first failure. Cancelling ctx ends
// the run with StatusCancelled; its deadline with StatusTimedOut (reason
// invocation_deadline when the deadline's cause is ErrInvocationDeadline).
func (r *Runner) RunSequence(ctx context.Context, t Target, seq Sequence, sink SequenceSink) Result {
	start := time.Now()
	if sink == nil {
		sink = plainSink{io.Discard}
	}
	ru := &run{opts: r.opts, t: t, seq: seq, sink: sink, start: start, peer: "device"}
	ru.out = output{r: ru, sink: sink, max: r.opts.MaxOutputBytes}
	res := ru.do(ctx)
	ru.out.release()
	res.Bytes = ru.out.bytes()
	res.Truncated = ru.out.isTruncated()
	res.Timings.Total = time.Since(start)
	if fb := ru.out.firstByteAt(); !fb.IsZero() && !ru.sentAt.IsZero() {
		res.Timings.FirstByte = fb.Sub(ru.sentAt)
	}
	if res.Status == "" {
		res.Status = StatusSucceeded
	}
	if ru.started > len(ru.results) {
		// The run ended while this command ran: its outcome is the run's.
		ru.results = append(ru.results, CommandResult{Status: res.Status, Reason: res.Reason,
			Message: res.Message, ExitStatus: res.ExitStatus, Bytes: ru.out.bytes() - ru.cmdMark})
	}
	res.Commands = ru.results
	return redact(res, t, seq)
}

// plainSink turns a Sink into a SequenceSink that ignores command boundaries.
type plainSink struct{ Sink }

func (plainSink) StartCommand(int) error { return nil }

// validateSequence checks seq's limits; the error names the first broken rule.
func validateSequence(seq Sequence) error {
	if n := len(seq.Commands); n == 0 || n > MaxCommands {
		return fmt.Errorf("a sequence has 1 to %d commands, not %d", MaxCommands, n)
	}
	if seq.Timeout < 0 {
		return fmt.Errorf("sequence timeout %s is negative", seq.Timeout)
	}
	for i, c := range seq.Commands {
		if strings.TrimSpace(c.Text) == "" || strings.ContainsAny(c.Text, "\r\n") {
			return fmt.Errorf("command %d is empty or contains a line break", i)
		}
		if len(c.Prompts) > MaxPrompts {
			return fmt.Errorf("command %d has %d prompts, at most %d are allowed", i, len(c.Prompts), MaxPrompts)
		}
		for j, p := range c.Prompts {
			if strings.TrimSpace(p.Expect) == "" {
				return fmt.Errorf("command %d prompt %d: expect is empty", i, j)
			}
			if strings.ContainsAny(p.Answer, "\r\n") {
				return fmt.Errorf("command %d prompt %d: the answer contains a line break", i, j)
			}
			if p.Regex {
				if _, err := compilePrompt(p.Expect); err != nil {
					return fmt.Errorf("command %d prompt %d: expect is not a valid regular expression: %w", i, j, err)
				}
			}
		}
	}
	return nil
}

func compilePrompt(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)\s*$`)
}

// answer is one compiled Prompt.
type answer struct {
	literal string
	re      *regexp.Regexp
	text    string
	secret  bool
	used    bool
}

// asker answers a command's questions, each Prompt at most once.
type asker struct{ answers []answer }

// newAsker compiles prompts (validated by validateSequence).
func newAsker(prompts []Prompt) *asker {
	a := &asker{}
	for _, p := range prompts {
		an := answer{text: p.Answer, secret: p.Secret}
		if p.Regex {
			an.re, _ = compilePrompt(p.Expect)
		} else {
			an.literal = strings.TrimRight(p.Expect, " ")
		}
		a.answers = append(a.answers, an)
	}
	return a
}

// match returns the first unused answer whose prompt matches the last output
// line and marks it used; repeat reports that only used answers match (the
// device asks again, most likely because the answer was refused).
func (a *asker) match(tail string) (an *answer, repeat bool) {
	if a == nil {
		return nil, false
	}
	trimmed := strings.TrimRight(tail, " ")
	for i := range a.answers {
		x := &a.answers[i]
		ok := x.re != nil && x.re.MatchString(tail) || x.re == nil && strings.HasSuffix(trimmed, x.literal)
		if !ok {
			continue
		}
		if !x.used {
			x.used = true
			return x, false
		}
		repeat = true
	}
	return nil, repeat
}

// questionEndings are how a last output line ends when the device waits for an
// answer: "Destination filename [startup-config]?", "[confirm]", "(yes/no)",
// "[yes,no] (no)", "Password:".
var questionEndings = []string{"?", "]", ")", ":"}

// looksLikeQuestion reports whether the unterminated last output line is a
// question: it ends, spaces aside, in one of questionEndings. A line that
// merely rests mid-output (a ping's "!!!!") does not.
func looksLikeQuestion(tail string) bool {
	t := strings.TrimRight(tail, " \t")
	for _, e := range questionEndings {
		if strings.HasSuffix(t, e) {
			return true
		}
	}
	return false
}

// unansweredCause ends a run whose output rests on question.
func (r *run) unansweredCause(question string) *abortCause {
	return &abortCause{StatusTimedOut, ReasonPromptUnanswered, fmt.Sprintf(
		"device asked %s and no prompt answers it (waited %s)", strconv.Quote(shortPrompt(question)), r.opts.AskTimeout)}
}

// startCommand tells the sink that command i's output begins and marks where
// its bytes start.
func (r *run) startCommand(i int) error {
	if err := r.out.release(); err != nil {
		return err
	}
	r.cmdMark = r.out.bytes()
	r.started = i + 1
	var secrets []string
	if s := r.t.EnableSecret; s != "" {
		secrets = append(secrets, s)
	}
	// The secret answers of this command and of every one before it: a later command may print
	// what an earlier one was told (a shell variable, a device's log).
	for _, c := range r.seq.Commands[:i+1] {
		for _, p := range c.Prompts {
			if p.Secret && p.Answer != "" {
				secrets = append(secrets, p.Answer)
			}
		}
	}
	r.out.setSecrets(secrets)
	if err := r.sink.StartCommand(i); err != nil {
		r.abort(&abortCause{StatusFailed, ReasonSinkError, "output sink: " + err.Error()})
		return err
	}
	return nil
}

// endCommand records command i's outcome; it reports whether the sequence
// goes on.
func (r *run) endCommand(cr CommandResult) bool {
	_ = r.out.release()
	cr.Bytes = r.out.bytes() - r.cmdMark
	if cr.Status == "" {
		cr.Status = StatusSucceeded
	}
	r.results = append(r.results, cr)
	return cr.Status == StatusSucceeded || !r.seq.StopOnError
}

// sequenceResult is the run's outcome once its commands have ended without a
// run-level failure: the first failed command's, or success.
func (r *run) sequenceResult() Result {
	for i, c := range r.results {
		if c.Status == StatusSucceeded {
			continue
		}
		msg := c.Message
		if len(r.seq.Commands) > 1 {
			msg = fmt.Sprintf("command %d of %d (%s): %s", i+1, len(r.seq.Commands), r.seq.Commands[i].Text, msg)
		}
		res := fail(c.Status, c.Reason, msg, fmt.Errorf("device rejected the command: %s", msg))
		res.ExitStatus = c.ExitStatus
		return res
	}
	res := Result{Status: StatusSucceeded}
	if n := len(r.results); n > 0 {
		res.ExitStatus = r.results[n-1].ExitStatus
	}
	return res
}

// redactedMark stands in the output where a secret was: a secret cut out without a mark could
// leave its two sides to join into it again ("aabcbc" without "abc" is "abc").
const redactedMark = "[redacted]"

// secretFilter replaces secrets in a byte stream by redactedMark, holding back a tail that could
// be the start of one until more arrives or the stream is flushed. Where two secrets start at
// the same byte the longer is replaced, so a secret that begins another leaves none of it.
type secretFilter struct {
	secrets [][]byte // longest first
	held    []byte
}

// set makes the filter replace these secrets from now on (empty ones and repeats ignored).
func (f *secretFilter) set(secrets []string) {
	f.secrets = f.secrets[:0]
	for _, s := range secrets {
		if s != "" && !slices.ContainsFunc(f.secrets, func(b []byte) bool { return string(b) == s }) {
			f.secrets = append(f.secrets, []byte(s))
		}
	}
	slices.SortStableFunc(f.secrets, func(a, b []byte) int { return len(b) - len(a) })
}

// filter returns the bytes of p (after any held ones) that are safe to pass on.
func (f *secretFilter) filter(p []byte) []byte { return f.scan(p, false) }

// flush returns what the filter holds back, its secrets replaced: the stream has ended here.
func (f *secretFilter) flush() []byte { return f.scan(nil, true) }

func (f *secretFilter) scan(p []byte, final bool) []byte {
	if len(f.secrets) == 0 && len(f.held) == 0 {
		return p
	}
	buf := p
	if len(f.held) > 0 {
		buf = append(f.held, p...)
	}
	f.held = nil
	// next[i] is where secret i next occurs in buf at or after pos (-1: nowhere); each is
	// searched again only once a replacement passed it, so a long output costs one pass a secret.
	next := make([]int, len(f.secrets))
	for i, s := range f.secrets {
		next[i] = bytes.Index(buf, s)
	}
	hold := len(buf)
	if !final && len(f.secrets) > 0 {
		hold = f.holdFrom(buf)
	}
	var out []byte
	pos := 0
	for {
		// The earliest secret; at a tie the longer, as the list is longest first.
		at, n := -1, 0
		for i, j := range next {
			if j >= 0 && (at < 0 || j < at) {
				at, n = j, len(f.secrets[i])
			}
		}
		if at < 0 {
			break
		}
		end := f.overlapEnd(buf, at, at+n)
		if hold < end {
			// A secret that may go on past buf's end begins before this match ends: wait for
			// the next bytes rather than cut it, or the two, in pieces.
			hold = min(hold, at)
			break
		}
		out = append(append(out, buf[pos:at]...), redactedMark...)
		pos = end
		for i, j := range next {
			if j >= 0 && j < pos {
				if k := bytes.Index(buf[pos:], f.secrets[i]); k >= 0 {
					next[i] = pos + k
				} else {
					next[i] = -1
				}
			}
		}
	}
	if hold < len(buf) {
		f.held = append([]byte(nil), buf[hold:]...)
	}
	if out == nil {
		return buf[:hold]
	}
	return append(out, buf[pos:hold]...)
}

// overlapEnd is where a replacement of buf[at:end] must end so that no secret occurring in buf
// that begins inside it is left in part after it: overlapping secrets are replaced together.
func (f *secretFilter) overlapEnd(buf []byte, at, end int) int {
	for grew := true; grew; {
		grew = false
		for _, s := range f.secrets {
			for k := at + 1; k < end; {
				// An occurrence that begins before end lies within end+len(s)-1.
				j := bytes.Index(buf[k:min(len(buf), end+len(s)-1)], s)
				if j < 0 || k+j >= end {
					break
				}
				if k+j+len(s) > end {
					end, grew = k+j+len(s), true
				}
				k += j + 1
			}
		}
	}
	return end
}

// holdFrom is the first index of buf from which a secret could begin and go on past buf's end,
// or len(buf).
func (f *secretFilter) holdFrom(buf []byte) int {
	for i := max(0, len(buf)-len(f.secrets[0])+1); i < len(buf); i++ {
		if slices.ContainsFunc(f.secrets, func(s []byte) bool { return len(s) > len(buf)-i && bytes.HasPrefix(s, buf[i:]) }) {
			return i
		}
	}
	return len(buf)
}
