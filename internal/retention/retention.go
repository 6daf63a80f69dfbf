// Package retention decides what the scheduled purge deletes: runs older than the age limit
// (found day by day through an index by creation time), then, for every device over its byte
// cap, its oldest finished runs until it is at or below the cap. It never deletes a run that is
// not terminal or whose bulk job is still running, bounds its work by a deadline and reports what
// it did, what it skipped and whether work remains.
//
// The package imports no AWS SDK: the storage it needs is the small Store and Jobs interfaces,
// implemented over DynamoDB by internal/dynamo.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/run"
)

// Purge types, the "type" of a retention.purge event and metric dimension.
const (
	TypeAge   = "age"
	TypeBytes = "bytes"
)

// Defaults of a Purger.
const (
	DefaultWorkers = 8
	// DefaultLookback is how far before the age cutoff the first age purge looks for runs, when
	// no watermark says where an earlier purge stopped (the by_day index cannot be asked for its
	// oldest day). Each empty day costs the store's queries of one day (one per partition of
	// the day) that read no item, once.
	DefaultLookback = 3 * 365 * 24 * time.Hour
	// DefaultMargin is kept free before the invocation's deadline to save the report.
	DefaultMargin = 20 * time.Second
	pageSize      = 100
)

// ErrNoReport is returned by Store.LastReport when no purge has run yet.
var ErrNoReport = fault.New(fault.NotFound, "", "no retention report yet")

// Candidate is a run the purge may delete, as read from an index.
type Candidate struct {
	ID        string
	DeviceID  string
	JobID     string
	Status    run.Status
	CreatedAt time.Time
	// Bytes is the run's output size as recorded on the run.
	Bytes int64
	// Chunks is the number of output chunks recorded on the run.
	Chunks int
	// InlineBytes is the part of the output the store keeps in the run item itself (its last
	// piece), which goes with the run item rather than with a chunk.
	InlineBytes int64
}

// Deleted is what deleting one run removed. A run another purge (or TTL) removed first counts
// only what this call removed, so concurrent purges never count (or decrement) twice.
type Deleted struct {
	// Run is true when this call deleted the run item.
	Run bool
	// Chunks counts the output pieces deleted: chunk items and a run item's inline tail.
	Chunks int64
	Bytes  int64
}

// Store is the runs table as the purge sees it.
type Store interface {
	// AgeWatermark returns the last UTC day whose runs an age purge has all deleted; the zero
	// time when none has.
	AgeWatermark(ctx context.Context) (time.Time, error)
	// SetAgeWatermark records that every run created on or before day is deleted (never moves it
	// backwards).
	SetAgeWatermark(ctx context.Context, day time.Time) error
	// RunsOfDay lists runs created on the UTC day of day and before `before`, a page at a time
	// (in no order the purge relies on: the store may read the day from several partitions);
	// cursor "" starts, a returned "" ends. It may also list runs created a little later (up
	// to an invocation's length) that a record of the day stands for.
	RunsOfDay(ctx context.Context, day, before time.Time, cursor string, limit int) ([]Candidate, string, error)
	// RunsOfDevice lists a device's runs oldest first, a page at a time.
	RunsOfDevice(ctx context.Context, deviceID, cursor string, limit int) ([]Candidate, string, error)
	// DeleteRun deletes a run's chunks and then the run, decrementing the device's byte counter
	// atomically with each chunk deletion and idempotently.
	DeleteRun(ctx context.Context, c Candidate) (Deleted, error)
	// ChangedDevices lists the IDs of devices whose stored bytes moved since the byte purge last
	// cleared them, a page at a time; a device may be listed more than once.
	ChangedDevices(ctx context.Context, cursor string, limit int) ([]string, string, error)
	// DeviceBytes returns a device's stored output bytes (strongly consistent).
	DeviceBytes(ctx context.Context, deviceID string) (int64, error)
	// FoldTotals adds what a device's bytes moved since it was last folded to the fleet totals,
	// exactly once however many purges fold it at once, and returns the device's bytes it folded.
	FoldTotals(ctx context.Context, deviceID string) (int64, error)
	// SetTotalsAsOf records that the fleet totals hold every change made before t (never moves
	// it backwards).
	SetTotalsAsOf(ctx context.Context, t time.Time) error
	// ClearChanged removes a device from the changed set if its bytes still equal seen and are
	// folded into the totals.
	ClearChanged(ctx context.Context, deviceID string, seen int64) error
	// SweepOutputs deletes the outputs stored once that a deleter that stopped half way left
	// without a reference, and returns how many it deleted and their bytes.
	SweepOutputs(ctx context.Context) (outputs, bytes int64, err error)
	// SaveReport stores the last report; LastReport reads it (ErrNoReport when none).
	SaveReport(ctx context.Context, r Report) error
	LastReport(ctx context.Context) (Report, error)
}

