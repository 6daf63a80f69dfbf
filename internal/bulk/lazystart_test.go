package bulk

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/run"
)

// startCalls is a RunStore that records the order of StartNew and AppendChunk calls; StartNew
// fails with err when set and signals started after each call.
type startCalls struct {
	RunStore
	mu      sync.Mutex
	calls   []string
	err     error
	started chan struct{}
}

func (s *startCalls) StartNew(_ context.Context, r run.Run) (run.Run, error) {
	s.mu.Lock()
	s.calls = append(s.calls, "start")
	err := s.err
	s.mu.Unlock()
	defer func() {
		if s.started != nil {
			s.started <- struct{}{}
		}
	}()
	if err != nil {
		return run.Run{}, err
	}
	r.LeaseUntil = time.Unix(1700000000, 0)
	return r, nil
}

func (s *startCalls) AppendChunk(context.Context, run.Run, int, []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "chunk")
	return nil
}

func (s *startCalls) log() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func TestLazyStart(t *testing.T) {
	r := run.Run{ID: "j.d1", DeviceID: "d1", Status: run.Running, Attempt: 1}
	tests := []struct {
		name        string
		delay       time.Duration
		chunks      int
		waitTimer   bool
		startErr    error
		wantCalls   []string
		wantWritten bool
	}{
		{name: "ends before the delay: never written running", delay: time.Hour, wantCalls: nil},
		{name: "outlasts the delay: written once", delay: time.Millisecond, waitTimer: true, wantCalls: []string{"start"}, wantWritten: true},
		{name: "stores chunks: written once, before the first", delay: time.Hour, chunks: 2, wantCalls: []string{"start", "chunk", "chunk"}, wantWritten: true},
		{name: "written by the timer, then chunks: no second write", delay: time.Millisecond, waitTimer: true, chunks: 1, wantCalls: []string{"start", "chunk"}, wantWritten: true},
		{name: "a failed timer write is left to Finish", delay: time.Millisecond, waitTimer: true, startErr: errors.New("throttled"), wantCalls: []string{"start"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &startCalls{err: tc.startErr, started: make(chan struct{}, 4)}
			reported := make(chan error, 1)
			l := newLazyStart(context.Background(), store, r, tc.delay, func(err error) { reported <- err })
			if tc.waitTimer {
				select {
				case <-store.started:
				case <-time.After(10 * time.Second):
					require.FailNow(t, "the timer never wrote the run")
				}
			}
			chunks := lazyChunks{RunStore: store, l: l}
			for i := range tc.chunks {
				require.NoError(t, chunks.AppendChunk(context.Background(), r, i, []byte("x")), "chunk %d", i)
			}
			got, written := l.stop()
			// Nothing is written after stop, even when the timer was due.
			require.NoError(t, l.write(context.Background()))
			assert.Equal(t, tc.wantCalls, store.log(), "store calls of run %s", r.ID)
			assert.Equal(t, tc.wantWritten, written, "run %s written", r.ID)
			if written {
				assert.False(t, got.LeaseUntil.IsZero(), "a written run has a lease: %+v", got)
			}
			if tc.startErr != nil {
				select {
				case err := <-reported:
					assert.ErrorIs(t, err, tc.startErr, "reported error")
				case <-time.After(10 * time.Second):
					assert.Fail(t, "the failed write was never reported")
				}
			} else {
				assert.Empty(t, reported, "errors reported")
			}
		})
	}
}
