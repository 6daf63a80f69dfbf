// Package bulktest holds the contract every bulk job store keeps, as a test any implementation
// runs against itself: the in-memory store (internal/bulk/memstore) and the DynamoDB store
// (internal/dynamo) are held to the same rules by the same test.
package bulktest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// JobStoreContract runs the job store contract against store. Each case creates jobs of its own
// (fresh ids), so one store serves them all and they run in parallel.
func JobStoreContract(t *testing.T, store bulk.WatchStore) {
	t.Helper()
	for _, tc := range []struct {
		name string
		test func(t *testing.T, s bulk.WatchStore)
	}{
		{"create and get", testCreateAndGet},
		{"record: of two writers from one state, exactly one wins", testRecordOneWriterWins},
		{"record: all changes or none", testRecordAllOrNothing},
		{"record: events carry the changes' seqs, no counts", testRecordEvents},
		{"finish batch: counted once", testFinishBatchOnce},
		{"end job: once", testEndJob},
		{"request stop: the first status wins", testRequestStop},
		{"batch lease: claim and release", testBatchLease},
		{"pending batches: each claimed once", testPendingBatches},
		{"devices: pages in batch order", testDevicesPaging},
		{"unfinished jobs: listed until forgotten", testUnfinished},
		{"running jobs: counted per requester until forgotten", testRunningJobs},
		{"mark running: only a queued job", testMarkRunning},
		{"deliveries: re-send, touch and stale claim", testDeliveries},
		{"notice claims: one winner of many", testNoticeClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, store)
		})
	}
}

// newJob creates a job of the given batches (device ids made unique to it), the first sent of
// them sent, and returns it with its batches.
func newJob(t *testing.T, s bulk.WatchStore, sizes []int, sent int) (bulk.Job, [][]string) {
	t.Helper()
	return newJobBy(t, s, "op@example.com", sizes, sent)
}

// newJobBy is newJob for a job requested by requestedBy.
func newJobBy(t *testing.T, s bulk.WatchStore, requestedBy string, sizes []int, sent int) (bulk.Job, [][]string) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := bulk.NewID(now)
	var batches [][]string
	n := 0
	for b, size := range sizes {
		ids := make([]string, size)
		for i := range ids {
			// Dots as real device ids have them, which the DynamoDB store's paths must survive.
			ids[i] = fmt.Sprintf("dev-%02d.b%d.example", i, b)
		}
		batches = append(batches, ids)
		n += size
	}
	j := bulk.Job{ID: id, Command: "show version", RequestedBy: requestedBy, DeviceCount: n, Batches: len(batches),
		Status: bulk.JobQueued, Options: bulk.Options{TimeoutS: 30, MaxErrors: "2"}, CreatedAt: now,
		Counts: map[run.Status]int{run.Queued: n}, ExpiresAt: now.Add(24 * time.Hour).Truncate(time.Second)}
	require.NoError(t, s.CreateJob(context.Background(), j, batches, sent), "create job %s", id)
	return j, batches
}

func getJob(t *testing.T, s bulk.WatchStore, id string) bulk.Job {
	t.Helper()
	j, err := s.GetJob(context.Background(), id)
	require.NoError(t, err, "get job %s", id)
	return j
}

func change(j bulk.Job, dev string, from, to run.Status) bulk.Change {
	return bulk.Change{DeviceID: dev, From: from, To: to, RunID: bulk.RunID(j.ID, dev)}
}

