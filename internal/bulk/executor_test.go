package bulk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/bulktest"
	"github.com/netauto/netauto/internal/bulk/memstore"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fakeEngine runs commands in-process: each device (by host, which is its id) succeeds printing
// "output of <id>" unless fail names the status it ends with. It counts the runs of each device.
type fakeEngine struct {
	mu   sync.Mutex
	fail map[string]sshexec.Status
	runs map[string]int
	// before, when set, is called before each run's result.
	before func(ctx context.Context, id string)
	// password, when it names a device, is the only password the device accepts (auth_failed
	// otherwise).
	password map[string]string
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{fail: map[string]sshexec.Status{}, runs: map[string]int{}, password: map[string]string{}}
}

func (f *fakeEngine) Run(ctx context.Context, t sshexec.Target, _ string, sink sshexec.Sink) sshexec.Result {
	f.mu.Lock()
	f.runs[t.Host]++
	status, before := f.fail[t.Host], f.before
	if want, ok := f.password[t.Host]; ok && t.Password != want {
		status = sshexec.StatusAuthFailed
	}
	f.mu.Unlock()
	if before != nil {
		before(ctx, t.Host)
	}
	if status != "" {
		return sshexec.Result{Status: status, Reason: sshexec.ReasonRefused, Timings: sshexec.Timings{Total: time.Millisecond}}
	}
	n, _ := fmt.Fprintf(sink, "output of %s\n", t.Host)
	return sshexec.Result{Status: sshexec.StatusSucceeded, Bytes: int64(n), Timings: sshexec.Timings{Total: time.Millisecond}}
}

// ranTimes returns how often each device ran.
func (f *fakeEngine) ranTimes() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, v := range f.runs {
		out[k] = v
	}
	return out
}

// env is the bulk pipeline in memory: the enqueuer and the executor over the in-memory stores,
// with a fake SSH engine.
type env struct {
	jobs    *memstore.Jobs
	runs    *memstore.Runs
	queue   *memstore.Queue
	devices *memstore.Devices
	pub     *memstore.Publisher
	engine  *fakeEngine
	enq     *bulk.Enqueuer
	exec    *bulk.Executor
}

func newEnv(t *testing.T, ids ...string) *env {
	t.Helper()
	e := &env{jobs: memstore.NewJobs(), runs: memstore.NewRuns(), queue: &memstore.Queue{}, devices: memstore.NewDevices(),
		pub: &memstore.Publisher{}, engine: newFakeEngine()}
	for _, id := range ids {
		e.devices.Put(device.Device{ID: id, Name: id, Host: id, Port: 22, Platform: "cisco_ios", Username: "admin"},
			device.Credential{Password: "secret"})
	}
	e.enq = &bulk.Enqueuer{Inventory: e.devices, Jobs: e.jobs, Queue: e.queue, Publisher: e.pub, BatchSize: 50}
	e.exec = &bulk.Executor{Jobs: e.jobs, Runs: e.runs, Devices: e.devices, Engine: e.engine, Queue: e.queue, Publisher: e.pub,
		Logger: discardLogger(), DeadlineMargin: 10 * time.Millisecond, FlushInterval: time.Millisecond,
		// Every device start sees the job as stored: the stop rules act at once.
		JobRefresh: time.Nanosecond,
		BatchLease: time.Minute, StartDelay: time.Hour}
	return e
}

func deviceIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return ids
}

func (e *env) enqueue(t *testing.T, ids []string, opts bulk.Options) bulk.Accepted {
	t.Helper()
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: ids, Options: opts}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	return acc
}

// handle runs one message and returns its outcome.
func (e *env) handle(t *testing.T, m bulk.Message) bulk.Outcome {
	t.Helper()
	out, err := e.exec.Handle(context.Background(), m)
	require.NoError(t, err, "batch %d of job %s", m.Batch, m.JobID)
	return out
}

// drain handles queued messages, in order, until none is left.
func (e *env) drain(t *testing.T) {
	t.Helper()
	for range 100 {
		sent := e.queue.Take()
		if len(sent) == 0 {
			return
		}
		for _, s := range sent {
			e.handle(t, s.Message)
		}
	}
	require.FailNow(t, "the queue never drained")
}

