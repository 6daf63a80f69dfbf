// Package memstore keeps bulk jobs, runs, queue messages and devices in memory: in-process
// implementations of the interfaces bulk's Enqueuer, Executor and Watchdog use, holding the same
// rules as the DynamoDB stores (conditional state changes, leases, exactly-once run starts), so
// those rules can be tested in milliseconds without DynamoDB, SQS or SSH. Every store is safe for
// concurrent use.
package memstore

import (
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// Jobs keeps bulk jobs, their batches and their event logs; it implements bulk.WatchStore (and
// so bulk.ExecStore and bulk.JobStore) and bulk.JobDeviceReader.
type Jobs struct {
	// Now is the store's clock for leases and batch times (default: the wall clock, UTC).
	Now func() time.Time

	mu   sync.Mutex
	jobs map[string]*job
	// unfinished maps each job that has not ended to its requester, as the DynamoDB store's
	// UNFINISHED items do.
	unfinished map[string]string
	// notices are the claimed notices, by job id and name.
	notices map[[2]string]bool
	// last is the newest job per commands key (SwapLastJob).
	last map[string]string
}

// SwapLastJob records jobID as the newest job of the commands key names and returns the one
// before it ("" when none, or when a newer one is recorded).
func (s *Jobs) SwapLastJob(_ context.Context, key, jobID string, _ time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]string{}
	}
	prev := s.last[key]
	if prev >= jobID {
		return "", nil
	}
	s.last[key] = jobID
	return prev, nil
}

var (
	_ bulk.WatchStore      = (*Jobs)(nil)
	_ bulk.JobDeviceReader = (*Jobs)(nil)
	_ bulk.NoticeClaimer   = (*Jobs)(nil)
)

type job struct {
	j       bulk.Job
	batches []*batch
}

type batch struct {
	ids   []string
	state bulk.BatchState
	devs  map[string]bulk.DeviceState
	// leaseUntil and leaseBy are the batch's lease (ClaimBatch, ClaimStale).
	leaseUntil time.Time
	leaseBy    string
	claims     int
	// updatedAt and resentAt are kept to the millisecond, as the DynamoDB store keeps them.
	updatedAt time.Time
	resentAt  time.Time
}

// NewJobs returns an empty job store.
func NewJobs() *Jobs {
	return &Jobs{jobs: map[string]*job{}, unfinished: map[string]string{}}
}

func (s *Jobs) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now().UTC()
}

// ms truncates t to the millisecond.
func ms(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }

// get returns the job; the caller holds s.mu.
func (s *Jobs) get(id string) (*job, error) {
	jb, ok := s.jobs[id]
	if !ok {
		return nil, fmt.Errorf("job %s: %w", id, bulk.ErrJobNotFound)
	}
	return jb, nil
}

// batch returns a batch of the job; the caller holds s.mu.
func (s *Jobs) batch(jobID string, i int) (*job, *batch, error) {
	jb, err := s.get(jobID)
	if err != nil {
		return nil, nil, err
	}
	if i < 0 || i >= len(jb.batches) {
		return nil, nil, fmt.Errorf("batch %d of job %s: %w", i, jobID, bulk.ErrJobNotFound)
	}
	return jb, jb.batches[i], nil
}

// snapshot returns a copy of the job, with a count for every status.
func (jb *job) snapshot() bulk.Job {
	j := jb.j
	j.Counts = make(map[run.Status]int, len(run.Statuses()))
	for _, st := range run.Statuses() {
		j.Counts[st] = jb.j.Counts[st]
	}
	if jb.j.FinishedAt != nil {
		at := *jb.j.FinishedAt
		j.FinishedAt = &at
	}
	j.Reruns = slices.Clone(jb.j.Reruns)
	return j
}

// AddRerun appends rerunID to the job's list of re-runs; bulk.ErrJobNotFound when there is no job.
func (s *Jobs) AddRerun(_ context.Context, jobID, rerunID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, err := s.get(jobID)
	if err != nil {
		return err
	}
	jb.j.Reruns = append(jb.j.Reruns, rerunID)
	return nil
}

func (b *batch) states() map[string]bulk.DeviceState {
	out := make(map[string]bulk.DeviceState, len(b.devs))
	for id, st := range b.devs {
		out[id] = st
	}
	return out
}