func testCreateAndGet(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{3, 3, 2}, 2)
	got := getJob(t, s, j.ID)
	assert.Equal(t, j.ID, got.ID)
	assert.Equal(t, j.Command, got.Command)
	assert.Equal(t, j.RequestedBy, got.RequestedBy)
	assert.Equal(t, 8, got.DeviceCount, "device count")
	assert.Equal(t, 3, got.Batches, "batches")
	assert.Equal(t, bulk.JobQueued, got.Status)
	assert.Equal(t, j.Options, got.Options)
	assert.True(t, j.CreatedAt.Equal(got.CreatedAt), "created at %s, want %s", got.CreatedAt, j.CreatedAt)
	assert.True(t, j.ExpiresAt.Equal(got.ExpiresAt), "expires at %s, want %s", got.ExpiresAt, j.ExpiresAt)
	assert.Zero(t, got.Seq, "seq")
	assert.Zero(t, got.BatchesDone, "batches done")
	assert.False(t, got.CancelRequested, "cancel requested")
	for _, st := range run.Statuses() {
		want := 0
		if st == run.Queued {
			want = 8
		}
		assert.Equal(t, want, got.Counts[st], "count of %s", st)
	}
	for b, ids := range batches {
		states, err := s.BatchStates(ctx, j.ID, b)
		require.NoError(t, err, "batch %d", b)
		require.Len(t, states, len(ids), "batch %d", b)
		for _, id := range ids {
			assert.Equal(t, bulk.DeviceState{DeviceID: id, Status: run.Queued, RunID: bulk.RunID(j.ID, id), Batch: b}, states[id], "device %s", id)
		}
	}
	_, err := s.BatchStates(ctx, j.ID, 3)
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "a batch the job does not have")
	_, err = s.GetJob(ctx, bulk.NewID(time.Now()))
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "an unknown job")
	pending, err := s.PendingBatches(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, []int{2}, pending, "pending batches")
}

func testRecordOneWriterWins(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{5}, 1)
	type result struct {
		to  run.Status
		err error
	}
	for _, dev := range batches[0] {
		// Two writers read the device queued and move it at once, each its own way.
		start := make(chan struct{})
		results := make(chan result, 2)
		var wg sync.WaitGroup
		for _, to := range []run.Status{run.Running, run.Cancelled} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := s.Record(ctx, j.ID, 0, []bulk.Change{change(j, dev, run.Queued, to)})
				results <- result{to, err}
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		var won []run.Status
		for r := range results {
			if r.err == nil {
				won = append(won, r.to)
				continue
			}
			assert.ErrorIs(t, r.err, bulk.ErrStateChanged, "device %s: the losing writer's error", dev)
		}
		require.Len(t, won, 1, "device %s: writers that succeeded", dev)
		states, err := s.BatchStates(ctx, j.ID, 0)
		require.NoError(t, err)
		assert.Equal(t, won[0], states[dev].Status, "device %s: the winner's state is stored", dev)
	}
	got := getJob(t, s, j.ID)
	states, err := s.BatchStates(ctx, j.ID, 0)
	require.NoError(t, err)
	want := map[run.Status]int{}
	for _, st := range states {
		want[st.Status]++
	}
	for _, st := range run.Statuses() {
		assert.Equal(t, want[st], got.Counts[st], "count of %s", st)
	}
}

func testRecordAllOrNothing(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{3}, 1)
	a, b := batches[0][0], batches[0][1]
	_, err := s.Record(ctx, j.ID, 0, []bulk.Change{change(j, a, run.Queued, run.Running), change(j, b, run.Running, run.Succeeded)})
	require.ErrorIs(t, err, bulk.ErrStateChanged, "a change whose From is not the stored state")
	_, err = s.Record(ctx, j.ID, 0, []bulk.Change{change(j, a, run.Queued, run.Running), change(j, "not-in-batch", run.Queued, run.Running)})
	require.ErrorIs(t, err, bulk.ErrStateChanged, "a device the batch does not hold")
	states, err := s.BatchStates(ctx, j.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, run.Queued, states[a].Status, "device %s: nothing applied", a)
	assert.Len(t, states, 3, "devices of the batch")
	got := getJob(t, s, j.ID)
	assert.Equal(t, 3, got.Counts[run.Queued], "queued count")
	assert.Zero(t, got.Counts[run.Running], "running count")
	_, err = s.Record(ctx, bulk.NewID(time.Now()), 0, []bulk.Change{change(j, a, run.Queued, run.Running)})
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "an unknown job")
	events, err := s.Record(ctx, j.ID, 0, nil)
	require.NoError(t, err, "no changes")
	assert.Empty(t, events, "events of no changes")
}