func (e *env) job(t *testing.T, id string) bulk.Job {
	t.Helper()
	j, err := e.jobs.GetJob(context.Background(), id)
	require.NoError(t, err, "job %s", id)
	return j
}

// allDevices returns every device state of a job by device id.
func allDevices(t *testing.T, jobs bulk.JobStore, jobID string) map[string]bulk.DeviceState {
	t.Helper()
	out := map[string]bulk.DeviceState{}
	cursor := ""
	for {
		page, next, err := jobs.Devices(context.Background(), jobID, cursor, 0)
		require.NoError(t, err, "devices of job %s", jobID)
		for _, st := range page {
			out[st.DeviceID] = st
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// checkAccounting holds the job's counts to its devices' states and its end to its events.
func (e *env) checkAccounting(t *testing.T, j bulk.Job) {
	t.Helper()
	states := allDevices(t, e.jobs, j.ID)
	want := map[run.Status]int{}
	for _, st := range states {
		want[st.Status]++
	}
	for _, s := range run.Statuses() {
		assert.Equal(t, want[s], j.Counts[s], "job %s: count of %s", j.ID, s)
	}
	assert.Len(t, states, j.DeviceCount, "job %s: devices", j.ID)
	if j.Status.Terminal() {
		assert.Equal(t, j.Batches, j.BatchesDone, "job %s: batches done", j.ID)
		assert.Equal(t, 1, countEvents(e.pub, bulk.EventJobDone), "job %s: job_done published once", j.ID)
		done := publishedJobDone(t, e.pub, j.ID)
		assert.Equal(t, string(j.Status), done.Status, "job %s: job_done status", j.ID)
		assert.Equal(t, j.Counts, done.Counts, "job %s: job_done counts", j.ID)
		for _, st := range states {
			assert.Less(t, st.Seq, done.Seq, "job %s: device %s's seq above job_done's", j.ID, st.DeviceID)
		}
	}
}

func TestExecutorRunsAJob(t *testing.T) {
	ids := deviceIDs("r", 7)
	e := newEnv(t, ids...)
	e.enq.BatchSize = 3
	e.engine.fail["r03"] = sshexec.StatusUnreachable
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.drain(t)
	j := e.job(t, acc.JobID)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	assert.Equal(t, 6, j.Counts[run.Succeeded], "succeeded")
	assert.Equal(t, 1, j.Counts[run.Unreachable], "unreachable")
	e.checkAccounting(t, j)
	for _, id := range ids {
		r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, id))
		require.NoError(t, err, "run of %s", id)
		if id != "r03" {
			assert.Equal(t, "output of "+id+"\n", string(e.runs.Output(r.ID)), "output of %s", id)
		}
	}
}

// TestExecutorListsBatchRuns: a batch's first invocation lists its runs before writing any, and
// the runs say so; a store that cannot list them gets runs that list themselves. The memory store
// refuses a run that says it is listed when no list names it.
func TestExecutorListsBatchRuns(t *testing.T) {
	tests := []struct {
		name       string
		devices    int
		listErr    error
		wantListed bool
	}{
		{name: "listed", devices: 5, wantListed: true},
		{name: "the list cannot be written", devices: 5, listErr: errors.New("throttled"), wantListed: false},
		{name: "two devices: their own index entries cost no more than a list", devices: 2, wantListed: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := deviceIDs("l", tc.devices)
			e := newEnv(t, ids...)
			e.enq.BatchSize = 5
			e.runs.ListErr = tc.listErr
			acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
			e.drain(t)
			j := e.job(t, acc.JobID)
			assert.Equal(t, bulk.JobCompleted, j.Status)
			assert.Equal(t, tc.devices, j.Counts[run.Succeeded], "succeeded")
			for _, id := range ids {
				runID := bulk.RunID(acc.JobID, id)
				r, err := e.runs.Get(context.Background(), runID)
				require.NoError(t, err, "run of %s", id)
				assert.Equal(t, tc.wantListed, r.Listed, "run of %s says it is listed", id)
				assert.Equal(t, tc.wantListed, e.runs.Listed(runID), "a list names the run of %s", id)
			}
		})
	}
}

