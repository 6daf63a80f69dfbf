package bulk

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

var t0 = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

const (
	testStale  = 2 * time.Hour
	testPeriod = 5 * time.Minute
)

func TestWatchdogJudge(t *testing.T) {
	w := &Watchdog{StaleAfter: testStale, Period: testPeriod}
	old := t0.Add(-testStale - time.Second)
	tests := []struct {
		name string
		d    Delivery
		want verdict
	}{
		{name: "pending batch waits its turn", d: Delivery{State: BatchPending, UpdatedAt: t0.Add(-48 * time.Hour)}, want: leave},
		{name: "done batch", d: Delivery{State: BatchDone, UpdatedAt: t0.Add(-48 * time.Hour)}, want: leave},
		{name: "sent and changed recently", d: Delivery{State: BatchSent, UpdatedAt: t0.Add(-time.Minute)}, want: leave},
		{name: "sent, unchanged exactly the threshold", d: Delivery{State: BatchSent, UpdatedAt: t0.Add(-testStale)}, want: leave},
		{name: "sent, unchanged past the threshold, never re-sent", d: Delivery{State: BatchSent, UpdatedAt: old}, want: resend},
		{name: "re-sent before its latest change", d: Delivery{State: BatchSent, UpdatedAt: old, ResentAt: old.Add(-time.Hour)}, want: resend},
		{name: "re-sent a minute ago", d: Delivery{State: BatchSent, UpdatedAt: old, ResentAt: t0.Add(-time.Minute)}, want: leave},
		{name: "re-sent a period ago without a change", d: Delivery{State: BatchSent, UpdatedAt: old, ResentAt: t0.Add(-testPeriod)}, want: lose},
		{name: "re-sent a period ago less schedule jitter", d: Delivery{State: BatchSent, UpdatedAt: old, ResentAt: t0.Add(-testPeriod + 20*time.Second)}, want: lose},
		{name: "stored before updated_at existed", d: Delivery{State: BatchSent}, want: adopt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, w.judge(tc.d, t0))
		})
	}
}