func testRecordEvents(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{2, 2}, 2)
	a, b, c := batches[0][0], batches[0][1], batches[1][0]
	digest := "0123456789abcdef0123456789abcdef"
	// The recording side numbers the changes (bulk's seq clock); the store keeps and reports them.
	running := change(j, a, run.Queued, run.Running)
	running.Seq = 5 << bulk.SeqBatchBits
	first, err := s.Record(ctx, j.ID, 0, []bulk.Change{
		running,
		{DeviceID: b, From: run.Queued, To: run.Succeeded, RunID: bulk.RunID(j.ID, b), Reason: "", DurationMS: 42, OutputDigest: digest, Seq: 6 << bulk.SeqBatchBits},
	})
	require.NoError(t, err)
	require.Len(t, first, 2)
	second, err := s.Record(ctx, j.ID, 1, []bulk.Change{{DeviceID: c, From: run.Queued, To: run.Failed, RunID: bulk.RunID(j.ID, c), Reason: "device_deleted", Seq: 6<<bulk.SeqBatchBits | 1}})
	require.NoError(t, err)
	require.Len(t, second, 1)
	events := append(first, second...)
	for i, e := range events {
		assert.Equal(t, bulk.EventProgress, e.Type, "event %d type", i)
		assert.Equal(t, j.ID, e.JobID, "event %d job", i)
		assert.False(t, e.At.IsZero(), "event %d time", i)
		if i > 0 {
			assert.Greater(t, e.Seq, events[i-1].Seq, "event %d seq after event %d's", i, i-1)
		}
	}
	assert.Equal(t, []string{a, b, c}, []string{events[0].DeviceID, events[1].DeviceID, events[2].DeviceID}, "event devices")
	assert.Equal(t, string(run.Running), events[0].Status)
	assert.Equal(t, bulk.RunID(j.ID, a), events[0].RunID)
	assert.Equal(t, int64(42), events[1].DurationMS, "duration of %s", b)
	assert.Equal(t, digest, events[1].OutputDigest, "digest of %s", b)
	assert.Equal(t, "device_deleted", events[2].Reason, "reason of %s", c)
	assert.Equal(t, []int64{5 << bulk.SeqBatchBits, 6 << bulk.SeqBatchBits, 6<<bulk.SeqBatchBits | 1}, []int64{events[0].Seq, events[1].Seq, events[2].Seq}, "the changes' seqs")
	for i, e := range events {
		assert.Empty(t, NonZero(e.Counts), "event %d carries no counts (progress contract version 2)", i)
	}
	states, err := s.BatchStates(ctx, j.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, bulk.DeviceState{DeviceID: b, Status: run.Succeeded, RunID: bulk.RunID(j.ID, b), DurationMS: 42, OutputDigest: digest,
		Seq: events[1].Seq, Batch: 0}, states[b], "device %s", b)
	got := getJob(t, s, j.ID)
	assert.Zero(t, got.Seq, "a running job's seq (its job_done's once it ends)")
	assert.Equal(t, map[run.Status]int{run.Queued: 1, run.Running: 1, run.Succeeded: 1, run.Failed: 1}, NonZero(got.Counts), "counts")
}

// NonZero drops the statuses no device is in from counts, for comparing a job's counts.
func NonZero(counts map[run.Status]int) map[run.Status]int {
	out := map[run.Status]int{}
	for s, n := range counts {
		if n != 0 {
			out[s] = n
		}
	}
	return out
}

func testFinishBatchOnce(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, _ := newJob(t, s, []int{1, 1}, 2)
	for range 2 {
		got, err := s.FinishBatch(ctx, j.ID, 0)
		require.NoError(t, err)
		assert.Equal(t, 1, got.BatchesDone, "batches done")
		assert.Equal(t, bulk.JobQueued, got.Status, "the store does not end the job")
	}
	d, err := s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	require.Len(t, d, 2)
	assert.Equal(t, bulk.BatchDone, d[0].State, "batch 0")
	assert.Equal(t, bulk.BatchSent, d[1].State, "batch 1")
	_, err = s.FinishBatch(ctx, bulk.NewID(time.Now()), 0)
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "an unknown job")
}

