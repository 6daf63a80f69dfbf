package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// TestLastRuns stores runs directly (no executor) and reads each device's newest one back for
// many devices in one request.
func TestLastRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UTC()
	// d0 has three runs (the newest failed), d1 one that succeeded, d2 none.
	for i, r := range []struct {
		device string
		status run.Status
	}{{"d0", run.Succeeded}, {"d0", run.Succeeded}, {"d1", run.Succeeded}, {"d0", run.Failed}} {
		at := base.Add(time.Duration(i) * time.Minute)
		rr := run.Run{ID: fmt.Sprintf("job%d.%s", i, r.device), DeviceID: r.device, Command: "show version", JobID: fmt.Sprintf("job%d", i),
			RequestedBy: "t@example.com", Status: run.Running, Attempt: 1, CreatedAt: at, StartedAt: &at}
		started, err := runs.Start(ctx, rr)
		require.NoError(t, err, "start %s", rr.ID)
		started.Status, started.FinishedAt = r.status, &at
		if r.status == run.Failed {
			started.Reason = "exit_status"
		}
		require.NoError(t, runs.Finish(ctx, started, []byte("out\n")), "finish %s", rr.ID)
	}
	viewer := e.tokens[auth.Viewer]
	var out struct {
		Items map[string]run.Run `json:"items"`
	}
	r := e.do(viewer, "POST", "/v1/devices/last-runs", "application/json", []byte(`{"device_ids":["d0","d1","d2","d0"]}`))
	r.JSON(t, &out)
	require.Equal(t, http.StatusOK, r.Status, "last runs: %s", r.Body)
	require.Len(t, out.Items, 2, "last runs: want d0 and d1: %s", r.Body)
	d0 := out.Items["d0"]
	assert.Equal(t, "job3.d0", d0.ID, "d0's last run: id")
	assert.Equal(t, run.Failed, d0.Status, "d0's last run: status")
	assert.Equal(t, "exit_status", d0.Reason, "d0's last run: reason")
	d1 := out.Items["d1"]
	assert.Equal(t, "job2.d1", d1.ID, "d1's last run: id")
	assert.Equal(t, run.Succeeded, d1.Status, "d1's last run: status")

	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprintf("%q", fmt.Sprintf("x%d", i))
	}
	for _, tc := range []struct {
		name      string
		token     string
		body      string
		wantCode  int
		wantField string
	}{
		{name: "no token", body: `{"device_ids":["d0"]}`, wantCode: 401},
		{name: "no ids", token: viewer, body: `{"device_ids":[]}`, wantCode: 400, wantField: "device_ids"},
		{name: "too many ids", token: viewer, body: `{"device_ids":[` + strings.Join(many, ",") + `]}`, wantCode: 400, wantField: "device_ids"},
		{name: "bad id", token: viewer, body: `{"device_ids":["d0","../etc"]}`, wantCode: 400, wantField: "device_ids[1]"},
		{name: "unknown field", token: viewer, body: `{"device_ids":["d0"],"all":true}`, wantCode: 400, wantField: "all"},
		{name: "not JSON", token: viewer, body: `device_ids=d0`, wantCode: 400, wantField: "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.token, "POST", "/v1/devices/last-runs", "application/json", []byte(tc.body))
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tc.wantCode, r.Status, "status (%s)", eb.Error.Message)
			assert.Equal(t, tc.wantField, eb.Error.Field, "error field (%s)", eb.Error.Message)
		})
	}
}
