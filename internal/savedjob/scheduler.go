package savedjob

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
)

// DueStore is what the scheduler needs of the saved job store.
type DueStore interface {
	// Due returns saved jobs with an enabled schedule whose NextDue is at or before now.
	Due(ctx context.Context, now time.Time) ([]SavedJob, error)
	// Claim records that saved job id's due time due is being started; false when it was
	// claimed before (by this or another scheduler), or the saved job's next due time is no
	// longer read, the one Due returned (it was paused or moved since): the conditional write
	// that makes each due time start one job, and only while its schedule stands. due may be
	// later than read: a fire that comes late starts the latest due time it missed.
	Claim(ctx context.Context, id string, due, read time.Time) (bool, error)
	// Advance sets saved job id's next due time to next if it is still prev (ErrConflict
	// otherwise: someone changed it meanwhile); a non-empty pausedReason pauses its schedule.
	Advance(ctx context.Context, id string, prev, next time.Time, pausedReason string) error
}

// Starter starts a saved job now as its owner, as POST /v1/saved-jobs/{id}/run does (policy,
// limits, audit), and returns the new job's id.
type Starter func(ctx context.Context, id string, owner auth.Identity, due time.Time) (string, error)

// Scheduler starts saved jobs when their schedules are due. Each fire (every minute) reads the
// due ones by their NextDue, claims the latest due time of each and starts it.
type Scheduler struct {
	Store DueStore
	Start Starter
	// Owners, when set, is asked about each due job's owner before its due time is claimed
	// (CheckOwner): a disabled, deleted or demoted owner pauses the schedule with the reason; a
	// provider that cannot be asked leaves the due time for the next fire.
	Owners Owners
	// Now is the clock (default: the wall clock); Logger the log (default: slog's).
	Now    func() time.Time
	Logger *slog.Logger
}

// TickReport says what one fire did.
type TickReport struct {
	Due     int `json:"due"`
	Started int `json:"started"`
	// Claimed are due times another fire had already claimed; Skipped due times missed by more
	// than LateGrace; Paused schedules the system paused; Failed starts that failed.
	Claimed int `json:"claimed"`
	Skipped int `json:"skipped"`
	Paused  int `json:"paused"`
	Failed  int `json:"failed"`
	// Retried are due times left for the next fire because the identity provider could not be
	// asked about the owner.
	Retried int `json:"retried"`
}

// Tick is one scheduler fire: every due saved job starts at most once per due time; the next due
// time becomes the first after now, so times missed by more than LateGrace are skipped.
func (s *Scheduler) Tick(ctx context.Context) (TickReport, error) {
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	logger := cmp.Or(s.Logger, slog.Default())
	var rep TickReport
	due, err := s.Store.Due(ctx, now)
	if err != nil {
		return rep, fmt.Errorf("read due saved jobs: %w", err)
	}
	rep.Due = len(due)
	var errs []error
	for _, j := range due {
		if err := s.fire(ctx, j, now, &rep, logger); err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// fire starts j's latest due time in the late window, if any, and moves its next due time on.
func (s *Scheduler) fire(ctx context.Context, j SavedJob, now time.Time, rep *TickReport, logger *slog.Logger) error {
	if j.Schedule == nil {
		return nil
	}
	sched := *j.Schedule
	from := j.NextDue
	if earliest := now.Add(-LateGrace); from.Before(earliest) {
		from = earliest
	}
	at, ok, err := sched.LatestDue(from, now)
	if err != nil {
		return fmt.Errorf("saved job %s: %w", j.ID, err)
	}
	next, err := sched.Next(now)
	if err != nil {
		return fmt.Errorf("saved job %s: %w", j.ID, err)
	}
	paused := ""
	switch {
	case !ok:
		rep.Skipped++
		logger.WarnContext(ctx, "scheduled run skipped: missed by more than the late grace", "saved_job_id", j.ID, "due", j.NextDue, "grace", LateGrace)
	default:
		if err := CheckOwner(ctx, s.Owners, j); err != nil {
			if paused = pauseReason(err); paused == "" {
				// Nothing is decided: no claim and no new due time, so the next fire asks again
				// (within LateGrace of the due time).
				rep.Retried++
				logger.WarnContext(ctx, "scheduled run waits: the identity provider could not be asked", "saved_job_id", j.ID, "due", at, "err", err)
				return nil
			}
			rep.Paused++
			logger.WarnContext(ctx, "schedule paused", "saved_job_id", j.ID, "owner", j.Owner, "reason", paused, "err", err)
			break
		}
		claimed, err := s.Store.Claim(ctx, j.ID, at, j.NextDue)
		if err != nil {
			return fmt.Errorf("claim saved job %s at %s: %w", j.ID, at.Format(time.RFC3339), err)
		}
		if !claimed {
			rep.Claimed++
			break
		}
		jobID, err := s.Start(ctx, j.ID, j.OwnerIdentity(), at)
		switch reason := pauseReason(err); {
		case err == nil:
			rep.Started++
			logger.InfoContext(ctx, "scheduled run started", "saved_job_id", j.ID, "due", at, "job_id", jobID, "owner", j.Owner)
		case reason != "":
			// The owner may no longer start it (disabled, demoted, out of scope): pause with
			// the reason.
			rep.Paused++
			paused = reason
			logger.WarnContext(ctx, "schedule paused", "saved_job_id", j.ID, "owner", j.Owner, "reason", reason, "err", err)
		default:
			rep.Failed++
			logger.ErrorContext(ctx, "scheduled run not started", "saved_job_id", j.ID, "due", at, "err", err)
		}
	}
	if err := s.Store.Advance(ctx, j.ID, j.NextDue, next, paused); err != nil && !errors.Is(err, ErrConflict) && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("advance saved job %s: %w", j.ID, err)
	}
	return nil
}

// ruleRefusal is a refusal by a rule of the command policy (policy.DeniedError).
type ruleRefusal interface {
	error
	RuleID() string
}

// pauseReason is the paused_reason a failed start pauses its schedule with, or "" when it does
// not: the identity provider's verdict on the owner, or a refusal of the owner's recorded roles
// (forbidden, or the saved job out of their sight). A policy refusal, which names its rule, and
// every other failure leave the schedule running.
func pauseReason(err error) string {
	if oe, ok := errors.AsType[*OwnerError](err); ok {
		return oe.Reason
	}
	if _, ok := errors.AsType[ruleRefusal](err); ok {
		return ""
	}
	if _, ok := errors.AsType[*IdentityProviderError](err); ok {
		return ""
	}
	if kind := fault.KindOf(err); err != nil && (kind == fault.Forbidden || kind == fault.NotFound) {
		return ReasonOwnerForbidden
	}
	return ""
}
