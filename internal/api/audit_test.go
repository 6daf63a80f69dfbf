package api_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// auditRequest is one request of the audit matrix and the outcome its one entry must record.
type auditRequest struct {
	name    string
	token   string
	path    string
	body    string
	outcome string
}

// auditRow sets up what a mutating route's requests need and returns them: one that succeeds,
// one that fails, and one the role check refuses. Every mutating route of openapi.yaml has a row.
type auditRow func(e *env, ok, denied string) []auditRequest

func auditRows() map[string]auditRow {
	threeWay := func(path, good, bad string) auditRow {
		return func(_ *env, ok, denied string) []auditRequest {
			return []auditRequest{
				{"ok", ok, path, good, audit.OutcomeOK},
				{"failed", ok, path, bad, audit.OutcomeFailed},
				{"denied", denied, path, good, audit.OutcomeDenied},
			}
		}
	}
	rows := map[string]auditRow{
		"POST /v1/devices": threeWay("/v1/devices", `{"id":"aud-new","name":"n","host":"192.0.2.10","platform":"cisco_ios","username":"u","password":"p"}`, `{}`),
		"POST /v1/devices/import": threeWay("/v1/devices/import",
			`[{"id":"aud-imp","name":"n","host":"192.0.2.11","platform":"cisco_ios","username":"u","password":"p"}]`, `not json`),
		"POST /v1/devices/last-runs": threeWay("/v1/devices/last-runs", `{"device_ids":["aud-1"]}`, `{}`),
		"POST /v1/devices/bulk-update": threeWay("/v1/devices/bulk-update",
			`{"device_ids":["aud-1"],"set":{"jump_host_ids":[]}}`, `{"device_ids":["no-such-device"],"set":{"jump_host_ids":[]}}`),
		"PATCH /v1/devices/{id}": func(_ *env, ok, denied string) []auditRequest {
			return []auditRequest{
				{"ok", ok, "/v1/devices/aud-1", `{"name":"renamed"}`, audit.OutcomeOK},
				{"failed", ok, "/v1/devices/no-such-device", `{"name":"renamed"}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/devices/aud-1", `{"name":"again"}`, audit.OutcomeDenied},
			}
		},
		"DELETE /v1/devices/{id}": func(e *env, ok, denied string) []auditRequest {
			seedDevice(e, "aud-del")
			return []auditRequest{
				{"denied", denied, "/v1/devices/aud-del", "", audit.OutcomeDenied},
				{"ok", ok, "/v1/devices/aud-del", "", audit.OutcomeOK},
				{"failed", ok, "/v1/devices/" + strings.Repeat("x", 300), "", audit.OutcomeFailed},
			}
		},
		"POST /v1/runs": threeWay("/v1/runs", `{"device_id":"aud-1","command":"show version"}`, `{"device_id":"no-such-device","command":"show version"}`),
		"POST /v1/bulk": threeWay("/v1/bulk", `{"command":"show version","device_ids":["aud-1"]}`, `{"command":"show version","device_ids":["no-such-device"]}`),
		"POST /v1/bulk/{job_id}/cancel": func(e *env, ok, denied string) []auditRequest {
			r := e.do(ok, "POST", "/v1/bulk", "application/json", []byte(`{"command":"show clock","device_ids":["aud-1"]}`))
			require.Equal(e.t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
			var acc apiwire.BulkAccepted
			r.JSON(e.t, &acc)
			return []auditRequest{
				{"ok", ok, "/v1/bulk/" + acc.JobID + "/cancel", "", audit.OutcomeOK},
				{"failed", ok, "/v1/bulk/no-such-job/cancel", "", audit.OutcomeFailed},
				{"denied", denied, "/v1/bulk/" + acc.JobID + "/cancel", "", audit.OutcomeDenied},
			}
		},
		"PUT /v1/policy":                   threeWay("/v1/policy", `{"version":0,"rules":[{"id":"all","effect":"allow","pattern":"**"}]}`, `{"rules":[]}`),
		"PUT /v1/platforms/{name}/filters": threeWay("/v1/platforms/cisco_ios/filters", `{"filters":[{"pattern":"^! Site \\d+$"}]}`, `{"filters":[{"pattern":"("}]}`),
		"POST /v1/policy/check":            threeWay("/v1/policy/check", `{"command":"show version","device_ids":["aud-1"]}`, `{"command":"show version","device_ids":["no-such-device"]}`),
		"POST /v1/retention/purge":         threeWay("/v1/retention/purge", "", "a body"),
		"POST /v1/devices/{id}/host-key/accept": func(e *env, ok, denied string) []auditRequest {
			key := freshHostKey(e.t)
			r := e.do(ok, "POST", "/v1/devices", "application/json",
				mustJSON(e.t, deviceJSON("aud-hk", map[string]any{"host_key": freshHostKey(e.t), "trust_on_first_use": true})))
			require.Equal(e.t, http.StatusCreated, r.Status, "create: %s", r.Body)
			p, err := device.NewPendingHostKey(key, time.Now())
			require.NoError(e.t, err)
			require.NoError(e.t, e.store.SetPendingHostKey(context.Background(), "aud-hk", p))
			body := `{"fingerprint":"` + p.Fingerprint + `"}`
			return []auditRequest{
				{"denied", denied, "/v1/devices/aud-hk/host-key/accept", body, audit.OutcomeDenied},
				{"ok", ok, "/v1/devices/aud-hk/host-key/accept", body, audit.OutcomeOK},
				{"failed", ok, "/v1/devices/aud-hk/host-key/accept", body, audit.OutcomeFailed},
			}
		},
		"POST /v1/credential-profiles": threeWay("/v1/credential-profiles",
			`{"id":"aud-prof","allowed_sites":["*"],"password":"aud-secret"}`, `{"id":"aud-bad","password":"x","allowed_tags":[{}]}`),
		"PATCH /v1/credential-profiles/{id}": func(_ *env, ok, denied string) []auditRequest {
			return []auditRequest{
				{"ok", ok, "/v1/credential-profiles/lab", `{"allowed_sites":["*","ams1"]}`, audit.OutcomeOK},
				{"failed", ok, "/v1/credential-profiles/no-such-profile", `{"allowed_sites":["*"]}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/credential-profiles/lab", `{"password":"stolen"}`, audit.OutcomeDenied},
			}
		},
		"DELETE /v1/credential-profiles/{id}": func(e *env, ok, denied string) []auditRequest {
			r := e.do(ok, "POST", "/v1/credential-profiles", "application/json", []byte(`{"id":"aud-gone","allowed_sites":["*"],"password":"p"}`))
			require.Equal(e.t, http.StatusCreated, r.Status, "create profile: %s", r.Body)
			return []auditRequest{
				{"denied", denied, "/v1/credential-profiles/aud-gone", "", audit.OutcomeDenied},
				{"ok", ok, "/v1/credential-profiles/aud-gone", "", audit.OutcomeOK},
				{"failed", ok, "/v1/credential-profiles/aud-gone", "", audit.OutcomeFailed},
			}
		},
		"POST /v1/jump-hosts": threeWay("/v1/jump-hosts",
			`{"id":"aud-jump","host":"192.0.2.20","username":"u","password":"aud-secret"}`, `{"id":"aud-jump-bad","host":"192.0.2.20","username":"u"}`),
		"PATCH /v1/jump-hosts/{id}": func(e *env, ok, denied string) []auditRequest {
			createJumpHost(e, "aud-jump-p", nil)
			return []auditRequest{
				{"ok", ok, "/v1/jump-hosts/aud-jump-p", `{"username":"other"}`, audit.OutcomeOK},
				{"failed", ok, "/v1/jump-hosts/no-such-jump-host", `{"username":"other"}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/jump-hosts/aud-jump-p", `{"password":"stolen"}`, audit.OutcomeDenied},
			}
		},
		"DELETE /v1/jump-hosts/{id}": func(e *env, ok, denied string) []auditRequest {
			createJumpHost(e, "aud-jump-gone", nil)
			return []auditRequest{
				{"denied", denied, "/v1/jump-hosts/aud-jump-gone", "", audit.OutcomeDenied},
				{"ok", ok, "/v1/jump-hosts/aud-jump-gone", "", audit.OutcomeOK},
				{"failed", ok, "/v1/jump-hosts/aud-jump-gone", "", audit.OutcomeFailed},
			}
		},
		"POST /v1/jump-hosts/{id}/host-key/accept": func(e *env, ok, denied string) []auditRequest {
			createJumpHost(e, "aud-jump-hk", nil)
			p := pendJumpHostKey(e, "aud-jump-hk")
			body := `{"fingerprint":"` + p.Fingerprint + `"}`
			return []auditRequest{
				{"denied", denied, "/v1/jump-hosts/aud-jump-hk/host-key/accept", body, audit.OutcomeDenied},
				{"ok", ok, "/v1/jump-hosts/aud-jump-hk/host-key/accept", body, audit.OutcomeOK},
				{"failed", ok, "/v1/jump-hosts/aud-jump-hk/host-key/accept", body, audit.OutcomeFailed},
			}
		},
	}
	maps.Copy(rows, savedJobAuditRows())
	maps.Copy(rows, webhookAuditRows())
	return rows
}

// TestEveryMutatingRouteWritesOneAuditEntry drives every POST, PUT, PATCH and DELETE route of
// openapi.yaml through the gateway: each request — allowed, failed, or refused by the role check —
// writes exactly one audit entry, with the route's action, the caller, the outcome and API
// Gateway's request id and source address. A mutating route without a row fails the test.
func TestEveryMutatingRouteWritesOneAuditEntry(t *testing.T) {
	e := newEnv(t)
	seedDevice(e, "aud-1")
	admin := e.tokens[auth.Admin]
	noRole, err := e.signer.Issue(auth.TokenSpec{Subject: "nobody", Email: "nobody@example.com"})
	require.NoError(t, err)
	rows := auditRows()
	for _, o := range documentedOperations(t) {
		switch o.method {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		default:
			continue
		}
		row, ok := rows[o.String()]
		if !assert.True(t, ok, "%s is a mutating route without a row in auditRows", o) {
			continue
		}
		delete(rows, o.String())
		t.Run(o.String(), func(t *testing.T) {
			e := e.forT(t)
			var action string
			for _, req := range row(e, admin, noRole) {
				e.audit.Reset()
				ctype := ""
				if req.body != "" {
					ctype = "application/json"
				}
				resp := e.do(req.token, o.method, req.path, ctype, []byte(req.body))
				entries := e.audit.Entries()
				require.Len(t, entries, 1, "%s (%s) answered %d %s", req.name, req.path, resp.Status, resp.Body)
				got := entries[0]
				assert.Equal(t, req.outcome, got.Outcome, "%s: outcome (answer %d %s)", req.name, resp.Status, resp.Body)
				if req.outcome != audit.OutcomeOK {
					assert.NotEmpty(t, got.Reason, "%s: a refusal or failure says why", req.name)
				}
				if action == "" {
					action = got.Action
				}
				assert.Equal(t, action, got.Action, "%s: the same action whatever the outcome", req.name)
				assert.Regexp(t, `^[a-z_]+\.[a-z_]+$`, got.Action, "%s: action is <resource>.<verb>", req.name)
				wantActor := "admin@example.com"
				if req.token == noRole {
					wantActor = "nobody@example.com"
				}
				assert.Equal(t, wantActor, got.Actor, req.name)
				assert.NotEmpty(t, got.RequestID, "%s: the request id", req.name)
				assert.Equal(t, "127.0.0.1", got.Source, "%s: the caller's address", req.name)
			}
		})
	}
	for route := range rows {
		assert.Fail(t, "auditRows has a row for a route openapi.yaml does not document", route)
	}
}

// TestAuditEntriesOfChanges checks what the entries of a few changes carry: the target, the
// command of a run, the counts of an import, and that no secret is in any.
func TestAuditEntriesOfChanges(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	seedDevice(e, "aud-2")
	cases := []struct {
		name, method, path, body string
		action, target           string
		detail                   map[string]string
	}{
		{"run", "POST", "/v1/runs", `{"device_id":"aud-2","command":"show running-config"}`, "run.create", "",
			map[string]string{"command": "show running-config", "device_id": "aud-2"}},
		{"bulk", "POST", "/v1/bulk", `{"command":"show clock","device_ids":["aud-2"]}`, "job.create", "",
			map[string]string{"command": "show clock", "devices": "1"}},
		{"import", "POST", "/v1/devices/import", `[{"id":"aud-3","name":"n","host":"192.0.2.12","platform":"cisco_ios","username":"u","password":"hunter2-secret"}]`,
			"device.import", "none", map[string]string{"rows": "1", "created": "1"}},
		{"update", "PATCH", "/v1/devices/aud-2", `{"password":"another-secret"}`, "device.update", "aud-2", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			e.audit.Reset()
			r := e.do(admin, tc.method, tc.path, "application/json", []byte(tc.body))
			require.Less(t, r.Status, 300, "%s", r.Body)
			entries := e.audit.Entries()
			require.Len(t, entries, 1)
			got := entries[0]
			assert.Equal(t, tc.action, got.Action)
			switch tc.target {
			case "none":
				assert.Empty(t, got.Target, "an import has no one target")
			case "":
				assert.NotEmpty(t, got.Target, "the new run's or job's id")
			default:
				assert.Equal(t, tc.target, got.Target)
			}
			for k, v := range tc.detail {
				assert.Equal(t, v, got.Detail[k], "detail %s", k)
			}
			for _, v := range got.Detail {
				assert.NotContains(t, v, "secret")
			}
		})
	}
	assert.NotContains(t, e.logs.String(), "hunter2-secret")
	assert.NotContains(t, e.logs.String(), "another-secret")
}

// TestListAudit reads the trail back through GET /v1/audit: admin only, filters, newest first,
// pages, and 400 naming each bad parameter.
func TestListAudit(t *testing.T) {
	e := newEnv(t)
	admin, op := e.tokens[auth.Admin], e.tokens[auth.Operator]
	start := time.Now().UTC().Add(-time.Second)
	for _, id := range []string{"aud-l1", "aud-l2", "aud-l3"} {
		seedDevice(e, id)
	}
	r := e.do(admin, "PATCH", "/v1/devices/aud-l2", "application/json", []byte(`{"name":"x"}`))
	require.Equal(t, http.StatusOK, r.Status)
	r = e.do(op, "DELETE", "/v1/devices/aud-l3", "", nil)
	require.Equal(t, http.StatusForbidden, r.Status)

	list := func(query string) apiwire.AuditList {
		t.Helper()
		r := e.do(admin, "GET", "/v1/audit?"+query, "", nil)
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", query, r.Body)
		var l apiwire.AuditList
		r.JSON(t, &l)
		return l
	}
	actions := func(l apiwire.AuditList) []string {
		out := []string{}
		for _, it := range l.Items {
			out = append(out, it.Action+" "+it.Target+" "+it.Outcome)
		}
		return out
	}
	assert.Equal(t, []string{"device.delete aud-l3 denied", "device.update aud-l2 ok", "device.create aud-l3 ok", "device.create aud-l2 ok", "device.create aud-l1 ok"},
		actions(list("")), "newest first")
	assert.Equal(t, []string{"device.update aud-l2 ok", "device.create aud-l2 ok"}, actions(list("target=aud-l2")))
	assert.Equal(t, []string{"device.delete aud-l3 denied"}, actions(list("actor="+url.QueryEscape("operator@example.com"))))
	assert.Equal(t, []string{"device.update aud-l2 ok"}, actions(list("action=device.update&since="+url.QueryEscape(start.Format(time.RFC3339)))))
	assert.Empty(t, list("since="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))).Items)

	// Pages of two, following next.
	var paged []string
	query := "limit=2"
	for range 10 {
		l := list(query)
		assert.LessOrEqual(t, len(l.Items), 2)
		paged = append(paged, actions(l)...)
		if l.Next == "" {
			break
		}
		query = "limit=2&cursor=" + url.QueryEscape(l.Next)
	}
	assert.Equal(t, actions(list("")), paged, "the pages add up to the whole list")

	assert.Equal(t, http.StatusForbidden, e.do(op, "GET", "/v1/audit", "", nil).Status, "an operator reads the trail")
	for _, tc := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"cursor=bogus", "cursor"},
		{"colour=red", "colour"},
		{"actor=a&actor=b", "actor"},
		{"target=" + strings.Repeat("t", 300), "target"},
	} {
		r := e.do(admin, "GET", "/v1/audit?"+tc.query, "", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "%s: %s", tc.query, r.Body)
		var body apiwire.ErrorBody
		r.JSON(t, &body)
		assert.Equal(t, tc.field, body.Error.Field, tc.query)
	}
}
