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
		{name: "empty command", req: Request{Command: " ", DeviceIDs: []string{"a"}}, wantErr: "commands"},
		{name: "two lines", req: Request{Command: "show a\nshow b", DeviceIDs: []string{"a"}}, wantErr: "command"},
		{name: "control character", req: Request{Command: "show\tx\x07", DeviceIDs: []string{"a"}}, wantErr: "command"},
		{name: "no devices", req: Request{Command: "x"}, wantErr: "device_ids"},
		{name: "bad device id", req: Request{Command: "x", DeviceIDs: []string{"ok", "no/slash"}}, wantErr: "device_ids[1]"},
		{name: "timeout too long", req: Request{Command: "x", DeviceIDs: []string{"a"}, Options: Options{TimeoutS: 296}}, wantErr: "options.timeout_s"},
		{name: "timeout at the invocation budget", req: Request{Command: "x", DeviceIDs: []string{"a"}, Options: Options{TimeoutS: 295}}, want: []string{"a"}},
		{name: "command and commands", req: Request{Command: "x", Commands: []Command{{Command: "y"}}, DeviceIDs: []string{"a"}}, wantErr: "commands"},
		{name: "empty commands", req: Request{Commands: []Command{}, DeviceIDs: []string{"a"}}, wantErr: "commands"},
		{name: "21 commands", req: Request{Commands: make([]Command, 21), DeviceIDs: []string{"a"}}, wantErr: "commands"},
		{name: "blank item", req: Request{Commands: []Command{{Command: "a"}, {Command: "b"}, {Command: " "}}, DeviceIDs: []string{"a"}}, wantErr: "commands[2].command"},
		{name: "two-line item", req: Request{Commands: []Command{{Command: "a\nb"}}, DeviceIDs: []string{"a"}}, wantErr: "commands[0].command"},
		{name: "six prompts", req: Request{Commands: []Command{{Command: "a", Prompts: make([]Prompt, 6)}}, DeviceIDs: []string{"a"}}, wantErr: "commands[0].prompts"},
		{name: "blank expect", req: Request{Commands: []Command{{Command: "a", Prompts: []Prompt{{Expect: "?"}, {Expect: " "}}}}, DeviceIDs: []string{"a"}}, wantErr: "commands[0].prompts[1].expect"},
		{name: "bad regex", req: Request{Commands: []Command{{Command: "a"}, {Command: "b", Prompts: []Prompt{{Expect: "(", Regex: true}}}}, DeviceIDs: []string{"a"}}, wantErr: "commands[1].prompts[0].expect"},
		{name: "answer with a line break", req: Request{Commands: []Command{{Command: "a", Prompts: []Prompt{{Expect: "?", Answer: "y\nreload"}}}}, DeviceIDs: []string{"a"}}, wantErr: "commands[0].prompts[0].answer"},
		{name: "empty secret answer", req: Request{Commands: []Command{{Command: "a", Prompts: []Prompt{{Expect: "Password:", Secret: true}}}}, DeviceIDs: []string{"a"}}, wantErr: "commands[0].prompts[0].answer"},
		{name: "sequence ok", req: Request{Commands: []Command{{Command: " show a "}, {Command: "copy x y", Prompts: []Prompt{{Expect: "[confirm]"}}}}, DeviceIDs: []string{"a"}}, want: []string{"a"}},
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

func TestSequenceSummaryAndSecrets(t *testing.T) {
	req := Request{Commands: []Command{
		{Command: " show clock"},
		{Command: "copy scp: flash:", Prompts: []Prompt{{Expect: "Password:", Answer: "s3cret", Secret: true}, {Expect: "[confirm]", Answer: "y"}}},
		{Command: "show flash"},
	}, DeviceIDs: []string{"a"}}
	_, err := req.Normalize()
	require.NoError(t, err)
	assert.Equal(t, "show clock (+2 more)", req.Command, "summary")
	assert.Equal(t, []string{"s3cret"}, SecretAnswers(req.Commands))
	red := Redacted(req.Commands)
	assert.Empty(t, red[1].Prompts[0].Answer, "secret answer removed")
	assert.Equal(t, "y", red[1].Prompts[1].Answer, "plain answer kept")
	assert.Equal(t, "s3cret", req.Commands[1].Prompts[0].Answer, "Redacted copies")
	back, err := WithAnswers(red, []string{"s3cret"})
	require.NoError(t, err)
	assert.Equal(t, req.Commands, back)
	_, err = WithAnswers(red, nil)
	assert.Error(t, err, "too few answers")
	m := Message{JobID: "j", DeviceIDs: []string{"a"}, Command: req.Command, Commands: red, SecretAnswers: true}
	require.NoError(t, m.Validate(), "a redacted sequence is a valid message")
	m.Commands = req.Commands
	assert.Error(t, m.Validate(), "a message with a secret answer in clear is refused")
	m.Commands, m.SecretAnswers = red, false
	assert.Error(t, m.Validate(), "a message with secret prompts whose answers it does not say are stored is refused")
}
