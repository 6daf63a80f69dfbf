package bulk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"github.com/netauto/netauto/internal/audit"
	"log/slog"
	"time"

	"github.com/netauto/netauto/internal/metrics"
)

// BatchState is where a batch is in its delivery.
type BatchState string

// Batch states.
const (
	// BatchPending: never sent; it waits its turn (max_concurrency).
	BatchPending BatchState = "pending"
	// BatchSent: its message was sent; an executor runs it or will.
	BatchSent BatchState = "sent"
	// BatchDone: every device of it is terminal.
	BatchDone BatchState = "done"
)

// Delivery is one batch as the watchdog sees it.
type Delivery struct {
	Batch     int
	State     BatchState
	DeviceIDs []string
	// UpdatedAt is the batch's last change: sent, claimed, released, progress recorded,
	// finished. Zero for a batch stored before the field existed.
	UpdatedAt time.Time
	// ResentAt is when the watchdog last re-sent it (zero: never).
	ResentAt time.Time
}

// ErrBatchChanged means a batch changed since the watchdog read it: it made progress after all,
// or another sweep acted on it first. A signal without a fault kind, like ErrStateChanged.
var ErrBatchChanged = errors.New("batch changed since it was read")

// WatchStore is what the watchdog needs of the job store: the executor's view of batches, to fail
// a lost batch's devices and send a job's next batch, and the batches' delivery times.
type WatchStore interface {
	ExecStore
	// UnfinishedJobs returns a page of the ids of jobs that have not ended (a list whose size
	// follows the unfinished jobs, not the history) and the next page's cursor ("" at the end).
	UnfinishedJobs(ctx context.Context, cursor string, limit int) ([]string, string, error)
	// Deliveries returns every batch of the job in order.
	Deliveries(ctx context.Context, jobID string) ([]Delivery, error)
	// MarkResent records that the sent batch is re-sent at at, unless it changed since seen (its
	// UpdatedAt) or was re-sent since: ErrBatchChanged.
	MarkResent(ctx context.Context, jobID string, batch int, seen, at time.Time) error
	// UnmarkResent takes back MarkResent(at) after the message could not be sent.
	UnmarkResent(ctx context.Context, jobID string, batch int, at time.Time) error
	// ClaimStale takes the batch's lease for holder until until, at now, unless it changed since
	// seen or another lease still runs (ErrBatchChanged): no executor runs the batch while the
	// watchdog fails its devices, and two sweeps never both do.
	ClaimStale(ctx context.Context, jobID string, batch int, seen time.Time, holder string, until, now time.Time) error
	// Touch restarts the batch's staleness clock at at (a fresh delivery): UpdatedAt becomes at
	// and ResentAt is cleared.
	Touch(ctx context.Context, jobID string, batch int, at time.Time) error
}

// Defaults of the watchdog.
const (
	// DefaultWatchdogPeriod is how often the watchdog runs (its EventBridge rule's rate).
	DefaultWatchdogPeriod = 5 * time.Minute
	// watchdogLease bounds how long the watchdog holds a lost batch while it fails its devices.
	watchdogLease = 15 * time.Minute
	// defaultWatchdogPage is how many unfinished jobs one store call lists.
	defaultWatchdogPage = 100
)