// CreateJob stores a new job and its batches; batches from index sent on are pending.
func (s *Jobs) CreateJob(_ context.Context, j bulk.Job, batches [][]string, sent int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[j.ID]; ok {
		return fmt.Errorf("create job %s: it exists", j.ID)
	}
	now := ms(s.now())
	j.Counts = map[run.Status]int{run.Queued: j.DeviceCount}
	j.Seq, j.BatchesDone, j.CancelRequested, j.StopStatus, j.FinishedAt = 0, 0, false, "", nil
	jb := &job{j: j}
	for i, ids := range batches {
		b := &batch{ids: slices.Clone(ids), state: bulk.BatchSent, devs: map[string]bulk.DeviceState{}, updatedAt: now}
		if i >= sent {
			b.state = bulk.BatchPending
		}
		for _, id := range ids {
			b.devs[id] = bulk.DeviceState{DeviceID: id, Status: run.Queued, RunID: bulk.RunID(j.ID, id), Batch: i}
		}
		jb.batches = append(jb.batches, b)
	}
	s.jobs[j.ID] = jb
	s.unfinished[j.ID] = j.RequestedBy
	return nil
}

// GetJob returns a job; bulk.ErrJobNotFound when there is none.
func (s *Jobs) GetJob(_ context.Context, id string) (bulk.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[id]
	if !ok {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	return jb.snapshot(), nil
}

// JobControl returns the job (this store reads its counts at no cost).
func (s *Jobs) JobControl(ctx context.Context, id string) (bulk.Job, error) {
	return s.GetJob(ctx, id)
}

// MarkRunning moves a queued job to running; a job in any other state is left alone.
func (s *Jobs) MarkRunning(_ context.Context, jobID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if jb, ok := s.jobs[jobID]; ok && jb.j.Status == bulk.JobQueued {
		jb.j.Status = bulk.JobRunning
	}
	return nil
}

// RequestStop flags the job to stop with status (the first request's status wins) and records
// message as its error unless message is empty.
func (s *Jobs) RequestStop(_ context.Context, jobID string, status bulk.JobStatus, message string) (bulk.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	if jb.j.Status.Terminal() {
		return bulk.Job{}, bulk.ErrJobFinished
	}
	jb.j.CancelRequested = true
	jb.j.StopStatus = cmp.Or(jb.j.StopStatus, status)
	if message != "" {
		jb.j.Error = message
	}
	return jb.snapshot(), nil
}

// PendingBatches lists the job's never-sent batches in order.
func (s *Jobs) PendingBatches(_ context.Context, jobID string) ([]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return nil, nil // the DynamoDB store finds no batch items either
	}
	var out []int
	for i, b := range jb.batches {
		if b.state == bulk.BatchPending {
			out = append(out, i)
		}
	}
	return out, nil
}

// ClaimPendingBatch marks the first pending batch sent and returns it.
func (s *Jobs) ClaimPendingBatch(_ context.Context, jobID string) (int, []string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return 0, nil, false, nil
	}
	for i, b := range jb.batches {
		if b.state == bulk.BatchPending {
			b.state, b.updatedAt = bulk.BatchSent, ms(s.now())
			return i, slices.Clone(b.ids), true, nil
		}
	}
	return 0, nil, false, nil
}

// Devices returns a page of the job's devices in batch order; the cursor is the next batch.
func (s *Jobs) Devices(_ context.Context, jobID string, cursor string, limit int) ([]bulk.DeviceState, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return nil, "", bulk.ErrJobNotFound
	}
	start, err := bulk.ParseDevicesCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = bulk.DefaultDevicesPage
	}
	var out []bulk.DeviceState
	for i := start; i < len(jb.batches); i++ {
		b := jb.batches[i]
		if len(out) > 0 && len(out)+len(b.ids) > limit {
			return out, bulk.DevicesCursor(i), nil
		}
		for _, id := range b.ids {
			out = append(out, b.devs[id])
		}
	}
	return out, "", nil
}

// JobDevice returns a job and one device's state in it (see bulk.JobDeviceReader).
func (s *Jobs) JobDevice(_ context.Context, jobID, deviceID string) (bulk.Job, bulk.DeviceState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok || (!jb.j.ExpiresAt.IsZero() && !jb.j.ExpiresAt.After(s.now())) {
		return bulk.Job{}, bulk.DeviceState{}, bulk.ErrJobNotFound
	}
	for _, b := range jb.batches {
		if st, ok := b.devs[deviceID]; ok {
			return jb.snapshot(), st, nil
		}
	}
	return bulk.Job{}, bulk.DeviceState{}, fmt.Errorf("device %s of job %s: %w", deviceID, jobID, bulk.ErrDeviceNotInJob)
}

