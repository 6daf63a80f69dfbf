package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/bulktest"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// newJobStore returns a job store over a jobs table of its own on DynamoDB Local (newTable).
func newJobStore(t *testing.T) *JobStore {
	t.Helper()
	db, name := newTable(t, resources.JobsTable)
	s, err := NewJobStore(db, name)
	require.NoError(t, err)
	return s
}

func TestJobStoreContract(t *testing.T) {
	bulktest.JobStoreContract(t, newJobStore(t))
}

// TestJobStoreContractOwnKeys holds jobs created with each batch one item under a partition key
// of its own (layout 2, recorded in transactions with their count shards) to the same contract.
func TestJobStoreContractOwnKeys(t *testing.T) {
	s := newJobStore(t)
	s.layout = layoutOwnKeys
	bulktest.JobStoreContract(t, s)
}

// TestJobStoreContractSharedBatches holds jobs created before each batch had a partition key of
// its own (batches in the job's partition, read with a Query) to the same contract.
func TestJobStoreContractSharedBatches(t *testing.T) {
	s := newJobStore(t)
	s.layout = layoutShared
	bulktest.JobStoreContract(t, s)
}

// TestJobStoreRemembersBatchLayouts: a store that did not create a job learns its layout from
// its META, once, for every layout.
func TestJobStoreRemembersBatchLayouts(t *testing.T) {
	ctx := context.Background()
	writer := newJobStore(t)
	reader, err := NewJobStore(writer.db, writer.table)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		layout int
	}{{"slim batches", layoutSlim}, {"own partition keys", layoutOwnKeys}, {"the job's partition", layoutShared}} {
		t.Run(tc.name, func(t *testing.T) {
			writer.layout = tc.layout
			job := createJob(t, writer, [][]string{{"a"}, {"b"}}, time.Now().UTC())
			states, err := reader.BatchStates(ctx, job.ID, 1)
			require.NoError(t, err)
			assert.Equal(t, run.Queued, states["b"].Status)
			got, ok := reader.layouts.Get(job.ID)
			require.True(t, ok, "remembered")
			assert.Equal(t, tc.layout, got)
		})
	}
	_, err = reader.BatchStates(ctx, bulk.NewID(time.Now()), 0)
	require.ErrorIs(t, err, bulk.ErrJobNotFound)
}

func createJob(t *testing.T, s *JobStore, batches [][]string, created time.Time) bulk.Job {
	t.Helper()
	n := 0
	for _, ids := range batches {
		n += len(ids)
	}
	j := bulk.Job{ID: bulk.NewID(created), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: n, Batches: len(batches),
		Status: bulk.JobQueued, CreatedAt: created, Counts: map[run.Status]int{run.Queued: n}}
	require.NoError(t, s.CreateJob(context.Background(), j, batches, len(batches)), "create job %s", j.ID)
	return j
}