// Watchdog ends bulk jobs whose queue messages are gone (a purged queue, a dead-letter consumer
// that failed): a sent batch that has not changed for StaleAfter is re-sent once; if it is still
// unchanged a period later, its unfinished devices end failed with reason delivery_lost and the
// batch is done, so the job ends. Batches waiting their turn (pending) and batches making
// progress are never touched. A re-send is harmless: the executor runs each device exactly once.
type Watchdog struct {
	Jobs WatchStore
	Runs RunAbandoner
	// Queue sends re-sent batches and a job's next pending batch.
	Queue     Queue
	Publisher Publisher
	Logger    *slog.Logger
	// Metrics receives one EMF line per sweep and per lost batch (optional).
	Metrics *metrics.Emitter
	// StaleAfter is how long a sent batch may go unchanged before it counts as lost: longer than
	// SQS keeps redelivering it (the bulk queue's visibility timeout × maxReceiveCount). Required.
	StaleAfter time.Duration
	// Period is the time between sweeps (default DefaultWatchdogPeriod). A re-sent batch that
	// shows no change for a period (less a tenth, for the schedule's jitter) is lost.
	Period time.Duration
	// PageSize is how many unfinished jobs are listed per store call (default 100).
	PageSize int
	// Audit receives an entry for each job the watchdog ends (optional).
	Audit audit.Recorder
	// Answers loses the secret prompt answers of the jobs the watchdog ends (optional).
	Answers AnswerStore
	// Dropped lists answers nothing names any more whose delete has not succeeded yet, and
	// DroppedAnswers is the store they are in (saved jobs' answers): each sweep deletes them
	// (optional, both or neither).
	Dropped        AnswerLedger
	DroppedAnswers AnswerStore
	// Notices sends the events of the jobs the watchdog ends, and of ended jobs whose events
	// were never claimed (their ender stopped half way) (optional).
	Notices *Notices
	Now     func() time.Time

	exec *Executor
}

// SweepReport says what one sweep (or ResendUnfinished) did.
type SweepReport struct {
	// Jobs counts the unfinished jobs looked at.
	Jobs int `json:"jobs"`
	// Resent counts batches re-sent.
	Resent int `json:"resent"`
	// Lost counts batches whose unfinished devices were failed delivery_lost.
	Lost int `json:"lost"`
	// DevicesLost counts those devices.
	DevicesLost int `json:"devices_lost"`
	// Kicked counts jobs whose next never-sent batch was sent because nothing else would.
	Kicked int `json:"kicked"`
	// Forgotten counts ended jobs dropped from the unfinished list.
	Forgotten int `json:"forgotten"`
	// AnswersDropped counts listed dropped answers deleted (AnswerLedger).
	AnswersDropped int `json:"answers_dropped"`
	// Errors counts jobs (and dropped answers) the sweep could not handle; the next sweep tries
	// again.
	Errors int `json:"errors"`
}

// NewWatchdog checks w's fields and prepares it.
func NewWatchdog(w *Watchdog) (*Watchdog, error) {
	switch {
	case w == nil || w.Jobs == nil || w.Runs == nil || w.Queue == nil:
		return nil, errors.New("new watchdog: job store, run store and queue are required")
	case w.StaleAfter <= 0:
		return nil, errors.New("new watchdog: StaleAfter must be positive")
	case w.Period < 0:
		return nil, errors.New("new watchdog: Period must not be negative")
	case (w.Dropped == nil) != (w.DroppedAnswers == nil):
		return nil, errors.New("new watchdog: Dropped and DroppedAnswers go together")
	}
	w.exec = &Executor{Jobs: w.Jobs, Queue: w.Queue, Publisher: w.Publisher, Logger: w.Logger, Metrics: w.Metrics, Now: w.Now, Audit: w.Audit, Answers: w.Answers, Notices: w.Notices, function: "watchdog", actor: audit.ActorWatchdog}
	return w, nil
}

func (w *Watchdog) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now().UTC()
}

func (w *Watchdog) logger() *slog.Logger { return cmp.Or(w.Logger, slog.Default()) }

func (w *Watchdog) period() time.Duration { return cmp.Or(w.Period, DefaultWatchdogPeriod) }

// verdict is what the watchdog does with one batch.
type verdict int

const (
	leave  verdict = iota // in the queue, running, waiting its turn, or done
	adopt                 // stored without UpdatedAt: its clock starts now
	resend                // stale: send its message again, once
	lose                  // stale and re-sent a period ago without a change: fail its devices
)

