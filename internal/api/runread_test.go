package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// getRun reads a run through the API, returning the status and, on 200, the run.
func (e *env) getRun(t *testing.T, id string) (int, run.Run) {
	t.Helper()
	r := e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+id, "", nil)
	var rn run.Run
	if r.Status == http.StatusOK {
		r.JSON(t, &rn)
	}
	return r.Status, rn
}

// TestRunReadableAfterCreate reads runs and bulk devices right after they are accepted. No
// executor consumes this harness's queue, so every device stays queued.
func TestRunReadableAfterCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var rows []map[string]any
	var ids []string
	for i := range 120 {
		id := fmt.Sprintf("rr%03d", i)
		rows = append(rows, deviceJSON(id, map[string]any{"password": nil, "credential_profile": "lab"}))
		ids = append(ids, id)
	}
	// Device ids may hold dots; the run id splits at the first one.
	ids = append(ids, "core.sw-1")
	rows = append(rows, deviceJSON("core.sw-1", map[string]any{"password": nil, "credential_profile": "lab"}))
	rows = append(rows, deviceJSON("other", map[string]any{"password": nil, "credential_profile": "lab"}))
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))

	// A single run reads queued at once, output empty.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/runs", "application/json", []byte(`{"device_id":"core.sw-1","command":"show clock"}`))
	require.Equal(t, http.StatusAccepted, r.Status, "run: %s", r.Body)
	var acc struct {
		RunID string `json:"run_id"`
		JobID string `json:"job_id"`
	}
	r.JSON(t, &acc)
	status, rn := e.getRun(t, acc.RunID)
	require.Equal(t, http.StatusOK, status, "GET /v1/runs/%s right after POST /v1/runs", acc.RunID)
	job, _ := e.doJob(t, acc.JobID)
	assert.Equal(t, run.Run{
		ID: acc.RunID, DeviceID: "core.sw-1", Command: "show clock", JobID: acc.JobID, RequestedBy: "operator@example.com",
		Status: run.Queued, CreatedAt: job.CreatedAt, Commands: []run.CommandResult{},
	}, rn)

	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+acc.RunID+"/output", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "output: %s", r.Body)
	assert.Empty(t, r.Body)
	assert.Equal(t, "queued", r.Header.Get("X-Run-Status"))
	assert.Equal(t, "0", r.Header.Get("X-Output-Bytes"))
	assert.Equal(t, "false", r.Header.Get("X-Output-Truncated"))

	// Every device of a bulk job of three batches reads queued at once.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, map[string]any{"command": "show version", "device_ids": ids}))
	require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	var bulkAcc bulk.Accepted
	r.JSON(t, &bulkAcc)
	require.Equal(t, 3, bulkAcc.Batches)
	bulkJob, _ := e.doJob(t, bulkAcc.JobID)
	for _, id := range ids {
		status, rn := e.getRun(t, bulk.RunID(bulkAcc.JobID, id))
		require.Equal(t, http.StatusOK, status, "device %s", id)
		assert.Equal(t, run.Queued, rn.Status, "device %s", id)
		assert.Equal(t, id, rn.DeviceID)
		assert.Equal(t, bulkAcc.JobID, rn.JobID)
		assert.Equal(t, "show version", rn.Command)
		assert.True(t, bulkJob.CreatedAt.Equal(rn.CreatedAt), "device %s created_at %s, want the job's %s", id, rn.CreatedAt, bulkJob.CreatedAt)
	}

	for _, tc := range []struct {
		name string
		id   string
	}{
		{name: "unknown job", id: bulk.NewID(time.Now()) + ".rr001"},
		{name: "device not in a single run's job", id: bulk.RunID(acc.JobID, "rr001")},
		{name: "device not in a bulk job", id: bulk.RunID(bulkAcc.JobID, "other")},
		{name: "device unknown to the inventory", id: bulk.RunID(bulkAcc.JobID, "nope")},
		{name: "prefix of a dotted device", id: bulk.RunID(acc.JobID, "core")},
		{name: "no device part", id: acc.JobID + "."},
		{name: "no dot", id: acc.JobID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+tc.id, "", nil)
			require.Equal(t, http.StatusNotFound, r.Status, "GET /v1/runs/%s: %s", tc.id, r.Body)
			var body errorBody
			r.JSON(t, &body)
			assert.Equal(t, "not_found", body.Error.Code)
			r = e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+tc.id+"/output", "", nil)
			assert.Equal(t, http.StatusNotFound, r.Status, "output of %s: %s", tc.id, r.Body)
		})
	}

	t.Run("job without a locator", func(t *testing.T) {
		// Jobs written before the locator item existed find the batch by reading them all.
		e := e.forT(t)
		_, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName: aws.String(e.st.Names.Tables[resources.JobsTable]),
			Key: map[string]types.AttributeValue{
				resources.AttrPK: &types.AttributeValueMemberS{Value: "JOB#" + bulkAcc.JobID},
				resources.AttrSK: &types.AttributeValueMemberS{Value: "LOC"},
			},
			ReturnValues: types.ReturnValueAllOld,
		})
		require.NoError(t, err)
		for _, id := range []string{"rr000", "rr099", "core.sw-1"} {
			status, rn := e.getRun(t, bulk.RunID(bulkAcc.JobID, id))
			require.Equal(t, http.StatusOK, status, "device %s", id)
			assert.Equal(t, run.Queued, rn.Status, "device %s", id)
		}
		status, _ := e.getRun(t, bulk.RunID(bulkAcc.JobID, "other"))
		assert.Equal(t, http.StatusNotFound, status)
	})
}

// TestRunReadableWhenCancelledBeforeStart reads a device that never ran: its run reads as its
// batch has it, cancelled.
func TestRunReadableWhenCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var rows []map[string]any
	var ids []string
	for i := range 60 {
		id := fmt.Sprintf("cx%03d", i)
		rows = append(rows, deviceJSON(id, map[string]any{"password": nil, "credential_profile": "lab"}))
		ids = append(ids, id)
	}
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	// One batch in flight at a time: the second is never sent, so cancelling cancels its devices.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, map[string]any{
		"command": "show version", "device_ids": ids, "options": map[string]any{"max_concurrency": 50},
	}))
	require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	var acc bulk.Accepted
	r.JSON(t, &acc)
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk/"+acc.JobID+"/cancel", "", nil)
	require.Equal(t, http.StatusAccepted, r.Status, "cancel: %s", r.Body)

	status, rn := e.getRun(t, bulk.RunID(acc.JobID, "cx055"))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, run.Cancelled, rn.Status)
	assert.Equal(t, "cancelled", rn.Reason)
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+bulk.RunID(acc.JobID, "cx055")+"/output", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "cancelled", r.Header.Get("X-Run-Status"))
	assert.Empty(t, r.Body)
	// The sent batch's devices still read queued: no executor took them.
	status, rn = e.getRun(t, bulk.RunID(acc.JobID, "cx000"))
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, run.Queued, rn.Status)
}
