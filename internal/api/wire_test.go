package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// fill sets every exported field of v, recursively, to a value of its own (distinct strings
// and numbers, true, a time, one-entry maps and slices), so a field a conversion drops or swaps
// shows in the JSON.
func fill(tb testing.TB, v reflect.Value, n *int) {
	tb.Helper()
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Int, reflect.Int32, reflect.Int64:
		if v.Type() == reflect.TypeFor[time.Duration]() {
			v.SetInt(int64(*n) * int64(time.Second))
			return
		}
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(tb, v.Elem(), n)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(tb, k, n)
		fill(tb, e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(tb, s.Index(0), n)
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2025, 1, 6, 12, 0, *n, 123456789, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(tb, v.Field(i), n)
			}
		}
	default:
		tb.Fatalf("fill: no value for a %s", v.Type())
	}
}

// filled returns a T with every field set.
func filled[T any](tb testing.TB) T {
	tb.Helper()
	var v T
	n := 0
	fill(tb, reflect.ValueOf(&v).Elem(), &n)
	return v
}

func marshal(tb testing.TB, v any) string {
	tb.Helper()
	data, err := json.Marshal(v)
	require.NoError(tb, err, "marshal %T", v)
	return string(data)
}

// sameJSON checks that the wire value encodes to the very bytes of the domain value, once with
// every field set and once with none: the API's answers are what they were when it wrote the
// domain types, field order and omitted fields included.
func sameJSON[D, W any](t *testing.T, conv func(D) W) {
	t.Helper()
	var zero D
	for name, d := range map[string]D{"filled": filled[D](t), "zero": zero} {
		assert.Equal(t, marshal(t, d), marshal(t, conv(d)), "%s %T", name, d)
	}
}

// sameJSONBut is sameJSON for the fields other than key, whose wire form differs on purpose (a
// run's commands are always a list, without output offsets; a job's secret answers are left out).
func sameJSONBut[D, W any](t *testing.T, conv func(D) W, key string) {
	t.Helper()
	var zero D
	for name, d := range map[string]D{"filled": filled[D](t), "zero": zero} {
		dm, wm := jsonObject(t, d), jsonObject(t, conv(d))
		delete(dm, key)
		delete(wm, key)
		assert.Equal(t, dm, wm, "%s %T", name, d)
	}
}