// judge applies the staleness rule to one batch at now.
func (w *Watchdog) judge(d Delivery, now time.Time) verdict {
	switch {
	case d.State != BatchSent:
		return leave
	case d.UpdatedAt.IsZero():
		return adopt
	case now.Sub(d.UpdatedAt) <= w.StaleAfter:
		return leave
	case d.ResentAt.Before(d.UpdatedAt):
		return resend // never re-sent, or re-sent before its latest change
	case now.Sub(d.ResentAt) >= w.period()-w.period()/10:
		return lose
	default:
		return leave // re-sent less than a period ago
	}
}

// Sweep looks at every unfinished job once: it re-sends its stale batches, fails the devices of
// those still stale a period after their re-send, and sends the next batch of a job that has
// batches waiting their turn but none in flight for StaleAfter. One job's failure never stops
// the others; it is logged, counted and tried again at the next sweep.
func (w *Watchdog) Sweep(ctx context.Context) (SweepReport, error) {
	now := w.now()
	rep, err := w.eachJob(ctx, func(ctx context.Context, job Job, batches []Delivery, rep *SweepReport) error {
		return w.check(ctx, job, batches, now, rep)
	})
	dropped, errs := w.sweepDropped(ctx)
	rep.AnswersDropped, rep.Errors = dropped, rep.Errors+len(errs)
	for _, e := range errs {
		w.logger().ErrorContext(ctx, "watchdog dropped answers", "err", e)
	}
	if len(errs) > 0 {
		err = errors.Join(err, errs[0])
	}
	w.logger().InfoContext(ctx, "watchdog sweep", "jobs", rep.Jobs, "resent", rep.Resent, "lost", rep.Lost,
		"devices_lost", rep.DevicesLost, "kicked", rep.Kicked, "forgotten", rep.Forgotten, "answers_dropped", rep.AnswersDropped, "errors", rep.Errors)
	if w.Metrics != nil {
		_ = w.Metrics.Emit(map[string]string{"Function": "watchdog"}, nil,
			metrics.Metric{Name: "WatchdogUnfinishedJobs", Value: float64(rep.Jobs), Unit: metrics.Count},
			metrics.Metric{Name: "WatchdogBatchesResent", Value: float64(rep.Resent), Unit: metrics.Count},
			metrics.Metric{Name: "WatchdogBatchesLost", Value: float64(rep.Lost), Unit: metrics.Count},
			metrics.Metric{Name: "WatchdogErrors", Value: float64(rep.Errors), Unit: metrics.Count})
	}
	return rep, err
}

// ResendUnfinished sends, now and regardless of staleness, the message of every sent but
// unfinished batch of every unfinished job once, and the next batch of a job that has batches
// waiting their turn but none sent. It is for a restarted local stack, whose queue stand-in kept
// nothing: a batch still in the queue runs no device twice (the executor runs each device
// exactly once), and each re-sent batch's staleness clock restarts.
func (w *Watchdog) ResendUnfinished(ctx context.Context) (SweepReport, error) {
	now := w.now()
	rep, err := w.eachJob(ctx, func(ctx context.Context, job Job, batches []Delivery, rep *SweepReport) error {
		inFlight := false
		for _, d := range batches {
			if d.State != BatchSent {
				continue
			}
			inFlight = true
			if err := w.Jobs.Touch(ctx, job.ID, d.Batch, now); err != nil {
				return err
			}
			if err := w.send(ctx, MessageFor(job, d.Batch, d.DeviceIDs)); err != nil {
				return err
			}
			rep.Resent++
		}
		if !inFlight {
			return w.kick(ctx, job, batches, rep)
		}
		return nil
	})
	w.logger().InfoContext(ctx, "watchdog resent every unfinished batch", "jobs", rep.Jobs, "resent", rep.Resent,
		"kicked", rep.Kicked, "errors", rep.Errors)
	return rep, err
}