// TestJobStoreEvents: catch-up returns the latest state of each device that moved since a seq
// (less the window for events stored late), in seq order within a page of whole batches, with
// job_done on the last page once the job ended.
func TestJobStoreEvents(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	created := time.Now().UTC().Add(-time.Hour)
	j := createJob(t, s, [][]string{{"a", "b"}, {"c", "d"}, {"e"}}, created)
	window := bulk.CatchUpWindow.Milliseconds()
	seq := func(ms int64, batch int) int64 { return ms<<bulk.SeqBatchBits | int64(batch) }
	record := func(batch int, changes ...bulk.Change) {
		t.Helper()
		_, err := s.Record(ctx, j.ID, batch, changes)
		require.NoError(t, err)
	}
	record(0, bulk.Change{DeviceID: "a", From: run.Queued, To: run.Running, Seq: seq(1_000, 0)}, bulk.Change{DeviceID: "b", From: run.Queued, To: run.Running, Seq: seq(1_001, 0)})
	record(1, bulk.Change{DeviceID: "c", From: run.Queued, To: run.Succeeded, Seq: seq(1_500, 1)})
	// a moved twice: catch-up returns its latest state alone.
	record(0, bulk.Change{DeviceID: "a", From: run.Running, To: run.Succeeded, Seq: seq(100_000, 0)}, bulk.Change{DeviceID: "b", From: run.Running, To: run.Failed, Reason: "exit_status", Seq: seq(90_000, 0)})
	record(2, bulk.Change{DeviceID: "e", From: run.Queued, To: run.Cancelled, Reason: "cancelled", Seq: seq(200_000, 2)})
	type moved struct {
		device, status string
	}
	tests := []struct {
		name  string
		since int64
		limit int
		want  [][]moved // pages
	}{
		{name: "all, one page", since: 0, limit: 100, want: [][]moved{{{"c", "succeeded"}, {"b", "failed"}, {"a", "succeeded"}, {"e", "cancelled"}}}},
		{name: "since within the window of b and a keeps them", since: seq(90_000+window, 0), limit: 100, want: [][]moved{{{"a", "succeeded"}, {"e", "cancelled"}}}},
		{name: "past the window of a", since: seq(100_000+window, 0), limit: 100, want: [][]moved{{{"e", "cancelled"}}}},
		{name: "past everything", since: seq(200_000+window, 2), limit: 100, want: [][]moved{nil}},
		{name: "pages of two", since: 0, limit: 2, want: [][]moved{{{"b", "failed"}, {"a", "succeeded"}}, {{"c", "succeeded"}, {"e", "cancelled"}}}},
		{name: "pages of one, within a batch", since: 0, limit: 1, want: [][]moved{{{"a", "succeeded"}}, {{"b", "failed"}}, {{"c", "succeeded"}}, {{"e", "cancelled"}}}},
		{name: "pages of three, across batches", since: 0, limit: 3, want: [][]moved{{{"c", "succeeded"}, {"b", "failed"}, {"a", "succeeded"}}, {{"e", "cancelled"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cursor := ""
			for i, want := range tc.want {
				events, next, err := s.Events(ctx, j.ID, tc.since, cursor, tc.limit)
				require.NoError(t, err)
				var got []moved
				for _, e := range events {
					assert.Equal(t, bulk.EventProgress, e.Type)
					assert.Greater(t, e.Seq, bulk.CatchUpFloor(tc.since), "device %s above the floor", e.DeviceID)
					got = append(got, moved{e.DeviceID, e.Status})
				}
				assert.Equal(t, want, got, "page %d", i)
				if i == len(tc.want)-1 {
					assert.Empty(t, next, "page %d is the last", i)
				} else {
					require.NotEmpty(t, next, "page %d has a next", i)
				}
				cursor = next
			}
		})
	}
	// Once the job ended, its last page ends with job_done and its counts.
	_, err := s.FinishBatch(ctx, j.ID, 0)
	require.NoError(t, err)
	done, err := s.EndJob(ctx, j.ID, bulk.JobCompleted, time.Now().UTC())
	require.NoError(t, err)
	events, next, err := s.Events(ctx, j.ID, seq(200_000+window, 2), "", 100)
	require.NoError(t, err)
	assert.Empty(t, next)
	require.Len(t, events, 1)
	assert.Equal(t, bulk.EventJobDone, events[0].Type)
	assert.Equal(t, done.Seq, events[0].Seq)
	assert.Equal(t, map[run.Status]int{run.Succeeded: 2, run.Failed: 1, run.Cancelled: 1, run.Queued: 1}, bulktest.NonZero(done.Counts), "the job's counts from its shards")
	assert.Equal(t, done.Counts, events[0].Counts)
	for _, bad := range []string{"not-a-cursor", "1.", "1.0", "1.x", "-1"} {
		_, _, err = s.Events(ctx, j.ID, 0, bad, 100)
		require.ErrorIs(t, err, fault.ErrBadCursor, "cursor %q", bad)
	}
}

func TestJobStoreJobDevice(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	ids := make([]string, 7)
	for i := range ids {
		ids[i] = "sw-" + string(rune('a'+i)) + ".core.example"
	}
	split := createJob(t, s, bulk.Split(ids, 3), time.Now().UTC())
	single := createJob(t, s, [][]string{{"r1"}}, time.Now().UTC())
	uneven := createJob(t, s, [][]string{{"x"}, {"y", "z"}}, time.Now().UTC()) // no locator: the batches are read
	tests := []struct {
		name      string
		job       bulk.Job
		device    string
		wantBatch int
		wantErr   error
	}{
		{name: "first batch, by the locator", job: split, device: ids[1], wantBatch: 0},
		{name: "last batch, by the locator", job: split, device: ids[6], wantBatch: 2},
		{name: "one-batch job", job: single, device: "r1", wantBatch: 0},
		{name: "job without a locator", job: uneven, device: "z", wantBatch: 1},
		{name: "device not in the job", job: split, device: "r1", wantErr: bulk.ErrDeviceNotInJob},
		{name: "unknown job", job: bulk.Job{ID: bulk.NewID(time.Now())}, device: "r1", wantErr: bulk.ErrJobNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, st, err := s.JobDevice(ctx, tc.job.ID, tc.device)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.job.ID, j.ID, "job")
			assert.Equal(t, bulk.DeviceState{DeviceID: tc.device, Status: run.Queued, RunID: bulk.RunID(tc.job.ID, tc.device), Batch: tc.wantBatch}, st)
		})
	}
}

