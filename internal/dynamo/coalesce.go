package dynamo

import (
	"context"
	"sync"
	"time"
)

// coalescer gathers concurrent requests for a short window and writes them together: fifty
// devices starting or finishing at once cost a couple of transactions instead of fifty round
// trips. Each caller still gets its own result.
type coalescer[T any] struct {
	window time.Duration
	max    int
	flush  func(ctx context.Context, items []T) []error

	mu      sync.Mutex
	pending []*coalesced[T]
	timer   *time.Timer
}

type coalesced[T any] struct {
	item T
	done chan error
}

func newCoalescer[T any](window time.Duration, maxItems int, flush func(context.Context, []T) []error) *coalescer[T] {
	return &coalescer[T]{window: window, max: maxItems, flush: flush}
}

// do queues item and waits for the write that carries it.
func (c *coalescer[T]) do(ctx context.Context, item T) error {
	call := &coalesced[T]{item: item, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, call)
	var batch []*coalesced[T]
	switch {
	case len(c.pending) >= c.max:
		batch = c.take()
	case len(c.pending) == 1:
		c.timer = time.AfterFunc(c.window, func() {
			c.mu.Lock()
			b := c.take()
			c.mu.Unlock()
			c.run(b)
		})
	}
	c.mu.Unlock()
	if batch != nil {
		go c.run(batch)
	}
	select {
	case err := <-call.done:
		return err
	case <-ctx.Done():
		// The write may still happen; the caller stops waiting for it.
		return ctx.Err()
	}
}

// take empties the queue; the caller holds c.mu.
func (c *coalescer[T]) take() []*coalesced[T] {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	b := c.pending
	c.pending = nil
	return b
}

func (c *coalescer[T]) run(batch []*coalesced[T]) {
	if len(batch) == 0 {
		return
	}
	items := make([]T, len(batch))
	for i, call := range batch {
		items[i] = call.item
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	errs := c.flush(ctx, items)
	for i, call := range batch {
		call.done <- errs[i]
	}
}