func testEndJob(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, _ := newJob(t, s, []int{1}, 1)
	before := getJob(t, s, j.ID)
	at := time.Now().UTC()
	done, err := s.EndJob(ctx, j.ID, bulk.JobStopped, at)
	require.NoError(t, err)
	assert.Equal(t, bulk.JobStopped, done.Status)
	require.NotNil(t, done.FinishedAt, "finished at")
	assert.True(t, at.Equal(*done.FinishedAt), "finished at %s, want %s", *done.FinishedAt, at)
	assert.Equal(t, bulk.JobDoneSeq(before.CreatedAt, at), done.Seq, "seq of the job_done event")
	assert.Equal(t, done, getJob(t, s, j.ID), "the stored job")
	_, err = s.EndJob(ctx, j.ID, bulk.JobCompleted, at)
	require.ErrorIs(t, err, bulk.ErrJobFinished, "a second end")
	assert.Equal(t, bulk.JobStopped, getJob(t, s, j.ID).Status, "status after a second end")
	_, err = s.RequestStop(ctx, j.ID, bulk.JobCancelled, "")
	require.ErrorIs(t, err, bulk.ErrJobFinished, "a stop of an ended job")
	_, err = s.EndJob(ctx, bulk.NewID(time.Now()), bulk.JobCompleted, at)
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "an unknown job")
}

func testRequestStop(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, _ := newJob(t, s, []int{1}, 1)
	got, err := s.RequestStop(ctx, j.ID, bulk.JobStopped, "")
	require.NoError(t, err)
	assert.True(t, got.CancelRequested, "cancel requested")
	assert.Equal(t, bulk.JobStopped, got.StopStatus)
	assert.Empty(t, got.Error, "error")
	got, err = s.RequestStop(ctx, j.ID, bulk.JobFailed, "some batches could not be sent")
	require.NoError(t, err)
	assert.Equal(t, bulk.JobStopped, got.StopStatus, "the first request's status")
	assert.Equal(t, "some batches could not be sent", got.Error, "error")
	assert.Equal(t, got, getJob(t, s, j.ID), "the stored job")
	_, err = s.RequestStop(ctx, bulk.NewID(time.Now()), bulk.JobCancelled, "")
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "an unknown job")
}

func testBatchLease(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{2}, 1)
	until := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	claim, err := s.ClaimBatch(ctx, j.ID, 0, "h1", until)
	require.NoError(t, err)
	assert.True(t, claim.First, "the first claim")
	assert.Len(t, claim.States, 2, "states")
	assert.Equal(t, run.Queued, claim.States[batches[0][0]].Status)

	held, err := s.ClaimBatch(ctx, j.ID, 0, "h2", until.Add(time.Minute))
	require.ErrorIs(t, err, bulk.ErrBatchLeased, "a claim while h1 holds it")
	assert.True(t, until.Equal(held.HeldUntil), "held until %s, want %s", held.HeldUntil, until)
	require.NoError(t, s.ReleaseBatch(ctx, j.ID, 0, "h2"), "a release by a non-holder")
	_, err = s.ClaimBatch(ctx, j.ID, 0, "h2", until.Add(time.Minute))
	require.ErrorIs(t, err, bulk.ErrBatchLeased, "a non-holder's release lets nothing go")

	require.NoError(t, s.ReleaseBatch(ctx, j.ID, 0, "h1"))
	claim, err = s.ClaimBatch(ctx, j.ID, 0, "h2", time.Now().Add(-time.Second))
	require.NoError(t, err, "a claim after the release")
	assert.False(t, claim.First, "a second claim")
	_, err = s.ClaimBatch(ctx, j.ID, 0, "h3", time.Now().Add(time.Minute))
	require.NoError(t, err, "a claim after a lease ran out")

	_, err = s.ClaimBatch(ctx, j.ID, 1, "h1", until)
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "a batch the job does not have")
}

func testPendingBatches(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{2, 2, 1}, 1)
	pending, err := s.PendingBatches(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, pending)
	for _, want := range []int{1, 2} {
		b, ids, ok, err := s.ClaimPendingBatch(ctx, j.ID)
		require.NoError(t, err)
		require.True(t, ok, "batch %d claimed", want)
		assert.Equal(t, want, b, "batch claimed")
		assert.Equal(t, batches[want], ids, "devices of batch %d", want)
	}
	_, _, ok, err := s.ClaimPendingBatch(ctx, j.ID)
	require.NoError(t, err)
	assert.False(t, ok, "a claim with none pending")
	pending, err = s.PendingBatches(ctx, j.ID)
	require.NoError(t, err)
	assert.Empty(t, pending)
}

