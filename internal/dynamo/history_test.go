package dynamo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// TestRunStoreHistoryAndPrevious: a device's finished runs of one command are listed newest first
// and paged, without its other commands, other devices or a running run; Previous finds the newest
// succeeded run created before a run, skipping failures, and the drift fields round-trip.
func TestRunStoreHistoryAndPrevious(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	changed := true
	var want []string // newest first
	statuses := []run.Status{run.Succeeded, run.Succeeded, run.Failed, run.Succeeded, run.TimedOut, run.Failed}
	for i, st := range statuses {
		r := testRun(fmt.Sprintf("h%d", i), "dev-hist")
		r.Command = "show running-config"
		r.CreatedAt, r.Status = base.Add(time.Duration(i)*time.Second), st
		r.ContentSHA256, r.FilteredDigest = fmt.Sprintf("%064d", i), fmt.Sprintf("%032d", i)
		if i == 3 {
			r.Changed, r.PreviousRunID = &changed, "h1"
		}
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
		want = append([]string{r.ID}, want...)
	}
	for _, r := range []run.Run{
		{ID: "other-cmd", DeviceID: "dev-hist", Command: "show version", Status: run.Succeeded, CreatedAt: base},
		{ID: "other-dev", DeviceID: "dev-else", Command: "show running-config", Status: run.Succeeded, CreatedAt: base},
	} {
		require.NoError(t, rt.FinishNew(ctx, r, nil))
	}
	running := testRun("h-running", "dev-hist")
	running.Command, running.CreatedAt = "show running-config", base.Add(time.Minute)
	_, err := rt.Start(ctx, running)
	require.NoError(t, err)

	var got []run.Run
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging ends")
		runs, next, err := rt.History(ctx, "dev-hist", "show running-config", cursor, 4)
		require.NoError(t, err)
		got = append(got, runs...)
		if next == "" {
			break
		}
		cursor = next
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	require.Equal(t, want, ids, "history newest first, finished runs of this command and device only")
	h3 := got[len(got)-4]
	require.Equal(t, "h3", h3.ID)
	require.NotNil(t, h3.Changed, "changed stored")
	assert.True(t, *h3.Changed, "changed")
	assert.Equal(t, "h1", h3.PreviousRunID, "previous run id")
	assert.Equal(t, fmt.Sprintf("%064d", 3), h3.ContentSHA256, "content hash")
	assert.Equal(t, fmt.Sprintf("%032d", 3), h3.FilteredDigest, "filtered digest")
	assert.Nil(t, got[len(got)-1].Changed, "a first run's changed is null")

	_, _, err = rt.History(ctx, "dev-else", "show running-config", cursor+"x", 4)
	assert.ErrorIs(t, err, fault.ErrBadCursor, "a bad cursor")

	tests := []struct {
		name   string
		before run.Run
		want   string // "" for none
	}{
		{"after failures", run.Run{ID: "n6", CreatedAt: base.Add(6 * time.Second)}, "h3"},
		{"the run itself is skipped", run.Run{ID: "h3", CreatedAt: base.Add(3 * time.Second)}, "h1"},
		{"created between", run.Run{ID: "zz", CreatedAt: base.Add(1500 * time.Millisecond)}, "h1"},
		{"first run", run.Run{ID: "h0", CreatedAt: base}, ""},
		{"other command", run.Run{ID: "n7", Command: "show clock", CreatedAt: base.Add(time.Hour)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.before
			r.DeviceID = "dev-hist"
			if r.Command == "" {
				r.Command = "show running-config"
			}
			prev, err := rt.Previous(ctx, r)
			if tt.want == "" {
				require.ErrorIs(t, err, run.ErrNotFound, "no previous run")
				return
			}
			require.NoError(t, err, "previous run")
			assert.Equal(t, tt.want, prev.ID, "previous run")
			assert.Equal(t, run.Succeeded, prev.Status, "previous run succeeded")
		})
	}
}
