package bulk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/netauto/netauto/internal/run"
)

// The job and batch state machine. A device moves queued → running → terminal; a batch is done
// once every device of it is terminal; a job ends once every batch of it is done, with the status
// its first stop request named (cancelled, stopped, failed) or else completed. The job store only
// keeps states; every decision below is made here, once.

// TerminalJobStatuses lists the statuses of an ended job (JobStatus.Terminal), for stores that
// must condition a write on a job not having ended.
func TerminalJobStatuses() []JobStatus {
	return []JobStatus{JobCompleted, JobCancelled, JobStopped, JobFailed}
}

// FinalStatus is the status a job ends with once every device is terminal: the status its stop
// request named, or completed.
func (j Job) FinalStatus() JobStatus {
	if j.StopStatus != "" {
		return j.StopStatus
	}
	return JobCompleted
}

// Failures counts the job's devices that ended in a failure (run.Status.IsFailure).
func (j Job) Failures() int {
	n := 0
	for s, c := range j.Counts {
		if s.IsFailure() {
			n += c
		}
	}
	return n
}

// OverErrorLimit reports whether more devices failed than the job's max_errors allows: the job
// must stop.
func (j Job) OverErrorLimit() bool {
	limit := j.Options.ErrorLimit(j.DeviceCount)
	return limit >= 0 && j.Failures() > limit
}

// StopReason is the reason recorded on devices cancelled because a job stopped with status s.
func StopReason(s JobStatus) string {
	switch s {
	case JobFailed:
		return "enqueue_failed"
	case JobStopped:
		return "max_errors"
	default:
		return "cancelled"
	}
}

// stopMessage is the error a job stopping with status s shows its users ("" for none).
func stopMessage(s JobStatus) string {
	if s == JobFailed {
		return "some batches could not be enqueued; their devices were cancelled"
	}
	return ""
}

// JobDoneEvent is the event that tells a job ended, as EndJob returned it.
func JobDoneEvent(j Job, at time.Time) Event {
	return Event{Type: EventJobDone, JobID: j.ID, Status: string(j.Status), Seq: j.Seq, Counts: j.Counts, At: at}
}

// maxRecordAttempts bounds how often a batch ending re-reads the batch after a device moved under
// it (a running executor recording progress at the same time).
const maxRecordAttempts = 6

// machine applies the state machine's transitions through a job store and pushes the events
// they make.
type machine struct {
	jobs    JobStore
	publish func(context.Context, []Event)
	now     func() time.Time
	logger  *slog.Logger
	// answers, when set, loses a job's secret answers when the job ends.
	answers AnswerStore
	// notices, when set, sends the events of an ended job.
	notices *Notices
}

// ending says how the unfinished devices of a batch end.
type ending struct {
	// devices are the devices to end; nil: every unfinished device of the batch.
	devices []string
	to      run.Status
	reason  string
	// runs, when set, also ends the devices' runs (failed with reason): the batch died while
	// they may have been running.
	runs RunAbandoner
}

// abort stops the job with status and cancels the unfinished devices of batches no executor will
// run (never sent, or not sent after all), ending each batch and, after the last, the job.
func (m machine) abort(ctx context.Context, job Job, batches []int, status JobStatus) error {
	j, err := m.jobs.RequestStop(ctx, job.ID, status, stopMessage(status))
	switch {
	case err == nil:
		job = j
	case !errors.Is(err, ErrJobFinished):
		return fmt.Errorf("stop job %s: %w", job.ID, err)
	}
	return m.endBatches(ctx, job, batches, ending{to: run.Cancelled, reason: StopReason(status)})
}

// endBatches ends each of the batches as e says (endBatch).
func (m machine) endBatches(ctx context.Context, job Job, batches []int, e ending) error {
	for _, b := range batches {
		if _, err := m.endBatch(ctx, job, b, e); err != nil {
			return err
		}
	}
	return nil
}

// endBatch is the one way a batch ends before its devices ran (cancel, dead letter, lost
// delivery, failed enqueue): its unfinished devices end as e says (endDevices), the batch is done
// and, when it was the job's last, the job ends. It returns how many devices it ended. A batch of
// a job that no longer exists ends nothing.
func (m machine) endBatch(ctx context.Context, job Job, batch int, e ending) (int, error) {
	ended, err := m.endDevices(ctx, job, batch, e)
	if err != nil || ended < 0 {
		return max(ended, 0), err
	}
	return ended, m.finishBatch(ctx, job.ID, batch)
}

