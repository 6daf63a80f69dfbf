package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
)

// TestRunningJobsLimit: through the real handler, an operator at their role's limit of unfinished
// jobs is refused 429 too_many_running_jobs with nothing stored or sent, and the refusal is
// audited; a single-device run counts as a job; an admin's higher limit still has room; a job
// that ends frees a slot.
func TestRunningJobsLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.enq.MaxRunning = map[auth.Role]bulk.RunningLimit{
		auth.Operator: {Max: 2, Setting: config.EnvMaxRunningJobsOperator},
		auth.Admin:    {Max: 3, Setting: config.EnvMaxRunningJobsAdmin},
	}
	admin, operator := e.tokens[auth.Admin], e.tokens[auth.Operator]
	for _, id := range []string{"lim-1", "lim-2"} {
		r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON(id, nil)))
		require.Equal(t, http.StatusCreated, r.Status, "create %s: %s", id, r.Body)
	}
	bulkBody := []byte(`{"command":"show version","device_ids":["lim-1","lim-2"]}`)
	runBody := []byte(`{"device_id":"lim-1","command":"show version"}`)
	accept := func(token string, path string, body []byte) string {
		t.Helper()
		r := e.do(token, "POST", path, "application/json", body)
		require.Equal(t, http.StatusAccepted, r.Status, "%s: %s", path, r.Body)
		var acc struct {
			JobID string `json:"job_id"`
		}
		r.JSON(t, &acc)
		require.NotEmpty(t, acc.JobID)
		return acc.JobID
	}
	refuse := func(token, path string, body []byte, wantMessage string) {
		t.Helper()
		jobs := e.jobCount(t)
		e.queued(t) // what was sent before is now out of sight for 30 s
		e.audit.Reset()
		r := e.do(token, "POST", path, "application/json", body)
		require.Equal(t, http.StatusTooManyRequests, r.Status, "%s: %s", path, r.Body)
		var eb errorBody
		r.JSON(t, &eb)
		assert.Equal(t, "too_many_running_jobs", eb.Error.Code)
		assert.Empty(t, eb.Error.Field, "no field is at fault")
		assert.Equal(t, wantMessage, eb.Error.Message)
		assert.Equal(t, jobs, e.jobCount(t), "a refused job stores nothing")
		assert.Empty(t, e.queued(t), "a refused job sends nothing")
		entries := e.audit.Entries()
		if assert.Len(t, entries, 1, "one audit entry") {
			assert.Equal(t, audit.OutcomeDenied, entries[0].Outcome)
			assert.Equal(t, "too_many_running_jobs", entries[0].Reason)
		}
	}

	first := accept(operator, "/v1/runs", runBody) // a single-device run is a job too
	accept(operator, "/v1/bulk", bulkBody)
	opMessage := fmt.Sprintf("operator@example.com already has 2 unfinished jobs (runs included); the operator role's limit is 2 (%s): wait for one to finish or cancel one", config.EnvMaxRunningJobsOperator)
	refuse(operator, "/v1/bulk", bulkBody, opMessage)
	refuse(operator, "/v1/runs", runBody, opMessage)

	// The admin's own jobs count against the admin role's limit of 3: the third is accepted.
	for range 3 {
		accept(admin, "/v1/bulk", bulkBody)
	}
	refuse(admin, "/v1/runs", runBody, fmt.Sprintf("admin@example.com already has 3 unfinished jobs (runs included); the admin role's limit is 3 (%s): wait for one to finish or cancel one", config.EnvMaxRunningJobsAdmin))

	// A job that ends (as the executor ends it) frees its requester's slot.
	ctx := context.Background()
	_, err := e.jobs.EndJob(ctx, first, bulk.JobCompleted, time.Now().UTC())
	require.NoError(t, err)
	require.NoError(t, e.jobs.ForgetUnfinished(ctx, first))
	accept(operator, "/v1/bulk", bulkBody)
	refuse(operator, "/v1/bulk", bulkBody, opMessage)
}
