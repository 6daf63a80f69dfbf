package run

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// prefixNoise calls lines that begin with "! Last" or "ntp clock-period" noise.
type prefixNoise struct{}

func (prefixNoise) Noise(line []byte) bool {
	return bytes.HasPrefix(line, []byte("! Last")) || bytes.HasPrefix(line, []byte("ntp clock-period"))
}

// config is a configuration of about n bytes whose lines end in eol, with noise lines at the top,
// in the middle and (unless last is false) as its last line.
func config(n int, eol string, last bool) string {
	var b strings.Builder
	b.WriteString("! Last configuration change at 02:14:07 UTC Mon Dec 7 2026 by admin" + eol)
	for i := 0; b.Len() < n; i++ {
		b.WriteString("interface GigabitEthernet" + strings.Repeat("1", i%7+1) + eol + " no shutdown" + eol)
		if i == 20 {
			b.WriteString("ntp clock-period 36028797018963968" + eol)
		}
	}
	if last {
		b.WriteString("ntp clock-period 17179869184")
	} else {
		b.WriteString("end" + eol)
	}
	return b.String()
}

// TestShareJoin: an output split into its body and noise lines (with the places a ChunkWriter
// finds, fed in odd pieces) is rebuilt byte for byte, and outputs that differ only in noise share
// one body key; the store-once rules (size, noise share, lost places) hold.
func TestShareJoin(t *testing.T) {
	tests := []struct {
		name      string
		output    string
		shared    bool // stored once at all
		keepNoise bool // the body leaves noise lines out
	}{
		{name: "LF configuration", output: config(4000, "\n", false), shared: true, keepNoise: true},
		{name: "CRLF configuration", output: config(4000, "\r\n", false), shared: true, keepNoise: true},
		{name: "last line is noise without a line ending", output: config(4000, "\n", true), shared: true, keepNoise: true},
		{name: "no noise lines", output: strings.Repeat("hostname r1\n", 400), shared: true},
		{name: "noise is most of it", output: strings.Repeat("ntp clock-period 36028797018963968\nx\n", 100), shared: true},
		{name: "too small to share", output: config(500, "\n", false)},
		{name: "empty", output: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewChunkWriter(context.Background(), &nopStore{}, Run{ID: "r"})
			w.FilterNoise(prefixNoise{})
			for p := []byte(tt.output); len(p) > 0; {
				n := min(len(p), 37)
				_, err := w.Write(p[:n])
				require.NoError(t, err)
				p = p[n:]
			}
			places, ok := w.NoiseLines()
			require.True(t, ok, "every noise line's place is known")
			sh, shared := Share([]byte(tt.output), places, ok)
			require.Equal(t, tt.shared, shared, "stored once")
			if !shared {
				return
			}
			assert.Equal(t, tt.keepNoise, len(sh.Noise) > 0, "noise lines kept with the run")
			got, err := Join(sh.Body, sh.Noise)
			require.NoError(t, err)
			assert.Equal(t, tt.output, string(got), "rebuilt byte for byte")
			kept, err := DecodeNoise(EncodeNoise(sh.Noise))
			require.NoError(t, err)
			got, err = Join(sh.Body, kept)
			require.NoError(t, err)
			assert.Equal(t, tt.output, string(got), "rebuilt byte for byte from the packed noise lines")
			if !tt.keepNoise {
				assert.Equal(t, tt.output, string(sh.Body), "the body is the exact bytes")
				return
			}
			// The same configuration with other noise values shares the body.
			other := strings.ReplaceAll(strings.ReplaceAll(tt.output, "02:14:07", "03:15:08"), "36028797018963968", "36028797018963969")
			again, _ := Share([]byte(other), places, true)
			assert.Equal(t, sh.Key, again.Key, "other noise, same body key")
			assert.NotEqual(t, sh.NoiseBytes(), 0, "noise bytes counted")
		})
	}
	_, ok := Share([]byte(config(4000, "\n", false)), []int{0}, false)
	assert.True(t, ok, "lost places still share, keyed by the exact bytes")
	sh, _ := Share([]byte(config(4000, "\n", false)), []int{0}, false)
	assert.Empty(t, sh.Noise, "lost places keep no noise line")
	_, err := Join([]byte("a\n"), []NoiseLine{{Index: 5, Text: []byte("x\n")}})
	assert.Error(t, err, "a noise line past the body's end")
	// Every encoding ever written still decodes.
	lines := []NoiseLine{{Index: 2, Text: []byte("! Last configuration change at 02:14:07 UTC Mon Dec 7 2026 by admin\n")}, {Index: 9, Text: []byte("ntp clock-period 17179869184")}}
	packed := EncodeNoise(lines)
	assert.Equal(t, byte(noiseDeflate2), packed[0], "packed with the dictionary")
	assert.Less(t, len(packed), 60, "the dictionary makes noise lines small: %d bytes", len(packed))
	var z bytes.Buffer
	fw, err := flate.NewWriter(&z, flate.BestCompression)
	require.NoError(t, err)
	_, err = fw.Write(EncodeNoise(nil))
	require.NoError(t, err)
	raw := []byte{noiseRaw}
	for _, l := range lines {
		raw = binary.AppendUvarint(binary.AppendUvarint(raw, uint64(l.Index)), uint64(len(l.Text)))
		raw = append(raw, l.Text...)
	}
	z.Reset()
	fw.Reset(&z)
	_, err = fw.Write(raw[1:])
	require.NoError(t, err)
	require.NoError(t, fw.Close())
	for name, enc := range map[string][]byte{"raw": raw, "deflate": append([]byte{noiseDeflate}, z.Bytes()...), "deflate with the dictionary": packed} {
		got, err := DecodeNoise(enc)
		require.NoError(t, err, name)
		assert.Equal(t, lines, got, name)
	}
	for _, bad := range [][]byte{{7}, {0, 1}, {0, 1, 9, 'x'}, {1, 0xff, 0xff}} {
		_, err := DecodeNoise(bad)
		assert.Error(t, err, "packed noise lines %v", bad)
	}
}

