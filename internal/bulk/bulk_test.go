package bulk

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

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
				if !errors.As(err, &verr) || verr.Fields[0].Field != tc.wantErr {
					t.Fatalf("err = %v, want a validation error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
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
			if len(got) != len(tc.sizes) {
				t.Fatalf("%d batches, want %d", len(got), len(tc.sizes))
			}
			n := 0
			for i, b := range got {
				if len(b) != tc.sizes[i] {
					t.Errorf("batch %d has %d, want %d", i, len(b), tc.sizes[i])
				}
				n += len(b)
			}
			if n != len(ids) {
				t.Errorf("%d ids in batches, want %d", n, len(ids))
			}
		})
	}
}

func TestErrorLimit(t *testing.T) {
	tests := []struct {
		maxErrors string
		devices   int
		want      int
	}{{"", 100, -1}, {"0", 100, 0}, {"7", 100, 7}, {"5%", 200, 10}, {"2.5%", 100, 2}, {"100%", 3, 3}}
	for _, tc := range tests {
		t.Run(tc.maxErrors, func(t *testing.T) {
			if got := (Options{MaxErrors: tc.maxErrors}).ErrorLimit(tc.devices); got != tc.want {
				t.Errorf("ErrorLimit(%d) = %d, want %d", tc.devices, got, tc.want)
			}
		})
	}
}

func TestNewIDIsTimeOrderedAndURLSafe(t *testing.T) {
	a := NewID(time.UnixMilli(1_700_000_000_000))
	b := NewID(time.UnixMilli(1_700_000_000_001))
	if !(a < b) {
		t.Errorf("%s !< %s", a, b)
	}
	same := time.UnixMilli(5)
	if x, y := NewID(same), NewID(same); x == y {
		t.Error("two ids of the same millisecond are equal")
	}
	for _, r := range a {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z') {
			t.Fatalf("id %q has %q", a, r)
		}
	}
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
	if !slices.Equal(got, want) {
		t.Fatalf("merge = %+v\nwant %+v", got, want)
	}
	stored := map[string]DeviceState{
		"a": {Status: run.Succeeded}, // already applied
		"b": {Status: run.Cancelled}, // terminal: never moved again
		"c": {Status: run.Running},   // moved on: rebased
	}
	if got := rebase(got, stored); len(got) != 1 || got[0].DeviceID != "c" || got[0].From != run.Running {
		t.Errorf("rebase = %+v, want only c, from running", got)
	}
}
