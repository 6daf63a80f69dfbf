package bulk_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/memstore"
	"github.com/netauto/netauto/internal/run"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

const (
	testStale  = 2 * time.Hour
	testPeriod = 5 * time.Minute
)

func TestWatchdogJudge(t *testing.T) {
	w := &bulk.Watchdog{StaleAfter: testStale, Period: testPeriod}
	old := t0.Add(-testStale - time.Second)
	tests := []struct {
		name string
		d    bulk.Delivery
		want bulk.Verdict
	}{
		{name: "pending batch waits its turn", d: bulk.Delivery{State: bulk.BatchPending, UpdatedAt: t0.Add(-48 * time.Hour)}, want: bulk.VerdictLeave},
		{name: "done batch", d: bulk.Delivery{State: bulk.BatchDone, UpdatedAt: t0.Add(-48 * time.Hour)}, want: bulk.VerdictLeave},
		{name: "sent and changed recently", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: t0.Add(-time.Minute)}, want: bulk.VerdictLeave},
		{name: "sent, unchanged exactly the threshold", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: t0.Add(-testStale)}, want: bulk.VerdictLeave},
		{name: "sent, unchanged past the threshold, never re-sent", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: old}, want: bulk.VerdictResend},
		{name: "re-sent before its latest change", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: old, ResentAt: old.Add(-time.Hour)}, want: bulk.VerdictResend},
		{name: "re-sent a minute ago", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: old, ResentAt: t0.Add(-time.Minute)}, want: bulk.VerdictLeave},
		{name: "re-sent a period ago without a change", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: old, ResentAt: t0.Add(-testPeriod)}, want: bulk.VerdictLose},
		{name: "re-sent a period ago less schedule jitter", d: bulk.Delivery{State: bulk.BatchSent, UpdatedAt: old, ResentAt: t0.Add(-testPeriod + 20*time.Second)}, want: bulk.VerdictLose},
		{name: "stored before updated_at existed", d: bulk.Delivery{State: bulk.BatchSent}, want: bulk.VerdictAdopt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, w.Judge(tc.d, t0))
		})
	}
}

// watchBatch is one batch of a watchdog test's job. Pending batches follow the others.
type watchBatch struct {
	state    bulk.BatchState
	updated  time.Time
	resent   time.Time
	devs     []string
	statuses map[string]run.Status
	// touchAfterResend makes the batch change once after it is re-sent (an executor took it).
	touchAfterResend bool
}

// watchEnv is one job in the in-memory stores and a clock the test moves.
type watchEnv struct {
	jobs  *memstore.Jobs
	runs  *memstore.Runs
	queue *memstore.Queue
	pub   *memstore.Publisher
	now   time.Time
	job   bulk.Job
}

func newWatchEnv(t *testing.T, id string, maxConc int, batches []watchBatch) *watchEnv {
	t.Helper()
	e := &watchEnv{jobs: memstore.NewJobs(), runs: memstore.NewRuns(), queue: &memstore.Queue{}, pub: &memstore.Publisher{}, now: t0}
	e.jobs.Now = func() time.Time { return e.now }
	e.runs.Now = e.jobs.Now
	ctx := context.Background()
	var ids [][]string
	sent, devices := 0, 0
	for _, b := range batches {
		ids = append(ids, b.devs)
		devices += len(b.devs)
		if b.state != bulk.BatchPending {
			sent++
		}
	}
	e.job = bulk.Job{ID: id, Command: "show clock", RequestedBy: "op", DeviceCount: devices, Batches: len(batches),
		Status: bulk.JobRunning, Options: bulk.Options{MaxConcurrency: maxConc}, CreatedAt: t0.Add(-72 * time.Hour)}
	require.NoError(t, e.jobs.CreateJob(ctx, e.job, ids, sent))
	for i, b := range batches {
		for _, d := range b.devs {
			if st, ok := b.statuses[d]; ok {
				_, err := e.jobs.Record(ctx, id, i, []bulk.Change{{DeviceID: d, From: run.Queued, To: st, RunID: bulk.RunID(id, d)}})
				require.NoError(t, err, "device %s", d)
			}
		}
		if b.state == bulk.BatchDone {
			_, err := e.jobs.FinishBatch(ctx, id, i)
			require.NoError(t, err, "batch %d", i)
		}
		require.NoError(t, e.jobs.SetBatchTimes(id, i, b.updated, b.resent))
	}
	return e
}

func (e *watchEnv) watchdog(t *testing.T) *bulk.Watchdog {
	t.Helper()
	w, err := bulk.NewWatchdog(&bulk.Watchdog{Jobs: e.jobs, Runs: e.runs, Queue: e.queue, Publisher: e.pub, StaleAfter: testStale,
		Period: testPeriod, Now: func() time.Time { return e.now }, Logger: discardLogger()})
	require.NoError(t, err)
	return w
}

