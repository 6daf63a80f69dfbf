package memstore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// Runs keeps runs and their output; it implements bulk.RunStore (and so run.Store) and
// bulk.RunAbandoner with the DynamoDB run store's rules: a finished run is never started again, a
// running attempt's run is not taken over while its lease runs, and a finish that is no longer
// its attempt's is refused.
type Runs struct {
	// Lease is how long a started run is held by its attempt (default a minute).
	Lease time.Duration
	// Now is the store's clock (default: the wall clock, UTC).
	Now func() time.Time

	mu   sync.Mutex
	runs map[string]*storedRun
	// chunks holds each run's full output chunks by sequence number, apart from the run as
	// the DynamoDB store keeps them in items of their own.
	chunks map[string]map[int][]byte
	// starts counts, per run, the running records written (Start, StartNew, a takeover).
	starts map[string]int
	// previousIn and previous count the lookups of previous runs by job and one by one,
	// digestReads the reads of a batch's digests.
	previousIn, previous, digestReads int
	// digests are the batches' digests (RecordDigests).
	digests map[batchKey]batchDigests
	// listed holds the ids of the runs the batches' run lists name (ListRuns).
	listed map[string]bool

	// ListErr, when set, is what ListRuns returns: a store that cannot write run lists.
	ListErr error
}

// batchKey names a batch of a job.
type batchKey struct {
	job   string
	batch int
}

// batchDigests is one batch's kept digests and the commands they are of.
type batchDigests struct {
	of      run.Run
	devices map[string]string
}

var (
	_ bulk.RunStore     = (*Runs)(nil)
	_ bulk.RunAbandoner = (*Runs)(nil)
)

type storedRun struct {
	r    run.Run
	tail []byte
}

// NewRuns returns an empty run store.
func NewRuns() *Runs {
	return &Runs{runs: map[string]*storedRun{}, chunks: map[string]map[int][]byte{}, starts: map[string]int{}}
}

func (s *Runs) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now().UTC()
}

func (s *Runs) lease() time.Duration {
	if s.Lease > 0 {
		return s.Lease
	}
	return time.Minute
}

// Start records r as running: a new run is created, a run whose attempt's lease ran out is taken
// over (its partial output dropped, Attempt increased), a finished run is left alone
// (run.ErrFinished with the stored run) and a held one too (run.ErrLeased).
func (s *Runs) Start(_ context.Context, r run.Run) (run.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkListed(r); err != nil {
		return run.Run{}, err
	}
	now := s.now()
	r.Status = run.Running
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	r.StartedAt, r.LeaseUntil = &now, now.Add(s.lease())
	old, ok := s.runs[r.ID]
	if ok {
		switch {
		case old.r.Status.Terminal():
			return old.r, fmt.Errorf("start run %s: %w", r.ID, run.ErrFinished)
		case old.r.LeaseUntil.After(now):
			return old.r, fmt.Errorf("start run %s: %w", r.ID, run.ErrLeased)
		}
		// The previous attempt died: drop its partial output, then take the run over.
		r.Attempt, r.CreatedAt = old.r.Attempt+1, old.r.CreatedAt
		delete(s.chunks, r.ID)
	}
	s.runs[r.ID] = &storedRun{r: r}
	s.starts[r.ID]++
	return r, nil
}

// StartNew records a run its caller knows does not exist yet as running: a plain write.
func (s *Runs) StartNew(_ context.Context, r run.Run) (run.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkListed(r); err != nil {
		return run.Run{}, err
	}
	now := s.now()
	r.Status, r.LeaseUntil, r.Attempt = run.Running, now.Add(s.lease()), 1
	if r.StartedAt == nil {
		r.StartedAt = &now
	}
	s.runs[r.ID] = &storedRun{r: r}
	s.starts[r.ID]++
	return r, nil
}

// AppendChunk stores output chunk seq of a run; storing the same chunk twice has no effect.
func (s *Runs) AppendChunk(_ context.Context, r run.Run, seq int, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	chunks, ok := s.chunks[r.ID]
	if !ok {
		chunks = map[int][]byte{}
		s.chunks[r.ID] = chunks
	}
	if _, ok := chunks[seq]; !ok {
		chunks[seq] = slices.Clone(data)
	}
	return nil
}