func testDevicesPaging(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{2, 2, 2, 1}, 4)
	var want []string
	for _, ids := range batches {
		want = append(want, ids...)
	}
	var got []string
	cursor, pages := "", 0
	for {
		page, next, err := s.Devices(ctx, j.ID, cursor, 3)
		require.NoError(t, err, "page after %q", cursor)
		require.LessOrEqual(t, len(page), 3, "page size")
		for _, st := range page {
			got = append(got, st.DeviceID)
			assert.Equal(t, slices.IndexFunc(batches, func(ids []string) bool { return slices.Contains(ids, st.DeviceID) }), st.Batch, "batch of %s", st.DeviceID)
		}
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, want, got, "devices in batch order")
	assert.Equal(t, 3, pages, "pages of whole batches, at most 3 devices each")
	_, _, err := s.Devices(ctx, j.ID, "not-a-cursor", 3)
	require.ErrorIs(t, err, fault.ErrBadCursor)
	_, _, err = s.Devices(ctx, bulk.NewID(time.Now()), "", 3)
	require.ErrorIs(t, err, bulk.ErrJobNotFound)
}

// unfinished lists every unfinished job, a page of two at a time.
func unfinished(t *testing.T, s bulk.WatchStore) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for range 10000 {
		page, next, err := s.UnfinishedJobs(context.Background(), cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2, "page size")
		ids = append(ids, page...)
		if next == "" {
			return ids
		}
		cursor = next
	}
	require.FailNow(t, "unfinished jobs: no last page")
	return nil
}

func testUnfinished(t *testing.T, s bulk.WatchStore) {
	a, _ := newJob(t, s, []int{1}, 1)
	b, _ := newJob(t, s, []int{1}, 1)
	c, _ := newJob(t, s, []int{1}, 1)
	ids := unfinished(t, s)
	for _, j := range []bulk.Job{a, b, c} {
		assert.Contains(t, ids, j.ID, "job %s listed", j.ID)
	}
	require.NoError(t, s.ForgetUnfinished(context.Background(), b.ID))
	ids = unfinished(t, s)
	assert.NotContains(t, ids, b.ID, "forgotten job %s", b.ID)
	assert.Contains(t, ids, a.ID, "job %s listed", a.ID)
	_, _, err := s.UnfinishedJobs(context.Background(), "not-a-cursor", 2)
	require.ErrorIs(t, err, fault.ErrBadCursor)
}

func testRunningJobs(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	// Requesters of this case only: the other cases run in parallel on the same store.
	suffix := bulk.NewID(time.Now())
	alice, bob := "alice-"+suffix+"@example.com", "bob-"+suffix+"@example.com"
	count := func(by string, atMost int) int {
		t.Helper()
		n, err := s.RunningJobs(ctx, by, atMost)
		require.NoError(t, err, "running jobs of %s", by)
		return n
	}
	assert.Zero(t, count(alice, 0), "no jobs yet")
	a1, _ := newJobBy(t, s, alice, []int{1}, 1)
	newJobBy(t, s, alice, []int{2}, 1)
	newJobBy(t, s, alice, []int{1}, 1)
	newJobBy(t, s, bob, []int{1}, 1)
	assert.Equal(t, 3, count(alice, 0), "alice's unfinished jobs")
	assert.Equal(t, 1, count(bob, 0), "bob's unfinished jobs")
	assert.GreaterOrEqual(t, count(alice, 2), 2, "a count that stops at 2 reaches it")
	assert.Zero(t, count("carol-"+suffix+"@example.com", 0), "no jobs of a stranger")
	_, err := s.EndJob(ctx, a1.ID, bulk.JobCompleted, time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, s.ForgetUnfinished(ctx, a1.ID))
	assert.Equal(t, 2, count(alice, 0), "an ended job no longer counts")
}

