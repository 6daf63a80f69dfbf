package dynamo

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/run"
)

// TestRunStoreCommandOutputs stores sequences whose commands start and end at every kind of
// place (inside a chunk, on a chunk boundary, in the tail, empty) and reads each command's output
// back by its range; the whole output and the device's bytes stay those of one stream.
func TestRunStoreCommandOutputs(t *testing.T) {
	rt := newRunStore(t)
	const c = run.ChunkSize
	tests := []struct {
		name  string
		sizes []int
	}{
		{name: "all in the tail", sizes: []int{10, 0, 20}},
		{name: "across a boundary into the tail", sizes: []int{c - 5, 10, 7}},
		{name: "exactly on boundaries", sizes: []int{c, c, 3}},
		{name: "a command of several chunks", sizes: []int{3, 3*c + 17, 2}},
		{name: "no tail", sizes: []int{c / 2, c / 2}},
		{name: "empty last command", sizes: []int{c + 1, 0}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dev := fmt.Sprintf("dev-seq-%d", i)
			r := testRun(fmt.Sprintf("seq-%d", i), dev)
			r.Command = run.Summary("cmd0", len(tt.sizes))
			r, err := rt.Start(ctx, r)
			require.NoError(t, err)
			w := run.NewChunkWriter(ctx, rt.RunStore, r)
			var outs [][]byte
			for j, n := range tt.sizes {
				require.NoError(t, w.StartCommand(j))
				o := randomOutput(n + 31*j)[:n]
				outs = append(outs, o)
				_, err := w.Write(o)
				require.NoError(t, err)
			}
			r.Status, r.Bytes, r.Chunks = run.Succeeded, w.Bytes(), w.Chunks()
			for j := range tt.sizes {
				off, n := w.CommandSpan(j)
				r.Commands = append(r.Commands, run.CommandResult{Command: fmt.Sprintf("cmd%d", j), Status: run.Succeeded, Offset: off, Bytes: n})
			}
			require.NoError(t, rt.Finish(ctx, r, w.Pending()))
			got, err := rt.Get(ctx, r.ID)
			require.NoError(t, err)
			require.Equal(t, r.Commands, got.Commands, "the stored per-command results")
			var whole []byte
			for j, cr := range got.Commands {
				var b bytes.Buffer
				require.NoError(t, rt.WriteOutputRange(ctx, got, cr.Offset, cr.Bytes, &b))
				sameBytes(t, outs[j], b.Bytes(), fmt.Sprintf("command %d's output", j))
				whole = append(whole, outs[j]...)
			}
			sameBytes(t, whole, rt.output(t, r.ID), "the whole output")
			assert.EqualValues(t, len(whole), rt.deviceBytes(t, dev), "the device's bytes")

			// The device's run list (an index without the per-command results) reads them.
			listed, _, err := rt.ListByDevice(ctx, dev, "", 10)
			require.NoError(t, err)
			require.Len(t, listed, 1)
			assert.Equal(t, r.Commands, listed[0].Commands, "the listed run's per-command results")
		})
	}
}
