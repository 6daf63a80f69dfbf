package bulk

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/run"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		want    []string
		wantErr string
	}{
		{name: "dedupes keeping order", req: Request{Command: "show version", DeviceIDs: []string{"b", "a", "b", "c", "a"}}, want: []string{"b", "a", "c"}},
		{name: "trims the command", req: Request{Command: "  show clock \n", DeviceIDs: []string{"a"}}, want: []string{"a"}},
		{name: "empty command", req: Request{Command: " ", DeviceIDs: []string{"a"}}, wantErr: "command"},
		{name: "two lines", req: Request{Command: "show a\nshow b", DeviceIDs: []string{"a"}}, wantErr: "command"},
		{name: "control character", req: Request{Command: "show\tx\x07", DeviceIDs: []string{"a"}}, wantErr: "command"},
		{name: "no devices", req: Request{Command: "x"}, wantErr: "device_ids"},
		{name: "bad device id", req: Request{Command: "x", DeviceIDs: []string{"ok", "no/slash"}}, wantErr: "device_ids[1]"},
		{name: "timeout too long", req: Request{Command: "x", DeviceIDs: []string{"a"}, Options: Options{TimeoutS: 241}}, wantErr: "options.timeout_s"},
		{name: "max_errors junk", req: Request{Command: "x", DeviceIDs: []string{"a"}, Options: Options{MaxErrors: "lots"}}, wantErr: "options.max_errors"},
		{name: "max_errors percent ok", req: Request{Command: "x", DeviceIDs: []string{"a"}, Options: Options{MaxErrors: "2.5%"}}, want: []string{"a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.req.Normalize()
			if tc.wantErr != "" {
				var verr *ValidationError
				require.ErrorAs(t, err, &verr, "want a validation error naming %s", tc.wantErr)
				require.NotEmpty(t, verr.Fields)
				assert.Equal(t, tc.wantErr, verr.Fields[0].Field, "field named")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got, "device ids")
		})
	}
}

func TestSplit(t *testing.T) {
	ids := make([]string, 123)
	for i := range ids {
		ids[i] = string(rune('a' + i%26))
	}
	tests := []struct {
		name  string
		size  int
		sizes []int
	}{
		{"fifty", 50, []int{50, 50, 23}},
		{"ten", 10, []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3}},
		{"too big is capped at fifty", 500, []int{50, 50, 23}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Split(ids, tc.size)
			require.Len(t, got, len(tc.sizes), "batches")
			var all []string
			for i, b := range got {
				assert.Len(t, b, tc.sizes[i], "batch %d", i)
				all = append(all, b...)
			}
			assert.Equal(t, ids, all, "ids in batches, in order")
		})
	}
}

func TestErrorLimit(t *testing.T) {
	tests := []struct {
		name      string
		maxErrors string
		devices   int
		want      int
	}{
		{name: "unset: no limit", maxErrors: "", devices: 100, want: -1},
		{name: "zero", maxErrors: "0", devices: 100, want: 0},
		{name: "count", maxErrors: "7", devices: 100, want: 7},
		{name: "percentage", maxErrors: "5%", devices: 200, want: 10},
		{name: "percentage rounded down", maxErrors: "2.5%", devices: 100, want: 2},
		{name: "every device", maxErrors: "100%", devices: 3, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, (Options{MaxErrors: tc.maxErrors}).ErrorLimit(tc.devices), "ErrorLimit(%d) of %q", tc.devices, tc.maxErrors)
		})
	}
}

func TestNewIDIsTimeOrderedAndURLSafe(t *testing.T) {
	a := NewID(time.UnixMilli(1_700_000_000_000))
	b := NewID(time.UnixMilli(1_700_000_000_001))
	assert.Less(t, a, b, "ids of later milliseconds sort later")
	same := time.UnixMilli(5)
	assert.NotEqual(t, NewID(same), NewID(same), "two ids of the same millisecond")
	assert.Regexp(t, `^[0-9a-z]+$`, a, "id characters")
}

func TestMergeAndRebase(t *testing.T) {
	cs := []Change{
		{DeviceID: "a", From: run.Queued, To: run.Running, RunID: "j.a"},
		{DeviceID: "b", From: run.Queued, To: run.Running, RunID: "j.b"},
		{DeviceID: "a", From: run.Running, To: run.Succeeded, RunID: "j.a", DurationMS: 40, OutputDigest: "d1"},
		{DeviceID: "c", From: run.Queued, To: run.Cancelled, Reason: "cancelled"},
	}
	got := merge(cs)
	want := []Change{
		{DeviceID: "a", From: run.Queued, To: run.Succeeded, RunID: "j.a", DurationMS: 40, OutputDigest: "d1"},
		{DeviceID: "b", From: run.Queued, To: run.Running, RunID: "j.b"},
		{DeviceID: "c", From: run.Queued, To: run.Cancelled, Reason: "cancelled"},
	}
	require.Equal(t, want, got, "merge")
	stored := map[string]DeviceState{
		"a": {Status: run.Succeeded}, // already applied
		"b": {Status: run.Cancelled}, // terminal: never moved again
		"c": {Status: run.Running},   // moved on: rebased
	}
	assert.Equal(t, []Change{{DeviceID: "c", From: run.Running, To: run.Cancelled, Reason: "cancelled"}}, rebase(got, stored),
		"rebase: only c, from running")
}
