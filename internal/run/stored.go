package run

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
