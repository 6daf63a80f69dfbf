package bulk

import (
	"context"
	"errors"
	"fmt"
)

// AnswerLedger lists secret answers that nothing names any more and that must still be deleted
// (a saved job's answers replaced by a change or left by its deletion): a key stays listed until
// its answers are deleted, so a delete that fails, or a process that dies before it, leaves the
// key for the watchdog's next sweep instead of an orphaned secret.
type AnswerLedger interface {
	// RecordDropped lists key.
	RecordDropped(ctx context.Context, key string) error
	// Dropped returns a page of the listed keys and the next page's cursor ("" at the end).
	Dropped(ctx context.Context, cursor string, limit int) ([]string, string, error)
	// ForgetDropped takes key off the list.
	ForgetDropped(ctx context.Context, key string) error
}

// DropAnswers deletes the answers under key from store: the key is listed in ledger first and
// taken off once they are deleted, so a failed delete is retried by the watchdog (Watchdog.Sweep).
// A nil ledger deletes without that net. The error is for the log: the answers are named by
// nothing, so a failure leaves an orphan secret, never a wrong answer.
func DropAnswers(ctx context.Context, store AnswerStore, ledger AnswerLedger, key string) error {
	if key == "" || store == nil {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	var recordErr error
	if ledger != nil {
		if recordErr = ledger.RecordDropped(ctx, key); recordErr != nil {
			recordErr = fmt.Errorf("list dropped answers %s: %w", key, recordErr)
		}
	}
	if err := deleteDropped(ctx, store, ledger, key); err != nil {
		return errors.Join(recordErr, err)
	}
	return nil
}

// deleteDropped is the one rule for a listed key: delete its answers, and only then take it off
// the list.
func deleteDropped(ctx context.Context, store AnswerStore, ledger AnswerLedger, key string) error {
	if err := store.DeleteAnswers(ctx, key); err != nil {
		return fmt.Errorf("delete dropped answers %s: %w", key, err)
	}
	if ledger == nil {
		return nil
	}
	if err := ledger.ForgetDropped(ctx, key); err != nil {
		return fmt.Errorf("forget dropped answers %s: %w", key, err)
	}
	return nil
}

// sweepDropped deletes the answers of every key the ledger lists (deleteDropped), one failure
// stopping none of the others; it returns how many were deleted and the failures joined.
func (w *Watchdog) sweepDropped(ctx context.Context) (int, []error) {
	if w.Dropped == nil || w.DroppedAnswers == nil {
		return 0, nil
	}
	var (
		deleted int
		errs    []error
		cursor  string
	)
	for {
		keys, next, err := w.Dropped.Dropped(ctx, cursor, defaultWatchdogPage)
		if err != nil {
			return deleted, append(errs, fmt.Errorf("list dropped answers: %w", err))
		}
		for _, key := range keys {
			if err := deleteDropped(ctx, w.DroppedAnswers, w.Dropped, key); err != nil {
				errs = append(errs, err)
				continue
			}
			deleted++
		}
		if next == "" {
			return deleted, errs
		}
		cursor = next
	}
}
