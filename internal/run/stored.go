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

// EncodeNoise packs a run's noise lines for keeping with the run: each line's index and length
// as varints, then its bytes, deflated when that is smaller (noise lines repeat their timestamps
// and words). The first byte says which (0 raw, 1 deflated).
func EncodeNoise(lines []NoiseLine) []byte {
	if len(lines) == 0 {
		return nil
	}
	raw := []byte{0}
	for _, l := range lines {
		raw = binary.AppendUvarint(raw, uint64(l.Index))
		raw = binary.AppendUvarint(raw, uint64(len(l.Text)))
		raw = append(raw, l.Text...)
	}
	var z bytes.Buffer
	z.WriteByte(1)
	fw, err := flate.NewWriter(&z, flate.BestCompression)
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
	switch b[0] {
	case 0:
	case 1:
		var err error
		if body, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(body)), ChunkSize)); err != nil {
			return nil, fmt.Errorf("decode noise lines: %w", err)
		}
	default:
		return nil, fmt.Errorf("decode noise lines: unknown encoding %d", b[0])
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