func TestWatchdogSweep(t *testing.T) {
	type want struct {
		resent, lost, kicked int
		status               JobStatus
		reasons              map[string]string // device → reason of its failure
		sent                 int               // messages on the queue after the sweeps
	}
	stale := t0.Add(-testStale - time.Minute)
	tests := []struct {
		name    string
		batches []fakeBatch
		maxConc int
		// sweeps are the times of the sweeps; between them the queue's messages vanish.
		sweeps []time.Time
		want   want
	}{
		{
			name:    "stale batch is re-sent once",
			batches: []fakeBatch{{state: BatchSent, updated: stale, devs: []string{"a", "b"}}},
			sweeps:  []time.Time{t0, t0.Add(time.Minute)},
			want:    want{resent: 1, status: JobRunning, sent: 1},
		},
		{
			name: "still stale a period after the re-send: devices fail delivery_lost, job completes",
			batches: []fakeBatch{{state: BatchSent, updated: stale, devs: []string{"a", "b", "c"},
				statuses: map[string]run.Status{"a": run.Succeeded, "b": run.Running}}},
			sweeps: []time.Time{t0, t0.Add(testPeriod), t0.Add(2 * testPeriod)},
			want: want{resent: 1, lost: 1, status: JobCompleted, sent: 1,
				reasons: map[string]string{"b": ReasonDeliveryLost, "c": ReasonDeliveryLost}},
		},
		{
			name: "progress after the re-send saves the batch",
			batches: []fakeBatch{{state: BatchSent, updated: stale, devs: []string{"a"},
				touchAfterResend: true}},
			sweeps: []time.Time{t0, t0.Add(testPeriod)},
			want:   want{resent: 1, status: JobRunning, sent: 1},
		},
		{
			name:    "batch making progress is left alone",
			batches: []fakeBatch{{state: BatchSent, updated: t0.Add(-time.Minute), devs: []string{"a"}}},
			sweeps:  []time.Time{t0, t0.Add(testPeriod), t0.Add(2 * testPeriod)},
			want:    want{status: JobRunning},
		},
		{
			name: "job waiting its turn is left alone",
			batches: []fakeBatch{
				{state: BatchSent, updated: t0.Add(-time.Minute), devs: []string{"a"}},
				{state: BatchPending, updated: t0.Add(-48 * time.Hour), devs: []string{"b"}},
			},
			maxConc: 1,
			sweeps:  []time.Time{t0, t0.Add(testPeriod)},
			want:    want{status: JobRunning},
		},
		{
			name: "waiting batches with nothing in flight are sent",
			batches: []fakeBatch{
				{state: BatchDone, updated: stale, devs: []string{"a"}, statuses: map[string]run.Status{"a": run.Succeeded}},
				{state: BatchPending, updated: stale, devs: []string{"b"}},
				{state: BatchPending, updated: stale, devs: []string{"c"}},
			},
			maxConc: 1,
			sweeps:  []time.Time{t0},
			want:    want{kicked: 1, status: JobRunning, sent: 1},
		},
		{
			name: "lost batch sends the next waiting batch",
			batches: []fakeBatch{
				{state: BatchSent, updated: stale, devs: []string{"a"}},
				{state: BatchPending, updated: stale, devs: []string{"b"}},
			},
			maxConc: 1,
			sweeps:  []time.Time{t0, t0.Add(testPeriod)},
			want:    want{resent: 1, lost: 1, status: JobRunning, sent: 2, reasons: map[string]string{"a": ReasonDeliveryLost}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeWatchStore(t, "j1", tc.maxConc, tc.batches)
			q := &fakeQueue{}
			pub := &fakePublisher{}
			now := tc.sweeps[0]
			w, err := NewWatchdog(&Watchdog{Jobs: store, Runs: store, Queue: q, Publisher: pub, StaleAfter: testStale, Period: testPeriod,
				Now: func() time.Time { return now }})
			require.NoError(t, err)
			var total SweepReport
			for _, at := range tc.sweeps {
				now = at
				store.now = at
				rep, err := w.Sweep(context.Background())
				require.NoError(t, err)
				total.Resent += rep.Resent
				total.Lost += rep.Lost
				total.Kicked += rep.Kicked
				store.afterSweep()
			}
			assert.Equal(t, tc.want.resent, total.Resent, "batches re-sent")
			assert.Equal(t, tc.want.lost, total.Lost, "batches lost")
			assert.Equal(t, tc.want.kicked, total.Kicked, "jobs kicked")
			assert.Equal(t, tc.want.sent, q.count(), "messages sent")
			assert.Equal(t, tc.want.status, store.job.Status)
			got := map[string]string{}
			for _, b := range store.batches {
				for id, st := range b.states {
					if st.Status == run.Failed {
						got[id] = st.Reason
					}
				}
			}
			if tc.want.reasons == nil {
				tc.want.reasons = map[string]string{}
			}
			assert.Equal(t, tc.want.reasons, got, "failed devices")
			for id := range tc.want.reasons {
				assert.True(t, pub.has(id, ReasonDeliveryLost), "progress of %s published", id)
			}
			if tc.want.status == JobCompleted {
				assert.Equal(t, len(tc.want.reasons), store.job.Counts[run.Failed])
				assert.True(t, pub.has("", ""), "job_done published")
			}
		})
	}
}

