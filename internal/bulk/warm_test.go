package bulk

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestWarmGoroutinesRunEveryFunction: each function handed over runs exactly once, whether a
// goroutine waits for it or a new one starts, one at a time or many at once.
func TestWarmGoroutinesRunEveryFunction(t *testing.T) {
	for _, tt := range []struct {
		name     string
		n        int
		oneByOne bool
	}{
		{"one at a time, each on the goroutine the one before left waiting", 50, true},
		{"many at once", 500, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w warmGoroutines
			ran := make([]atomic.Int32, tt.n)
			var wg sync.WaitGroup
			for i := range tt.n {
				wg.Add(1)
				done := make(chan struct{})
				w.Go(func() {
					defer wg.Done()
					defer close(done)
					ran[i].Add(1)
				})
				if tt.oneByOne {
					<-done
				}
			}
			wg.Wait()
			for i := range ran {
				assert.EqualValues(t, 1, ran[i].Load(), "function %d ran", i)
			}
		})
	}
}
