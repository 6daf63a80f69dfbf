package api_test

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// savedJob creates a saved job with token and returns it.
func savedJob(e *env, token string, body map[string]any) apiwire.SavedJob {
	e.t.Helper()
	r := e.do(token, "POST", "/v1/saved-jobs", "application/json", mustJSON(e.t, body))
	require.Equal(e.t, http.StatusCreated, r.Status, "create saved job: %s", r.Body)
	var sj apiwire.SavedJob
	r.JSON(e.t, &sj)
	return sj
}

// runSaved starts saved job id with token and returns the devices of the job it started.
func runSaved(e *env, token, id string) (apiwire.Job, []string) {
	e.t.Helper()
	r := e.do(token, "POST", "/v1/saved-jobs/"+id+"/run", "", nil)
	require.Equal(e.t, http.StatusAccepted, r.Status, "run saved job: %s", r.Body)
	var acc apiwire.BulkAccepted
	r.JSON(e.t, &acc)
	assert.Equal(e.t, "/v1/bulk/"+acc.JobID, r.Header.Get("Location"), "Location")
	r = e.do(e.tokens[auth.Admin], "GET", "/v1/bulk/"+acc.JobID, "", nil)
	require.Equal(e.t, http.StatusOK, r.Status, "read job: %s", r.Body)
	var j apiwire.Job
	r.JSON(e.t, &j)
	r = e.do(e.tokens[auth.Admin], "GET", "/v1/bulk/"+acc.JobID+"/devices", "", nil)
	require.Equal(e.t, http.StatusOK, r.Status, "read job devices: %s", r.Body)
	var devs apiwire.JobDeviceList
	r.JSON(e.t, &devs)
	var ids []string
	for _, d := range devs.Items {
		ids = append(ids, d.DeviceID)
	}
	slices.Sort(ids)
	return j, ids
}

// seedAt creates device id on site with tags and platform as admin.
func seedAt(e *env, id, site, platform string, tags map[string]string) {
	e.t.Helper()
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices", "application/json",
		mustJSON(e.t, deviceJSON(id, map[string]any{"site": site, "platform": platform, "tags": tags})))
	require.Equal(e.t, http.StatusCreated, r.Status, "seed %s: %s", id, r.Body)
}