func TestWatchdogLosesABatchOnce(t *testing.T) {
	stale := t0.Add(-testStale - time.Minute)
	store := newFakeWatchStore(t, "j1", 0, []fakeBatch{{state: BatchSent, updated: stale, resent: t0.Add(-testPeriod), devs: []string{"a", "b"}}})
	q := &fakeQueue{}
	pub := &fakePublisher{}
	store.now = t0
	newW := func() *Watchdog {
		w, err := NewWatchdog(&Watchdog{Jobs: store, Runs: store, Queue: q, Publisher: pub, StaleAfter: testStale, Period: testPeriod,
			Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		return w
	}
	// Two sweeps read the same stale batch; only the first to claim it fails its devices.
	a, b := newW(), newW()
	batches, err := store.Deliveries(context.Background(), "j1")
	require.NoError(t, err)
	n, err := a.lose(context.Background(), store.job, batches[0], t0)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	_, err = b.lose(context.Background(), store.job, batches[0], t0)
	require.ErrorIs(t, err, ErrBatchChanged)
	assert.Equal(t, 2, store.job.Counts[run.Failed])
	assert.Equal(t, 2, pub.count(EventProgress), "one progress event per device")
}

func TestResendUnfinished(t *testing.T) {
	store := newFakeWatchStore(t, "j1", 1, []fakeBatch{
		{state: BatchSent, updated: t0.Add(-time.Second), devs: []string{"a", "b"}},
		{state: BatchDone, updated: t0.Add(-time.Hour), devs: []string{"c"}, statuses: map[string]run.Status{"c": run.Succeeded}},
		{state: BatchPending, updated: t0.Add(-time.Hour), devs: []string{"d"}},
	})
	q := &fakeQueue{}
	store.now = t0
	w, err := NewWatchdog(&Watchdog{Jobs: store, Runs: store, Queue: q, StaleAfter: testStale, Now: func() time.Time { return t0 }})
	require.NoError(t, err)
	rep, err := w.ResendUnfinished(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Resent, "the sent batch, fresh or not; never the done or the waiting one")
	require.Equal(t, 1, q.count())
	assert.Equal(t, Message{JobID: "j1", Batch: 0, DeviceIDs: []string{"a", "b"}, Command: "show clock", RequestedBy: "op", Options: store.job.Options}, q.msgs[0])
	assert.Equal(t, t0, store.batches[0].updated, "the re-sent batch's clock restarts")
}

// fakeBatch is one batch of the fake store.
type fakeBatch struct {
	state    BatchState
	updated  time.Time
	resent   time.Time
	devs     []string
	statuses map[string]run.Status
	// touchAfterResend makes the batch change once after it is re-sent (an executor took it).
	touchAfterResend bool

	states map[string]DeviceState
	holder string
}

// fakeWatchStore is one job in memory. Methods the watchdog must not call are left to the nil
// ExecStore (a call panics).
type fakeWatchStore struct {
	ExecStore
	mu      sync.Mutex
	job     Job
	batches []*fakeBatch
	listed  bool
	now     time.Time
}

func newFakeWatchStore(t *testing.T, id string, maxConc int, batches []fakeBatch) *fakeWatchStore {
	t.Helper()
	s := &fakeWatchStore{listed: true, job: Job{ID: id, Command: "show clock", RequestedBy: "op", Status: JobRunning,
		Batches: len(batches), Options: Options{MaxConcurrency: maxConc}, Counts: map[run.Status]int{}}}
	for i := range batches {
		b := batches[i]
		b.states = map[string]DeviceState{}
		for _, d := range b.devs {
			st := cmpOr(b.statuses[d], run.Queued)
			b.states[d] = DeviceState{DeviceID: d, Status: st, RunID: RunID(id, d), Batch: i}
			s.job.Counts[st]++
			s.job.DeviceCount++
		}
		if b.state == BatchDone {
			s.job.BatchesDone++
		}
		s.batches = append(s.batches, &b)
	}
	return s
}

func cmpOr(s, def run.Status) run.Status {
	if s == "" {
		return def
	}
	return s
}

// afterSweep makes the batches that were re-sent change once, as an executor taking them would.
func (s *fakeWatchStore) afterSweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		if b.touchAfterResend && !b.resent.IsZero() {
			b.updated, b.touchAfterResend = s.now, false
		}
	}
}

func (s *fakeWatchStore) batch(i int) (*fakeBatch, error) {
	if i < 0 || i >= len(s.batches) {
		return nil, fmt.Errorf("batch %d: %w", i, ErrJobNotFound)
	}
	return s.batches[i], nil
}

func (s *fakeWatchStore) UnfinishedJobs(_ context.Context, cursor string, _ int) ([]string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cursor != "" {
		return nil, "", fault.ErrBadCursor
	}
	if !s.listed {
		return nil, "", nil
	}
	return []string{s.job.ID}, "", nil
}

func (s *fakeWatchStore) ForgetUnfinished(context.Context, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listed = false
	return nil
}

func (s *fakeWatchStore) GetJob(context.Context, string) (Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.job
	j.Counts = map[run.Status]int{}
	for k, v := range s.job.Counts {
		j.Counts[k] = v
	}
	return j, nil
}

func (s *fakeWatchStore) Deliveries(context.Context, string) ([]Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.batches))
	for i, b := range s.batches {
		out[i] = Delivery{Batch: i, State: b.state, DeviceIDs: b.devs, UpdatedAt: b.updated, ResentAt: b.resent}
	}
	return out, nil
}

func (s *fakeWatchStore) MarkResent(_ context.Context, _ string, i int, seen, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.batch(i)
	if err != nil {
		return err
	}
	if b.state != BatchSent || !b.updated.Equal(seen) || !b.resent.Before(seen) {
		return ErrBatchChanged
	}
	b.resent = at
	return nil
}

