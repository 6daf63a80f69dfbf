package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
)

func TestTrailStoresAndLogsOneLine(t *testing.T) {
	cases := []struct {
		name     string
		storeErr error
		level    string
	}{
		{name: "stored", level: "INFO"},
		{name: "store fails", storeErr: errors.New("throttled"), level: "ERROR"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			store := &audittest.Recorder{Err: tc.storeErr}
			trail := audit.NewTrail(store, slog.New(slog.NewJSONHandler(&buf, nil)))
			err := trail.Record(context.Background(), audit.Entry{
				Actor: "ann@example.com", Role: "operator:ams1", Action: "run.create", Target: "dev-1",
				Outcome: audit.OutcomeDenied, Reason: "forbidden", RequestID: "req-1", Source: "192.0.2.7",
				Detail: map[string]string{"command": "show version"},
			})
			if tc.storeErr != nil {
				require.ErrorIs(t, err, tc.storeErr)
			} else {
				require.NoError(t, err)
			}
			stored := store.Entries()
			require.Len(t, stored, 1)
			assert.NotEmpty(t, stored[0].ID, "the trail assigns an id")
			assert.False(t, stored[0].Time.IsZero(), "the trail sets the time")

			lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
			require.Len(t, lines, 1, "one log line per entry")
			var line map[string]any
			require.NoError(t, json.Unmarshal(lines[0], &line))
			assert.Equal(t, tc.level, line["level"])
			for k, want := range map[string]any{
				"audit": true, "audit_id": stored[0].ID, "actor": "ann@example.com", "role": "operator:ams1",
				"action": "run.create", "target": "dev-1", "outcome": "denied", "reason": "forbidden",
				"request_id": "req-1", "source": "192.0.2.7",
			} {
				assert.Equal(t, want, line[k], k)
			}
			assert.Equal(t, map[string]any{"command": "show version"}, line["detail"])
		})
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	base := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 50 {
		ids = append(ids, audit.NewID(base.Add(time.Duration(49-i)*time.Microsecond)))
	}
	assert.False(t, sort.StringsAreSorted(ids), "made newest first")
	sorted := append([]string(nil), ids...)
	sort.Strings(sorted)
	for i := range sorted {
		assert.Equal(t, ids[len(ids)-1-i], sorted[i], "string order is time order")
	}
	at, ok := audit.IDTime(ids[0])
	require.True(t, ok)
	assert.Equal(t, base.Add(49*time.Microsecond), at)
	assert.NotEqual(t, audit.NewID(base), audit.NewID(base), "same microsecond, different ids")
}