// TestSavedJobSelector starts saved jobs through the API and reads the devices of the jobs they
// started: the selector's terms AND-ed, evaluated at the start (a device added after saving is
// included), and never a device out of the owner's scope.
func TestSavedJobSelector(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedAt(e, "s-ams-core-ios", "ams1", "cisco_ios", map[string]string{"role": "core", "pod": "7"})
	seedAt(e, "s-ams-core-eos", "ams1", "arista_eos", map[string]string{"role": "core"})
	seedAt(e, "s-ams-edge-ios", "ams1", "cisco_ios", map[string]string{"role": "edge"})
	seedAt(e, "s-fra-core-ios", "fra1", "cisco_ios", map[string]string{"role": "core"})
	scoped, err := e.signer.Issue(auth.TokenSpec{Subject: "olga", Email: "olga@example.com", Groups: []string{"operator:ams1"}})
	require.NoError(t, err)
	op := e.tokens[auth.Operator]

	tests := []struct {
		name     string
		token    string
		selector map[string]any
		want     []string
	}{
		{"tag alone", op, map[string]any{"tags": map[string]string{"role": "core"}}, []string{"s-ams-core-eos", "s-ams-core-ios", "s-fra-core-ios"}},
		{"tag AND platform", op, map[string]any{"tags": map[string]string{"role": "core"}, "platform": "cisco_ios"}, []string{"s-ams-core-ios", "s-fra-core-ios"}},
		{"tag AND platform AND site", op, map[string]any{"tags": map[string]string{"role": "core"}, "platform": "cisco_ios", "site": "ams1"}, []string{"s-ams-core-ios"}},
		{"two tags", op, map[string]any{"tags": map[string]string{"role": "core", "pod": "7"}}, []string{"s-ams-core-ios"}},
		{"tag key with any value", op, map[string]any{"tags": map[string]string{"pod": ""}}, []string{"s-ams-core-ios"}},
		{"ids AND tag", op, map[string]any{"device_ids": []string{"s-ams-core-eos", "s-ams-edge-ios", "s-fra-core-ios"}, "tags": map[string]string{"role": "core"}}, []string{"s-ams-core-eos", "s-fra-core-ios"}},
		{"ids alone, one unknown", op, map[string]any{"device_ids": []string{"s-ams-edge-ios", "no-such-device"}}, []string{"s-ams-edge-ios"}},
		{"scoped owner: fra1 is left out", scoped, map[string]any{"tags": map[string]string{"role": "core"}, "platform": "cisco_ios"}, []string{"s-ams-core-ios"}},
		{"scoped owner: an id on fra1 is left out", scoped, map[string]any{"device_ids": []string{"s-fra-core-ios", "s-ams-edge-ios"}}, []string{"s-ams-edge-ios"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.forT(t)
			sj := savedJob(e, tt.token, map[string]any{"name": tt.name, "command": "show version", "selector": tt.selector})
			j, ids := runSaved(e, tt.token, sj.ID)
			assert.Equal(t, tt.want, ids, "devices of the started job")
			assert.Equal(t, sj.ID, j.SavedJobID, "the job records its saved job")
			assert.Equal(t, sj.Owner, j.RequestedBy, "the owner is the requester")
		})
	}

	t.Run("a device added after saving is included", func(t *testing.T) {
		e := e.forT(t)
		sj := savedJob(e, op, map[string]any{"name": "late", "command": "show clock", "selector": map[string]any{"tags": map[string]string{"role": "late"}}})
		r := e.do(op, "POST", "/v1/saved-jobs/"+sj.ID+"/run", "", nil)
		wantStatus(t, r, http.StatusUnprocessableEntity, "no_devices", "run before any device matches")
		seedAt(e, "s-late-1", "ams1", "cisco_ios", map[string]string{"role": "late"})
		_, ids := runSaved(e, op, sj.ID)
		assert.Equal(t, []string{"s-late-1"}, ids, "the device added after saving")
		seedAt(e, "s-late-2", "fra1", "cisco_ios", map[string]string{"role": "late"})
		_, ids = runSaved(e, op, sj.ID)
		assert.Equal(t, []string{"s-late-1", "s-late-2"}, ids, "both devices at the third start")
	})

	t.Run("a device moved out of the owner's scope is left out", func(t *testing.T) {
		e := e.forT(t)
		seedAt(e, "s-moving", "ams1", "cisco_ios", map[string]string{"role": "moving"})
		sj := savedJob(e, scoped, map[string]any{"name": "moving", "command": "show clock", "selector": map[string]any{"tags": map[string]string{"role": "moving"}}})
		_, ids := runSaved(e, scoped, sj.ID)
		assert.Equal(t, []string{"s-moving"}, ids, "before the move")
		r := e.do(e.tokens[auth.Admin], "PATCH", "/v1/devices/s-moving", "application/json", []byte(`{"site":"fra1"}`))
		require.Equal(t, http.StatusOK, r.Status, "move: %s", r.Body)
		r = e.do(scoped, "POST", "/v1/saved-jobs/"+sj.ID+"/run", "", nil)
		wantStatus(t, r, http.StatusUnprocessableEntity, "no_devices", "after the move")
		r = e.do(e.tokens[auth.Admin], "POST", "/v1/saved-jobs/"+sj.ID+"/run", "", nil)
		wantStatus(t, r, http.StatusUnprocessableEntity, "no_devices", "an admin starting it runs it in the owner's scope")
	})
}