// eachJob calls fn for every unfinished job with its batches, dropping ended jobs from the list.
// It returns the first error of a job joined with a listing error, after trying every job.
func (w *Watchdog) eachJob(ctx context.Context, fn func(context.Context, Job, []Delivery, *SweepReport) error) (SweepReport, error) {
	if w.exec == nil {
		return SweepReport{}, errors.New("watchdog: build it with NewWatchdog")
	}
	var (
		rep      SweepReport
		firstErr error
		cursor   string
	)
	fail := func(jobID string, err error) {
		rep.Errors++
		w.logger().ErrorContext(ctx, "watchdog job", "job_id", jobID, "err", err)
		if firstErr == nil {
			firstErr = fmt.Errorf("job %s: %w", jobID, err)
		}
	}
	for {
		ids, next, err := w.Jobs.UnfinishedJobs(ctx, cursor, cmp.Or(w.PageSize, defaultWatchdogPage))
		if err != nil {
			return rep, errors.Join(firstErr, fmt.Errorf("list unfinished jobs: %w", err))
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return rep, errors.Join(firstErr, ctx.Err())
			}
			job, err := w.Jobs.GetJob(ctx, id)
			if errors.Is(err, ErrJobNotFound) || (err == nil && job.Status.Terminal()) {
				// Expired, or ended after the list was read (its own removal may have failed, or
				// the deletion of its secret answers, which are deleted here before it goes).
				if err := w.forgetAnswers(ctx, id, err == nil && !job.SecretAnswers); err != nil {
					fail(id, err)
					continue
				}
				if err == nil && !w.Notices.jobEnded(ctx, w.Jobs, job) {
					fail(id, errors.New("the job's finished notice could not be claimed"))
					continue
				}
				if err := w.Jobs.ForgetUnfinished(ctx, id); err != nil {
					fail(id, err)
				} else {
					rep.Forgotten++
				}
				continue
			}
			if err != nil {
				fail(id, err)
				continue
			}
			rep.Jobs++
			batches, err := w.Jobs.Deliveries(ctx, id)
			if err == nil {
				err = fn(ctx, job, batches, &rep)
			}
			if err != nil {
				fail(id, err)
			}
		}
		if next == "" {
			return rep, firstErr
		}
		cursor = next
	}
}

// forgetAnswers deletes the secret answers of ended job jobID, unless none says it had none (an
// expired job, no longer readable, may have had some).
func (w *Watchdog) forgetAnswers(ctx context.Context, jobID string, none bool) error {
	if w.Answers == nil || none {
		return nil
	}
	if err := w.Answers.DeleteAnswers(ctx, jobID); err != nil {
		return fmt.Errorf("delete secret answers: %w", err)
	}
	return nil
}

// check applies the staleness rule to each batch of one unfinished job.
func (w *Watchdog) check(ctx context.Context, job Job, batches []Delivery, now time.Time, rep *SweepReport) error {
	var (
		inFlight, pending, allDone = false, false, len(batches) > 0
		lastChange                 time.Time
	)
	for _, d := range batches {
		lastChange = maxTime(lastChange, maxTime(d.UpdatedAt, d.ResentAt))
		inFlight = inFlight || d.State == BatchSent
		pending = pending || d.State == BatchPending
		allDone = allDone && d.State == BatchDone
		switch w.judge(d, now) {
		case adopt:
			if err := w.Jobs.Touch(ctx, job.ID, d.Batch, now); err != nil {
				return err
			}
		case resend:
			if err := w.resend(ctx, job, d, now); err != nil {
				return err
			}
			rep.Resent++
		case lose:
			n, err := w.lose(ctx, job, d, now)
			if errors.Is(err, ErrBatchChanged) {
				continue // it moved after all, or another sweep has it
			}
			if err != nil {
				return err
			}
			rep.Lost++
			rep.DevicesLost += n
		}
	}
	stale := now.Sub(lastChange) > w.StaleAfter
	switch {
	case allDone && stale:
		// Every batch is done but the job did not end (its last writer stopped half way).
		return w.exec.machine().finishBatch(ctx, job.ID, batches[len(batches)-1].Batch)
	case pending && !inFlight && stale:
		// Batches wait their turn, but none runs that would send them.
		return w.kick(ctx, job, batches, rep)
	}
	return nil
}