// TestShareJoinAnyLines: outputs built at random from awkward lines (empty, CRLF mixed with LF, a
// lone "\r", noise first, last, back to back, a last line without a line ending, a line longer
// than MaxLineBytes), fed to a LineDigest in odd pieces, are rebuilt byte for byte, and the body
// leaves out exactly the noise lines it kept.
func TestShareJoinAnyLines(t *testing.T) {
	shapes := []string{"", "hostname r1", "ntp clock-period 1", "! Last change", " x\r", strings.Repeat("y", MaxLineBytes+1)}
	eols := []string{"\n", "\r\n", "\r\r\n"}
	seed := uint32(1)
	next := func(n int) int { // a small deterministic generator: the same cases every run
		seed = seed*1664525 + 1013904223
		return int(seed>>8) % n
	}
	kept := 0
	for c := range 300 {
		var b strings.Builder
		for b.Len() < MinSharedBytes || next(4) != 0 {
			shape := shapes[next(len(shapes))]
			if shape == shapes[5] && next(8) != 0 {
				shape = shapes[1] // long lines now and then
			}
			b.WriteString(shape + eols[next(len(eols))])
		}
		if next(2) == 0 {
			b.WriteString([]string{"ntp clock-period 2", "end", ""}[next(3)]) // no line ending
		}
		output := []byte(b.String())
		d := NewLineDigest(prefixNoise{})
		for p := output; len(p) > 0; {
			n := min(len(p), 1+next(700))
			_, _ = d.Write(p[:n])
			p = p[n:]
		}
		places, ok := d.NoiseLines()
		sh, shared := Share(output, places, ok)
		require.True(t, shared, "case %d is stored once", c)
		packed, err := DecodeNoise(EncodeNoise(sh.Noise))
		require.NoError(t, err, "case %d", c)
		got, err := Join(sh.Body, packed)
		require.NoError(t, err, "case %d", c)
		require.Equal(t, string(output), string(got), "case %d is rebuilt byte for byte", c)
		if len(sh.Noise) > 0 {
			kept++
			assert.Equal(t, len(output), len(sh.Body)+int(sh.NoiseBytes()), "case %d: the body is the output without the lines kept", c)
			assert.Equal(t, Lines(output, prefixNoise{}), Lines(sh.Body, prefixNoise{}), "case %d: the body has every line but the noise", c)
		}
	}
	t.Logf("%d of 300 cases kept noise lines", kept)
	assert.Greater(t, kept, 100, "most cases keep noise lines apart from the body")
}