// TestSavedJobOwnership holds the ownership rules: an operator changes, deletes and starts their
// own saved jobs only, an admin any (the owner stays), a viewer reads those in scope.
func TestSavedJobOwnership(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedAt(e, "o-r1", "ams1", "cisco_ios", map[string]string{"role": "core"})
	other, err := e.signer.Issue(auth.TokenSpec{Subject: "bob", Email: "bob@example.com", Groups: []string{"operator"}})
	require.NoError(t, err)
	fraViewer, err := e.signer.Issue(auth.TokenSpec{Subject: "fv", Email: "fv@example.com", Groups: []string{"viewer:fra1"}})
	require.NoError(t, err)
	op, admin := e.tokens[auth.Operator], e.tokens[auth.Admin]
	sj := savedJob(e, op, map[string]any{"name": "nightly", "command": "show version", "selector": map[string]any{"site": "ams1"}})
	assert.Equal(t, "operator@example.com", sj.Owner, "owner")
	assert.Equal(t, []apiwire.RoleGrant{{Role: "operator"}}, sj.OwnerRoles, "owner's roles recorded")
	path := "/v1/saved-jobs/" + sj.ID

	tests := []struct {
		name       string
		token      string
		method     string
		path       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"another operator may not change it", other, "PATCH", path, `{"name":"mine now"}`, http.StatusForbidden, "forbidden"},
		{"another operator may not start it", other, "POST", path + "/run", "", http.StatusForbidden, "forbidden"},
		{"another operator may not delete it", other, "DELETE", path, "", http.StatusForbidden, "forbidden"},
		{"a viewer may not change it", e.tokens[auth.Viewer], "PATCH", path, `{"name":"x"}`, http.StatusForbidden, "forbidden"},
		{"another operator may read it", other, "GET", path, "", http.StatusOK, ""},
		{"a viewer of another site does not see it", fraViewer, "GET", path, "", http.StatusNotFound, "not_found"},
		{"the owner changes it", op, "PATCH", path, `{"name":"nightly backup"}`, http.StatusOK, ""},
		{"a stale version is refused", op, "PATCH", path, `{"name":"x","version":1}`, http.StatusConflict, "version_conflict"},
		{"an admin changes it", admin, "PATCH", path, `{"options":{"timeout_s":30}}`, http.StatusOK, ""},
		{"an admin starts it", admin, "POST", path + "/run", "", http.StatusAccepted, ""},
		{"an admin pauses its schedule", admin, "PATCH", path, `{"schedule":{"cron":"@daily","enabled":false}}`, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.forT(t)
			ctype := ""
			if tt.body != "" {
				ctype = "application/json"
			}
			wantStatus(t, e.do(tt.token, tt.method, tt.path, ctype, []byte(tt.body)), tt.wantStatus, tt.wantCode, tt.name)
		})
	}
	r := e.do(e.tokens[auth.Viewer], "GET", path, "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var got apiwire.SavedJob
	r.JSON(t, &got)
	assert.Equal(t, "nightly backup", got.Name, "the owner's change")
	assert.Equal(t, 30, got.Options.TimeoutS, "the admin's change")
	assert.Equal(t, "operator@example.com", got.Owner, "an admin's change keeps the owner")
	assert.Equal(t, int64(4), got.Version, "three changes")
	require.NotNil(t, got.Schedule, "the admin's schedule")
	assert.False(t, got.Schedule.Enabled, "paused by the admin")
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/saved-jobs", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, []string{sj.ID}, listedIDs(t, r, "id"), "the list")
	r = e.do(fraViewer, "GET", "/v1/saved-jobs", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Empty(t, listedIDs(t, r, "id"), "the fra1 viewer's list")
	wantStatus(t, e.do(admin, "DELETE", path, "", nil), http.StatusNoContent, "", "an admin deletes it")
	wantStatus(t, e.do(op, "GET", path, "", nil), http.StatusNotFound, "not_found", "after the delete")
}

// TestSavedJobBadInput: each broken rule is a 400 naming its field, and nothing is stored.
func TestSavedJobBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := e.tokens[auth.Operator]
	scoped, err := e.signer.Issue(auth.TokenSpec{Subject: "olga", Email: "olga@example.com", Groups: []string{"operator:ams1"}})
	require.NoError(t, err)
	good := map[string]any{"name": "n", "command": "show version", "selector": map[string]any{"site": "ams1"}}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for gk, gv := range good {
			m[gk] = gv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name       string
		token      string
		body       map[string]any
		wantStatus int
		wantField  string
	}{
		{"no name", op, with("name", nil), http.StatusBadRequest, "name"},
		{"blank name", op, with("name", "  "), http.StatusBadRequest, "name"},
		{"no selector", op, with("selector", nil), http.StatusBadRequest, "selector"},
		{"empty selector", op, with("selector", map[string]any{}), http.StatusBadRequest, "selector"},
		{"bad device id", op, with("selector", map[string]any{"device_ids": []string{"ok", "not ok"}}), http.StatusBadRequest, "selector.device_ids[1]"},
		{"unknown platform", op, with("selector", map[string]any{"platform": "toaster"}), http.StatusBadRequest, "selector.platform"},
		{"bad tag key", op, with("selector", map[string]any{"tags": map[string]string{"bad key": "x"}}), http.StatusBadRequest, "selector.tags"},
		{"no command", op, with("command", nil), http.StatusBadRequest, "commands"},
		{"two-line command", op, with("command", "show a\nshow b"), http.StatusBadRequest, "command"},
		{"command and commands", op, with("commands", []any{"show clock"}), http.StatusBadRequest, "commands"},
		{"bad prompt", op, map[string]any{"name": "n", "selector": map[string]any{"site": "ams1"},
			"commands": []any{map[string]any{"command": "copy", "prompts": []any{map[string]any{"expect": "", "answer": "y"}}}}}, http.StatusBadRequest, "commands[0].prompts[0].expect"},
		{"bad timeout", op, with("options", map[string]any{"timeout_s": 9999}), http.StatusBadRequest, "options.timeout_s"},
		{"unknown time zone", op, with("schedule", map[string]any{"cron": "@daily", "time_zone": "Mars/Olympus", "enabled": true}), http.StatusBadRequest, "schedule.time_zone"},
		{"bad cron", op, with("schedule", map[string]any{"cron": "0 25 * * *", "enabled": true}), http.StatusBadRequest, "schedule.cron"},
		{"interval cron", op, with("schedule", map[string]any{"cron": "@every 5m", "enabled": true}), http.StatusBadRequest, "schedule.cron"},
		{"site out of the saver's scope", scoped, with("selector", map[string]any{"site": "fra1"}), http.StatusForbidden, "selector.site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(tt.token, "POST", "/v1/saved-jobs", "application/json", mustJSON(t, tt.body))
			require.Equal(t, tt.wantStatus, r.Status, "body %s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tt.wantField, eb.Error.Field, "field")
		})
	}
	r := e.do(e.tokens[auth.Admin], "GET", "/v1/saved-jobs", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Empty(t, listedIDs(t, r, "id"), "nothing was stored")
}

// TestSavedJobSecretAnswers: a saved job's secret answer is write-only, kept in the secret store
// under the saved job's own name, copied to each job it starts, replaced by a change of the
// commands and deleted with the saved job.
func TestSavedJobSecretAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedAt(e, "sa-r1", "ams1", "cisco_ios", nil)
	const secret = "saved-answer-s3cret"
	body := map[string]any{"name": "copy", "selector": map[string]any{"device_ids": []string{"sa-r1"}},
		"commands": []any{"show clock", map[string]any{"command": "copy scp: flash:", "prompts": []any{
			map[string]any{"expect": "Password:", "answer": secret, "secret": true},
			map[string]any{"expect": "[confirm]", "answer": "y"}}}}}
	// Saved by an operator, the copy is refused at every start by the policy, with the owner's
	// role, whoever starts it.
	byOperator := savedJob(e, e.tokens[auth.Operator], body)
	wantStatus(t, e.do(e.tokens[auth.Admin], "POST", "/v1/saved-jobs/"+byOperator.ID+"/run", "", nil), http.StatusForbidden, "command_denied", "an admin starts the operator's copy")
	wantStatus(t, e.do(e.tokens[auth.Admin], "DELETE", "/v1/saved-jobs/"+byOperator.ID, "", nil), http.StatusNoContent, "", "delete")
	op := e.tokens[auth.Admin]
	sj := savedJob(e, op, body)
	require.Len(t, sj.Commands, 2)
	require.Len(t, sj.Commands[1].Prompts, 2)
	assert.Nil(t, sj.Commands[1].Prompts[0].Answer, "the secret answer is left out")
	secretFiles := func() []string {
		t.Helper()
		var names []string
		entries, err := os.ReadDir(e.secretsDir)
		require.NoError(t, err)
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), "saved-jobs__") || strings.HasPrefix(en.Name(), "jobs__") {
				names = append(names, en.Name())
			}
		}
		return names
	}
	assert.Equal(t, []string{"saved-jobs__" + sj.ID + "__v1__answers.json"}, secretFiles(), "the saved job's answers")

	j, _ := runSaved(e, op, sj.ID)
	answers, err := e.enq.Answers.GetAnswers(t.Context(), j.JobID)
	require.NoError(t, err, "the job's own answers")
	assert.Equal(t, []string{secret}, answers, "copied to the job")

	r := e.do(op, "PATCH", "/v1/saved-jobs/"+sj.ID, "application/json", []byte(`{"name":"renamed"}`))
	require.Equal(t, http.StatusOK, r.Status, "rename: %s", r.Body)
	assert.Contains(t, secretFiles(), "saved-jobs__"+sj.ID+"__v1__answers.json", "a rename keeps the answers")
	r = e.do(op, "PATCH", "/v1/saved-jobs/"+sj.ID, "application/json", []byte(`{"command":"show version"}`))
	require.Equal(t, http.StatusOK, r.Status, "new command: %s", r.Body)
	assert.NotContains(t, secretFiles(), "saved-jobs__"+sj.ID+"__v1__answers.json", "new commands drop the old answers")
	wantStatus(t, e.do(op, "DELETE", "/v1/saved-jobs/"+sj.ID, "", nil), http.StatusNoContent, "", "delete")
	for _, f := range secretFiles() {
		assert.False(t, strings.HasPrefix(f, "saved-jobs__"+sj.ID), "left behind: %s", filepath.Base(f))
	}
	e.assertNoSecrets(secret)
	for _, en := range e.audit.Entries() {
		for _, v := range en.Detail {
			assert.NotContains(t, v, secret, "audit detail of %s", en.Action)
		}
	}
}

