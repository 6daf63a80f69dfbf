package bulk

import (
	"context"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/run"
)

// DefaultStartDelay is how long a bulk run may last before its running record is written (see
// lazyStart).
const DefaultStartDelay = 5 * time.Second

// lazyStart writes a bulk run's running record only when something needs it: before the first
// output chunk is stored (chunks never exist without their run), or once the run has lasted the
// start delay, so that a long run shows in the run view while it runs. A run that ends sooner,
// as most do, is written once, already finished, by Finish: one write fewer per device.
//
// Only the batch's first holder starts runs this way: no run of the batch can exist before it.
// If it dies, the next holder finds either no run or a running one, and starts it the careful way
// (RunStore.Start), as it would any run of a dead attempt.
type lazyStart struct {
	store   RunStore
	onError func(error)

	mu      sync.Mutex
	run     run.Run
	written bool
	stopped bool
	timer   *time.Timer
}

// newLazyStart returns the lazy start of r (running, attempt 1), writing it after delay unless
// it is written or stopped before.
func newLazyStart(ctx context.Context, store RunStore, r run.Run, delay time.Duration, onError func(error)) *lazyStart {
	l := &lazyStart{store: store, run: r, onError: onError}
	l.timer = time.AfterFunc(delay, func() {
		if err := l.write(ctx); err != nil && l.onError != nil {
			l.onError(err)
		}
	})
	return l
}

// write stores the running record, once, unless the run has ended (stop).
func (l *lazyStart) write(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.written || l.stopped {
		return nil
	}
	r, err := l.store.StartNew(ctx, l.run)
	if err != nil {
		return err
	}
	l.run, l.written = r, true
	return nil
}

// stop ends the lazy start: once it returns, no running record is written. It reports the run
// as written (with its lease) when its record exists.
func (l *lazyStart) stop() (run.Run, bool) {
	l.timer.Stop()
	l.mu.Lock() // waits for a write in progress
	defer l.mu.Unlock()
	l.stopped = true
	return l.run, l.written
}

// lazyChunks is the run store a lazily started run's output goes through: the running record is
// written before the first chunk.
type lazyChunks struct {
	RunStore
	l *lazyStart
}

// AppendChunk writes the run's running record if it is not written yet, then stores the chunk.
func (c lazyChunks) AppendChunk(ctx context.Context, r run.Run, seq int, data []byte) error {
	if err := c.l.write(ctx); err != nil {
		return err
	}
	return c.RunStore.AppendChunk(ctx, r, seq, data)
}