// BatchStates returns the stored state of each device of a batch.
func (s *Jobs) BatchStates(_ context.Context, jobID string, i int) (map[string]bulk.DeviceState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.batch(jobID, i)
	if err != nil {
		return nil, err
	}
	return b.states(), nil
}

// ClaimBatch takes the batch's lease until until for holder unless another lease still runs
// (bulk.ErrBatchLeased, with Claim.HeldUntil).
func (s *Jobs) ClaimBatch(_ context.Context, jobID string, i int, holder string, until time.Time) (bulk.Claim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.batch(jobID, i)
	if err != nil {
		return bulk.Claim{}, err
	}
	now := ms(s.now())
	if b.leaseUntil.After(now) {
		return bulk.Claim{HeldUntil: b.leaseUntil}, bulk.ErrBatchLeased
	}
	b.leaseUntil, b.leaseBy, b.updatedAt = ms(until), holder, now
	b.claims++
	return bulk.Claim{States: b.states(), First: b.claims == 1}, nil
}

// ReleaseBatch ends holder's lease on the batch, if it still holds it.
func (s *Jobs) ReleaseBatch(_ context.Context, jobID string, i int, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.batch(jobID, i)
	if err != nil {
		return nil // the DynamoDB store's condition fails the same way: nothing to release
	}
	if b.leaseBy == holder {
		b.leaseUntil, b.updatedAt = time.Time{}, ms(s.now())
	}
	return nil
}

// normDigest keeps an output digest as the DynamoDB store does: as raw bytes, so anything but
// hex is dropped.
func normDigest(d string) string {
	b, err := hex.DecodeString(d)
	if err != nil || len(b) == 0 {
		return ""
	}
	return hex.EncodeToString(b)
}

// Record applies changes to a batch atomically with the job's counts: every change's From must be
// its device's stored state, else bulk.ErrStateChanged and nothing changes.
func (s *Jobs) Record(_ context.Context, jobID string, i int, changes []bulk.Change) ([]bulk.Event, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return nil, bulk.ErrJobNotFound
	}
	if i < 0 || i >= len(jb.batches) {
		return nil, bulk.ErrStateChanged // no stored state to start from
	}
	b := jb.batches[i]
	seen := map[string]bool{}
	for _, c := range changes {
		st, ok := b.devs[c.DeviceID]
		if !ok || st.Status != c.From || seen[c.DeviceID] {
			return nil, bulk.ErrStateChanged
		}
		seen[c.DeviceID] = true
	}
	now := s.now()
	events := make([]bulk.Event, len(changes))
	for k, c := range changes {
		digest := normDigest(c.OutputDigest)
		b.devs[c.DeviceID] = bulk.DeviceState{DeviceID: c.DeviceID, Status: c.To, RunID: bulk.RunID(jobID, c.DeviceID), Reason: c.Reason,
			DurationMS: c.DurationMS, OutputDigest: digest, Seq: c.Seq, Batch: i, Commands: slices.Clone(c.Commands), Changed: c.Changed}
		jb.j.Counts[c.From]--
		jb.j.Counts[c.To]++
		events[k] = bulk.Event{Type: bulk.EventProgress, JobID: jobID, DeviceID: c.DeviceID, Status: string(c.To), RunID: c.RunID,
			Reason: c.Reason, DurationMS: c.DurationMS, OutputDigest: digest, Changed: c.Changed, Seq: c.Seq, At: now}
	}
	b.updatedAt = ms(now)
	return events, nil
}

// FinishBatch marks a batch done once and returns the job after.
func (s *Jobs) FinishBatch(_ context.Context, jobID string, i int) (bulk.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	if i >= 0 && i < len(jb.batches) && jb.batches[i].state != bulk.BatchDone {
		jb.batches[i].state, jb.batches[i].updatedAt = bulk.BatchDone, ms(s.now())
		jb.j.BatchesDone++
	}
	return jb.snapshot(), nil
}

// EndJob sets the job's final status unless it has ended (bulk.ErrJobFinished).
func (s *Jobs) EndJob(_ context.Context, jobID string, status bulk.JobStatus, at time.Time) (bulk.Job, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	if jb.j.Status.Terminal() {
		return bulk.Job{}, bulk.ErrJobFinished
	}
	jb.j.Status, jb.j.FinishedAt = status, &at
	jb.j.Seq = bulk.JobDoneSeq(jb.j.CreatedAt, at)
	return jb.snapshot(), nil
}

