package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/policy"
)

// deniedBody is the 403 answer of a command the policy refuses.
type deniedBody struct {
	Error apiwire.Error `json:"error"`
}

// TestCommandDenied: an operator's reload, abbreviated or chained, is refused on POST /v1/runs
// and POST /v1/bulk with 403 command_denied naming the rule and the refused devices, and nothing
// is enqueued; one refused device refuses the whole job. An admin may run it.
func TestCommandDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, op := e.tokens[auth.Admin], e.tokens[auth.Operator]
	rows := []map[string]any{
		deviceJSON("ios1", nil),
		deviceJSON("ios2", nil),
		deviceJSON("lnx1", map[string]any{"platform": "linux"}),
	}
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))

	tests := []struct {
		name, path string
		body       map[string]any
		rule       string
		devices    []string
	}{
		{"run reload", "/v1/runs", map[string]any{"device_id": "ios1", "command": "reload"}, "deny-reload", []string{"ios1"}},
		{"run abbreviated", "/v1/runs", map[string]any{"device_id": "ios1", "command": "  REL  "}, "deny-reload", []string{"ios1"}},
		{"run chained", "/v1/runs", map[string]any{"device_id": "ios1", "command": "show clock ; wr er"}, "deny-write-erase", []string{"ios1"}},
		{"bulk write erase", "/v1/bulk", map[string]any{"device_ids": []string{"ios1", "ios2"}, "command": "wr er"}, "deny-write-erase", []string{"ios1", "ios2"}},
		{"bulk one linux device refuses the job", "/v1/bulk", map[string]any{"device_ids": []string{"ios1", "lnx1", "ios2"}, "command": "show version"}, policy.DefaultDenyRule, []string{"lnx1"}},
	}
	for _, tt := range tests {
		r := e.do(op, "POST", tt.path, "application/json", mustJSON(t, tt.body))
		require.Equal(t, http.StatusForbidden, r.Status, "%s: %s", tt.name, r.Body)
		var b deniedBody
		r.JSON(t, &b)
		assert.Equal(t, policy.Code, b.Error.Code, tt.name)
		assert.Equal(t, tt.rule, b.Error.Rule, tt.name)
		assert.Equal(t, "command", b.Error.Field, tt.name)
		assert.Equal(t, tt.devices, b.Error.Devices, tt.name)
		assert.Contains(t, b.Error.Message, tt.rule, tt.name)
	}
	assert.Empty(t, e.queued(t), "a refused command enqueues nothing")
	assert.Zero(t, e.jobCount(t), "a refused command stores no job")

	r = e.do(op, "POST", "/v1/bulk", "application/json", mustJSON(t, map[string]any{"device_ids": []string{"ios1", "ios2"}, "command": "sh run | i host"}))
	assert.Equal(t, http.StatusAccepted, r.Status, "an operator's read-only command: %s", r.Body)
	r = e.do(admin, "POST", "/v1/runs", "application/json", mustJSON(t, map[string]any{"device_id": "ios1", "command": "reload"}))
	assert.Equal(t, http.StatusAccepted, r.Status, "an admin's reload: %s", r.Body)
}

func TestPolicyRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, op, viewer := e.tokens[auth.Admin], e.tokens[auth.Operator], e.tokens[auth.Viewer]
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, []map[string]any{deviceJSON("ios1", nil), deviceJSON("lnx1", map[string]any{"platform": "linux"})}))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))

	// The defaults, version 0, for admins only.
	assert.Equal(t, http.StatusForbidden, e.do(op, "GET", "/v1/policy", "", nil).Status, "operator reads the policy")
	r = e.do(admin, "GET", "/v1/policy", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "get: %s", r.Body)
	var p apiwire.Policy
	r.JSON(t, &p)
	assert.True(t, p.Default)
	assert.Zero(t, p.Version)
	assert.Len(t, p.Rules, len(policy.Defaults()))
	assert.Equal(t, `"0"`, r.Header.Get("ETag"))

	// Bad rules are named and nothing is stored.
	bad := []struct {
		name  string
		body  string
		field string
	}{
		{"no version", `{"rules":[]}`, "version"},
		{"no rules", `{"version":0}`, "rules"},
		{"bad pattern", `{"version":0,"rules":[{"id":"a","effect":"allow","pattern":"x"},{"id":"b","effect":"deny","pattern":"a $ b"}]}`, "rules[1].pattern"},
		{"bad effect", `{"version":0,"rules":[{"id":"a","effect":"maybe","pattern":"x"}]}`, "rules[0].effect"},
		{"bad platform", `{"version":0,"rules":[{"id":"a","effect":"allow","platforms":["vax"],"pattern":"x"}]}`, "rules[0].platforms[0]"},
		{"unknown field", `{"version":0,"rules":[{"id":"a","effect":"allow","pattern":"x","when":"now"}]}`, "when"},
	}
	for _, tt := range bad {
		r := e.do(admin, "PUT", "/v1/policy", "application/json", []byte(tt.body))
		require.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", tt.name, r.Body)
		var b errorBody
		r.JSON(t, &b)
		assert.Equal(t, tt.field, b.Error.Field, "%s: %s", tt.name, r.Body)
	}
	assert.True(t, func() bool {
		var p apiwire.Policy
		e.do(admin, "GET", "/v1/policy", "", nil).JSON(t, &p)
		return p.Default
	}(), "nothing was stored")

	// Store a policy that lets operators run anything on Linux and nothing else.
	rules := []apiwire.PolicyRule{
		{ID: "linux-ops", Effect: "allow", Roles: []string{"operator"}, Platforms: []string{"linux"}, Pattern: "**"},
	}
	assert.Equal(t, http.StatusForbidden, e.do(op, "PUT", "/v1/policy", "application/json", mustJSON(t, map[string]any{"version": 0, "rules": rules})).Status, "operator writes the policy")
	r = e.do(admin, "PUT", "/v1/policy", "application/json", mustJSON(t, map[string]any{"version": 0, "rules": rules}))
	require.Equal(t, http.StatusOK, r.Status, "put: %s", r.Body)
	r.JSON(t, &p)
	assert.Equal(t, int64(1), p.Version)
	assert.Equal(t, "admin@example.com", p.UpdatedBy)
	r = e.do(admin, "PUT", "/v1/policy", "application/json", mustJSON(t, map[string]any{"rules": rules}), "If-Match", `"0"`)
	assert.Equal(t, http.StatusConflict, r.Status, "a stale version loses: %s", r.Body)

	// The check answers per device with the stored policy.
	r = e.do(op, "POST", "/v1/policy/check", "application/json", []byte(`{"command":"reboot","device_ids":["ios1","lnx1"]}`))
	require.Equal(t, http.StatusOK, r.Status, "check: %s", r.Body)
	var c apiwire.PolicyCheck
	r.JSON(t, &c)
	assert.Equal(t, apiwire.PolicyCheck{Allowed: false, Version: 1, Devices: []apiwire.PolicyVerdict{
		{DeviceID: "ios1", Rule: policy.DefaultDenyRule, Reason: "no rule allows this command for the operator role"},
		{DeviceID: "lnx1", Allowed: true},
	}}, c)
	assert.Equal(t, http.StatusForbidden, e.do(viewer, "POST", "/v1/policy/check", "application/json", []byte(`{"command":"x","device_ids":["ios1"]}`)).Status, "viewer checks")
	r = e.do(op, "POST", "/v1/policy/check", "application/json", []byte(`{"command":"x","device_ids":["nope"]}`))
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "unknown device: %s", r.Body)
	r = e.do(op, "POST", "/v1/policy/check", "application/json", []byte(`{"command":"","device_ids":["ios1"]}`))
	assert.Equal(t, http.StatusBadRequest, r.Status, "empty command: %s", r.Body)
}

// TestCancelOnlyByRequesterOrAdmin: another operator may not cancel a job (403 naming the rule),
// its requester and an admin may.
func TestCancelOnlyByRequesterOrAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, op := e.tokens[auth.Admin], e.tokens[auth.Operator]
	other, err := e.signer.Issue(auth.TokenSpec{Subject: "op2", Email: "op2@example.com", Groups: []string{"operator"}})
	require.NoError(t, err)
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, []map[string]any{deviceJSON("ios1", nil)}))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	newJob := func() string {
		t.Helper()
		r := e.do(op, "POST", "/v1/bulk", "application/json", []byte(`{"command":"show version","device_ids":["ios1"],"options":{"max_concurrency":1}}`))
		require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
		var acc apiwire.BulkAccepted
		r.JSON(t, &acc)
		return acc.JobID
	}
	j1, j2 := newJob(), newJob()
	r = e.do(other, "POST", "/v1/bulk/"+j1+"/cancel", "", nil)
	require.Equal(t, http.StatusForbidden, r.Status, "another operator cancels: %s", r.Body)
	var b errorBody
	r.JSON(t, &b)
	assert.Equal(t, "job_id", b.Error.Field)
	assert.Contains(t, b.Error.Message, "only the job's requester (operator@example.com) or an admin")
	assert.Equal(t, http.StatusAccepted, e.do(op, "POST", "/v1/bulk/"+j1+"/cancel", "", nil).Status, "the requester cancels")
	assert.Equal(t, http.StatusAccepted, e.do(admin, "POST", "/v1/bulk/"+j2+"/cancel", "", nil).Status, "an admin cancels")
}
