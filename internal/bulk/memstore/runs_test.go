package memstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk/memstore"
	"github.com/netauto/netauto/internal/run"
)

func TestRunsStart(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		// stored is the run before the start (none when its ID is empty).
		stored      run.Run
		wantErr     error
		wantStatus  run.Status
		wantAttempt int
	}{
		{name: "new run", wantStatus: run.Running, wantAttempt: 1},
		{name: "finished run is left alone", stored: run.Run{ID: "j.a", Status: run.Succeeded, Attempt: 1},
			wantErr: run.ErrFinished, wantStatus: run.Succeeded, wantAttempt: 1},
		{name: "held run is left alone", stored: run.Run{ID: "j.a", Status: run.Running, Attempt: 1, LeaseUntil: now.Add(time.Second)},
			wantErr: run.ErrLeased, wantStatus: run.Running, wantAttempt: 1},
		{name: "dead attempt's run is taken over", stored: run.Run{ID: "j.a", Status: run.Running, Attempt: 1, LeaseUntil: now},
			wantStatus: run.Running, wantAttempt: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := memstore.NewRuns()
			s.Now = func() time.Time { return now }
			if tc.stored.ID != "" {
				s.Put(tc.stored)
				require.NoError(t, s.AppendChunk(ctx, tc.stored, 0, []byte("partial")))
			}
			got, err := s.Start(ctx, run.Run{ID: "j.a", DeviceID: "a"})
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, now.Add(time.Minute), got.LeaseUntil, "lease")
			}
			assert.Equal(t, tc.wantStatus, got.Status, "status of run j.a")
			assert.Equal(t, tc.wantAttempt, got.Attempt, "attempt of run j.a")
			stored, err := s.Get(ctx, "j.a")
			require.NoError(t, err)
			assert.Equal(t, tc.wantStatus, stored.Status, "stored status of run j.a")
			if tc.wantAttempt == 2 {
				assert.Empty(t, s.Output("j.a"), "the dead attempt's output is dropped")
			}
		})
	}
}

func TestRunsFinish(t *testing.T) {
	ctx := context.Background()
	s := memstore.NewRuns()
	r, err := s.Start(ctx, run.Run{ID: "j.a", DeviceID: "a"})
	require.NoError(t, err)
	require.NoError(t, s.AppendChunk(ctx, r, 0, []byte("one ")))
	require.NoError(t, s.AppendChunk(ctx, r, 0, []byte("again")), "a chunk stored twice")
	stale := r
	stale.Attempt = 0
	stale.Status = run.Succeeded
	require.ErrorIs(t, s.Finish(ctx, stale, nil), run.ErrFinished, "a finish of another attempt")
	r.Status = run.Succeeded
	require.NoError(t, s.Finish(ctx, r, []byte("two")))
	assert.Equal(t, "one two", string(s.Output("j.a")), "output")
	require.ErrorIs(t, s.Finish(ctx, r, nil), run.ErrFinished, "a second finish")
	require.NoError(t, s.Abandon(ctx, "j.a", "delivery_failed"))
	got, err := s.Get(ctx, "j.a")
	require.NoError(t, err)
	assert.Equal(t, run.Succeeded, got.Status, "a finished run is not abandoned")
	r.Status = run.Running
	require.Error(t, s.Finish(ctx, r, nil), "a finish with a status that is not terminal")
	_, err = s.Get(ctx, "j.b")
	require.ErrorIs(t, err, run.ErrNotFound)
}