func TestRedeliveredBatchRunsNoDeviceAgain(t *testing.T) {
	ids := deviceIDs("r", 4)
	tests := []struct {
		name string
		// arrange leaves the batch as the delivery before the redelivery did.
		arrange func(t *testing.T, e *env, m bulk.Message)
		// wantSkipped counts devices the redelivery finds terminal in the batch.
		wantSkipped int
	}{
		{
			name:        "batch done, job completed",
			arrange:     func(t *testing.T, e *env, m bulk.Message) { e.handle(t, m) },
			wantSkipped: 4,
		},
		{
			name: "runs finished, the batch never told: the executor died before recording them",
			arrange: func(t *testing.T, e *env, m bulk.Message) {
				ctx := context.Background()
				_, err := e.jobs.ClaimBatch(ctx, m.JobID, m.Batch, "dead", time.Now().Add(-time.Second))
				require.NoError(t, err)
				for _, id := range ids {
					at := time.Now()
					e.runs.Put(run.Run{ID: bulk.RunID(m.JobID, id), DeviceID: id, JobID: m.JobID, Command: m.Command,
						Status: run.Succeeded, Attempt: 1, CreatedAt: at, StartedAt: &at, FinishedAt: &at})
					e.engine.runs[id]++ // the dead attempt ran it
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ids...)
			acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
			sent := e.queue.Take()
			require.Len(t, sent, 1)
			tc.arrange(t, e, sent[0].Message)

			out := e.handle(t, sent[0].Message)
			assert.Equal(t, 0, out.Ran, "devices run by the redelivery")
			assert.Equal(t, tc.wantSkipped, out.Skipped, "devices skipped")
			assert.False(t, out.Retry, "retry")
			for _, id := range ids {
				assert.Equal(t, 1, e.engine.ranTimes()[id], "runs of %s", id)
			}
			j := e.job(t, acc.JobID)
			assert.Equal(t, bulk.JobCompleted, j.Status)
			assert.Equal(t, 4, j.Counts[run.Succeeded], "succeeded")
			e.checkAccounting(t, j)
		})
	}
}

func TestMaxErrors(t *testing.T) {
	// The first batch's devices all fail; the second batch runs after it. No max_concurrency: the
	// job's stop request alone stops the second batch.
	tests := []struct {
		name         string
		maxErrors    string
		failures     int
		wantStatus   bulk.JobStatus
		wantCanceled int
	}{
		{name: "exactly max_errors failures: the job runs on", maxErrors: "2", failures: 2, wantStatus: bulk.JobCompleted},
		{name: "one failure more: the job stops", maxErrors: "2", failures: 3, wantStatus: bulk.JobStopped, wantCanceled: 3},
		{name: "no failure allowed, none happened", maxErrors: "0", failures: 0, wantStatus: bulk.JobCompleted},
		{name: "percentage: 50% of 6 is 3, and 3 failed", maxErrors: "50%", failures: 3, wantStatus: bulk.JobCompleted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := max(tc.failures, 3)
			ids := deviceIDs("r", 2*size)
			e := newEnv(t, ids...)
			e.enq.BatchSize = size
			for _, id := range ids[:tc.failures] {
				e.engine.fail[id] = sshexec.StatusUnreachable
			}
			acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5, MaxErrors: tc.maxErrors})
			sent := e.queue.Take()
			require.Len(t, sent, 2, "both batches sent at once")
			e.handle(t, sent[0].Message)
			e.handle(t, sent[1].Message)

			j := e.job(t, acc.JobID)
			assert.Equal(t, tc.wantStatus, j.Status, "job status")
			assert.Equal(t, tc.failures, j.Counts[run.Unreachable], "failures")
			assert.Equal(t, tc.wantCanceled, j.Counts[run.Cancelled], "cancelled")
			assert.Equal(t, 2*size-tc.failures-tc.wantCanceled, j.Counts[run.Succeeded], "succeeded")
			for id, st := range allDevices(t, e.jobs, acc.JobID) {
				if st.Status == run.Cancelled {
					assert.Equal(t, "max_errors", st.Reason, "reason of %s", id)
					assert.Zero(t, e.engine.ranTimes()[id], "runs of cancelled %s", id)
				}
			}
			e.checkAccounting(t, j)
		})
	}
}