// Jobs tells whether a bulk job still runs.
type Jobs interface {
	// JobRunning reports whether the job exists and is not terminal.
	JobRunning(ctx context.Context, jobID string) (bool, error)
}

// Metrics receives EMF metrics; *metrics.Emitter implements it.
type Metrics interface {
	Emit(dimensions map[string]string, properties map[string]any, ms ...metrics.Metric) error
}

// Settings are the retention limits.
type Settings struct {
	// MaxDays is the age limit in days; 0 disables the age purge.
	MaxDays int `json:"max_days"`
	// MaxBytes is the per-device output cap; 0 disables the byte purge.
	MaxBytes int64 `json:"max_bytes"`
	// Cron is the schedule as configured (NET_AUTO_RETENTION_CRON).
	Cron string `json:"cron"`
	// Schedule is the EventBridge expression the cron translates to.
	Schedule string `json:"schedule,omitempty"`
}

// Stats is what one purge type did.
type Stats struct {
	Type          string `json:"type"`
	RunsDeleted   int64  `json:"runs_deleted"`
	ChunksDeleted int64  `json:"chunks_deleted"`
	BytesFreed    int64  `json:"bytes_freed"`
	// RunsSkipped counts due runs left alone because they (or their job) still run.
	RunsSkipped int64 `json:"runs_skipped"`
	// Complete is false when the deadline stopped the purge before it was done.
	Complete bool `json:"complete"`
	// Cutoff is the age purge's limit: runs created before it are due.
	Cutoff *time.Time `json:"cutoff,omitempty"`
	// PurgedThrough is the age watermark after the purge (yyyy-mm-dd).
	PurgedThrough string `json:"purged_through,omitempty"`
	// DevicesChecked and DevicesOverCap describe the byte purge.
	DevicesChecked int64 `json:"devices_checked,omitempty"`
	DevicesOverCap int64 `json:"devices_over_cap,omitempty"`
	// DevicesStillOver counts devices left over the cap because their remaining runs still run.
	DevicesStillOver int64 `json:"devices_still_over,omitempty"`
	DurationMS       int64 `json:"duration_ms"`
	// started is when the pass began: a complete byte pass folded every change made before it.
	started time.Time
}