// failedReasons returns the reason of each failed device of the job.
func (e *watchEnv) failedReasons(t *testing.T) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, st := range allDevices(t, e.jobs, e.job.ID) {
		if st.Status == run.Failed {
			got[st.DeviceID] = st.Reason
		}
	}
	return got
}

func TestWatchdogSweep(t *testing.T) {
	type want struct {
		resent, lost, kicked int
		status               bulk.JobStatus
		reasons              map[string]string // device → reason of its failure
		sent                 int               // messages sent by the sweeps
	}
	stale := t0.Add(-testStale - time.Minute)
	tests := []struct {
		name    string
		batches []watchBatch
		maxConc int
		sweeps  []time.Time
		want    want
	}{
		{
			name:    "stale batch is re-sent once",
			batches: []watchBatch{{state: bulk.BatchSent, updated: stale, devs: []string{"a", "b"}}},
			sweeps:  []time.Time{t0, t0.Add(time.Minute)},
			want:    want{resent: 1, status: bulk.JobRunning, sent: 1},
		},
		{
			name: "still stale a period after the re-send: devices fail delivery_lost, job completes",
			batches: []watchBatch{{state: bulk.BatchSent, updated: stale, devs: []string{"a", "b", "c"},
				statuses: map[string]run.Status{"a": run.Succeeded, "b": run.Running}}},
			sweeps: []time.Time{t0, t0.Add(testPeriod), t0.Add(2 * testPeriod)},
			want: want{resent: 1, lost: 1, status: bulk.JobCompleted, sent: 1,
				reasons: map[string]string{"b": bulk.ReasonDeliveryLost, "c": bulk.ReasonDeliveryLost}},
		},
		{
			name:    "progress after the re-send saves the batch",
			batches: []watchBatch{{state: bulk.BatchSent, updated: stale, devs: []string{"a"}, touchAfterResend: true}},
			sweeps:  []time.Time{t0, t0.Add(testPeriod)},
			want:    want{resent: 1, status: bulk.JobRunning, sent: 1},
		},
		{
			name:    "batch making progress is left alone",
			batches: []watchBatch{{state: bulk.BatchSent, updated: t0.Add(-time.Minute), devs: []string{"a"}}},
			sweeps:  []time.Time{t0, t0.Add(testPeriod), t0.Add(2 * testPeriod)},
			want:    want{status: bulk.JobRunning},
		},
		{
			name: "job waiting its turn is left alone",
			batches: []watchBatch{
				{state: bulk.BatchSent, updated: t0.Add(-time.Minute), devs: []string{"a"}},
				{state: bulk.BatchPending, updated: t0.Add(-48 * time.Hour), devs: []string{"b"}},
			},
			maxConc: 1,
			sweeps:  []time.Time{t0, t0.Add(testPeriod)},
			want:    want{status: bulk.JobRunning},
		},
		{
			name: "waiting batches with nothing in flight are sent",
			batches: []watchBatch{
				{state: bulk.BatchDone, updated: stale, devs: []string{"a"}, statuses: map[string]run.Status{"a": run.Succeeded}},
				{state: bulk.BatchPending, updated: stale, devs: []string{"b"}},
				{state: bulk.BatchPending, updated: stale, devs: []string{"c"}},
			},
			maxConc: 1,
			sweeps:  []time.Time{t0},
			want:    want{kicked: 1, status: bulk.JobRunning, sent: 1},
		},
		{
			name: "lost batch sends the next waiting batch",
			batches: []watchBatch{
				{state: bulk.BatchSent, updated: stale, devs: []string{"a"}},
				{state: bulk.BatchPending, updated: stale, devs: []string{"b"}},
			},
			maxConc: 1,
			sweeps:  []time.Time{t0, t0.Add(testPeriod)},
			want:    want{resent: 1, lost: 1, status: bulk.JobRunning, sent: 2, reasons: map[string]string{"a": bulk.ReasonDeliveryLost}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newWatchEnv(t, "j1", tc.maxConc, tc.batches)
			w := e.watchdog(t)
			ctx := context.Background()
			var total bulk.SweepReport
			for _, at := range tc.sweeps {
				e.now = at
				rep, err := w.Sweep(ctx)
				require.NoError(t, err, "sweep at %s", at)
				total.Resent += rep.Resent
				total.Lost += rep.Lost
				total.Kicked += rep.Kicked
				// The batches that were re-sent change once, as an executor taking them would.
				for i, b := range tc.batches {
					if d := deliveries(t, e.jobs, "j1")[i]; b.touchAfterResend && !d.ResentAt.IsZero() {
						_, err := e.jobs.ClaimBatch(ctx, "j1", i, "executor", e.now.Add(time.Minute))
						require.NoError(t, err)
						require.NoError(t, e.jobs.ReleaseBatch(ctx, "j1", i, "executor"))
						tc.batches[i].touchAfterResend = false
					}
				}
			}
			assert.Equal(t, tc.want.resent, total.Resent, "batches re-sent")
			assert.Equal(t, tc.want.lost, total.Lost, "batches lost")
			assert.Equal(t, tc.want.kicked, total.Kicked, "jobs kicked")
			assert.Equal(t, tc.want.sent, e.queue.SentCount(), "messages sent")
			job, err := e.jobs.GetJob(ctx, "j1")
			require.NoError(t, err)
			assert.Equal(t, tc.want.status, job.Status, "job status")
			if tc.want.reasons == nil {
				tc.want.reasons = map[string]string{}
			}
			assert.Equal(t, tc.want.reasons, e.failedReasons(t), "failed devices")
			for id := range tc.want.reasons {
				assert.True(t, published(e.pub, id, bulk.ReasonDeliveryLost), "progress of %s published", id)
			}
			if tc.want.status == bulk.JobCompleted {
				assert.Equal(t, len(tc.want.reasons), job.Counts[run.Failed], "failed count")
				assert.Equal(t, 1, countEvents(e.pub, bulk.EventJobDone), "job_done published once")
			}
		})
	}
}

