package bulk

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSessionTailFreesTheSlotInTheTail(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		sessions    int
		ended       int
		allStarted  bool
		wantTail    bool // the slot was freed
		wantEnded   bool // every session ended: the tunnels go
	}{
		{name: "still starting devices", concurrency: 50, sessions: 50, ended: 50, allStarted: false},
		{name: "more than a tenth open", concurrency: 50, sessions: 50, ended: 44, allStarted: true},
		{name: "a tenth open", concurrency: 50, sessions: 50, ended: 45, allStarted: true, wantTail: true},
		{name: "all ended", concurrency: 50, sessions: 50, ended: 50, allStarted: true, wantTail: true, wantEnded: true},
		{name: "small batch waits for its last session", concurrency: 5, sessions: 5, ended: 3, allStarted: true},
		{name: "small batch frees with one open", concurrency: 5, sessions: 5, ended: 4, allStarted: true, wantTail: true},
		{name: "no sessions at all", concurrency: 50, sessions: 0, ended: 0, allStarted: true, wantTail: true, wantEnded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tail atomic.Bool
			endedCh := make(chan struct{}, 1)
			st := newSessionTail(tt.concurrency, func() { tail.Store(true) }, func() {
				select {
				case endedCh <- struct{}{}:
				default:
				}
			})
			for range tt.sessions {
				st.open()
			}
			for range tt.ended {
				st.end()
			}
			if tt.allStarted {
				st.allStarted()
			}
			assert.Equal(t, tt.wantTail, tail.Load(), "slot freed")
			if tt.wantEnded {
				select {
				case <-endedCh:
				case <-time.After(5 * time.Second):
					assert.Fail(t, "ended was not called")
				}
			} else {
				st.mu.Lock()
				ended := st.started && st.left == 0
				st.mu.Unlock()
				assert.False(t, ended, "sessions still open")
			}
		})
	}
}

func TestTakeUnstoredBoundsDevicesNotYetStored(t *testing.T) {
	x := &Executor{MaxBatches: 1}
	x.batchSlots()
	var release []func()
	for range unstoredPerSlot {
		r, ok := x.takeUnstored(context.Background())
		assert.True(t, ok)
		release = append(release, r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, ok := x.takeUnstored(ctx)
	assert.False(t, ok, "a device past the bound waits, here until its context ends")
	release[0]()
	release[0]() // a second release is a no-op
	r, ok := x.takeUnstored(context.Background())
	assert.True(t, ok, "a stored device frees its place")
	r()
	unbounded := &Executor{}
	unbounded.batchSlots()
	for range 3 * unstoredPerSlot {
		_, ok := unbounded.takeUnstored(ctx)
		assert.True(t, ok, "no bound without MaxBatches (a Lambda instance)")
	}
}