func TestDeadLetterEndsRunningRuns(t *testing.T) {
	ctx := context.Background()
	ids := []string{"a", "b", "c", "d", "e"}
	e := newEnv(t, ids...)
	e.enq.BatchSize = 3
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	sent := e.queue.Take()
	require.Len(t, sent, 2)
	// Batch 0 (a, b, c) dies mid-way: a finished, b and c run, stored as running.
	_, err := e.jobs.ClaimBatch(ctx, acc.JobID, 0, "dying", time.Now().Add(time.Minute))
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		_, err := e.runs.Start(ctx, run.Run{ID: bulk.RunID(acc.JobID, id), DeviceID: id, JobID: acc.JobID, Command: "show version", CreatedAt: time.Now()})
		require.NoError(t, err, "start %s", id)
	}
	_, err = e.jobs.Record(ctx, acc.JobID, 0, []bulk.Change{
		{DeviceID: "a", From: run.Queued, To: run.Succeeded, RunID: bulk.RunID(acc.JobID, "a")},
		{DeviceID: "b", From: run.Queued, To: run.Running, RunID: bulk.RunID(acc.JobID, "b")},
		{DeviceID: "c", From: run.Queued, To: run.Running, RunID: bulk.RunID(acc.JobID, "c")},
	})
	require.NoError(t, err)
	done := time.Now()
	ra, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, "a"))
	require.NoError(t, err)
	ra.Status, ra.FinishedAt = run.Succeeded, &done
	require.NoError(t, e.runs.Finish(ctx, ra, nil))

	require.NoError(t, e.exec.DeadLetter(ctx, sent[0].Message))
	for _, id := range []string{"b", "c"} {
		r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, id))
		require.NoError(t, err, "run of %s", id)
		assert.Equal(t, run.Failed, r.Status, "run of %s", id)
		assert.Equal(t, bulk.ReasonDeliveryFailed, r.Reason, "run of %s", id)
	}
	r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, "a"))
	require.NoError(t, err)
	assert.Equal(t, run.Succeeded, r.Status, "the finished run of a is kept")
	states := allDevices(t, e.jobs, acc.JobID)
	assert.Equal(t, run.Succeeded, states["a"].Status, "device a")
	for _, id := range []string{"b", "c"} {
		assert.Equal(t, run.Failed, states[id].Status, "device %s", id)
		assert.Equal(t, bulk.ReasonDeliveryFailed, states[id].Reason, "device %s", id)
	}
	j := e.job(t, acc.JobID)
	assert.Equal(t, 1, j.BatchesDone, "batches done after the first dead letter")
	assert.Equal(t, map[run.Status]int{run.Succeeded: 1, run.Failed: 2, run.Queued: 2}, bulktest.NonZero(j.Counts), "counts")
	assert.False(t, j.Status.Terminal(), "job ended with a batch left: %s", j.Status)

	// The last batch dies before any run: the job ends.
	require.NoError(t, e.exec.DeadLetter(ctx, sent[1].Message))
	j = e.job(t, acc.JobID)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	assert.Equal(t, map[run.Status]int{run.Succeeded: 1, run.Failed: 4}, bulktest.NonZero(j.Counts), "counts")
	e.checkAccounting(t, j)
	// A dead letter delivered twice changes nothing.
	require.NoError(t, e.exec.DeadLetter(ctx, sent[1].Message))
	assert.Equal(t, j, e.job(t, acc.JobID))
}

