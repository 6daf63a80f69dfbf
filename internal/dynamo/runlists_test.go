package dynamo

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// TestRunLists: a batch's runs listed by one run list are found by both purges, each once, with
// the runs written without a day entry of their own, and deleting one counts its bytes.
func TestRunLists(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	rs.runs.clock.advance(day.Sub(rs.runs.clock.now())) // the store's day: the changed set is walked from it
	type listed struct {
		job     string
		at      time.Time
		devices int
		// createdAfter is how long after the list its runs are created.
		createdAfter time.Duration
	}
	lists := []listed{
		{job: "job-morning", at: day.Add(time.Hour), devices: 60, createdAfter: time.Second},
		{job: "job-midnight", at: day.Add(24*time.Hour - time.Second), devices: 3, createdAfter: time.Minute},
	}
	var want []string
	created := map[string]time.Time{}
	for _, l := range lists {
		var devs []string
		for i := range l.devices {
			devs = append(devs, fmt.Sprintf("%s-dev-%02d", l.job, i))
		}
		// One device more than ever runs: a list may name a run that was never written.
		require.NoError(t, rs.runs.ListRuns(ctx, l.job, 0, append(devs, l.job+"-never"), l.at, l.at.Add(30*24*time.Hour)))
		for i, d := range devs {
			r := testRun(bulk.RunID(l.job, d), d)
			r.JobID, r.Listed = l.job, true
			r.CreatedAt, r.Status, r.Bytes = l.at.Add(l.createdAfter+time.Duration(i)*time.Millisecond), run.Succeeded, 3
			require.NoError(t, rs.runs.FinishNew(ctx, r, []byte("out")))
			want = append(want, r.ID)
			created[r.ID] = r.CreatedAt
			it, found, err := getItem[runItem](ctx, rs.runs.db, rs.runs.table, runKey(r.ID), "run "+r.ID)
			require.NoError(t, err)
			require.True(t, found, "run %s stored", r.ID)
			assert.Empty(t, it.GSI2PK, "run %s has no day entry of its own", r.ID)
		}
	}
	for i := range 5 { // runs that list themselves, as single runs and unlisted batches do
		r := testRun(fmt.Sprintf("own-%d", i), "dev-own")
		r.CreatedAt, r.Status = day.Add(2*time.Hour+time.Duration(i)*time.Minute), run.Succeeded
		require.NoError(t, rs.runs.FinishNew(ctx, r, []byte("out")))
		want = append(want, r.ID)
		created[r.ID] = r.CreatedAt
	}

	for _, limit := range []int{1, 7, 100} {
		t.Run(fmt.Sprintf("runs of the day in pages of %d", limit), func(t *testing.T) {
			var got []string
			// A page ends after the item that fills it: one list may take it past limit.
			for _, c := range rs.runsOfDay(t, day, day.Add(24*time.Hour), limit, limit+60) {
				got = append(got, c.ID)
				assert.Equalf(t, run.Succeeded, c.Status, "status of run %s", c.ID)
				assert.Equalf(t, int64(3), c.InlineBytes, "inline bytes of run %s", c.ID)
				assert.Truef(t, c.CreatedAt.Equal(created[c.ID]), "created_at of run %s: %s", c.ID, c.CreatedAt)
			}
			assert.ElementsMatch(t, want, got, "every run of the day, listed or not, each once; the late list's runs too, though created the next day")
		})
	}

	t.Run("changed devices", func(t *testing.T) {
		got := map[string]bool{}
		for cursor, pages := "", 0; ; pages++ {
			require.Less(t, pages, 1000, "paging ends")
			devs, next, err := rs.ChangedDevices(ctx, cursor, 10)
			require.NoError(t, err)
			for _, d := range devs {
				got[d] = true
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		for _, id := range want {
			r, err := rs.runs.Get(ctx, id)
			require.NoError(t, err)
			assert.Truef(t, got[r.DeviceID], "device %s of run %s in the changed set", r.DeviceID, id)
		}
	})

	t.Run("delete a listed run", func(t *testing.T) {
		id := bulk.RunID("job-morning", "job-morning-dev-07")
		require.Equal(t, int64(3), rs.runs.deviceBytes(t, "job-morning-dev-07"), "bytes before")
		d, err := rs.DeleteRun(ctx, rs.candidate(t, "job-morning-dev-07", id))
		require.NoError(t, err)
		assert.True(t, d.Run, "run deleted")
		assert.Equal(t, int64(3), d.Bytes, "bytes freed")
		assert.Equal(t, int64(0), rs.runs.deviceBytes(t, "job-morning-dev-07"), "bytes after")
		for _, c := range rs.runsOfDay(t, day, day.Add(24*time.Hour), 1000, 1100) {
			assert.NotEqual(t, id, c.ID, "a deleted run is no longer listed")
		}
	})
}
