package cli

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// terminalSafe writes device output with every byte that could control a terminal made
// visible: a device's output must not set the clipboard (OSC 52), the window title, hyperlinks
// (OSC 8), move the cursor or clear the screen on the operator's terminal. Newline and tab pass;
// carriage return passes only before a newline (a lone one would let a line overwrite itself);
// C0 controls and DEL become caret notation (ESC is "^["); C1 controls, bytes that are not UTF-8
// and bidirectional overrides become \xNN or <U+NNNN>. It streams: a sequence cut between two
// writes is judged whole. Close writes what is still held back.
type terminalSafe struct {
	w       io.Writer
	pending []byte // an incomplete UTF-8 sequence or a carriage return, held for the next write
	buf     []byte
}

func newTerminalSafe(w io.Writer) *terminalSafe { return &terminalSafe{w: w} }

// Write escapes p and writes it; it reports len(p) when the escaped bytes were written.
func (t *terminalSafe) Write(p []byte) (int, error) {
	data := append(t.pending, p...)
	t.pending = nil
	t.buf = t.buf[:0]
	i := 0
	for i < len(data) {
		c := data[i]
		if c == '\r' && i+1 == len(data) {
			break // is a newline next?
		}
		if c >= utf8.RuneSelf && !utf8.FullRune(data[i:]) {
			break // the rest of the character is in the next write
		}
		i += t.escape(data[i:])
	}
	t.pending = append(t.pending, data[i:]...)
	if _, err := t.w.Write(t.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close writes the bytes held back, escaped as they stand.
func (t *terminalSafe) Close() error {
	if len(t.pending) == 0 {
		return nil
	}
	data := t.pending
	t.pending, t.buf = nil, t.buf[:0]
	for i := 0; i < len(data); {
		if data[i] == '\r' {
			t.buf = append(t.buf, "^M"...)
			i++
			continue
		}
		i += t.escape(data[i:])
	}
	_, err := t.w.Write(t.buf)
	return err
}

// escape appends the escaped form of the character at the start of data to t.buf and returns
// how many bytes it took.
func (t *terminalSafe) escape(data []byte) int {
	c := data[0]
	switch {
	case c == '\n' || c == '\t':
		t.buf = append(t.buf, c)
		return 1
	case c == '\r':
		if data[1] == '\n' {
			t.buf = append(t.buf, '\r')
		} else {
			t.buf = append(t.buf, "^M"...)
		}
		return 1
	case c < 0x20:
		t.buf = append(t.buf, '^', c+'@')
		return 1
	case c == 0x7f:
		t.buf = append(t.buf, "^?"...)
		return 1
	case c < utf8.RuneSelf:
		t.buf = append(t.buf, c)
		return 1
	}
	r, size := utf8.DecodeRune(data)
	switch {
	case r == utf8.RuneError && size <= 1:
		t.buf = fmt.Appendf(t.buf, `\x%02x`, c)
		return 1
	case r >= 0x80 && r <= 0x9f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		t.buf = fmt.Appendf(t.buf, "<U+%04X>", r)
	default:
		t.buf = append(t.buf, data[:size]...)
	}
	return size
}

// terminalSafeString is s as terminalSafe writes it, for one-line texts that come from a device
// (a run's message).
func terminalSafeString(s string) string {
	var b strings.Builder
	t := newTerminalSafe(&b)
	_, _ = t.Write([]byte(s))
	_ = t.Close()
	return b.String()
}

// copyOutput copies a device's output to w: escaped by terminalSafe, or byte for byte when raw.
func copyOutput(w io.Writer, r io.Reader, raw bool) error {
	if raw {
		_, err := io.Copy(w, r)
		return err
	}
	t := newTerminalSafe(w)
	if _, err := io.Copy(t, r); err != nil {
		return err
	}
	return t.Close()
}