func TestCancel(t *testing.T) {
	ids := deviceIDs("r", 6)
	tests := []struct {
		name string
		// runFirst is how many batches run before the cancel.
		runFirst      int
		wantSucceeded int
	}{
		{name: "before any batch ran", runFirst: 0, wantSucceeded: 0},
		{name: "after the first batch", runFirst: 1, wantSucceeded: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ids...)
			e.enq.BatchSize = 2
			// One batch at a time: the others wait, never sent, until the one before finishes.
			acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5, MaxConcurrency: 2})
			for range tc.runFirst {
				sent := e.queue.Take()
				require.Len(t, sent, 1)
				e.handle(t, sent[0].Message)
			}
			j, err := e.enq.Cancel(context.Background(), acc.JobID)
			require.NoError(t, err)
			assert.True(t, j.CancelRequested, "cancel requested")
			e.drain(t)
			j = e.job(t, acc.JobID)
			assert.Equal(t, bulk.JobCancelled, j.Status)
			assert.Equal(t, tc.wantSucceeded, j.Counts[run.Succeeded], "succeeded")
			assert.Equal(t, 6-tc.wantSucceeded, j.Counts[run.Cancelled], "cancelled")
			for id, st := range allDevices(t, e.jobs, acc.JobID) {
				if st.Status == run.Cancelled {
					assert.Equal(t, "cancelled", st.Reason, "reason of %s", id)
				}
			}
			e.checkAccounting(t, j)
			_, err = e.enq.Cancel(context.Background(), acc.JobID)
			require.ErrorIs(t, err, bulk.ErrJobFinished, "cancel of an ended job")
		})
	}
}

func TestEnqueueFailure(t *testing.T) {
	ids := deviceIDs("r", 6)
	tests := []struct {
		name string
		// queue fails some sends.
		queue func(q *memstore.Queue)
		// wantSent is the batch that went out, if any (-1: none).
		wantSent int
	}{
		{name: "some batches refused", queue: func(q *memstore.Queue) { q.Refuse = func(m bulk.Message) bool { return m.Batch > 0 } }, wantSent: 0},
		{name: "the queue cannot say which went out", queue: func(q *memstore.Queue) { q.Err = errors.New("queue unavailable") }, wantSent: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, ids...)
			e.enq.BatchSize = 2
			tc.queue(e.queue)
			_, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: ids}, auth.Identity{Subject: "op", Role: auth.Operator})
			require.Error(t, err)
			unfinished, _, err := e.jobs.UnfinishedJobs(context.Background(), "", 10)
			require.NoError(t, err)
			var jobID string
			if tc.wantSent >= 0 {
				require.Len(t, unfinished, 1, "the job waits for its sent batch")
				jobID = unfinished[0]
				e.queue.Refuse, e.queue.Err = nil, nil
				e.drain(t)
			} else {
				require.Empty(t, unfinished, "every batch ended at once")
				sent := e.pub.Events()
				require.NotEmpty(t, sent)
				jobID = sent[0].JobID
			}
			j := e.job(t, jobID)
			assert.Equal(t, bulk.JobFailed, j.Status)
			assert.NotEmpty(t, j.Error, "the job's error")
			assert.Equal(t, 6, j.Counts[run.Cancelled], "cancelled")
			for id, st := range allDevices(t, e.jobs, jobID) {
				assert.Equal(t, "enqueue_failed", st.Reason, "reason of %s", id)
			}
			assert.Empty(t, e.engine.ranTimes(), "devices run")
			e.checkAccounting(t, j)
		})
	}
}