// TestRerunRefusals: the re-run's rules before any device is looked at.
func TestRerunRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedDevice(e, "rr-1")
	op := e.tokens[auth.Operator]
	r := e.do(op, "POST", "/v1/bulk", "application/json", []byte(`{"command":"show clock","device_ids":["rr-1"]}`))
	require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	var acc bulk.Accepted
	r.JSON(t, &acc)
	other, err := e.signer.Issue(auth.TokenSpec{Subject: "bob", Email: "bob@example.com", Groups: []string{"operator"}})
	require.NoError(t, err)
	path := "/v1/bulk/" + acc.JobID + "/rerun"
	tests := []struct {
		name       string
		token      string
		path       string
		body       string
		wantStatus int
		wantCode   string
		wantField  string
	}{
		{"no statuses", op, path, `{"statuses":[]}`, http.StatusBadRequest, "invalid", "statuses"},
		{"missing statuses", op, path, `{}`, http.StatusBadRequest, "invalid", "statuses"},
		{"unknown status", op, path, `{"statuses":["failed","bogus"]}`, http.StatusBadRequest, "invalid", "statuses[1]"},
		{"a status that is not terminal", op, path, `{"statuses":["running"]}`, http.StatusBadRequest, "invalid", "statuses[0]"},
		{"not finished", op, path, `{"statuses":["failed"]}`, http.StatusConflict, "job_not_finished", "job_id"},
		{"not the requester", other, path, `{"statuses":["failed"]}`, http.StatusForbidden, "forbidden", "job_id"},
		{"no such job", op, "/v1/bulk/no-such-job/rerun", `{"statuses":["failed"]}`, http.StatusNotFound, "not_found", "job_id"},
		{"viewer", e.tokens[auth.Viewer], path, `{"statuses":["failed"]}`, http.StatusForbidden, "forbidden", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(tt.token, "POST", tt.path, "application/json", []byte(tt.body))
			wantStatus(t, r, tt.wantStatus, tt.wantCode, tt.name)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tt.wantField, eb.Error.Field, "field")
		})
	}
}