func TestJobStoreListJobs(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	base := time.Now().UTC().Add(-time.Hour)
	var want []string
	for i := range 5 {
		j := createJob(t, s, [][]string{{"r1"}}, base.Add(time.Duration(i)*time.Minute))
		want = append([]string{j.ID}, want...) // newest first
	}
	var got []string
	cursor := ""
	for range 10 {
		page, next, err := s.ListJobs(ctx, cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2, "page size")
		for _, j := range page {
			got = append(got, j.ID)
			assert.Equal(t, bulk.JobQueued, j.Status, "job %s", j.ID)
			assert.Equal(t, 1, j.DeviceCount, "job %s", j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, want, got, "jobs newest first")
	_, _, err := s.ListJobs(ctx, "not-a-cursor", 2)
	require.ErrorIs(t, err, fault.ErrBadCursor)
}

// TestJobStoreSwapLastJob: each job recorded as its commands' newest returns the one before;
// a job older than the one recorded is not recorded and gets none; other commands keep theirs.
func TestJobStoreSwapLastJob(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	steps := []struct {
		name, key, job, want string
	}{
		{name: "first job of its commands", key: "k1", job: "06h2", want: ""},
		{name: "the next returns the first", key: "k1", job: "06h3", want: "06h2"},
		{name: "other commands have their own", key: "k2", job: "06h4", want: ""},
		{name: "an older job is not recorded", key: "k1", job: "06h1", want: ""},
		{name: "the newest is still the second", key: "k1", job: "06h5", want: "06h3"},
	}
	for _, st := range steps {
		prev, err := s.SwapLastJob(ctx, st.key, st.job, time.Now().Add(time.Hour))
		require.NoError(t, err, st.name)
		assert.Equal(t, st.want, prev, st.name)
	}
}

// TestExpiredJobIsNotFound: a job past its expiry is not found by GetJob or JobControl, as
// ListJobs already leaves it out, though DynamoDB's TTL has not deleted its items yet; a write
// to it still reads it back.
func TestExpiredJobIsNotFound(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	created := time.Now().UTC().Add(-2 * time.Hour)
	for _, tc := range []struct {
		name    string
		expires time.Time
		found   bool
	}{
		{"expired an hour ago", created.Add(time.Hour), false},
		{"expires in an hour", created.Add(3 * time.Hour), true},
		{"kept forever", time.Time{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := bulk.Job{ID: bulk.NewID(created), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: 1, Batches: 1,
				Status: bulk.JobQueued, CreatedAt: created, ExpiresAt: tc.expires, Counts: map[run.Status]int{run.Queued: 1}}
			require.NoError(t, s.CreateJob(ctx, j, [][]string{{"a"}}, 1))
			for name, read := range map[string]func(context.Context, string) (bulk.Job, error){"GetJob": s.GetJob, "JobControl": s.JobControl} {
				got, err := read(ctx, j.ID)
				if tc.found {
					require.NoError(t, err, name)
					assert.Equal(t, j.ID, got.ID, name)
					continue
				}
				assert.ErrorIs(t, err, bulk.ErrJobNotFound, name)
			}
			// A write to the job reads it back whatever its expiry: the executor and the
			// watchdog end a job that outlived it.
			got, err := s.EndJob(ctx, j.ID, bulk.JobFailed, created.Add(time.Minute))
			require.NoError(t, err, "end the job")
			assert.Equal(t, bulk.JobFailed, got.Status, "the job read back")
		})
	}
}