// endDevices makes the unfinished devices e names (all, when it names none) terminal as e says,
// in one conditional write that is re-read and retried when a device moved meanwhile, and
// publishes and logs the changes. The executor uses it for the devices a stopping job never
// starts, endBatch for whole batches. It returns how many devices it ended, or -1 when the batch
// does not exist (the job expired or never was).
func (m machine) endDevices(ctx context.Context, job Job, batch int, e ending) (int, error) {
	for attempt := 1; ; attempt++ {
		states, err := m.jobs.BatchStates(ctx, job.ID, batch)
		if errors.Is(err, ErrJobNotFound) {
			return -1, nil
		}
		if err != nil {
			return 0, fmt.Errorf("read batch %d of job %s: %w", batch, job.ID, err)
		}
		changes := endChanges(job.ID, states, e)
		newSeqClock(job.CreatedAt, batch, states).number(changes, m.now())
		if e.runs != nil {
			for _, c := range changes {
				if err := e.runs.Abandon(ctx, c.RunID, e.reason); err != nil {
					return 0, fmt.Errorf("end run %s: %w", c.RunID, err)
				}
				if err := e.runs.Reconcile(ctx, c.DeviceID, c.RunID); err != nil {
					return 0, fmt.Errorf("reconcile run %s: %w", c.RunID, err)
				}
			}
		}
		events, err := m.jobs.Record(ctx, job.ID, batch, changes)
		if errors.Is(err, ErrStateChanged) && attempt < maxRecordAttempts {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("end devices of batch %d of job %s: %w", batch, job.ID, err)
		}
		m.publish(ctx, events)
		return len(changes), nil
	}
}

// endChanges are the changes that end the unfinished devices e names (every one of the batch
// when it names none) as e says, in device order.
func endChanges(jobID string, states map[string]DeviceState, e ending) []Change {
	ids := e.devices
	if ids == nil {
		ids = slices.Sorted(maps.Keys(states))
	}
	var changes []Change
	for _, id := range ids {
		st, ok := states[id]
		if !ok || st.Status.Terminal() {
			continue
		}
		from := st.Status
		if from == "" {
			from = run.Queued
		}
		changes = append(changes, Change{DeviceID: id, From: from, To: e.to, RunID: RunID(jobID, id), Reason: e.reason})
	}
	return changes
}

// finishBatch marks a batch whose devices are all terminal done and, when it was the job's last,
// ends the job.
func (m machine) finishBatch(ctx context.Context, jobID string, batch int) error {
	job, err := m.jobs.FinishBatch(ctx, jobID, batch)
	if err != nil {
		return fmt.Errorf("finish batch %d of job %s: %w", batch, jobID, err)
	}
	return m.endIfDone(ctx, job)
}

// endIfDone ends a job whose batches are all done with its final status, drops it from the
// unfinished list and publishes and logs its job_done event. It is idempotent: of two callers,
// only the one whose EndJob wins does any of it.
func (m machine) endIfDone(ctx context.Context, job Job) error {
	if job.BatchesDone < job.Batches || job.Status.Terminal() {
		return nil
	}
	at := m.now()
	done, err := m.jobs.EndJob(ctx, job.ID, job.FinalStatus(), at)
	if errors.Is(err, ErrJobFinished) {
		return nil // another caller ended it
	}
	if err != nil {
		return fmt.Errorf("end job %s: %w", job.ID, err)
	}
	// No device of the job runs again: its secret answers have served. Until they are deleted the
	// job stays on the unfinished list, whose watchdog deletes them when it finds the job ended
	// (this deletion failed, or the process stopped before it).
	forget := true
	if done.SecretAnswers && m.answers != nil {
		if err := m.answers.DeleteAnswers(context.WithoutCancel(ctx), job.ID); err != nil {
			m.logger.ErrorContext(ctx, "delete secret answers of an ended job; the watchdog will", "job_id", job.ID, "err", err)
			forget = false
		}
	}
	// Subscribers hear of the end first; the job's events (read from its devices) come after.
	m.publish(ctx, []Event{JobDoneEvent(done, at)})
	// The job's events go once (a claim decides); a claim that could not be written keeps the
	// job on the list, so the watchdog sends them.
	if !m.notices.jobEnded(ctx, m.jobs, done) {
		forget = false
	}
	// A marker left behind costs nothing: the watchdog drops it when it finds the job ended.
	if forget {
		if err := m.jobs.ForgetUnfinished(ctx, job.ID); err != nil {
			m.logger.WarnContext(ctx, "drop ended job from the unfinished list", "job_id", job.ID, "err", err)
		}
	}
	return nil
}
