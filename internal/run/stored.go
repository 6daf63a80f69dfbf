package run

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Store-once rules: a run's output is kept as a body stored once under its SHA-256 (shared by
// every run, of any device, whose body is the same) and the run's own noise lines, kept with
// the run at their places, so that outputs differing only in noise share one body. See
// docs/retention.md.
const (
	// MinSharedBytes is the smallest output stored once: a smaller one stays in its run item,
	// where it costs no write of its own.
	MinSharedBytes = 1 << 10
	// MaxKeptNoiseBytes bounds the noise lines a run keeps itself; with more (or with more than a
	// quarter of the output in noise, or over MaxNoiseLines of them) the body is the exact bytes
	// and the run keeps no line.
	MaxKeptNoiseBytes = 1 << 10
)

// NoiseLine is one noise line of an output, kept with its run: Text is the line with its line
// ending, Index its place among the output's lines (from 0).
type NoiseLine struct {
	Index int
	Text  []byte
}

// Shared is an output as it is stored once: Body, stored under Key (its SHA-256, hex), and the
// noise lines that rebuild the exact output from it (Join).
type Shared struct {
	Key   string
	Body  []byte
	Noise []NoiseLine
}

// NoiseBytes is the size of the noise lines s keeps.
func (s Shared) NoiseBytes() int64 {
	var n int64
	for _, l := range s.Noise {
		n += int64(len(l.Text))
	}
	return n
}

// Share splits output into the body stored once and the noise lines at the indexes noise names
// (LineDigest.NoiseLines, in increasing order), following the store-once rules: too much noise,
// or noiseOK false, keys the exact bytes. ok is false when output is under MinSharedBytes.
func Share(output []byte, noise []int, noiseOK bool) (s Shared, ok bool) {
	if len(output) < MinSharedBytes {
		return Shared{}, false
	}
	var kept []NoiseLine
	var body []byte
	if noiseOK && len(noise) > 0 {
		body = make([]byte, 0, len(output))
		var size int
		next, rest := 0, output
		for i := 0; len(rest) > 0; i++ {
			end := bytes.IndexByte(rest, '\n') + 1
			if end == 0 {
				end = len(rest)
			}
			line := rest[:end]
			rest = rest[end:]
			if next < len(noise) && noise[next] == i {
				next++
				size += len(line)
				kept = append(kept, NoiseLine{Index: i, Text: line})
				continue
			}
			body = append(body, line...)
		}
		if next != len(noise) || size > MaxKeptNoiseBytes || size*4 > len(output) {
			kept, body = nil, nil // places past the end, or too much noise: key the exact bytes
		}
	}
	if body == nil {
		body = output
	}
	sum := sha256.Sum256(body)
	return Shared{Key: hex.EncodeToString(sum[:]), Body: body, Noise: kept}, true
}

// Join rebuilds the exact output from a body and its run's noise lines (Share's inverse).
func Join(body []byte, noise []NoiseLine) ([]byte, error) {
	if len(noise) == 0 {
		return body, nil
	}
	out := make([]byte, 0, len(body)+int(Shared{Noise: noise}.NoiseBytes()))
	next, rest := 0, body
	for i := 0; ; i++ {
		if next < len(noise) && noise[next].Index == i {
			out = append(out, noise[next].Text...)
			next++
			continue
		}
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexByte(rest, '\n') + 1
		if end == 0 {
			end = len(rest)
		}
		out = append(out, rest[:end]...)
		rest = rest[end:]
	}
	if next != len(noise) {
		return nil, fmt.Errorf("join output: noise line %d is past the body's end", noise[next].Index)
	}
	return out, nil
}

// Usage is output bytes as retention counts them: ChargedBytes, the exact bytes of runs' outputs
// (what NET_AUTO_RUN_MAX_BYTES caps per device), and StoredBytes, what is actually stored for
// them (a body shared by many runs once). For one device, StoredBytes is what its runs store
// themselves: their outputs not stored once and their noise lines, without the shared bodies.
type Usage struct {
	ChargedBytes int64 `json:"charged_bytes"`
	StoredBytes  int64 `json:"stored_bytes"`
}

