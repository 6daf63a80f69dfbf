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

// TestRunStorePreviousSequence: two sequences that share a summary ("show run (+1 more)") share
// the by_command partition, whose items keep their commands, and a run's previous run is the
// newest one that ran its commands.
func TestRunStorePreviousSequence(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	stored := func(id string, at int, cmds ...string) run.Run {
		r := testRun(id, "dev-seq")
		r.Command = cmds[0] + " (+1 more)"
		r.CreatedAt, r.Status = base.Add(time.Duration(at)*time.Second), run.Succeeded
		for _, c := range cmds {
			r.Commands = append(r.Commands, run.CommandResult{Command: c, Status: run.Succeeded})
		}
		return r
	}
	for _, r := range []run.Run{
		stored("nightly-1", 0, "show run", "show version"),
		stored("adhoc", 1, "show run", "show clock"),
	} {
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
	}
	hist, _, err := rt.History(ctx, "dev-seq", "show run (+1 more)", "", 10)
	require.NoError(t, err, "history")
	require.Len(t, hist, 2, "both sequences are in the summary's history")
	for _, h := range hist {
		assert.Len(t, h.Commands, 2, "run %s's history item keeps its commands (the index projects cmds)", h.ID)
	}
	tests := []struct {
		name string
		r    run.Run
		want string // "" for none
	}{
		{"past a run of other commands", stored("nightly-2", 2, "show run", "show version"), "nightly-1"},
		{"the newest of its own", stored("adhoc-2", 2, "show run", "show clock"), "adhoc"},
		{"none of its commands", stored("other", 2, "show run", "show inventory"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, err := rt.Previous(ctx, tt.r)
			if tt.want == "" {
				require.ErrorIs(t, err, run.ErrNotFound, "no previous run")
				return
			}
			require.NoError(t, err, "previous run")
			assert.Equal(t, tt.want, prev.ID, "previous run")
		})
	}
}

// TestRunStoreListByDeviceDrift: a device's run list carries what drift adds to a run (changed,
// previous_run_id, content_sha256, filtered_digest) and a sequence's per-command results, all from
// the by_device index's projection.
func TestRunStoreListByDeviceDrift(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	changed := true
	first := testRun("ld-1", "dev-list")
	first.Command, first.Status, first.CreatedAt = "show running-config", run.Succeeded, base
	second := first
	second.ID, second.CreatedAt = "ld-2", base.Add(time.Second)
	second.Changed, second.PreviousRunID = &changed, first.ID
	second.ContentSHA256, second.FilteredDigest = fmt.Sprintf("%064d", 2), fmt.Sprintf("%032d", 2)
	seq := testRun("ld-3", "dev-list")
	seq.Command, seq.Status, seq.CreatedAt = "show run (+1 more)", run.Succeeded, base.Add(2*time.Second)
	seq.Commands = []run.CommandResult{{Command: "show run", Status: run.Succeeded, Bytes: 2}, {Command: "show clock", Status: run.Succeeded, Bytes: 1, Offset: 2}}
	for _, r := range []run.Run{first, second, seq} {
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
	}
	runs, _, err := rt.ListByDevice(ctx, "dev-list", "", 10)
	require.NoError(t, err)
	require.Len(t, runs, 3)
	got := runs[1]
	require.Equal(t, "ld-2", got.ID, "newest first")
	require.NotNil(t, got.Changed, "changed is listed")
	assert.True(t, *got.Changed, "changed")
	assert.Equal(t, "ld-1", got.PreviousRunID, "previous run id")
	assert.Equal(t, second.ContentSHA256, got.ContentSHA256, "content hash")
	assert.Equal(t, second.FilteredDigest, got.FilteredDigest, "filtered digest")
	assert.Nil(t, runs[2].Changed, "a first run's changed is null")
	assert.Equal(t, seq.Commands, runs[0].Commands, "a sequence's per-command results are listed")
}
