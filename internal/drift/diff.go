// Package drift is configuration drift: which lines of a device's output are noise (the
// platform's built-in filters and the ones admins add per command pattern), and the line diff
// of two runs' outputs, without the noise unless asked for. It imports no AWS SDK.
package drift

import (
	"bufio"
	"fmt"
	"io"

	"github.com/aymanbagabas/go-udiff/lcs"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// MaxOutputBytes is the largest output Diff compares: 1 MiB, the default output cap of a run.
// Its time and memory are bounded by it (see docs/performance.md).
const MaxOutputBytes = 1 << 20

// MaxContext is the most lines of context a hunk may carry on each side.
const MaxContext = 20

// ErrTooLarge means an output is over MaxOutputBytes.
var ErrTooLarge = fault.New(fault.Invalid, "", fmt.Sprintf("the output is over %d bytes, the most a diff compares", MaxOutputBytes))

// Op is what a diff line does.
type Op string

// Line operations.
const (
	Context Op = "context"
	Add     Op = "add"
	Delete  Op = "delete"
)

// Line is one line of a hunk, without its line ending.
type Line struct {
	Op   Op     `json:"op"`
	Text string `json:"text"`
}

// Hunk is one stretch of changes with its context. Starts are 1-based line numbers; a side with
// no lines starts at the line before the change (0 at the top), as unified diffs have it.
type Hunk struct {
	OldStart int    `json:"old_start"`
	OldLines int    `json:"old_lines"`
	NewStart int    `json:"new_start"`
	NewLines int    `json:"new_lines"`
	Lines    []Line `json:"lines"`
}

// Diff returns the hunks that turn old into new, comparing lines cut by run.Lines (so CRLF and
// LF outputs compare equal) without the lines each side's filter calls noise (nil filters keep
// every line), with context lines of context (0..MaxContext). ErrTooLarge when an output is
// over MaxOutputBytes. The line matching is go-udiff's (the diff of gopls), whose search is
// bounded, so a diff of two unrelated 1 MiB outputs still ends quickly, possibly with a larger
// than minimal diff.
func Diff(old, new []byte, oldNoise, newNoise run.LineFilter, context int) ([]Hunk, error) {
	if len(old) > MaxOutputBytes || len(new) > MaxOutputBytes {
		return nil, ErrTooLarge
	}
	context = min(max(context, 0), MaxContext)
	a, b := texts(old, oldNoise), texts(new, newNoise)
	ds := lcs.DiffLines(a, b)
	var hunks []Hunk
	for i := 0; i < len(ds); {
		j := i
		for j+1 < len(ds) && ds[j+1].Start-ds[j].End <= 2*context {
			j++
		}
		oldFrom := max(0, ds[i].Start-context)
		newFrom := ds[i].ReplStart - (ds[i].Start - oldFrom)
		oldTo := min(len(a), ds[j].End+context)
		h := Hunk{}
		pos := oldFrom
		ctx := func(to int) {
			for ; pos < to; pos++ {
				h.Lines = append(h.Lines, Line{Op: Context, Text: a[pos]})
				h.OldLines++
				h.NewLines++
			}
		}
		for _, d := range ds[i : j+1] {
			ctx(d.Start)
			for _, l := range a[d.Start:d.End] {
				h.Lines = append(h.Lines, Line{Op: Delete, Text: l})
				h.OldLines++
			}
			for _, l := range b[d.ReplStart:d.ReplEnd] {
				h.Lines = append(h.Lines, Line{Op: Add, Text: l})
				h.NewLines++
			}
			pos = d.End
		}
		ctx(oldTo)
		h.OldStart, h.NewStart = oldFrom, newFrom
		if h.OldLines > 0 {
			h.OldStart++
		}
		if h.NewLines > 0 {
			h.NewStart++
		}
		hunks = append(hunks, h)
		i = j + 1
	}
	return hunks, nil
}

// texts returns output's lines (run.Lines) as strings, the form the line matcher compares,
// copying output once: each line is a slice of output, found at its offset.
func texts(output []byte, noise run.LineFilter) []string {
	lines := run.Lines(output, noise)
	whole := string(output)
	out := make([]string, len(lines))
	for i, l := range lines {
		at := cap(output) - cap(l)
		out[i] = whole[at : at+len(l)]
	}
	return out
}

// WriteUnified writes hunks as a unified diff ("--- oldLabel", "+++ newLabel", "@@ -s,n +s,n @@"
// and the lines marked " ", "-", "+"); nothing when there are no hunks.
func WriteUnified(w io.Writer, oldLabel, newLabel string, hunks []Hunk) error {
	if len(hunks) == 0 {
		return nil
	}
	bw := bufio.NewWriterSize(w, 32<<10)
	fmt.Fprintf(bw, "--- %s\n+++ %s\n", oldLabel, newLabel)
	for _, h := range hunks {
		fmt.Fprintf(bw, "@@ -%d,%d +%d,%d @@\n", h.OldStart, h.OldLines, h.NewStart, h.NewLines)
		for _, l := range h.Lines {
			mark := byte(' ')
			switch l.Op {
			case Add:
				mark = '+'
			case Delete:
				mark = '-'
			}
			_ = bw.WriteByte(mark)
			_, _ = bw.WriteString(l.Text)
			_ = bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}
