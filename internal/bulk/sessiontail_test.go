package bulk

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSessionTailFreesTheSlotInTheTail(t *testing.T) {
	tests := []struct {
		name        string
		concurrency int
		sessions    int
		ended       int
		allStarted  bool
		want        int // times the slot was freed (at most once: free is the caller's OnceFunc)
	}{
		{name: "still starting devices", concurrency: 50, sessions: 50, ended: 50, allStarted: false, want: 0},
		{name: "more than a tenth open", concurrency: 50, sessions: 50, ended: 44, allStarted: true, want: 0},
		{name: "a tenth open", concurrency: 50, sessions: 50, ended: 45, allStarted: true, want: 1},
		{name: "all ended", concurrency: 50, sessions: 50, ended: 50, allStarted: true, want: 1},
		{name: "small batch waits for its last session", concurrency: 5, sessions: 5, ended: 3, allStarted: true, want: 0},
		{name: "small batch frees with one open", concurrency: 5, sessions: 5, ended: 4, allStarted: true, want: 1},
		{name: "no sessions at all", concurrency: 50, sessions: 0, ended: 0, allStarted: true, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			freed := 0
			once := false
			tail := newSessionTail(tt.concurrency, func() {
				if !once {
					once = true
					freed++
				}
			})
			for range tt.sessions {
				tail.open()
			}
			for range tt.ended {
				tail.end()
			}
			if tt.allStarted {
				tail.allStarted()
			}
			assert.Equal(t, tt.want, freed)
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