// TestCommandsOnTheWire: a run's per-command results are always a list, without the output
// offsets; an old run stands for its one command; a job's secret answer is never sent.
func TestCommandsOnTheWire(t *testing.T) {
	exit := 1
	tests := []struct {
		name string
		got  any
		want string
	}{
		{name: "queued run", got: runToWire(run.Run{Status: run.Queued}).Commands, want: `[]`},
		{name: "old finished run", got: runToWire(run.Run{Command: "show clock", Status: run.Failed, Reason: "command_error", ExitStatus: &exit, Bytes: 9}).Commands,
			want: `[{"command":"show clock","status":"failed","reason":"command_error","exit_status":1,"bytes":9}]`},
		{name: "listed sequence run without its results", got: runToWire(run.Run{Command: "show clock (+2 more)", Status: run.Succeeded, Bytes: 9}).Commands, want: `[]`},
		{name: "unreachable run", got: runToWire(run.Run{Command: "show clock", Status: run.Unreachable, Reason: "connection_refused"}).Commands, want: `[]`},
		{name: "sequence run", got: runToWire(run.Run{Command: "a (+1 more)", Status: run.Succeeded, Commands: []run.CommandResult{
			{Command: "a", Status: run.Succeeded, Bytes: 3, Offset: 0}, {Command: "b", Status: run.Succeeded, Bytes: 4, Offset: 3}}}).Commands,
			want: `[{"command":"a","status":"succeeded","reason":"","bytes":3},{"command":"b","status":"succeeded","reason":"","bytes":4}]`},
		{name: "job with a secret answer", got: jobToWire(bulk.Job{Commands: []bulk.Command{{Command: "copy", Prompts: []bulk.Prompt{
			{Expect: "Password:", Answer: "hunter2", Secret: true}, {Expect: "[confirm]", Answer: "y"}}}}}).Commands,
			want: `[{"command":"copy","prompts":[{"expect":"Password:","secret":true},{"expect":"[confirm]","answer":"y"}]}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.JSONEq(t, tc.want, marshal(t, tc.got))
		})
	}
}

// TestAnswersKeepTheirBytes holds each conversion of a domain value to its wire type to the
// domain value's own JSON.
func TestAnswersKeepTheirBytes(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T)
	}{
		{name: "device", check: func(t *testing.T) { sameJSON(t, deviceToWire) }},
		{name: "import result", check: func(t *testing.T) { sameJSON(t, importResultToWire) }},
		{name: "field errors", check: func(t *testing.T) { sameJSON(t, fieldErrorsToWire) }},
		{name: "run", check: func(t *testing.T) { sameJSONBut(t, runToWire, "commands") }},
		{name: "job", check: func(t *testing.T) { sameJSONBut(t, jobToWire, "commands") }},
		{name: "job summary", check: func(t *testing.T) { sameJSON(t, jobSummaryToWire) }},
		{name: "job device", check: func(t *testing.T) {
			sameJSONBut(t, func(d bulk.DeviceState) apiwire.JobDevice { return jobDeviceToWire(d, bulk.Job{}) }, "commands")
		}},
		{name: "retention settings", check: func(t *testing.T) { sameJSON(t, retentionSettingsToWire) }},
		{name: "retention report", check: func(t *testing.T) { sameJSON(t, retentionReportToWire) }},
		{name: "accepted bulk job", check: func(t *testing.T) {
			sameJSON(t, func(a bulk.Accepted) apiwire.BulkAccepted {
				return apiwire.BulkAccepted{JobID: a.JobID, DeviceCount: a.DeviceCount, Batches: a.Batches}
			})
		}},
		{name: "progress event", check: func(t *testing.T) {
			// Counts are job_done's alone (TestEventCounts).
			sameJSONBut(t, func(ev bulk.Event) apiwire.ProgressEvent {
				got := eventsToWire([]bulk.Event{ev})
				require.Len(t, got, 1)
				return got[0]
			}, "counts")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.check)
	}
}

// jsonObject decodes the JSON of v into a map of its fields.
func jsonObject(tb testing.TB, v any) map[string]any {
	tb.Helper()
	var m map[string]any
	require.NoError(tb, json.Unmarshal([]byte(marshal(tb, v)), &m), "decode %T", v)
	return m
}

// TestRequestsReachTheDomain converts each request body with every field set and finds each
// field, by its JSON name, with its value in the domain value it became.
func TestRequestsReachTheDomain(t *testing.T) {
	tests := []struct {
		name string
		// wire and domain return the body and what the API made of it, as JSON objects.
		convert func(t *testing.T) (wire, domain map[string]any)
	}{
		{name: "device input", convert: func(t *testing.T) (map[string]any, map[string]any) {
			in := filled[apiwire.DeviceInput](t)
			got := DeviceInputFromWire(in)
			domain := jsonObject(t, got.Device)
			for k, v := range jsonObject(t, got.Credential) {
				domain[k] = v
			}
			return jsonObject(t, in), domain
		}},
		{name: "device patch", convert: func(t *testing.T) (map[string]any, map[string]any) {
			p := filled[apiwire.DevicePatch](t)
			return jsonObject(t, p), jsonObject(t, patchFromWire(p))
		}},
		{name: "bulk request", convert: func(t *testing.T) (map[string]any, map[string]any) {
			r := filled[apiwire.BulkRequest](t)
			return jsonObject(t, r), jsonObject(t, bulkRequestFromWire(r))
		}},
		{name: "run request options", convert: func(t *testing.T) (map[string]any, map[string]any) {
			o := filled[apiwire.BulkOptions](t)
			return jsonObject(t, o), jsonObject(t, optionsFromWire(o))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire, domain := tc.convert(t)
			require.NotEmpty(t, wire)
			for field, want := range wire {
				assert.Equal(t, want, domain[field], "field %s", field)
			}
		})
	}
}

// TestEventCounts: a job_done event carries the job's counts, a bulk_progress event none
// (progress contract version 2), and an empty page answers "items": [].
func TestEventCounts(t *testing.T) {
	counts := map[run.Status]int{run.Succeeded: 3, run.Failed: 1}
	tests := []struct {
		name string
		ev   bulk.Event
		want map[string]int
	}{
		{name: "job done", ev: bulk.Event{Type: bulk.EventJobDone, Counts: counts}, want: map[string]int{"succeeded": 3, "failed": 1}},
		{name: "progress", ev: bulk.Event{Type: bulk.EventProgress, DeviceID: "r1", Counts: counts}, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := eventsToWire([]bulk.Event{tc.ev})
			require.Len(t, got, 1)
			assert.Equal(t, tc.want, got[0].Counts)
		})
	}
	assert.JSONEq(t, `{"items":[]}`, marshal(t, apiwire.EventList{Items: eventsToWire(nil)}))
}

// TestDecodeDeviceInputPort: an explicit port 0 is refused, naming the field; a missing or null
// port is the default (0 for the domain).
func TestDecodeDeviceInputPort(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantPort  int
		wantField string
	}{
		{name: "absent", body: `{"id":"r1"}`, wantPort: 0},
		{name: "null", body: `{"id":"r1","port":null}`, wantPort: 0},
		{name: "given", body: `{"id":"r1","port":2222}`, wantPort: 2222},
		{name: "explicit zero", body: `{"id":"r1","port":0}`, wantField: "port"},
		{name: "a string", body: `{"id":"r1","port":"22"}`, wantField: "port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, e := decodeDeviceInput([]byte(tc.body))
			if tc.wantField != "" {
				require.NotNil(t, e, "decode %s", tc.body)
				assert.Equal(t, tc.wantField, e.Field, "decode %s: %s", tc.body, e.Message)
				return
			}
			require.Nil(t, e, "decode %s", tc.body)
			assert.Equal(t, tc.wantPort, in.Port, "port of %s", tc.body)
		})
	}
}

// TestErrorIsTheWireError holds the API's error value to the wire type the clients decode: a
// filled Error reads strictly as an apiwire.Error and encodes back to the same bytes.
func TestErrorIsTheWireError(t *testing.T) {
	for name, e := range map[string]Error{"filled": filled[Error](t), "zero": {}} {
		data := marshal(t, e)
		dec := json.NewDecoder(strings.NewReader(data))
		dec.DisallowUnknownFields()
		var w apiwire.Error
		require.NoError(t, dec.Decode(&w), "%s Error %s as apiwire.Error", name, data)
		assert.Equal(t, data, marshal(t, w), "%s Error", name)
	}
}