func TestBatchHeldByAnotherInvocationIsHandedOn(t *testing.T) {
	ctx := context.Background()
	ids := []string{"a", "b"}
	e := newEnv(t, ids...)
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	m := e.queue.Take()[0].Message
	held := time.Now().Add(3 * time.Minute)
	_, err := e.jobs.ClaimBatch(ctx, acc.JobID, 0, "other", held)
	require.NoError(t, err)

	out := e.handle(t, m)
	assert.Equal(t, 0, out.Ran, "devices run")
	assert.Equal(t, 2, out.Continued, "devices handed on")
	next := e.queue.Take()
	require.Len(t, next, 1)
	assert.Equal(t, ids, next[0].Message.DeviceIDs, "devices of the continuation")
	assert.InDelta(t, time.Until(held).Seconds(), next[0].Delay.Seconds(), 2, "the continuation waits for the lease")
	assert.Empty(t, e.engine.ranTimes(), "devices run")

	// Once the holder lets go, the continuation runs the batch.
	require.NoError(t, e.jobs.ReleaseBatch(ctx, acc.JobID, 0, "other"))
	e.handle(t, next[0].Message)
	j := e.job(t, acc.JobID)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	e.checkAccounting(t, j)
}

func TestRunHeldByADeadAttempt(t *testing.T) {
	tests := []struct {
		name      string
		leaseLeft time.Duration
		// wantRuns is how often the device has run after the delivery (the dead attempt's
		// run included).
		wantRuns      int
		wantContinued int
		wantAttempt   int
	}{
		{name: "lease running: handed on, not run", leaseLeft: time.Minute, wantRuns: 1, wantContinued: 1},
		{name: "lease over: taken over and run again", leaseLeft: -time.Second, wantRuns: 2, wantAttempt: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, "a")
			acc := e.enqueue(t, []string{"a"}, bulk.Options{TimeoutS: 5})
			m := e.queue.Take()[0].Message
			// An earlier attempt claimed the batch, started a's run and died.
			_, err := e.jobs.ClaimBatch(ctx, acc.JobID, 0, "dead", time.Now().Add(-time.Millisecond))
			require.NoError(t, err)
			at := time.Now()
			e.runs.Put(run.Run{ID: bulk.RunID(acc.JobID, "a"), DeviceID: "a", JobID: acc.JobID, Status: run.Running, Attempt: 1,
				CreatedAt: at, StartedAt: &at, LeaseUntil: at.Add(tc.leaseLeft)})
			e.engine.runs["a"] = 1

			out := e.handle(t, m)
			assert.Equal(t, tc.wantContinued, out.Continued, "devices handed on")
			assert.Equal(t, tc.wantRuns, e.engine.ranTimes()["a"], "runs of a")
			if tc.wantAttempt > 0 {
				r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, "a"))
				require.NoError(t, err)
				assert.Equal(t, tc.wantAttempt, r.Attempt, "attempt")
				assert.Equal(t, run.Succeeded, r.Status)
				assert.Equal(t, bulk.JobCompleted, e.job(t, acc.JobID).Status)
			}
		})
	}
}

func TestDeadlineHandsTheRestOn(t *testing.T) {
	tests := []struct {
		name string
		// cancelDuringFirst cancels the job while the first device runs.
		cancelDuringFirst bool
		wantContinued     int
		wantStatus        bulk.JobStatus
		wantCancelled     int
	}{
		{name: "running job: the devices left run in a continuation", wantContinued: 2, wantStatus: bulk.JobCompleted},
		{name: "stopping job: the devices left are cancelled, not handed on", cancelDuringFirst: true, wantStatus: bulk.JobCancelled, wantCancelled: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := []string{"a", "b", "c"}
			e := newEnv(t, ids...)
			e.exec.Concurrency = 1
			acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 1})
			m := e.queue.Take()[0].Message
			// The invocation has time for one device: the first runs until the time left no longer
			// fits another's timeout.
			timeout, margin := time.Second, e.exec.DeadlineMargin
			deadline := time.Now().Add(timeout + margin + 100*time.Millisecond)
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			defer cancel()
			e.engine.before = func(_ context.Context, id string) {
				if id != "a" {
					return
				}
				<-time.After(time.Until(deadline.Add(-timeout - margin)))
				if tc.cancelDuringFirst {
					_, err := e.enq.Cancel(context.Background(), acc.JobID)
					assert.NoError(t, err)
				}
			}
			out, err := e.exec.Handle(ctx, m)
			require.NoError(t, err)
			assert.Equal(t, 1, out.Ran, "devices run by the first invocation")
			assert.Equal(t, tc.wantContinued, out.Continued, "devices handed on")
			e.engine.before = nil
			e.drain(t)
			j := e.job(t, acc.JobID)
			assert.Equal(t, tc.wantStatus, j.Status)
			assert.Equal(t, tc.wantCancelled, j.Counts[run.Cancelled], "cancelled")
			for _, id := range ids {
				want := 1
				if tc.wantCancelled > 0 && id != "a" {
					want = 0
				}
				assert.Equal(t, want, e.engine.ranTimes()[id], "runs of %s", id)
			}
			e.checkAccounting(t, j)
		})
	}
}