// resend sends a stale batch's message again, once: the mark comes first, so two sweeps never
// both send it, and is taken back when the message could not be sent.
func (w *Watchdog) resend(ctx context.Context, job Job, d Delivery, now time.Time) error {
	if err := w.Jobs.MarkResent(ctx, job.ID, d.Batch, d.UpdatedAt, now); err != nil {
		if errors.Is(err, ErrBatchChanged) {
			return nil
		}
		return err
	}
	if err := w.send(ctx, MessageFor(job, d.Batch, d.DeviceIDs)); err != nil {
		return errors.Join(err, w.Jobs.UnmarkResent(context.WithoutCancel(ctx), job.ID, d.Batch, now))
	}
	w.logger().WarnContext(ctx, "batch unchanged past the queue's redelivery window; re-sent", "job_id", job.ID, "batch", d.Batch,
		"updated_at", d.UpdatedAt, "stale_after_s", int(w.StaleAfter/time.Second))
	if w.Metrics != nil {
		_ = w.Metrics.Emit(map[string]string{"Function": "watchdog"}, map[string]any{"job_id": job.ID, "batch": d.Batch},
			metrics.Metric{Name: "BatchesResent", Value: 1, Unit: metrics.Count})
	}
	return nil
}

// lose fails the unfinished devices of a batch still stale a period after its re-send, holding
// the batch's lease meanwhile; it returns how many devices it failed.
func (w *Watchdog) lose(ctx context.Context, job Job, d Delivery, now time.Time) (int, error) {
	holder := "watchdog-" + NewID(now)
	if err := w.Jobs.ClaimStale(ctx, job.ID, d.Batch, d.UpdatedAt, holder, now.Add(watchdogLease), now); err != nil {
		return 0, err
	}
	defer func() {
		if err := w.Jobs.ReleaseBatch(context.WithoutCancel(ctx), job.ID, d.Batch, holder); err != nil {
			w.logger().ErrorContext(ctx, "release lost batch", "job_id", job.ID, "batch", d.Batch, "err", err)
		}
	}()
	n, err := w.exec.failBatch(ctx, w.Runs, job, d.Batch, ReasonDeliveryLost)
	if err != nil {
		return n, err
	}
	w.logger().WarnContext(ctx, "batch lost: re-sent without effect; its unfinished devices failed", "job_id", job.ID, "batch", d.Batch,
		"devices", n, "reason", ReasonDeliveryLost, "updated_at", d.UpdatedAt, "resent_at", d.ResentAt)
	if w.Metrics != nil {
		_ = w.Metrics.Emit(map[string]string{"Function": "watchdog", "Reason": ReasonDeliveryLost},
			map[string]any{"job_id": job.ID, "batch": d.Batch},
			metrics.Metric{Name: "BatchesLost", Value: 1, Unit: metrics.Count},
			metrics.Metric{Name: "DevicesLost", Value: float64(n), Unit: metrics.Count})
	}
	return n, nil
}

// kick sends the job's next never-sent batch (or cancels them when the job is stopping).
func (w *Watchdog) kick(ctx context.Context, job Job, batches []Delivery, rep *SweepReport) error {
	for _, d := range batches {
		if d.State == BatchPending {
			if err := w.exec.sendNext(ctx, job.ID, &jobView{x: w.exec, job: job, at: w.now()}); err != nil {
				return err
			}
			rep.Kicked++
			w.logger().WarnContext(ctx, "job had batches waiting and none in flight; sent the next", "job_id", job.ID)
			return nil
		}
	}
	return nil
}

// send sends one message, failing when the queue refused it.
func (w *Watchdog) send(ctx context.Context, m Message) error {
	failed, err := w.Queue.SendAll(ctx, []Message{m})
	if err == nil && len(failed) > 0 {
		err = errors.New("queue refused the message")
	}
	if err != nil {
		return fmt.Errorf("send batch %d of job %s: %w", m.Batch, m.JobID, err)
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
