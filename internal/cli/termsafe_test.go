package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTerminalSafe(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "Cisco IOS XE Software, Version 17.9\n", "Cisco IOS XE Software, Version 17.9\n"},
		{"tabs and crlf", "a\tb\r\nc\n", "a\tb\r\nc\n"},
		{"utf-8 text", "Gerät: Zürich — ✓\n", "Gerät: Zürich — ✓\n"},
		{"osc 52 clipboard write", "x\x1b]52;c;cm0gLXJmIH4K\x07y", "x^[]52;c;cm0gLXJmIH4K^Gy"},
		{"osc 52 with string terminator", "\x1b]52;c;ZWNobw==\x1b\\", "^[]52;c;ZWNobw==^[\\"},
		{"window title", "\x1b]0;pwned\x07", "^[]0;pwned^G"},
		{"osc 8 hyperlink", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\", "^[]8;;https://evil.example^[\\click^[]8;;^[\\"},
		{"cursor moves and clear screen", "\x1b[2J\x1b[H\x1b[1A", "^[[2J^[[H^[[1A"},
		{"lone carriage return overwrites the line", "ok\rfailed\n", "ok^Mfailed\n"},
		{"carriage return at the end", "done\r", "done^M"},
		{"backspace and bell", "ab\x08\x08\x07", "ab^H^H^G"},
		{"nul and del", "a\x00b\x7f", "a^@b^?"},
		{"c1 csi as utf-8", "x\u009b2Jy", "x<U+009B>2Jy"},
		{"raw 8-bit csi byte", "x\x9b2Jy", `x\x9b2Jy`},
		{"invalid utf-8", "a\xff\xfeb", `a\xff\xfeb`},
		{"bidi override", "admin\u202e\u2066x", "admin<U+202E><U+2066>x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, terminalSafeString(tt.in), "in one write")
			// A device's output arrives in chunks cut anywhere: byte by byte gives the same.
			var b bytes.Buffer
			w := newTerminalSafe(&b)
			for i := range len(tt.in) {
				n, err := w.Write([]byte{tt.in[i]})
				require.NoError(t, err)
				require.Equal(t, 1, n, "bytes reported written")
			}
			require.NoError(t, w.Close())
			assert.Equal(t, tt.want, b.String(), "byte by byte")
		})
	}
}

func TestCopyOutput(t *testing.T) {
	const in = "show\x1b]52;c;ZWNobw==\x07 done\r\n"
	tests := []struct {
		name string
		raw  bool
		want string
	}{
		{"escaped by default", false, "show^[]52;c;ZWNobw==^G done\r\n"},
		{"--raw keeps every byte", true, in},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			require.NoError(t, copyOutput(&b, strings.NewReader(in), tt.raw))
			assert.Equal(t, tt.want, b.String())
		})
	}
}
