package bulk

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

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
					t.Fatal("the timer never wrote the run")
				}
			}
			chunks := lazyChunks{RunStore: store, l: l}
			for i := range tc.chunks {
				if err := chunks.AppendChunk(context.Background(), r, i, []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			got, written := l.stop()
			// Nothing is written after stop, even when the timer was due.
			if err := l.write(context.Background()); err != nil {
				t.Fatal(err)
			}
			if calls := store.log(); !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("calls %v, want %v", calls, tc.wantCalls)
			}
			if written != tc.wantWritten {
				t.Errorf("written %v, want %v", written, tc.wantWritten)
			}
			if written && got.LeaseUntil.IsZero() {
				t.Errorf("a written run has no lease: %+v", got)
			}
			if tc.startErr != nil {
				select {
				case err := <-reported:
					if !errors.Is(err, tc.startErr) {
						t.Errorf("reported %v, want %v", err, tc.startErr)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("the failed write was never reported")
				}
			} else if len(reported) > 0 {
				t.Errorf("reported %v, want nothing", <-reported)
			}
		})
	}
}
