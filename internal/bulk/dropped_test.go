package bulk_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/memstore"
)

// memLedger is an in-memory bulk.AnswerLedger; recordErr fails RecordDropped.
type memLedger struct {
	mu        sync.Mutex
	keys      map[string]bool
	recordErr error
}

func (l *memLedger) RecordDropped(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recordErr != nil {
		return l.recordErr
	}
	l.keys[key] = true
	return nil
}

func (l *memLedger) Dropped(_ context.Context, cursor string, limit int) ([]string, string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := slices.Sorted(maps.Keys(l.keys))
	keys = slices.DeleteFunc(keys, func(k string) bool { return k <= cursor })
	if len(keys) > limit {
		return keys[:limit], keys[limit-1], nil
	}
	return keys, "", nil
}

func (l *memLedger) ForgetDropped(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
	return nil
}

func (l *memLedger) listed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Sorted(maps.Keys(l.keys))
}

// stored lists the keys a holds.
func (a *memAnswers) stored() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Sorted(maps.Keys(a.m))
}

// TestDropAnswers: a key stays listed exactly while its delete has not succeeded.
func TestDropAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		deleteFail bool
		recordErr  error
		wantListed []string
		wantStored []string
		wantErr    bool
	}{
		{name: "deleted: nothing listed", wantStored: []string{}},
		{name: "delete fails: listed, kept", deleteFail: true, wantListed: []string{"sj/v1"}, wantStored: []string{"sj/v1"}, wantErr: true},
		{name: "list fails, delete succeeds: nothing left", recordErr: errors.New("table down"), wantStored: []string{}},
		{name: "both fail: the error says so", deleteFail: true, recordErr: errors.New("table down"), wantStored: []string{"sj/v1"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ledger := &memLedger{keys: map[string]bool{}, recordErr: tc.recordErr}
			store := &memAnswers{}
			if tc.deleteFail {
				store.failDeletes = 1
			}
			require.NoError(t, store.PutAnswers(ctx, "sj/v1", []string{"s3cret"}))
			err := bulk.DropAnswers(ctx, store, ledger, "sj/v1")
			if tc.wantErr {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), "s3cret")
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tc.wantListed, ledger.listed())
			assert.Equal(t, tc.wantStored, append([]string{}, store.stored()...))
		})
	}
}

// TestWatchdogSweepsDroppedAnswers: every listed key is deleted and forgotten, across pages; one
// that still fails stays listed and counts as an error, the others go.
func TestWatchdogSweepsDroppedAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ledger := &memLedger{keys: map[string]bool{}}
	store := &memAnswers{failDeletes: 1} // the first delete fails: k000's
	for i := range 150 {                 // more than one page
		key := "k" + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
		require.NoError(t, store.PutAnswers(ctx, key, []string{"x"}))
		require.NoError(t, ledger.RecordDropped(ctx, key))
	}
	w, err := bulk.NewWatchdog(&bulk.Watchdog{Jobs: memstore.NewJobs(), Runs: memstore.NewRuns(), Queue: &memstore.Queue{}, StaleAfter: testStale,
		Logger: discardLogger(), Dropped: ledger, DroppedAnswers: store})
	require.NoError(t, err)
	rep, err := w.Sweep(ctx)
	require.Error(t, err)
	assert.Equal(t, bulk.SweepReport{AnswersDropped: 149, Errors: 1}, rep)
	assert.Equal(t, []string{"k000"}, ledger.listed())
	assert.Equal(t, []string{"k000"}, store.stored())

	rep, err = w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{AnswersDropped: 1}, rep)
	assert.Empty(t, ledger.listed())

	_, err = bulk.NewWatchdog(&bulk.Watchdog{Jobs: memstore.NewJobs(), Runs: memstore.NewRuns(), Queue: &memstore.Queue{}, StaleAfter: testStale, Dropped: ledger})
	require.Error(t, err, "a ledger without its store")
}