// TestExecutorDeviceSnapshot: a batch that starts within SnapshotMaxAge of its enqueue runs on
// the devices its message carries, without reading them, unless a device's own credential says
// the device changed: stored for another address (d01, moved with a new password), gone with a
// deleted device (d02), or stored before addresses were kept (d04), each read again. Later, or
// without them, a batch reads its devices. A device's credential reaches only the address it
// was stored for, and a device deleted meanwhile fails device_deleted either way.
func TestExecutorDeviceSnapshot(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(m *bulk.Message)
		wantReads int
	}{
		{name: "fresh: the enqueue's devices", edit: func(*bulk.Message) {}, wantReads: 3},
		{name: "stale: read again", edit: func(m *bulk.Message) { m.DevicesAt = m.DevicesAt.Add(-bulk.SnapshotMaxAge - time.Second) }, wantReads: 4},
		{name: "none carried: read", edit: func(m *bulk.Message) { m.Devices = nil }, wantReads: 4},
		{name: "not the batch's devices: read", edit: func(m *bulk.Message) { m.Devices[0], m.Devices[1] = m.Devices[1], m.Devices[0] }, wantReads: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := []string{"d01", "d02", "d03", "d04"}
			e := newEnv(t, ids...)
			for _, id := range ids[:3] {
				d, ok := e.devices.Get(id)
				require.True(t, ok)
				e.devices.Put(d, device.Credential{Password: "secret", For: device.Address(d)})
			}
			e.engine.password["d01-new"] = "n3w" // d01's old password would not do there
			acc := e.enqueue(t, ids, bulk.Options{})
			sent := e.queue.Take()
			require.Len(t, sent, 1)
			m := sent[0].Message
			require.Len(t, m.Devices, len(ids), "the message carries its devices")
			// After the enqueue: d01 moves, with a new password; d02 is deleted.
			moved, ok := e.devices.Get("d01")
			require.True(t, ok)
			moved.Host = "d01-new"
			e.devices.Put(moved, device.Credential{Password: "n3w", For: device.Address(moved)})
			e.devices.Delete("d02")
			tt.edit(&m)

			reads := e.devices.Reads()
			e.handle(t, m)
			assert.Equal(t, tt.wantReads, e.devices.Reads()-reads, "devices read")
			assert.Equal(t, map[string]int{"d01-new": 1, "d03": 1, "d04": 1}, e.engine.ranTimes(), "d01 reached at its new address only, d02 never")
			states := allDevices(t, e.jobs, acc.JobID)
			for _, id := range []string{"d01", "d03", "d04"} {
				assert.Equal(t, run.Succeeded, states[id].Status, id)
			}
			assert.Equal(t, run.Failed, states["d02"].Status, "d02")
			assert.Equal(t, "device_deleted", states["d02"].Reason, "d02")
		})
	}
}

// TestExecutorCredentialElsewhere: a device's own credential stored for another address than
// the device has now is never sent; the run ends credential_unavailable.
func TestExecutorCredentialElsewhere(t *testing.T) {
	e := newEnv(t, "c01")
	d, ok := e.devices.Get("c01")
	require.True(t, ok)
	e.devices.Put(d, device.Credential{Password: "secret", For: "10.9.9.9:22"})
	acc := e.enqueue(t, []string{"c01"}, bulk.Options{})
	e.drain(t)
	assert.Empty(t, e.engine.ranTimes(), "no session opened")
	st := allDevices(t, e.jobs, acc.JobID)["c01"]
	assert.Equal(t, run.AuthFailed, st.Status)
	assert.Equal(t, "credential_unavailable", st.Reason)
}