// finishJob ends a one-batch job as an executor would, each device in the status given.
func finishJob(e *env, jobID string, statuses map[string]run.Status) {
	e.t.Helper()
	ctx := context.Background()
	var changes []bulk.Change
	for id, st := range statuses {
		changes = append(changes, bulk.Change{DeviceID: id, From: run.Queued, To: st, RunID: bulk.RunID(jobID, id)})
	}
	_, err := e.jobs.Record(ctx, jobID, 0, changes)
	require.NoError(e.t, err, "record")
	_, err = e.jobs.FinishBatch(ctx, jobID, 0)
	require.NoError(e.t, err, "finish batch")
	_, err = e.jobs.EndJob(ctx, jobID, bulk.JobCompleted, time.Now().UTC())
	require.NoError(e.t, err, "end job")
}

// startJob runs a bulk job as token on ids and returns its id.
func startJob(e *env, token string, ids ...string) string {
	e.t.Helper()
	r := e.do(token, "POST", "/v1/bulk", "application/json", mustJSON(e.t, map[string]any{"command": "show clock", "device_ids": ids}))
	require.Equal(e.t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	var acc bulk.Accepted
	r.JSON(e.t, &acc)
	return acc.JobID
}

// TestRerunLinksBothWays re-runs a finished job by statuses: the new job holds exactly the devices
// that ended in them, names the old job in rerun_of, and the old one lists it in reruns.
func TestRerunLinksBothWays(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	outcome := map[string]run.Status{"rl-ok": run.Succeeded, "rl-fail": run.Failed, "rl-down": run.Unreachable, "rl-auth": run.AuthFailed}
	ids := slices.Sorted(maps.Keys(outcome))
	for _, id := range ids {
		seedDevice(e, id)
	}
	op := e.tokens[auth.Operator]
	old := startJob(e, op, ids...)
	finishJob(e, old, outcome)
	tests := []struct {
		name     string
		statuses []string
		want     []string
	}{
		{"failed", []string{"failed"}, []string{"rl-fail"}},
		{"failed or unreachable", []string{"failed", "unreachable"}, []string{"rl-down", "rl-fail"}},
		{"all but succeeded", []string{"auth_failed", "failed", "unreachable"}, []string{"rl-auth", "rl-down", "rl-fail"}},
	}
	var reruns []string
	for _, tt := range tests {
		r := e.do(op, "POST", "/v1/bulk/"+old+"/rerun", "application/json", mustJSON(t, map[string]any{"statuses": tt.statuses}))
		require.Equal(t, http.StatusAccepted, r.Status, "%s: %s", tt.name, r.Body)
		var acc apiwire.BulkAccepted
		r.JSON(t, &acc)
		reruns = append(reruns, acc.JobID)
		r = e.do(op, "GET", "/v1/bulk/"+acc.JobID+"/devices", "", nil)
		require.Equal(t, http.StatusOK, r.Status)
		got := listedIDs(t, r, "device_id")
		slices.Sort(got)
		assert.Equal(t, tt.want, got, "%s: devices of the re-run", tt.name)
		r = e.do(op, "GET", "/v1/bulk/"+acc.JobID, "", nil)
		var j apiwire.Job
		r.JSON(t, &j)
		assert.Equal(t, old, j.RerunOf, "%s: rerun_of", tt.name)
		assert.Equal(t, "show clock", j.Command, "%s: the same command", tt.name)
	}
	r := e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+old, "", nil)
	var j apiwire.Job
	r.JSON(t, &j)
	assert.Equal(t, reruns, j.Reruns, "the old job lists its re-runs, oldest first")
	r = e.do(op, "POST", "/v1/bulk/"+old+"/rerun", "application/json", []byte(`{"statuses":["timed_out"]}`))
	wantStatus(t, r, http.StatusUnprocessableEntity, "no_devices", "no device timed out")
}

