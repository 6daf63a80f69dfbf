package eventbus_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/eventbus"
)

// put sends a raw PutEvents body and returns the status and the decoded answer.
func put(t *testing.T, url, target, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func entry(source, detailType, detail string) string {
	b, _ := json.Marshal(map[string]any{"Source": source, "DetailType": detailType, "Detail": detail, "Time": 1765058400.5})
	return string(b)
}

func TestPutEventsChecksEntriesAsEventBridgeDoes(t *testing.T) {
	srv, err := eventbus.Start(context.Background(), "127.0.0.1:0", eventbus.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	tests := []struct {
		name       string
		body       string
		target     string
		wantStatus int
		wantType   string // the call's error type
		wantCode   string // the first entry's error code
	}{
		{"accepted", `{"Entries":[` + entry("netauto", "Job Finished", `{"version":1}`) + `]}`, "", 200, "", ""},
		{"no source", `{"Entries":[` + entry("", "Job Finished", `{}`) + `]}`, "", 200, "", "InvalidArgument"},
		{"no detail type", `{"Entries":[` + entry("netauto", "", `{}`) + `]}`, "", 200, "", "InvalidArgument"},
		{"no detail", `{"Entries":[{"Source":"netauto","DetailType":"Job Finished"}]}`, "", 200, "", "InvalidArgument"},
		{"detail not JSON", `{"Entries":[` + entry("netauto", "Job Finished", `{version`) + `]}`, "", 200, "", "MalformedDetail"},
		{"detail not an object", `{"Entries":[` + entry("netauto", "Job Finished", `[1]`) + `]}`, "", 200, "", "MalformedDetail"},
		{"an AWS source", `{"Entries":[` + entry("aws.ec2", "Job Finished", `{}`) + `]}`, "", 200, "", "NotAuthorizedForSourceException"},
		{"an unknown bus", `{"Entries":[{"Source":"netauto","DetailType":"x","Detail":"{}","EventBusName":"other"}]}`, "", 200, "", "ResourceNotFoundException"},
		{"no entries", `{"Entries":[]}`, "", 400, "ValidationException", ""},
		{"eleven entries", `{"Entries":[` + strings.Repeat(entry("netauto", "x", `{}`)+",", 10) + entry("netauto", "x", `{}`) + `]}`, "", 400, "ValidationException", ""},
		{"over 256 KB", `{"Entries":[` + entry("netauto", "x", `{"a":"`+strings.Repeat("x", 256<<10)+`"}`) + `]}`, "", 400, "ValidationException", ""},
		{"not JSON", `Entries`, "", 400, "SerializationException", ""},
		{"another operation", `{}`, "AWSEvents.PutRule", 400, "UnknownOperationException", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Events())
			status, out := put(t, srv.URL(), cmp.Or(tt.target, "AWSEvents.PutEvents"), tt.body)
			require.Equal(t, tt.wantStatus, status, "answer %v", out)
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, out["__type"])
				assert.Len(t, srv.Events(), before, "nothing recorded")
				return
			}
			entries := out["Entries"].([]any)
			first := entries[0].(map[string]any)
			if tt.wantCode == "" {
				assert.EqualValues(t, 0, out["FailedEntryCount"])
				assert.NotEmpty(t, first["EventId"])
				got := srv.Events()
				require.Len(t, got, before+1)
				assert.Equal(t, time.Unix(1765058400, 0).UTC(), got[before].Time)
				return
			}
			assert.EqualValues(t, 1, out["FailedEntryCount"])
			assert.Equal(t, tt.wantCode, first["ErrorCode"])
			assert.NotEmpty(t, first["ErrorMessage"])
			assert.Len(t, srv.Events(), before, "nothing recorded")
		})
	}
}

func TestWaitForSeesLaterEvents(t *testing.T) {
	srv, err := eventbus.Start(context.Background(), "127.0.0.1:0", eventbus.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	done := make(chan []events.CloudWatchEvent, 1)
	go func() {
		got, _ := srv.WaitFor(context.Background(), func(e []events.CloudWatchEvent) bool { return len(e) >= 2 })
		done <- got
	}()
	for i := range 2 {
		status, out := put(t, srv.URL(), "AWSEvents.PutEvents", `{"Entries":[`+entry("netauto", fmt.Sprint("t", i), `{}`)+`]}`)
		require.Equal(t, 200, status, "%v", out)
	}
	select {
	case got := <-done:
		assert.Len(t, got, 2)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "WaitFor did not return")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = srv.WaitFor(ctx, func(e []events.CloudWatchEvent) bool { return len(e) > 5 })
	assert.ErrorIs(t, err, context.Canceled)
}

func TestGetListsTheKeptEvents(t *testing.T) {
	srv, err := eventbus.Start(context.Background(), "127.0.0.1:0", eventbus.Options{Keep: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	list := func() []events.CloudWatchEvent {
		t.Helper()
		resp, err := http.Get(srv.URL())
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var got []events.CloudWatchEvent
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		return got
	}
	assert.NotNil(t, list(), "an empty list, not null")
	for i := range 3 {
		status, out := put(t, srv.URL(), "AWSEvents.PutEvents", `{"Entries":[`+entry("netauto", fmt.Sprint("t", i), `{}`)+`]}`)
		require.Equal(t, 200, status, "%v", out)
	}
	got := list()
	require.Len(t, got, 2, "only the newest Keep")
	assert.Equal(t, "t1", got[0].DetailType)
	assert.Equal(t, "t2", got[1].DetailType)
}