func testMarkRunning(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, _ := newJob(t, s, []int{1}, 1)
	require.NoError(t, s.MarkRunning(ctx, j.ID))
	assert.Equal(t, bulk.JobRunning, getJob(t, s, j.ID).Status)
	_, err := s.EndJob(ctx, j.ID, bulk.JobCancelled, time.Now())
	require.NoError(t, err)
	require.NoError(t, s.MarkRunning(ctx, j.ID))
	assert.Equal(t, bulk.JobCancelled, getJob(t, s, j.ID).Status, "an ended job stays ended")
}

func testDeliveries(t *testing.T, s bulk.WatchStore) {
	ctx := context.Background()
	j, batches := newJob(t, s, []int{2, 1}, 1)
	d, err := s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	require.Len(t, d, 2)
	assert.Equal(t, bulk.Delivery{Batch: 0, State: bulk.BatchSent, DeviceIDs: batches[0], UpdatedAt: d[0].UpdatedAt}, d[0], "batch 0")
	assert.Equal(t, bulk.BatchPending, d[1].State, "batch 1")
	assert.False(t, d[0].UpdatedAt.IsZero(), "batch 0 updated at")
	seen := d[0].UpdatedAt

	resent := seen.Add(time.Second)
	require.NoError(t, s.MarkResent(ctx, j.ID, 0, seen, resent))
	require.ErrorIs(t, s.MarkResent(ctx, j.ID, 0, seen, resent.Add(time.Second)), bulk.ErrBatchChanged, "a second re-send")
	require.ErrorIs(t, s.MarkResent(ctx, j.ID, 1, d[1].UpdatedAt, resent), bulk.ErrBatchChanged, "a re-send of a pending batch")
	d, err = s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	assert.True(t, resent.Equal(d[0].ResentAt), "re-sent at %s, want %s", d[0].ResentAt, resent)
	require.NoError(t, s.UnmarkResent(ctx, j.ID, 0, resent))
	d, err = s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	assert.True(t, d[0].ResentAt.IsZero(), "re-send taken back")

	touched := seen.Add(2 * time.Second)
	require.NoError(t, s.Touch(ctx, j.ID, 0, touched))
	d, err = s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	assert.True(t, touched.Equal(d[0].UpdatedAt), "touched at %s, want %s", d[0].UpdatedAt, touched)

	now := time.Now().UTC()
	require.ErrorIs(t, s.ClaimStale(ctx, j.ID, 0, seen, "w1", now.Add(time.Minute), now), bulk.ErrBatchChanged, "a stale claim of a changed batch")
	require.NoError(t, s.ClaimStale(ctx, j.ID, 0, touched, "w1", now.Add(time.Minute), now))
	_, err = s.ClaimBatch(ctx, j.ID, 0, "executor", now.Add(time.Minute))
	require.ErrorIs(t, err, bulk.ErrBatchLeased, "an executor's claim while the watchdog holds the batch")
	require.NoError(t, s.ReleaseBatch(ctx, j.ID, 0, "w1"))
	claim, err := s.ClaimBatch(ctx, j.ID, 0, "executor", now.Add(time.Minute))
	require.NoError(t, err, "a claim after the watchdog let go")
	assert.False(t, claim.First, "the watchdog's claim counts")
}

func testNoticeClaims(t *testing.T, s bulk.WatchStore) {
	c, ok := s.(bulk.NoticeClaimer)
	require.True(t, ok, "the job store claims notices")
	ctx := context.Background()
	j, _ := newJob(t, s, []int{1}, 1)
	const callers = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			won, err := c.ClaimNotice(ctx, j.ID, "finished", time.Now().Add(time.Hour))
			assert.NoError(t, err)
			if won {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, wins, "exactly one of %d concurrent claims wins", callers)
	won, err := c.ClaimNotice(ctx, j.ID, "host-key:device:d1", time.Time{})
	require.NoError(t, err)
	assert.True(t, won, "another notice of the same job is its own claim")
	won, err = c.ClaimNotice(ctx, j.ID, "host-key:device:d1", time.Time{})
	require.NoError(t, err)
	assert.False(t, won)
	states, err := s.BatchStates(ctx, j.ID, 0)
	require.NoError(t, err)
	assert.Len(t, states, 1, "claims are not batches")
	devs, _, err := s.Devices(ctx, j.ID, "", 100)
	require.NoError(t, err)
	assert.Len(t, devs, 1, "claims are not devices")
}