// UnfinishedJobs returns a page of the ids of jobs that have not ended, in id order; the cursor
// is the last id of the page before.
func (s *Jobs) UnfinishedJobs(_ context.Context, cursor string, limit int) ([]string, string, error) {
	after, ok := strings.CutPrefix(cursor, "after:")
	if cursor != "" && (!ok || after == "") {
		return nil, "", fault.ErrBadCursor
	}
	if limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.unfinished {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) > limit {
		return ids[:limit], "after:" + ids[limit-1], nil
	}
	return ids, "", nil
}

// ForgetUnfinished drops the job from the unfinished list.
func (s *Jobs) ForgetUnfinished(_ context.Context, jobID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.unfinished, jobID)
	return nil
}

// RunningJobs counts the unfinished jobs requested by requestedBy.
func (s *Jobs) RunningJobs(_ context.Context, requestedBy string, _ int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, by := range s.unfinished {
		if by == requestedBy {
			n++
		}
	}
	return n, nil
}

// Deliveries returns every batch of the job in order, with its delivery times.
func (s *Jobs) Deliveries(_ context.Context, jobID string) ([]bulk.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jb, ok := s.jobs[jobID]
	if !ok {
		return nil, nil
	}
	out := make([]bulk.Delivery, len(jb.batches))
	for i, b := range jb.batches {
		out[i] = bulk.Delivery{Batch: i, State: b.state, DeviceIDs: slices.Clone(b.ids), UpdatedAt: b.updatedAt, ResentAt: b.resentAt}
	}
	return out, nil
}

// MarkResent records the re-send of a sent batch unchanged since seen and not re-sent since;
// bulk.ErrBatchChanged otherwise.
func (s *Jobs) MarkResent(_ context.Context, jobID string, i int, seen, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.batch(jobID, i)
	if err != nil || b.state != bulk.BatchSent || !b.updatedAt.Equal(ms(seen)) || !b.resentAt.Before(ms(seen)) {
		return fmt.Errorf("mark batch %d of job %s re-sent: %w", i, jobID, bulk.ErrBatchChanged)
	}
	b.resentAt = ms(at)
	return nil
}

// UnmarkResent takes back MarkResent(at), if it is still the batch's latest re-send.
func (s *Jobs) UnmarkResent(_ context.Context, jobID string, i int, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, b, err := s.batch(jobID, i); err == nil && b.resentAt.Equal(ms(at)) {
		b.resentAt = time.Time{}
	}
	return nil
}

// ClaimStale takes a sent batch's lease for holder while it is unchanged since seen and no other
// lease runs; bulk.ErrBatchChanged otherwise.
func (s *Jobs) ClaimStale(_ context.Context, jobID string, i int, seen time.Time, holder string, until, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.batch(jobID, i)
	if err != nil || b.state != bulk.BatchSent || !b.updatedAt.Equal(ms(seen)) || b.leaseUntil.After(ms(now)) {
		return fmt.Errorf("claim stale batch %d of job %s: %w", i, jobID, bulk.ErrBatchChanged)
	}
	b.leaseUntil, b.leaseBy, b.updatedAt = ms(until), holder, ms(now)
	b.claims++
	return nil
}

// Touch restarts a sent batch's staleness clock at at; other batches are left alone.
func (s *Jobs) Touch(_ context.Context, jobID string, i int, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, b, err := s.batch(jobID, i); err == nil && b.state == bulk.BatchSent {
		b.updatedAt, b.resentAt = ms(at), time.Time{}
	}
	return nil
}

// SetBatchTimes sets a batch's delivery times, as a test arranging a stale batch needs.
func (s *Jobs) SetBatchTimes(jobID string, i int, updated, resent time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, b, err := s.batch(jobID, i)
	if err != nil {
		return err
	}
	b.updatedAt, b.resentAt = ms(updated), ms(resent)
	if resent.IsZero() {
		b.resentAt = time.Time{}
	}
	if updated.IsZero() {
		b.updatedAt = time.Time{}
	}
	return nil
}

// ClaimNotice records notice name of job jobID as sent unless it already is.
func (s *Jobs) ClaimNotice(_ context.Context, jobID, name string, _ time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notices == nil {
		s.notices = map[[2]string]bool{}
	}
	k := [2]string{jobID, name}
	if s.notices[k] {
		return false, nil
	}
	s.notices[k] = true
	return true, nil
}
