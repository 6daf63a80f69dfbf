package run

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOutputDigest(t *testing.T) {
	base := OutputDigest([]byte("Cisco IOS XE 17.9.4\nuptime is 3 weeks"))
	tests := []struct {
		name   string
		output string
		same   bool
	}{
		{name: "identical", output: "Cisco IOS XE 17.9.4\nuptime is 3 weeks", same: true},
		{name: "CRLF line endings", output: "Cisco IOS XE 17.9.4\r\nuptime is 3 weeks", same: true},
		{name: "runs of spaces and tabs", output: "Cisco  IOS\tXE 17.9.4 \n uptime   is 3 weeks", same: true},
		{name: "leading and trailing whitespace", output: "\n\n  Cisco IOS XE 17.9.4\nuptime is 3 weeks\n\n", same: true},
		{name: "other version", output: "Cisco IOS XE 17.12.1\nuptime is 3 weeks"},
		{name: "whitespace removed inside a word boundary", output: "Cisco IOS XE 17.9.4uptime is 3 weeks"},
		{name: "empty", output: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := OutputDigest([]byte(tc.output))
			require.Len(t, got, 32, "digest %q: want 32 hex digits", got)
			assert.Equal(t, tc.same, got == base, "digest of %q equal to the base's", tc.output)
		})
	}
}

// nopStore keeps chunks in memory: the ChunkWriter's own logic is under test.
type nopStore struct {
	Store
	chunks [][]byte
}

func (s *nopStore) AppendChunk(_ context.Context, _ Run, _ int, data []byte) error {
	s.chunks = append(s.chunks, append([]byte(nil), data...))
	return nil
}

func TestChunkWriterDigestMatchesWholeOutput(t *testing.T) {
	out := bytes.Repeat([]byte("interface Gi0/1\n  description uplink   \r\n"), 5000) // > 3 chunks
	tests := []struct {
		name  string
		split int
	}{
		{name: "one write", split: len(out)},
		{name: "1-byte writes", split: 1},
		{name: "7-byte writes splitting whitespace runs", split: 7},
		{name: "chunk-sized writes", split: ChunkSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &nopStore{}
			w := NewChunkWriter(context.Background(), st, Run{ID: "r"})
			for p := out; len(p) > 0; {
				n := min(tc.split, len(p))
				_, err := w.Write(p[:n])
				require.NoError(t, err, "write %d bytes", n)
				p = p[n:]
			}
			assert.Equal(t, OutputDigest(out), w.Digest(), "streamed digest")
			got := append(bytes.Join(st.chunks, nil), w.Pending()...)
			assert.True(t, bytes.Equal(got, out), "chunks hold %d bytes, want the %d written", len(got), len(out))
		})
	}
	t.Run("no output", func(t *testing.T) {
		assert.Empty(t, NewChunkWriter(context.Background(), &nopStore{}, Run{}).Digest(), "digest of no output")
	})
}

// TestSameCommands: runs are compared by the commands they ran, not by their Command, which is
// only a sequence's summary.
func TestSameCommands(t *testing.T) {
	seq := func(cmds ...string) Run {
		r := Run{Command: cmds[0] + " (+1 more)", Status: Succeeded} // Summary's form
		for _, c := range cmds {
			r.Commands = append(r.Commands, CommandResult{Command: c, Status: Succeeded})
		}
		return r
	}
	tests := []struct {
		name string
		a, b Run
		want bool
	}{
		{"one command each", Run{Command: "show version"}, Run{Command: "show version"}, true},
		{"other command", Run{Command: "show version"}, Run{Command: "show clock"}, false},
		{"a sequence of one and its command", Run{Command: "show version", Commands: []CommandResult{{Command: "show version"}}}, Run{Command: "show version"}, true},
		{"same sequence", seq("show run", "show version"), seq("show run", "show version"), true},
		{"one summary, other commands", seq("show run", "show version"), seq("show run", "show clock"), false},
		{"other order", seq("show run", "show version"), seq("show version", "show run"), false},
		{"a command that reads like a summary", Run{Command: "show run (+1 more)"}, seq("show run", "show version"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, SameCommands(tt.a, tt.b), "a, b")
			assert.Equal(t, tt.want, SameCommands(tt.b, tt.a), "b, a")
		})
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		name    string
		first   string
		n       int
		want    string
		summary bool
	}{
		{name: "one command", first: "show clock", n: 1, want: "show clock"},
		{name: "three commands", first: "show clock", n: 3, want: "show clock (+2 more)", summary: true},
		{name: "twenty", first: "a", n: 20, want: "a (+19 more)", summary: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Summary(tc.first, tc.n)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.summary, IsSummary(got))
		})
	}
	for _, s := range []string{"show (+x more)", "show (+0 more)", "show more)", "(+2 more", "show (+-1 more)"} {
		assert.False(t, IsSummary(s), "%q is no summary", s)
	}
}
