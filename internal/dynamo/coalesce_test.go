package dynamo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCoalescer(t *testing.T) {
	tests := []struct {
		name    string
		callers int
		max     int
		window  time.Duration
	}{
		{"one caller waits out the window", 1, 10, time.Millisecond},
		{"a full batch goes at once", 10, 10, time.Hour},
		{"more than one batch", 25, 10, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var batches [][]int
			c := newCoalescer(tt.window, tt.max, func(_ context.Context, items []int) []error {
				mu.Lock()
				batches = append(batches, append([]int(nil), items...))
				mu.Unlock()
				errs := make([]error, len(items))
				for i, it := range items {
					if it%3 == 0 {
						errs[i] = fmt.Errorf("item %d failed", it)
					}
				}
				return errs
			})
			errs := make([]error, tt.callers)
			var wg sync.WaitGroup
			for i := range tt.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = c.do(context.Background(), i)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if i%3 == 0 {
					assert.EqualErrorf(t, err, fmt.Sprintf("item %d failed", i), "caller %d gets its own error", i)
				} else {
					assert.NoErrorf(t, err, "caller %d", i)
				}
			}
			seen := map[int]int{}
			for _, b := range batches {
				assert.LessOrEqual(t, len(b), tt.max, "batch size")
				for _, it := range b {
					seen[it]++
				}
			}
			assert.Len(t, seen, tt.callers, "every item written")
			for it, n := range seen {
				assert.Equalf(t, 1, n, "item %d written once", it)
			}
		})
	}
}

func TestCoalescerCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	c := newCoalescer(time.Hour, 1, func(_ context.Context, items []int) []error {
		<-release
		return make([]error, len(items))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.do(ctx, 1) }()
	cancel()
	err := <-done
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.Canceled), "the caller stops waiting: %v", err)
	close(release)
}