// Encodings of packed noise lines (the first byte of EncodeNoise's output). A written encoding
// is never changed: stored runs are read with it.
const (
	noiseRaw      = 0
	noiseDeflate  = 1 // deflate without a dictionary (the first runs stored once)
	noiseDeflate2 = 2 // deflate with noiseDictV2
)

// noiseDictV2 is the preset dictionary packed noise lines are deflated with: the words and
// shapes the platforms' noise lines share (the built-in filters' lines, dates and times), so
// that even a run's first line is mostly back-references. Never change it: add a new encoding.
const noiseDictV2 = "System uptime is  days  hours  minutes\nKernel uptime is  day(s),  hour(s),  minute(s),  second(s)\n" +
	" up  days, 1 users, load averages: 0.00, 0.00, 0.00\nLast login: from \nUptime: weeks, days, hours and minutes\n" +
	"Free memory: kB\nTimezone: UTC\n## Last commit: 2026-01-01 00:00:00 UTC by admin\n## Last changed: 2026-01-01 00:00:00 UTC\n" +
	"Current time: 2026-01-01 00:00:00 UTC\nSystem booted: 2026-01-01 00:00:00 UTC (ago)\n" +
	"!Time: Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec  2026\n" +
	"!Running configuration last done at: \n! Startup-config last modified at  by admin\n" +
	"!! Last configuration change at  by admin\nntp clock-period 360287970189639\n" +
	"Current configuration : 8123 bytes\n! No configuration change since last restart\n" +
	"! NVRAM config last updated at 00:00:00 UTC Mon Dec 7 2026 by netauto\n" +
	"! Last configuration change at 00:00:00 UTC Mon Dec 7 2026 by netauto\n"

// EncodeNoise packs a run's noise lines for keeping with the run: each line's index and length
// as varints, then its bytes, deflated with noiseDictV2 when that is smaller (noise lines share
// their words and timestamps' shapes). The first byte says which encoding.
func EncodeNoise(lines []NoiseLine) []byte {
	if len(lines) == 0 {
		return nil
	}
	raw := []byte{noiseRaw}
	for _, l := range lines {
		raw = binary.AppendUvarint(raw, uint64(l.Index))
		raw = binary.AppendUvarint(raw, uint64(len(l.Text)))
		raw = append(raw, l.Text...)
	}
	var z bytes.Buffer
	z.WriteByte(noiseDeflate2)
	fw, err := flate.NewWriterDict(&z, flate.BestCompression, []byte(noiseDictV2))
	if err == nil {
		_, err = fw.Write(raw[1:])
	}
	if err == nil {
		err = fw.Close()
	}
	if err == nil && z.Len() < len(raw) {
		return z.Bytes()
	}
	return raw
}

// DecodeNoise unpacks EncodeNoise's bytes.
func DecodeNoise(b []byte) ([]NoiseLine, error) {
	if len(b) == 0 {
		return nil, nil
	}
	body := b[1:]
	var r io.ReadCloser
	switch b[0] {
	case noiseRaw:
	case noiseDeflate:
		r = flate.NewReader(bytes.NewReader(body))
	case noiseDeflate2:
		r = flate.NewReaderDict(bytes.NewReader(body), []byte(noiseDictV2))
	default:
		return nil, fmt.Errorf("decode noise lines: unknown encoding %d", b[0])
	}
	if r != nil {
		var err error
		if body, err = io.ReadAll(io.LimitReader(r, ChunkSize)); err != nil {
			return nil, fmt.Errorf("decode noise lines: %w", err)
		}
	}
	var out []NoiseLine
	for len(body) > 0 {
		idx, n := binary.Uvarint(body)
		if n <= 0 {
			return nil, errors.New("decode noise lines: bad index")
		}
		body = body[n:]
		size, n := binary.Uvarint(body)
		if n <= 0 || uint64(len(body)-n) < size {
			return nil, errors.New("decode noise lines: bad length")
		}
		body = body[n:]
		out = append(out, NoiseLine{Index: int(idx), Text: body[:size:size]})
		body = body[size:]
	}
	return out, nil
}