// TestExecutorOutcomeMetrics: a batch writes one metrics line per device status, each device a
// data point, rather than a line per device.
func TestExecutorOutcomeMetrics(t *testing.T) {
	ids := deviceIDs("m", 5)
	e := newEnv(t, ids...)
	var buf bytes.Buffer // the emitter writes one line at a time; read once the batch is done
	e.exec.Metrics = metrics.New(&buf)
	e.engine.fail["m03"] = sshexec.StatusUnreachable
	e.enqueue(t, ids, bulk.Options{})
	e.drain(t)

	type line struct {
		Status         string    `json:"Status"`
		Batch          *int      `json:"batch"`
		DeviceRuns     float64   `json:"DeviceRuns"`
		DeviceDuration []float64 `json:"DeviceDuration"`
		OutputBytes    []float64 `json:"OutputBytes"`
	}
	got := map[string]line{}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, l := range lines {
		var doc line
		require.NoError(t, json.Unmarshal([]byte(l), &doc), "line %q", l)
		if doc.DeviceRuns == 0 {
			continue // the job's own line
		}
		_, dup := got[doc.Status]
		require.False(t, dup, "a second line for %s: %q", doc.Status, l)
		got[doc.Status] = doc
	}
	require.Len(t, got, 2, "one line per status: %v", lines)
	ok, down := got[string(run.Succeeded)], got[string(run.Unreachable)]
	assert.Equal(t, float64(4), ok.DeviceRuns, "succeeded devices")
	assert.Len(t, ok.DeviceDuration, 4, "a duration per succeeded device")
	assert.Equal(t, []float64{14, 14, 14, 14}, ok.OutputBytes, `"output of mNN\n" per succeeded device`)
	require.NotNil(t, ok.Batch, "the batch is named")
	assert.Equal(t, float64(1), down.DeviceRuns, "unreachable devices")
	assert.Equal(t, []float64{0}, down.OutputBytes, "no output from the unreachable device")
}

// TestEnqueueSnapshotBound: a batch message carries its devices only while they stay under
// MaxSnapshotBytes; larger ones are left for the executor to read, and the job still runs.
func TestEnqueueSnapshotBound(t *testing.T) {
	tests := []struct {
		name      string
		tagBytes  int
		wantCarry bool
	}{
		{name: "small devices carried", tagBytes: 10, wantCarry: true},
		{name: "large devices left out", tagBytes: bulk.MaxSnapshotBytes / 40, wantCarry: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := deviceIDs("s", 50)
			e := newEnv(t, ids...)
			for _, id := range ids {
				d, ok := e.devices.Get(id)
				require.True(t, ok)
				d.Tags = map[string]string{"note": strings.Repeat("n", tt.tagBytes)}
				d.PendingHostKey = &device.PendingHostKey{Key: "ssh-ed25519 AAAA"}
				e.devices.Put(d, device.Credential{Password: "secret", For: device.Address(d)})
			}
			acc := e.enqueue(t, ids, bulk.Options{})
			sent := e.queue.Take()
			require.Len(t, sent, 1)
			m := sent[0].Message
			if tt.wantCarry {
				require.Len(t, m.Devices, 50, "devices carried")
				assert.Nil(t, m.Devices[0].PendingHostKey, "a pending host key is not carried")
				assert.False(t, m.DevicesAt.IsZero(), "when they were read")
			} else {
				assert.Empty(t, m.Devices, "devices left out")
				assert.True(t, m.DevicesAt.IsZero(), "no snapshot time without devices")
			}
			reads := e.devices.Reads()
			e.handle(t, m)
			assert.Equal(t, map[bool]int{true: 0, false: 50}[tt.wantCarry], e.devices.Reads()-reads, "devices read by the executor")
			assert.Equal(t, 50, e.job(t, acc.JobID).Counts[run.Succeeded], "every device ran")
		})
	}
}