// Report is one purge's outcome.
type Report struct {
	Trigger    string    `json:"trigger"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Settings   Settings  `json:"settings"`
	// Age and Bytes are nil when that purge is disabled.
	Age   *Stats `json:"age,omitempty"`
	Bytes *Stats `json:"bytes,omitempty"`
	// Complete is true when nothing due was left for lack of time.
	Complete bool `json:"complete"`
	// Continuation says where unfinished work continues ("" when complete).
	Continuation string `json:"continuation,omitempty"`
	// Error is set when the purge stopped on a failure.
	Error string `json:"error,omitempty"`
}

// Continuation values.
const (
	ContinueNextInvocation = "next_invocation"
)

// Purger runs purges.
type Purger struct {
	Store    Store
	Jobs     Jobs
	Settings Settings
	Logger   *slog.Logger
	Metrics  Metrics
	// Workers bounds concurrent run deletions (default DefaultWorkers).
	Workers int
	// Budget bounds one purge's duration (0: until the context's deadline minus Margin).
	Budget time.Duration
	// Margin is kept before the context's deadline (default DefaultMargin).
	Margin time.Duration
	// Lookback is how far before the cutoff the first age purge starts (default DefaultLookback).
	Lookback time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Audit receives a "retention.purge" entry for each purge (optional). The API leaves it
	// unset: its handler records the purge it was asked for itself, as the caller's.
	Audit audit.Recorder
}

func (p *Purger) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

// Limits returns the purger's settings.
func (p *Purger) Limits() Settings { return p.Settings }

// LastReport returns the last stored report (ErrNoReport when no purge ran yet).
func (p *Purger) LastReport(ctx context.Context) (Report, error) { return p.Store.LastReport(ctx) }

// Validate checks the purger's configuration.
func (p *Purger) Validate() error {
	if p.Store == nil || p.Jobs == nil {
		return errors.New("retention purger: store and jobs are required")
	}
	if p.Settings.MaxDays < 0 || p.Settings.MaxBytes < 0 {
		return errors.New("retention purger: limits must not be negative")
	}
	return nil
}

// purge is the state of one Purge call.
type purge struct {
	*Purger
	deadline time.Time
	jobMu    sync.Mutex
	jobs     map[string]bool // job id -> running
	log      *slog.Logger
}

// Purge runs the age purge, then the byte purge, within the budget; it stores and returns the
// report (also when a store fails: the report then carries the error, and so does the result).
func (p *Purger) Purge(ctx context.Context, trigger string) (Report, error) {
	if err := p.Validate(); err != nil {
		return Report{}, err
	}
	start := p.now()
	st := &purge{Purger: p, jobs: map[string]bool{}, log: p.Logger}
	if st.log == nil {
		st.log = slog.Default()
	}
	margin := p.Margin
	if margin == 0 {
		margin = DefaultMargin
	}
	st.deadline = start.Add(24 * time.Hour)
	if p.Budget > 0 {
		st.deadline = start.Add(p.Budget)
	}
	if d, ok := ctx.Deadline(); ok && d.Add(-margin).Before(st.deadline) {
		st.deadline = d.Add(-margin)
	}
	rep := Report{Trigger: trigger, StartedAt: start, Settings: p.Settings, Complete: true}
	var err error
	if p.Settings.MaxDays > 0 {
		// The age pass leaves a quarter of the time to the byte pass, so a long age backlog (a
		// first purge's lookback) never keeps the cap and the fleet totals waiting.
		full := st.deadline
		st.deadline = start.Add(full.Sub(start) * 3 / 4)
		rep.Age, err = st.age(ctx)
		st.deadline = full
		st.emit(ctx, rep.Age)
	}
	if err == nil {
		// The changed set is walked also without a cap: it folds every changed device's bytes
		// into the fleet totals.
		var s *Stats
		s, err = st.bytes(ctx)
		if p.Settings.MaxBytes > 0 {
			rep.Bytes = s
			st.emit(ctx, s)
		} else if !s.Complete {
			rep.Complete = false
		}
		if err == nil && s.Complete {
			err = p.Store.SetTotalsAsOf(ctx, s.started)
		}
	}
	if err == nil && st.timeLeft() {
		var outputs, bytes int64
		outputs, bytes, err = p.Store.SweepOutputs(ctx)
		st.log.InfoContext(ctx, "retention.sweep", "outputs_deleted", outputs, "bytes_freed", bytes)
	}
	for _, s := range []*Stats{rep.Age, rep.Bytes} {
		if s != nil && !s.Complete {
			rep.Complete = false
		}
	}
	if err != nil {
		rep.Complete = false
		rep.Error = err.Error()
	}
	if !rep.Complete {
		rep.Continuation = ContinueNextInvocation
	}
	rep.FinishedAt = p.now()
	// Save even when the context is done: a report of partial work is what an operator needs.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := p.Store.SaveReport(sctx, rep); serr != nil {
		err = errors.Join(err, fmt.Errorf("save retention report: %w", serr))
	}
	if p.Audit != nil {
		e := audit.Entry{Actor: audit.ActorRetention, Role: audit.RoleSystem, Action: "retention.purge", Outcome: audit.OutcomeOK, Detail: AuditDetail(rep)}
		if rep.Error != "" {
			e.Outcome, e.Reason = audit.OutcomeFailed, "purge_error"
		}
		if aerr := p.Audit.Record(context.WithoutCancel(ctx), e); aerr != nil {
			st.log.ErrorContext(ctx, "audit record failed", "action", e.Action, "err", aerr)
		}
	}
	st.log.InfoContext(ctx, "retention.done", "trigger", trigger, "complete", rep.Complete, "continuation", rep.Continuation,
		"duration_ms", rep.FinishedAt.Sub(start).Milliseconds())
	return rep, err
}

// AuditDetail is a purge's audit detail: its trigger, what it deleted and whether it finished.
func AuditDetail(rep Report) map[string]string {
	d := map[string]string{"trigger": rep.Trigger, "complete": strconv.FormatBool(rep.Complete)}
	for _, s := range []*Stats{rep.Age, rep.Bytes} {
		if s != nil {
			d[s.Type+"_runs_deleted"] = strconv.FormatInt(s.RunsDeleted, 10)
			d[s.Type+"_chunks_deleted"] = strconv.FormatInt(s.ChunksDeleted, 10)
			d[s.Type+"_bytes_freed"] = strconv.FormatInt(s.BytesFreed, 10)
		}
	}
	return d
}

func (st *purge) timeLeft() bool { return st.now().Before(st.deadline) }

// emit writes the retention.purge log event and its EMF metrics.
func (st *purge) emit(ctx context.Context, s *Stats) {
	if s == nil {
		return
	}
	st.log.InfoContext(ctx, "retention.purge", "type", s.Type, "runs_deleted", s.RunsDeleted, "chunks_deleted", s.ChunksDeleted,
		"bytes_freed", s.BytesFreed, "runs_skipped", s.RunsSkipped, "complete", s.Complete, "duration_ms", s.DurationMS)
	if st.Metrics == nil {
		return
	}
	err := st.Metrics.Emit(map[string]string{"type": s.Type}, map[string]any{"event": "retention.purge", "complete": s.Complete},
		metrics.Metric{Name: "runs_deleted", Value: float64(s.RunsDeleted), Unit: metrics.Count},
		metrics.Metric{Name: "chunks_deleted", Value: float64(s.ChunksDeleted), Unit: metrics.Count},
		metrics.Metric{Name: "bytes_freed", Value: float64(s.BytesFreed), Unit: metrics.Bytes},
		metrics.Metric{Name: "runs_skipped", Value: float64(s.RunsSkipped), Unit: metrics.Count})
	if err != nil {
		st.log.WarnContext(ctx, "retention metrics", "err", err)
	}
}

// eligible reports whether a due run may be deleted: terminal, and not in a running job.
func (st *purge) eligible(ctx context.Context, c Candidate) (bool, error) {
	if !c.Status.Terminal() {
		return false, nil
	}
	if c.JobID == "" {
		return true, nil
	}
	st.jobMu.Lock()
	running, ok := st.jobs[c.JobID]
	st.jobMu.Unlock()
	if !ok {
		var err error
		if running, err = st.Jobs.JobRunning(ctx, c.JobID); err != nil {
			return false, fmt.Errorf("job of run %s: %w", c.ID, err)
		}
		st.jobMu.Lock()
		st.jobs[c.JobID] = running
		st.jobMu.Unlock()
	}
	return !running, nil
}

// counts accumulates deletions from concurrent workers.
type counts struct {
	runs, chunks, bytes, skipped atomic.Int64
}

func (c *counts) add(d Deleted) {
	if d.Run {
		c.runs.Add(1)
	}
	c.chunks.Add(d.Chunks)
	c.bytes.Add(d.Bytes)
}

func (c *counts) into(s *Stats) {
	s.RunsDeleted, s.ChunksDeleted, s.BytesFreed, s.RunsSkipped = c.runs.Load(), c.chunks.Load(), c.bytes.Load(), c.skipped.Load()
}

// deleteAll deletes the eligible candidates with at most Workers at once; it returns how many
// were skipped and the first error.
func (st *purge) deleteAll(ctx context.Context, cands []Candidate, c *counts) (skipped int, err error) {
	workers := st.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		skips atomic.Int64
	)
	sem := make(chan struct{}, workers)
	for _, cand := range cands {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ok, err := st.eligible(ctx, cand)
			if err == nil && !ok {
				skips.Add(1)
				c.skipped.Add(1)
				return
			}
			var d Deleted
			if err == nil {
				d, err = st.Store.DeleteRun(ctx, cand)
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				return
			}
			c.add(d)
		}()
	}
	wg.Wait()
	return int(skips.Load()), first
}

func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// age deletes runs created before now - MaxDays, day by day from the watermark.
func (st *purge) age(ctx context.Context) (*Stats, error) {
	start := st.now()
	cutoff := start.Add(-time.Duration(st.Settings.MaxDays) * 24 * time.Hour)
	s := &Stats{Type: TypeAge, Cutoff: &cutoff, Complete: true}
	var c counts
	defer func() {
		c.into(s)
		s.DurationMS = st.now().Sub(start).Milliseconds()
	}()
	wm, err := st.Store.AgeWatermark(ctx)
	if err != nil {
		return s, err
	}
	first := day(cutoff).Add(-st.lookback())
	if !wm.IsZero() {
		first = day(wm).Add(24 * time.Hour)
		s.PurgedThrough = day(wm).Format(time.DateOnly)
	}
	last := day(cutoff)
	// clean is true while every day so far was purged completely: the watermark follows it.
	clean := true
	for d := first; !d.After(last); d = d.Add(24 * time.Hour) {
		if !st.timeLeft() {
			s.Complete = false
			break
		}
		dayClean, err := st.purgeDay(ctx, d, cutoff, &c)
		if err != nil {
			return s, err
		}
		if dayClean == dayUnfinished {
			s.Complete = false
			break
		}
		if dayClean == daySkipped {
			clean = false
		}
		// The cutoff's own day is never complete: runs created later that day are not due yet.
		if clean && d.Before(last) {
			if err := st.Store.SetAgeWatermark(ctx, d); err != nil {
				return s, err
			}
			s.PurgedThrough = d.Format(time.DateOnly)
		}
	}
	return s, nil
}

func (st *purge) lookback() time.Duration {
	if st.Lookback > 0 {
		return st.Lookback
	}
	return DefaultLookback
}

type dayResult int

const (
	dayDone dayResult = iota
	daySkipped
	dayUnfinished
)

func (st *purge) purgeDay(ctx context.Context, d, cutoff time.Time, c *counts) (dayResult, error) {
	res := dayDone
	cursor := ""
	for {
		if !st.timeLeft() {
			return dayUnfinished, nil
		}
		cands, next, err := st.Store.RunsOfDay(ctx, d, cutoff, cursor, pageSize)
		if err != nil {
			return res, err
		}
		// A store may list a run with a record of the day it was listed on, made before the run
		// was created: one created at or after the cutoff is not due yet, and its day is
		// purged again next time.
		due := cands[:0:0]
		for _, cand := range cands {
			if cand.CreatedAt.Before(cutoff) {
				due = append(due, cand)
			} else {
				c.skipped.Add(1)
				res = daySkipped
			}
		}
		skipped, err := st.deleteAll(ctx, due, c)
		if err != nil {
			return res, err
		}
		if skipped > 0 {
			res = daySkipped
		}
		if next == "" {
			return res, nil
		}
		cursor = next
	}
}

// bytes brings every changed device at or below MaxBytes.
func (st *purge) bytes(ctx context.Context) (*Stats, error) {
	start := st.now()
	s := &Stats{Type: TypeBytes, Complete: true, started: start}
	var c counts
	defer func() {
		c.into(s)
		s.DurationMS = st.now().Sub(start).Milliseconds()
	}()
	cursor := ""
	// A device is listed once per change the store found (a run, a mark): it is checked once a
	// pass, and what changes after its check is in the next pass's set.
	checked := map[string]bool{}
	for {
		if !st.timeLeft() {
			s.Complete = false
			return s, nil
		}
		devs, next, err := st.Store.ChangedDevices(ctx, cursor, pageSize)
		if err != nil {
			return s, err
		}
		for _, d := range devs {
			if checked[d] {
				continue
			}
			checked[d] = true
			if !st.timeLeft() {
				s.Complete = false
				return s, nil
			}
			s.DevicesChecked++
			over, stillOver, done, err := st.capDevice(ctx, d, &c)
			if err != nil {
				return s, err
			}
			if over {
				s.DevicesOverCap++
			}
			if stillOver {
				s.DevicesStillOver++
			}
			if !done {
				s.Complete = false
				return s, nil
			}
		}
		if next == "" {
			return s, nil
		}
		cursor = next
	}
}

// capDevice deletes a device's oldest eligible runs until its counter is at or below the cap (no
// cap: none), then folds its bytes into the fleet totals. over reports the device was over the
// cap, stillOver that it still is (its remaining runs still run); done is false when the deadline
// stopped it.
func (st *purge) capDevice(ctx context.Context, deviceID string, c *counts) (over, stillOver, done bool, err error) {
	limit := st.Settings.MaxBytes
	var total int64
	if limit > 0 { // no cap: nothing to delete, and FoldTotals reads the device's bytes itself
		if total, err = st.Store.DeviceBytes(ctx, deviceID); err != nil {
			return false, false, false, err
		}
	}
	over = total > limit
	cursor := ""
	for more := over; more; {
		cands, next, err := st.Store.RunsOfDevice(ctx, deviceID, cursor, pageSize)
		if err != nil {
			return over, false, false, err
		}
		for i := 0; i < len(cands) && total > limit; {
			if !st.timeLeft() {
				return over, false, false, nil
			}
			// Pick the oldest runs whose recorded bytes cover the excess; the counter decides.
			need := total - limit
			j := i
			for ; j < len(cands) && need > 0; j++ {
				if cands[j].Status.Terminal() {
					need -= cands[j].Bytes
				}
			}
			if _, err := st.deleteAll(ctx, cands[i:j], c); err != nil {
				return over, false, false, err
			}
			if total, err = st.Store.DeviceBytes(ctx, deviceID); err != nil {
				return over, false, false, err
			}
			i = j
		}
		cursor = next
		more = total > limit && next != ""
	}
	folded, err := st.Store.FoldTotals(ctx, deviceID)
	if err != nil {
		return over, false, false, err
	}
	if total > limit {
		st.log.InfoContext(ctx, "retention.device_over_cap", "device_id", deviceID, "bytes", total, "cap", limit)
		return over, true, true, nil // stays in the changed set for the next purge
	}
	if folded > limit && st.Settings.MaxBytes > 0 {
		return over, false, true, nil // grew since: the next purge caps it
	}
	return over, false, true, st.Store.ClearChanged(ctx, deviceID, folded)
}
