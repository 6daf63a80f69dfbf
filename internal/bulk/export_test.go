package bulk

import (
	"context"
	"time"
)

// Verdict exposes the watchdog's verdict on a batch to the external tests.
type Verdict = verdict

// The watchdog's verdicts.
const (
	VerdictLeave  = leave
	VerdictAdopt  = adopt
	VerdictResend = resend
	VerdictLose   = lose
)

// Judge exposes Watchdog.judge.
func (w *Watchdog) Judge(d Delivery, now time.Time) Verdict { return w.judge(d, now) }

// Lose exposes Watchdog.lose.
func (w *Watchdog) Lose(ctx context.Context, job Job, d Delivery, now time.Time) (int, error) {
	return w.lose(ctx, job, d, now)
}