// savedJobAuditRows are the audit matrix's rows of the saved job and re-run routes (ok is an
// admin's token).
func savedJobAuditRows() map[string]auditRow {
	create := func(e *env, ok string) string {
		e.t.Helper()
		return savedJob(e, ok, map[string]any{"name": "aud", "command": "show clock", "selector": map[string]any{"device_ids": []string{"aud-1"}}}).ID
	}
	return map[string]auditRow{
		"POST /v1/saved-jobs": func(_ *env, ok, denied string) []auditRequest {
			body := `{"name":"aud","command":"show clock","selector":{"site":"ams1"}}`
			return []auditRequest{
				{"ok", ok, "/v1/saved-jobs", body, audit.OutcomeOK},
				{"failed", ok, "/v1/saved-jobs", `{"name":"aud","command":"show clock","selector":{}}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/saved-jobs", body, audit.OutcomeDenied},
			}
		},
		"PATCH /v1/saved-jobs/{id}": func(e *env, ok, denied string) []auditRequest {
			id := create(e, ok)
			return []auditRequest{
				{"ok", ok, "/v1/saved-jobs/" + id, `{"name":"renamed"}`, audit.OutcomeOK},
				{"failed", ok, "/v1/saved-jobs/no-such-saved-job", `{"name":"renamed"}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/saved-jobs/" + id, `{"name":"again"}`, audit.OutcomeDenied},
			}
		},
		"DELETE /v1/saved-jobs/{id}": func(e *env, ok, denied string) []auditRequest {
			id := create(e, ok)
			return []auditRequest{
				{"denied", denied, "/v1/saved-jobs/" + id, "", audit.OutcomeDenied},
				{"ok", ok, "/v1/saved-jobs/" + id, "", audit.OutcomeOK},
				{"failed", ok, "/v1/saved-jobs/" + id, "", audit.OutcomeFailed},
			}
		},
		"POST /v1/saved-jobs/{id}/run": func(e *env, ok, denied string) []auditRequest {
			id := create(e, ok)
			return []auditRequest{
				{"ok", ok, "/v1/saved-jobs/" + id + "/run", "", audit.OutcomeOK},
				{"failed", ok, "/v1/saved-jobs/no-such-saved-job/run", "", audit.OutcomeFailed},
				{"denied", denied, "/v1/saved-jobs/" + id + "/run", "", audit.OutcomeDenied},
			}
		},
		"POST /v1/bulk/{job_id}/rerun": func(e *env, ok, denied string) []auditRequest {
			id := startJob(e, ok, "aud-1")
			finishJob(e, id, map[string]run.Status{"aud-1": run.Failed})
			return []auditRequest{
				{"ok", ok, "/v1/bulk/" + id + "/rerun", `{"statuses":["failed"]}`, audit.OutcomeOK},
				{"failed", ok, "/v1/bulk/" + id + "/rerun", `{"statuses":["succeeded"]}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/bulk/" + id + "/rerun", `{"statuses":["failed"]}`, audit.OutcomeDenied},
			}
		},
	}
}

// The scope matrix's rows of the saved job and re-run routes: a saved job is in scope by its
// selector's site (or its owner's sites), a re-run by its job's sites.
func init() {
	// savedIn and savedOut are the admin's saved jobs on ams1 and fra1.
	saved := func(t *testing.T, f *scopeFixture, site string) string {
		t.Helper()
		return savedJob(f.e.forT(t), f.e.tokens[auth.Admin], map[string]any{"name": "on " + site, "command": "show clock", "selector": map[string]any{"site": site}}).ID
	}
	scopeCases["GET /v1/saved-jobs"] = func(t *testing.T, f *scopeFixture, role auth.Role) {
		in, out := saved(t, f, "ams1"), saved(t, f, "fra1")
		r := f.call(t, role, "GET", "/v1/saved-jobs", nil)
		wantStatus(t, r, http.StatusOK, "", "list")
		got := listedIDs(t, r, "id")
		assert.Contains(t, got, in, "the ams1 saved job")
		assert.NotContains(t, got, out, "the fra1 saved job")
	}
	scopeCases["POST /v1/saved-jobs"] = func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "POST", "/v1/saved-jobs", map[string]any{"name": "x", "command": "show clock", "selector": map[string]any{"site": "fra1"}}),
			http.StatusForbidden, "forbidden", "save on fra1")
		r := f.call(t, role, "POST", "/v1/saved-jobs", map[string]any{"name": "x", "command": "show clock", "selector": map[string]any{"tags": map[string]string{"role": "core"}}})
		wantStatus(t, r, http.StatusCreated, "", "save by tag")
		var sj apiwire.SavedJob
		r.JSON(t, &sj)
		assert.Equal(t, []string{"ams1"}, sj.Sites, "a scoped owner's saved job lies in their sites")
	}
	read := func(t *testing.T, f *scopeFixture, role auth.Role) {
		wantStatus(t, f.call(t, role, "GET", "/v1/saved-jobs/"+saved(t, f, "ams1"), nil), http.StatusOK, "", "the ams1 saved job")
		wantStatus(t, f.call(t, role, "GET", "/v1/saved-jobs/"+saved(t, f, "fra1"), nil), http.StatusNotFound, "not_found", "the fra1 saved job")
	}
	scopeCases["GET /v1/saved-jobs/{id}"] = read
	change := func(method, suffix string, body any, okStatus int) scopeCase {
		return func(t *testing.T, f *scopeFixture, role auth.Role) {
			wantStatus(t, f.call(t, role, method, "/v1/saved-jobs/"+saved(t, f, "fra1")+suffix, body), http.StatusNotFound, "not_found", "the fra1 saved job")
			wantStatus(t, f.call(t, role, method, "/v1/saved-jobs/"+saved(t, f, "ams1")+suffix, body), http.StatusForbidden, "forbidden", "the admin's ams1 saved job")
			r := f.call(t, role, "POST", "/v1/saved-jobs", map[string]any{"name": "own", "command": "show clock", "selector": map[string]any{"site": "ams1"}})
			wantStatus(t, r, http.StatusCreated, "", "save on ams1")
			var sj apiwire.SavedJob
			r.JSON(t, &sj)
			wantStatus(t, f.call(t, role, method, "/v1/saved-jobs/"+sj.ID+suffix, body), okStatus, "", "its own saved job")
		}
	}
	scopeCases["PATCH /v1/saved-jobs/{id}"] = change("PATCH", "", map[string]any{"name": "renamed"}, http.StatusOK)
	scopeCases["DELETE /v1/saved-jobs/{id}"] = change("DELETE", "", nil, http.StatusNoContent)
	scopeCases["POST /v1/saved-jobs/{id}/run"] = change("POST", "/run", nil, http.StatusAccepted)
	scopeCases["POST /v1/bulk/{job_id}/rerun"] = func(t *testing.T, f *scopeFixture, role auth.Role) {
		body := map[string]any{"statuses": []string{"failed"}}
		for _, j := range []string{f.jobOut, f.jobMixed} {
			wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+j+"/rerun", body), http.StatusNotFound, "not_found", "re-run an out-of-scope job")
		}
		wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+f.jobIn+"/rerun", body), http.StatusForbidden, "forbidden", "re-run the admin's ams1 job")
		r := f.call(t, role, "POST", "/v1/bulk", map[string]any{"command": "show clock", "device_ids": []string{f.in}})
		wantStatus(t, r, http.StatusAccepted, "", "bulk on ams1")
		var acc apiwire.BulkAccepted
		r.JSON(t, &acc)
		wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+acc.JobID+"/rerun", body), http.StatusConflict, "job_not_finished", "its own running job")
		finishJob(f.e.forT(t), acc.JobID, map[string]run.Status{f.in: run.Failed})
		wantStatus(t, f.call(t, role, "POST", "/v1/bulk/"+acc.JobID+"/rerun", body), http.StatusAccepted, "", "its own finished job")
	}
}

// TestRerunSecretAnswers: a job deletes its secret answers when it ends, so its re-run reads them
// again from the saved job that started it (while it holds the same sequence), and is refused
// naming job_id when there is none to read them from.
func TestRerunSecretAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedAt(e, "rs-1", "ams1", "cisco_ios", nil)
	admin := e.tokens[auth.Admin]
	const secret = "rerun-s3cret"
	commands := []any{map[string]any{"command": "copy scp: flash:", "prompts": []any{map[string]any{"expect": "Password:", "answer": secret, "secret": true}}}}
	rerun := func(jobID string) response {
		t.Helper()
		return e.do(admin, "POST", "/v1/bulk/"+jobID+"/rerun", "application/json", []byte(`{"statuses":["failed"]}`))
	}
	end := func(jobID string) {
		t.Helper()
		finishJob(e, jobID, map[string]run.Status{"rs-1": run.Failed})
		require.NoError(t, e.enq.Answers.DeleteAnswers(context.Background(), jobID), "the job's end deletes its answers")
	}

	r := e.do(admin, "POST", "/v1/bulk", "application/json", mustJSON(t, map[string]any{"commands": commands, "device_ids": []string{"rs-1"}}))
	require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	var plain apiwire.BulkAccepted
	r.JSON(t, &plain)
	end(plain.JobID)
	r = rerun(plain.JobID)
	wantStatus(t, r, http.StatusBadRequest, "invalid", "a plain job's answers are gone")
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "job_id", eb.Error.Field)

	sj := savedJob(e, admin, map[string]any{"name": "copy", "commands": commands, "selector": map[string]any{"device_ids": []string{"rs-1"}}})
	first, _ := runSaved(e, admin, sj.ID)
	end(first.JobID)
	r = rerun(first.JobID)
	require.Equal(t, http.StatusAccepted, r.Status, "re-run of a saved job's job: %s", r.Body)
	var acc apiwire.BulkAccepted
	r.JSON(t, &acc)
	answers, err := e.enq.Answers.GetAnswers(context.Background(), acc.JobID)
	require.NoError(t, err)
	assert.Equal(t, []string{secret}, answers, "the saved job's answers, copied to the re-run")

	r = e.do(admin, "PATCH", "/v1/saved-jobs/"+sj.ID, "application/json", []byte(`{"command":"show version"}`))
	require.Equal(t, http.StatusOK, r.Status, "change the saved job's commands: %s", r.Body)
	wantStatus(t, rerun(first.JobID), http.StatusBadRequest, "invalid", "the saved job no longer runs that sequence")
	e.assertNoSecrets(secret)
}

// TestSavedJobSchedule: a schedule is stored with its time zone and GET shows the next 5 due
// times while it is enabled, none once it is paused.
func TestSavedJobSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	op := e.tokens[auth.Operator]
	sj := savedJob(e, op, map[string]any{"name": "nightly", "command": "show version", "selector": map[string]any{"site": "ams1"},
		"schedule": map[string]any{"cron": "30 2 * * *", "time_zone": "Europe/Berlin", "enabled": true}})
	require.NotNil(t, sj.Schedule)
	assert.Equal(t, apiwire.Schedule{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", Enabled: true}, *sj.Schedule)
	require.Len(t, sj.NextRuns, 5)
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	for i, at := range sj.NextRuns {
		assert.True(t, at.After(time.Now()), "next run %d is to come", i)
		if local := at.In(berlin); local.Day() != 29 || local.Month() != time.March { // 02:30 that day does not exist
			assert.Equal(t, "02:30", local.Format("15:04"), "next run %d in Berlin", i)
		}
	}
	r := e.do(op, "PATCH", "/v1/saved-jobs/"+sj.ID, "application/json", mustJSON(t, map[string]any{"schedule": map[string]any{"cron": "@hourly", "enabled": false}}))
	require.Equal(t, http.StatusOK, r.Status, "pause: %s", r.Body)
	r = e.do(op, "GET", "/v1/saved-jobs/"+sj.ID, "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var got apiwire.SavedJob
	r.JSON(t, &got)
	require.NotNil(t, got.Schedule)
	assert.Equal(t, apiwire.Schedule{Cron: "@hourly", TimeZone: "UTC", Enabled: false}, *got.Schedule)
	assert.Empty(t, got.NextRuns, "a paused schedule has no next runs")
}