func (s *fakeWatchStore) UnmarkResent(_ context.Context, _ string, i int, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, err := s.batch(i); err == nil && b.resent.Equal(at) {
		b.resent = time.Time{}
	}
	return nil
}

func (s *fakeWatchStore) ClaimStale(_ context.Context, _ string, i int, seen time.Time, holder string, _, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.batch(i)
	if err != nil {
		return err
	}
	if b.state != BatchSent || !b.updated.Equal(seen) || b.holder != "" {
		return ErrBatchChanged
	}
	b.holder, b.updated = holder, now
	return nil
}

func (s *fakeWatchStore) ReleaseBatch(_ context.Context, _ string, i int, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, err := s.batch(i); err == nil && b.holder == holder {
		b.holder, b.updated = "", s.now
	}
	return nil
}

func (s *fakeWatchStore) Touch(_ context.Context, _ string, i int, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, err := s.batch(i); err == nil && b.state == BatchSent {
		b.updated, b.resent = at, time.Time{}
	}
	return nil
}

func (s *fakeWatchStore) BatchStates(_ context.Context, _ string, i int) (map[string]DeviceState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.batch(i)
	if err != nil {
		return nil, err
	}
	out := make(map[string]DeviceState, len(b.states))
	for k, v := range b.states {
		out[k] = v
	}
	return out, nil
}

func (s *fakeWatchStore) Record(_ context.Context, jobID string, i int, changes []Change) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.batch(i)
	if err != nil || len(changes) == 0 {
		return nil, err
	}
	for _, c := range changes {
		if b.states[c.DeviceID].Status != c.From {
			return nil, ErrStateChanged
		}
	}
	var events []Event
	for _, c := range changes {
		st := b.states[c.DeviceID]
		st.Status, st.Reason = c.To, c.Reason
		b.states[c.DeviceID] = st
		s.job.Counts[c.From]--
		s.job.Counts[c.To]++
		s.job.Seq++
		events = append(events, Event{Type: EventProgress, JobID: jobID, DeviceID: c.DeviceID, Status: string(c.To), Reason: c.Reason, Seq: s.job.Seq})
	}
	b.updated = s.now
	return events, nil
}

func (s *fakeWatchStore) LogEvents(context.Context, string, []Event, time.Time) error { return nil }

func (s *fakeWatchStore) FinishBatch(_ context.Context, jobID string, i int) ([]Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.batch(i)
	if err != nil {
		return nil, err
	}
	if b.state != BatchDone {
		b.state, b.updated = BatchDone, s.now
		s.job.BatchesDone++
	}
	if s.job.BatchesDone < s.job.Batches || s.job.Status.Terminal() {
		return nil, nil
	}
	s.job.Status = JobCompleted
	s.job.Seq++
	return []Event{{Type: EventJobDone, JobID: jobID, Status: string(JobCompleted), Seq: s.job.Seq}}, nil
}

func (s *fakeWatchStore) PendingBatches(context.Context, string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for i, b := range s.batches {
		if b.state == BatchPending {
			out = append(out, i)
		}
	}
	return out, nil
}

func (s *fakeWatchStore) ClaimPendingBatch(context.Context, string) (int, []string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.batches {
		if b.state == BatchPending {
			b.state, b.updated = BatchSent, s.now
			return i, b.devs, true, nil
		}
	}
	return 0, nil, false, nil
}

// Abandon and Reconcile make the fake its own run store: no runs exist.
func (s *fakeWatchStore) Abandon(context.Context, string, string) error { return nil }

func (s *fakeWatchStore) Reconcile(context.Context, string, string) error { return nil }

type fakeQueue struct {
	mu   sync.Mutex
	msgs []Message
}

func (q *fakeQueue) SendAll(_ context.Context, msgs []Message) ([]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, msgs...)
	return nil, nil
}

func (q *fakeQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

type fakePublisher struct {
	mu     sync.Mutex
	events []Event
}

func (p *fakePublisher) Publish(_ context.Context, events []Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, events...)
}

// has reports whether a progress event of device with reason (or, for an empty device, a
// job_done event) was published.
func (p *fakePublisher) has(device, reason string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.events {
		if device == "" && e.Type == EventJobDone {
			return true
		}
		if device != "" && e.DeviceID == device && e.Reason == reason {
			return true
		}
	}
	return false
}

func (p *fakePublisher) count(typ string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, e := range p.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}