// Finish stores the run finished with the output's last piece, unless the run is no longer this
// attempt's (run.ErrFinished). A run never written is created finished.
func (s *Runs) Finish(_ context.Context, r run.Run, tail []byte) error {
	if !r.Status.Terminal() {
		return fmt.Errorf("finish run %s: status %q is not terminal", r.ID, r.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkListed(r); err != nil {
		return err
	}
	if old, ok := s.runs[r.ID]; ok && (old.r.Attempt != r.Attempt || old.r.Status != run.Running) {
		return fmt.Errorf("finish run %s: %w", r.ID, run.ErrFinished)
	}
	s.store(r, tail)
	return nil
}

// FinishNew stores, finished, a run its caller knows was never written: a plain write.
func (s *Runs) FinishNew(_ context.Context, r run.Run, tail []byte) error {
	if !r.Status.Terminal() {
		return fmt.Errorf("finish run %s: status %q is not terminal", r.ID, r.Status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.checkListed(r); err != nil {
		return err
	}
	s.store(r, tail)
	return nil
}

// ListRuns records that the runs of batch of job on devices are listed for the purges.
func (s *Runs) ListRuns(_ context.Context, job string, _ int, devices []string, _, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ListErr != nil {
		return s.ListErr
	}
	if s.listed == nil {
		s.listed = map[string]bool{}
	}
	for _, d := range devices {
		s.listed[bulk.RunID(job, d)] = true
	}
	return nil
}

// Listed reports whether a run list names run id.
func (s *Runs) Listed(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listed[id]
}

// checkListed refuses a run that says it is listed when no run list names it: the DynamoDB store
// would write it where no purge finds it. The caller holds s.mu.
func (s *Runs) checkListed(r run.Run) error {
	if r.Listed && !s.listed[r.ID] {
		return fmt.Errorf("write run %s: it says it is listed, but no run list names it", r.ID)
	}
	return nil
}

// store keeps r finished with its tail; the caller holds s.mu.
func (s *Runs) store(r run.Run, tail []byte) {
	r.LeaseUntil = time.Time{}
	s.runs[r.ID] = &storedRun{r: r, tail: slices.Clone(tail)}
}

// Get returns one run; run.ErrNotFound when there is none.
func (s *Runs) Get(_ context.Context, id string) (run.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr, ok := s.runs[id]
	if !ok {
		return run.Run{}, fmt.Errorf("run %s: %w", id, run.ErrNotFound)
	}
	return sr.r, nil
}

// Abandon marks a running run failed with reason; terminal or missing runs are left alone.
func (s *Runs) Abandon(_ context.Context, id, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sr, ok := s.runs[id]
	if !ok || sr.r.Status != run.Running {
		return nil
	}
	now := s.now()
	sr.r.Status, sr.r.Reason, sr.r.FinishedAt, sr.r.LeaseUntil = run.Failed, reason, &now, time.Time{}
	return nil
}

// Reconcile has nothing to repair: this store keeps no separate byte accounting.
func (s *Runs) Reconcile(context.Context, string, string) error { return nil }

// Output returns a run's stored output: its chunks in order, then its tail.
func (s *Runs) Output(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for seq := 0; ; seq++ {
		c, ok := s.chunks[id][seq]
		if !ok {
			break
		}
		b.Write(c)
	}
	if sr, ok := s.runs[id]; ok {
		b.Write(sr.tail)
	}
	return b.Bytes()
}

// Starts returns how many running records of the run were written.
func (s *Runs) Starts(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts[id]
}

// Put stores r as it is, as a test arranging an earlier attempt needs.
func (s *Runs) Put(r run.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[r.ID] = &storedRun{r: r}
}

// Previous returns the newest succeeded run of r's command on r's device created before r that
// ran the same commands (run.SameCommands; newest by creation time, then id, as the DynamoDB
// store's index orders them); run.ErrNotFound when none.
func (s *Runs) Previous(_ context.Context, r run.Run) (run.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.previous++
	before := func(a, b run.Run) bool {
		return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.ID < b.ID
	}
	var best *run.Run
	for _, st := range s.runs {
		c := st.r
		if c.DeviceID != r.DeviceID || c.Command != r.Command || c.Status != run.Succeeded || c.ID == r.ID || !run.SameCommands(c, r) {
			continue
		}
		if !before(c, r) {
			continue
		}
		if best == nil || before(*best, c) {
			best = &c
		}
	}
	if best == nil {
		return run.Run{}, run.ErrNotFound
	}
	return *best, nil
}

// PreviousIn returns r's device's run in job when it succeeded running r's commands.
func (s *Runs) PreviousIn(_ context.Context, job string, r run.Run) (run.Run, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.previousIn++
	st, ok := s.runs[bulk.RunID(job, r.DeviceID)]
	if !ok || st.r.ID == r.ID || st.r.Status != run.Succeeded || st.r.Command != r.Command || !run.SameCommands(st.r, r) {
		return run.Run{}, false, nil
	}
	return st.r, true, nil
}

// RecordDigests keeps the digests of batch of job.
func (s *Runs) RecordDigests(_ context.Context, job string, batch int, r run.Run, digests map[string]string, _ time.Time) error {
	if len(digests) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.digests == nil {
		s.digests = map[batchKey]batchDigests{}
	}
	key := batchKey{job, batch}
	b, ok := s.digests[key]
	if !ok {
		b = batchDigests{of: r, devices: map[string]string{}}
	}
	maps.Copy(b.devices, digests)
	s.digests[key] = b
	return nil
}

// DigestsIn returns the digests kept for batch of job when its runs ran r's commands.
func (s *Runs) DigestsIn(_ context.Context, job string, batch int, r run.Run) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.digestReads++
	b, ok := s.digests[batchKey{job, batch}]
	if !ok || b.of.Command != r.Command || !run.SameCommands(b.of, r) {
		return map[string]string{}, nil
	}
	return maps.Clone(b.devices), nil
}

// DropDigests forgets every batch digest of job, as if it ran before digests were kept.
func (s *Runs) DropDigests(job string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.digests {
		if key.job == job {
			delete(s.digests, key)
		}
	}
}

// DigestReads returns how many times a batch's digests were read.
func (s *Runs) DigestReads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.digestReads
}

// PreviousLookups returns how many previous runs were looked up in a job (PreviousIn) and one by
// one (Previous).
func (s *Runs) PreviousLookups() (inJob, oneByOne int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.previousIn, s.previous
}
