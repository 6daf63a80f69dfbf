package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/run"
)

// TestRunStoreDigests: a batch's digests are kept beside those of its earlier invocations and
// read back in one call only for the commands they are of, until they expire.
func TestRunStoreDigests(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	showRun := run.Run{Command: "show run"}
	seq := run.Run{Command: "show run (+1 more)", Commands: []run.CommandResult{{Command: "show run"}, {Command: "show clock"}}}
	later := rt.clock.now().Add(time.Hour)
	a, b := "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
	require.NoError(t, rt.RecordDigests(ctx, "j1", 0, showRun, map[string]string{"r1.example.net": a, "bad": "not hex"}, later))
	require.NoError(t, rt.RecordDigests(ctx, "j1", 0, showRun, map[string]string{"r2": b}, later), "a later invocation of the batch")
	require.NoError(t, rt.RecordDigests(ctx, "j1", 1, showRun, nil, later), "nothing to keep")
	require.NoError(t, rt.RecordDigests(ctx, "j2", 0, seq, map[string]string{"r1.example.net": b}, later))
	require.NoError(t, rt.RecordDigests(ctx, "j3", 0, showRun, map[string]string{"r1.example.net": a}, rt.clock.now().Add(-time.Second)))

	tests := []struct {
		name  string
		job   string
		batch int
		of    run.Run
		want  map[string]string
	}{
		{name: "both invocations' digests, a dotted device id whole", job: "j1", of: showRun, want: map[string]string{"r1.example.net": a, "r2": b}},
		{name: "another command", job: "j1", of: run.Run{Command: "show version"}, want: map[string]string{}},
		{name: "another batch", job: "j1", batch: 1, of: showRun, want: map[string]string{}},
		{name: "the same sequence", job: "j2", of: seq, want: map[string]string{"r1.example.net": b}},
		{name: "another sequence under the same summary", job: "j2", of: run.Run{Command: seq.Command, Commands: []run.CommandResult{{Command: "show run"}, {Command: "show version"}}}, want: map[string]string{}},
		{name: "expired", job: "j3", of: showRun, want: map[string]string{}},
		{name: "no such job", job: "j9", of: showRun, want: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := rt.DigestsIn(ctx, tt.job, tt.batch, tt.of)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
