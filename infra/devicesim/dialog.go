package devicesim

import (
	"bufio"
	"crypto/subtle"
	"slices"
	"strings"
)

// dialog is a command that asks questions before it acts, as "copy running-config
// startup-config" asks for the destination and "clear counters" for a [confirm]. It waits for
// each answer as long as the connection lasts.
type dialog struct {
	intro   []string // lines printed before the first question
	asks    []ask
	done    []string // printed when every answer is accepted
	refused []string // printed when an answer is refused (the command then does nothing)
}

// ask is one question of a dialog.
type ask struct {
	question string // written without a line ending
	hidden   bool   // the answer is not echoed (a password)
	// accept judges the answer; nil accepts anything (empty takes the default).
	accept func(d *device, answer string) bool
}

// privilege is a platform's privileged mode: devices with DeviceSpec.Unprivileged log in at
// the unprivileged prompt and "enable" asks for the fleet's enable secret.
type privilege struct {
	unprivileged string // the prompt's last character before enable, e.g. ">"
	password     string // the enable secret's question
	tries        int    // questions before giving up
	denied       []string
	// refused renders the error for a privileged command typed at the unprivileged prompt.
	refused func(prompt string, words []string) []string
}

// confirmAnswer accepts what [confirm] accepts: return, "y" or "yes".
func confirmAnswer(_ *device, a string) bool {
	return slices.Contains([]string{"", "y", "yes"}, strings.ToLower(strings.TrimSpace(a)))
}

// yesAnswer accepts only an explicit "y" or "yes" (the default is no).
func yesAnswer(_ *device, a string) bool {
	return slices.Contains([]string{"y", "yes"}, strings.ToLower(strings.TrimSpace(a)))
}

// passwordAnswer accepts the fleet's password.
func passwordAnswer(d *device, a string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(d.fleet.spec.Password)) == 1
}

// scpDialog is "copy scp: flash:" on IOS-like CLIs: three questions and the remote password;
// a wrong password prints failure.
func scpDialog(failure string) *dialog {
	return &dialog{
		asks: []ask{
			{question: "Address or name of remote host []? "},
			{question: "Source filename []? "},
			{question: "Destination filename [image.bin]? "},
			{question: "Password: ", hidden: true, accept: passwordAnswer},
		},
		done:    []string{"!!!!!!!!!!!!!!!!", "1048576 bytes copied in 2.345 secs (447149 bytes/sec)"},
		refused: []string{failure},
	}
}

// readAnswer reads one answer line, echoing it unless hidden; it reports false when the
// connection ended.
func (s *simSession) readAnswer(in *bufio.Reader, w *writer, hidden bool) (string, bool) {
	hidden = hidden && s.d.spec.Fault != FaultEchoSecrets
	var line []byte
	for {
		if in.Buffered() == 0 && !w.flush() {
			return "", false
		}
		b, err := in.ReadByte()
		if err != nil {
			return "", false
		}
		switch {
		case b == '\r' || b == '\n':
			if b == '\r' && in.Buffered() > 0 {
				if next, _ := in.Peek(1); len(next) == 1 && next[0] == '\n' {
					_, _ = in.ReadByte()
				}
			}
			w.raw("\r\n")
			s.d.recv.answer(string(line))
			return string(line), true
		case b == 0x7f || b == '\b':
			if len(line) > 0 {
				line = line[:len(line)-1]
				if !hidden {
					w.raw("\b \b")
				}
			}
		case b >= 0x20:
			line = append(line, b)
			if !hidden {
				w.raw(string(b))
			}
		}
	}
}

// dialog runs dl; it reports false when the connection ended.
func (s *simSession) dialog(in *bufio.Reader, w *writer, dl *dialog) bool {
	for _, l := range dl.intro {
		w.raw(l + "\r\n")
	}
	for _, a := range dl.asks {
		if !w.raw(a.question) {
			return false
		}
		answer, ok := s.readAnswer(in, w, a.hidden)
		if !ok {
			return false
		}
		if a.accept != nil && !a.accept(s.d, answer) {
			for _, l := range dl.refused {
				w.raw(l + "\r\n")
			}
			return true
		}
	}
	for _, l := range dl.done {
		w.raw(l + "\r\n")
	}
	return true
}

// enable asks for the enable secret up to p.tries times; it reports whether privileged mode
// was entered and false for ok when the connection ended.
func (s *simSession) enable(in *bufio.Reader, w *writer, p *privilege) (granted, ok bool) {
	for range p.tries {
		if !w.raw(p.password) {
			return false, false
		}
		answer, ok := s.readAnswer(in, w, true)
		if !ok {
			return false, false
		}
		if subtle.ConstantTimeCompare([]byte(answer), []byte(s.d.fleet.spec.EnableSecret)) == 1 {
			return true, true
		}
	}
	for _, l := range p.denied {
		w.raw(l + "\r\n")
	}
	return false, true
}

// ping prints an IOS-style ping slowly: one reply per Spec.DripInterval on one line, after the
// header's last line ("...timeout is 2 seconds:") rested unterminated for half of it, as output
// over a slow link does.
func (s *simSession) ping(w *writer, target string) bool {
	iv := s.d.fleet.spec.DripInterval
	w.raw("Type escape sequence to abort.\r\nSending 5, 100-byte ICMP Echos to " + target + ", timeout is 2 seconds:")
	if !w.flush() || !s.wait(iv/2) {
		return false
	}
	w.raw("\r\n")
	for range 5 {
		if !w.raw("!") || !w.flush() || !s.wait(iv) {
			return false
		}
	}
	return w.raw("\r\nSuccess rate is 100 percent (5/5), round-trip min/avg/max = 1/2/4 ms\r\n")
}