func TestWatchdogLosesABatchOnce(t *testing.T) {
	stale := t0.Add(-testStale - time.Minute)
	e := newWatchEnv(t, "j1", 0, []watchBatch{{state: bulk.BatchSent, updated: stale, resent: t0.Add(-testPeriod), devs: []string{"a", "b"}}})
	ctx := context.Background()
	// Two sweeps read the same stale batch; only the first to claim it fails its devices.
	a, b := e.watchdog(t), e.watchdog(t)
	d := deliveries(t, e.jobs, "j1")[0]
	n, err := a.Lose(ctx, e.job, d, t0)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "devices failed by the first sweep")
	_, err = b.Lose(ctx, e.job, d, t0)
	require.ErrorIs(t, err, bulk.ErrBatchChanged)
	job, err := e.jobs.GetJob(ctx, "j1")
	require.NoError(t, err)
	assert.Equal(t, 2, job.Counts[run.Failed], "failed count")
	assert.Equal(t, 2, countEvents(e.pub, bulk.EventProgress), "one progress event per device")
}

func TestResendUnfinished(t *testing.T) {
	e := newWatchEnv(t, "j1", 1, []watchBatch{
		{state: bulk.BatchSent, updated: t0.Add(-time.Second), devs: []string{"a", "b"}},
		{state: bulk.BatchDone, updated: t0.Add(-time.Hour), devs: []string{"c"}, statuses: map[string]run.Status{"c": run.Succeeded}},
		{state: bulk.BatchPending, updated: t0.Add(-time.Hour), devs: []string{"d"}},
	})
	rep, err := e.watchdog(t).ResendUnfinished(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Resent, "the sent batch, fresh or not; never the done or the waiting one")
	sent := e.queue.Take()
	require.Len(t, sent, 1)
	assert.Equal(t, bulk.Message{JobID: "j1", Batch: 0, DeviceIDs: []string{"a", "b"}, Command: "show clock", RequestedBy: "op", Options: e.job.Options}, sent[0].Message)
	assert.Equal(t, t0, deliveries(t, e.jobs, "j1")[0].UpdatedAt, "the re-sent batch's clock restarts")
}

func deliveries(t *testing.T, jobs *memstore.Jobs, id string) []bulk.Delivery {
	t.Helper()
	d, err := jobs.Deliveries(context.Background(), id)
	require.NoError(t, err)
	return d
}

// published reports whether a progress event of device with reason was published.
func published(p *memstore.Publisher, device, reason string) bool {
	for _, e := range p.Events() {
		if e.Type == bulk.EventProgress && e.DeviceID == device && e.Reason == reason {
			return true
		}
	}
	return false
}

func countEvents(p *memstore.Publisher, typ string) int {
	n := 0
	for _, e := range p.Events() {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// publishedJobDone is the job_done event published for job.
func publishedJobDone(tb testing.TB, p *memstore.Publisher, job string) bulk.Event {
	tb.Helper()
	for _, e := range p.Events() {
		if e.Type == bulk.EventJobDone && e.JobID == job {
			return e
		}
	}
	require.Fail(tb, "no job_done published", "job %s", job)
	return bulk.Event{}
}
