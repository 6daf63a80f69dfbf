package app_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// TestSavedJobAndRerunOnTheFleet runs a saved job on a simulated fleet with mixed outcomes through
// the API, the queue and the executor, then re-runs it by statuses: each re-run holds exactly the
// devices of the first job that ended in them, and the jobs are linked both ways.
func TestSavedJobAndRerunOnTheFleet(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_ios"}, {Platform: "cisco_ios", Fault: devicesim.FaultRefuse}, {Platform: "cisco_ios"},
		{Platform: "cisco_ios", Fault: devicesim.FaultWrongCredentials}, {Platform: "cisco_ios", Fault: devicesim.FaultRefuse},
	}})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	c := e.serveAPI(t)
	want := map[run.Status][]string{}
	for id, d := range e.devs {
		st := run.Succeeded
		switch d.Fault {
		case devicesim.FaultRefuse:
			st = run.Unreachable
		case devicesim.FaultWrongCredentials:
			st = run.AuthFailed
		}
		want[st] = append(want[st], id)
	}
	for _, ids := range want {
		slices.Sort(ids)
	}

	var sj apiwire.SavedJob
	require.Equal(t, http.StatusCreated, c.do(auth.Operator, http.MethodPost, "/v1/saved-jobs", map[string]any{
		"name": "fleet", "command": "show version", "options": jobOptions, "selector": map[string]any{"platform": "cisco_ios"}}, &sj))
	var acc apiwire.BulkAccepted
	require.Equal(t, http.StatusAccepted, c.do(auth.Operator, http.MethodPost, "/v1/saved-jobs/"+sj.ID+"/run", nil, &acc))
	first := e.waitJob(t, acc.JobID, time.Minute)
	assert.Equal(t, sj.ID, first.SavedJobID, "the job records its saved job")
	require.Equal(t, 5, first.DeviceCount)
	statuses := func(jobID string) map[run.Status][]string {
		t.Helper()
		out := map[run.Status][]string{}
		for id, d := range e.allDevices(t, jobID) {
			out[d.Status] = append(out[d.Status], id)
		}
		for _, ids := range out {
			slices.Sort(ids)
		}
		return out
	}
	require.Equal(t, want, statuses(acc.JobID), "the first job's outcomes")

	tests := []struct {
		name     string
		statuses []run.Status
	}{
		{"unreachable", []run.Status{run.Unreachable}},
		{"unreachable or auth_failed", []run.Status{run.Unreachable, run.AuthFailed}},
	}
	var reruns []string
	for _, tt := range tests {
		var racc apiwire.BulkAccepted
		require.Equal(t, http.StatusAccepted, c.do(auth.Operator, http.MethodPost, "/v1/bulk/"+acc.JobID+"/rerun", map[string]any{"statuses": tt.statuses}, &racc), tt.name)
		reruns = append(reruns, racc.JobID)
		rj := e.waitJob(t, racc.JobID, time.Minute)
		assert.Equal(t, acc.JobID, rj.RerunOf, "%s: rerun_of", tt.name)
		wantRerun := map[run.Status][]string{}
		for _, st := range tt.statuses {
			wantRerun[st] = want[st]
		}
		assert.Equal(t, wantRerun, statuses(racc.JobID), "%s: exactly the devices that ended so, ending so again", tt.name)
	}
	var old apiwire.Job
	require.Equal(t, http.StatusOK, c.do(auth.Viewer, http.MethodGet, "/v1/bulk/"+acc.JobID, nil, &old))
	assert.Equal(t, reruns, old.Reruns, "the first job lists its re-runs")
	assert.Equal(t, sj.ID, old.SavedJobID)
}
