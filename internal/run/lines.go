package run

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

// LineFilter says which output lines are noise: lines that change without any change on the
// device, such as timestamps (platform.Noise implements it).
type LineFilter interface {
	// Noise reports whether line, without its line ending, is noise.
	Noise(line []byte) bool
}

// MaxLineBytes is the longest line a LineDigest holds whole to ask its filter about; the rest of
// a longer line is hashed as it comes and the line is never noise. Output is cut into lines at
// "\n" with one trailing "\r" dropped, so CRLF and LF outputs have the same lines.
const MaxLineBytes = 16 << 10

// LineDigest hashes a stream's lines the way Lines cuts them, leaving out the noise lines, with
// memory bounded by MaxLineBytes: two outputs get the same digest exactly when their line lists
// without noise are equal, which is when their filtered diff is empty.
type LineDigest struct {
	filter LineFilter
	h      hash.Hash
	line   []byte
	long   bool // the current line outgrew MaxLineBytes and is being hashed as it comes
	cr     bool // a long line's last byte so far is a "\r", held back in case the line ends
	// n is the index of the current line; noise the indexes of the noise lines so far, up to
	// MaxNoiseLines (overflow says there were more).
	n        int
	noise    []int
	overflow bool
}

// MaxNoiseLines is the most noise lines a LineDigest remembers the places of (NoiseLines).
const MaxNoiseLines = 256

// NewLineDigest returns a LineDigest that skips the lines filter calls noise (none for nil).
func NewLineDigest(filter LineFilter) *LineDigest {
	return &LineDigest{filter: filter, h: sha256.New()}
}

// Write adds p to the stream; it never fails.
func (d *LineDigest) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		piece := p
		if i >= 0 {
			piece = p[:i]
		}
		d.add(piece)
		if i < 0 {
			break
		}
		d.end()
		p = p[i+1:]
	}
	return n, nil
}

// add appends part of the current line.
func (d *LineDigest) add(piece []byte) {
	if !d.long && len(d.line)+len(piece) <= MaxLineBytes {
		d.line = append(d.line, piece...)
		return
	}
	if !d.long {
		d.long = true
		piece = append(d.line, piece...)
		d.line = d.line[:0]
	}
	if len(piece) == 0 {
		return
	}
	if d.cr {
		d.h.Write([]byte{'\r'})
	}
	d.cr = piece[len(piece)-1] == '\r'
	if d.cr {
		piece = piece[:len(piece)-1]
	}
	d.h.Write(piece)
}

// end closes the current line.
func (d *LineDigest) end() {
	switch {
	case d.long:
		// A long line is never noise; its held-back "\r", if any, was its line ending.
		d.h.Write([]byte{'\n'})
	default:
		line := bytes.TrimSuffix(d.line, []byte{'\r'})
		if d.filter == nil || !d.filter.Noise(line) {
			d.h.Write(line)
			d.h.Write([]byte{'\n'})
		} else if len(d.noise) < MaxNoiseLines {
			d.noise = append(d.noise, d.n)
		} else {
			d.overflow = true
		}
	}
	d.line, d.long, d.cr = d.line[:0], false, false
	d.n++
}

// NoiseLines returns the indexes (from 0, in the order Lines cuts the stream without a filter)
// of the noise lines written so far, a last line without a line ending included; ok is false
// when there were more than MaxNoiseLines.
func (d *LineDigest) NoiseLines() (lines []int, ok bool) {
	c := *d
	c.h = sha256.New() // Sum's copy of the state is not needed: only the places are read
	c.noise = append([]int(nil), d.noise...)
	c.line = append([]byte(nil), d.line...)
	if len(c.line) > 0 || c.long {
		c.end()
	}
	return c.noise, !c.overflow
}

// Sum returns the first 128 bits of the digest, in hex; a last line without a line ending counts
// as a line. It does not change the state: more may be written after it.
func (d *LineDigest) Sum() string {
	c := *d
	h, err := d.h.(hash.Cloner).Clone()
	if err != nil {
		panic("run: a SHA-256 state cannot be copied: " + err.Error())
	}
	c.h = h
	c.line = append([]byte(nil), d.line...)
	if len(c.line) > 0 || c.long {
		c.end()
	}
	return hex.EncodeToString(c.h.Sum(nil)[:16])
}

// Lines cuts output into lines the way LineDigest does, leaving out the noise lines filter
// names (none for nil): at "\n", one trailing "\r" dropped, a last line without a line ending
// kept. The lines share output's memory.
func Lines(output []byte, filter LineFilter) [][]byte {
	lines := make([][]byte, 0, bytes.Count(output, []byte{'\n'})+1)
	for len(output) > 0 {
		i := bytes.IndexByte(output, '\n')
		var line []byte
		if i < 0 {
			line, output = output, nil
		} else {
			line, output = output[:i], output[i+1:]
		}
		raw := len(line)
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if filter != nil && raw <= MaxLineBytes && filter.Noise(line) {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}
