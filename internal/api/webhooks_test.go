package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/webhook"
)

// The webhook routes need admin on every site: a webhook receives every site's events.
func init() {
	for _, route := range []string{
		"GET /v1/webhooks", "POST /v1/webhooks", "GET /v1/webhooks/{id}", "PATCH /v1/webhooks/{id}", "DELETE /v1/webhooks/{id}",
		"POST /v1/webhooks/{id}/rotate-secret", "POST /v1/webhooks/{id}/test", "GET /v1/webhooks/{id}/deliveries",
	} {
		scopeCases[route] = globalOnly
	}
}

// hookReceiver is a local webhook receiver that records what it got.
type hookReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
	bodies  [][]byte
	paths   []string
	status  int
}

func newHookReceiver(t *testing.T, status int) *hookReceiver {
	t.Helper()
	r := &hookReceiver{status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.headers, r.bodies, r.paths = append(r.headers, req.Header.Clone()), append(r.bodies, b), append(r.paths, req.URL.Path)
		r.mu.Unlock()
		w.WriteHeader(r.status)
	}))
	t.Cleanup(r.Close)
	return r
}

// createWebhook creates a webhook as admin from body and returns the answer.
func createWebhook(e *env, body map[string]any) apiwire.WebhookCreated {
	e.t.Helper()
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/webhooks", "application/json", mustJSON(e.t, body))
	require.Equal(e.t, http.StatusCreated, r.Status, "create webhook: %s", r.Body)
	var h apiwire.WebhookCreated
	r.JSON(e.t, &h)
	return h
}

func TestWebhookLifecycle(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	const token = "T0KEN-p4th-s3cret"
	rcv := newHookReceiver(t, http.StatusOK)
	url := rcv.URL + "/services/" + token

	created := createWebhook(e, map[string]any{"name": "ops", "url": url, "events": []string{"Job Finished"}, "format": "slack", "allow_private_cidrs": []string{"127.0.0.0/8"}})
	assert.True(t, strings.HasPrefix(created.SigningSecret, "whsec_"))
	assert.Equal(t, "http://"+rcv.Listener.Addr().String(), created.Endpoint, "only scheme and host are shown")
	assert.Equal(t, []string{"Job Finished"}, created.Events)
	assert.True(t, created.Enabled)
	secret := created.SigningSecret

	// From here on no answer may carry the signing secret, and none ever the URL.
	e.seen = &syncBuffer{}
	r := e.do(admin, "GET", "/v1/webhooks/"+created.ID, "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, `"1"`, r.Header.Get("ETag"))
	r = e.do(admin, "GET", "/v1/webhooks", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var list apiwire.WebhookList
	r.JSON(t, &list)
	require.Len(t, list.Items, 1)
	assert.Equal(t, created.Webhook, list.Items[0])

	// A test delivery reaches the receiver, signed with the secret shown once.
	r = e.do(admin, "POST", "/v1/webhooks/"+created.ID+"/test", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "test: %s", r.Body)
	var a apiwire.WebhookDelivery
	r.JSON(t, &a)
	assert.Equal(t, "delivered", a.Outcome)
	assert.Equal(t, 200, a.StatusCode)
	assert.Equal(t, webhook.DetailTypeTest, a.DetailType)
	rcv.mu.Lock()
	require.Len(t, rcv.bodies, 1)
	h, body := rcv.headers[0], rcv.bodies[0]
	rcv.mu.Unlock()
	require.NoError(t, webhook.Verify(secret, h.Get(webhook.HeaderTimestamp), h.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute))
	assert.Contains(t, string(body), `"text":"NetAuto: a test delivery to webhook \"ops\""`)

	r = e.do(admin, "GET", "/v1/webhooks/"+created.ID+"/deliveries", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var log apiwire.WebhookDeliveryList
	r.JSON(t, &log)
	require.Len(t, log.Items, 1)
	assert.Equal(t, a, log.Items[0])

	// Disable by hand, then enable: the reason comes and goes.
	r = e.do(admin, "PATCH", "/v1/webhooks/"+created.ID, "application/json", []byte(`{"enabled":false}`), "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var got apiwire.Webhook
	r.JSON(t, &got)
	assert.False(t, got.Enabled)
	assert.Equal(t, "disabled by an admin", got.DisabledReason)
	r = e.do(admin, "PATCH", "/v1/webhooks/"+created.ID, "application/json", []byte(`{"enabled":true,"format":"json","events":[]}`), "If-Match", `"1"`)
	assert.Equal(t, http.StatusConflict, r.Status, "a stale If-Match")
	r = e.do(admin, "PATCH", "/v1/webhooks/"+created.ID, "application/json", []byte(`{"enabled":true,"format":"json","events":[]}`))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	got = apiwire.Webhook{}
	r.JSON(t, &got)
	assert.True(t, got.Enabled)
	assert.Empty(t, got.DisabledReason)
	assert.Equal(t, []string{}, got.Events)

	// A new secret is shown once and signs from then on.
	r = e.do(admin, "POST", "/v1/webhooks/"+created.ID+"/rotate-secret", "", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var rotated apiwire.WebhookCreated
	r.JSON(t, &rotated)
	assert.NotEqual(t, secret, rotated.SigningSecret)
	r = e.do(admin, "POST", "/v1/webhooks/"+created.ID+"/test", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	rcv.mu.Lock()
	h, body = rcv.headers[1], rcv.bodies[1]
	rcv.mu.Unlock()
	assert.NoError(t, webhook.Verify(rotated.SigningSecret, h.Get(webhook.HeaderTimestamp), h.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute))
	assert.Error(t, webhook.Verify(secret, h.Get(webhook.HeaderTimestamp), h.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute))

	// A new URL needs a new secret (the old receiver knows the current one): refused without
	// rotate_secret, nothing changed; with it the new secret is in the answer and signs.
	const token2 = "N3W-p4th-s3cret"
	moved := mustJSON(t, map[string]any{"url": rcv.URL + "/services/" + token2})
	r = e.do(admin, "PATCH", "/v1/webhooks/"+created.ID, "application/json", moved)
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "rotate_secret", eb.Error.Field)
	assert.Contains(t, eb.Error.Message, "must be true when url changes")
	assert.NotContains(t, string(r.Body), token2, "the refusal does not echo the URL")
	r = e.do(admin, "GET", "/v1/webhooks/"+created.ID, "", nil)
	assert.Equal(t, `"3"`, r.Header.Get("ETag"), "nothing changed")
	moved = mustJSON(t, map[string]any{"url": rcv.URL + "/services/" + token2, "rotate_secret": true})
	r = e.do(admin, "PATCH", "/v1/webhooks/"+created.ID, "application/json", moved)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var movedHook apiwire.WebhookCreated
	r.JSON(t, &movedHook)
	assert.True(t, strings.HasPrefix(movedHook.SigningSecret, "whsec_"))
	assert.NotEqual(t, rotated.SigningSecret, movedHook.SigningSecret)
	assert.NotContains(t, string(r.Body), token2)
	r = e.do(admin, "GET", "/v1/webhooks/"+created.ID, "", nil)
	assert.NotContains(t, string(r.Body), movedHook.SigningSecret, "shown once")
	r = e.do(admin, "POST", "/v1/webhooks/"+created.ID+"/test", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	rcv.mu.Lock()
	require.Len(t, rcv.paths, 3)
	h, body, path := rcv.headers[2], rcv.bodies[2], rcv.paths[2]
	rcv.mu.Unlock()
	assert.Equal(t, "/services/"+token2, path, "delivered to the new URL")
	assert.NoError(t, webhook.Verify(movedHook.SigningSecret, h.Get(webhook.HeaderTimestamp), h.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute))
	assert.Error(t, webhook.Verify(rotated.SigningSecret, h.Get(webhook.HeaderTimestamp), h.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute),
		"the old receiver's secret signs nothing sent to the new one")

	r = e.do(admin, "DELETE", "/v1/webhooks/"+created.ID, "", nil)
	require.Equal(t, http.StatusNoContent, r.Status)
	r = e.do(admin, "GET", "/v1/webhooks/"+created.ID, "", nil)
	assert.Equal(t, http.StatusNotFound, r.Status)
	r = e.do(admin, "GET", "/v1/webhooks/"+created.ID+"/deliveries", "", nil)
	assert.Equal(t, http.StatusNotFound, r.Status)

	e.assertNoSecrets(token, secret)
	e.assertNoSecrets(token2)
	for _, entry := range e.audit.Entries() {
		for _, v := range entry.Detail {
			assert.NotContains(t, v, token, "an audit entry holds the URL")
			assert.NotContains(t, v, token2, "an audit entry holds the URL")
		}
	}
}

func TestWebhookBadInput(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	const token = "XXsecretXX"
	for _, tc := range []struct {
		name, body, field string
		status            int
	}{
		{"empty body", ``, "body", 400},
		{"unknown field", `{"name":"n","url":"https://h.example.com","secret":"x"}`, "secret", 400},
		{"no url", `{"name":"n"}`, "url", 400},
		{"http without a range", `{"name":"n","url":"http://h.example.com/` + token + `"}`, "url", 400},
		{"loopback", `{"name":"n","url":"https://127.0.0.1/` + token + `"}`, "url", 400},
		{"metadata", `{"name":"n","url":"https://169.254.169.254/` + token + `"}`, "url", 400},
		{"unknown event", `{"name":"n","url":"https://h.example.com","events":["Job Started"]}`, "events[0]", 400},
		{"format", `{"name":"n","url":"https://h.example.com","format":"xml"}`, "format", 400},
		{"range", `{"name":"n","url":"https://h.example.com","allow_private_cidrs":["nope"]}`, "allow_private_cidrs[0]", 400},
		{"events of the wrong type", `{"name":"n","url":"https://h.example.com","events":"Job Finished"}`, "events", 400},
		{"oversized", `{"name":"n","url":"https://h.example.com/` + strings.Repeat("a", 70<<10) + `"}`, "body", 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(admin, "POST", "/v1/webhooks", "application/json", []byte(tc.body))
			require.Equal(t, tc.status, r.Status, "%s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tc.field, eb.Error.Field, "%s", r.Body)
			assert.NotContains(t, string(r.Body), token)
		})
	}
	r := e.do(admin, "GET", "/v1/webhooks", "", nil)
	var list apiwire.WebhookList
	r.JSON(t, &list)
	assert.Empty(t, list.Items, "nothing was created")
	r = e.do(admin, "GET", "/v1/webhooks/bad%20id", "", nil)
	assert.Equal(t, http.StatusBadRequest, r.Status)
	r = e.do(admin, "GET", "/v1/webhooks/nope/deliveries?limit=0", "", nil)
	assert.Equal(t, http.StatusBadRequest, r.Status)
	e.assertNoSecrets(token)
}

func TestWebhookRoutesAreAdminOnly(t *testing.T) {
	e := newEnv(t)
	for _, role := range []auth.Role{auth.Viewer, auth.Operator} {
		r := e.do(e.tokens[role], "GET", "/v1/webhooks", "", nil)
		assert.Equal(t, http.StatusForbidden, r.Status, "%s", role)
		r = e.do(e.tokens[role], "POST", "/v1/webhooks", "application/json", []byte(`{"name":"n","url":"https://h.example.com"}`))
		assert.Equal(t, http.StatusForbidden, r.Status, "%s", role)
	}
}

// webhookAuditRows are the audit matrix's rows of the webhook routes (ok is an admin's token).
func webhookAuditRows() map[string]auditRow {
	create := func(e *env) string {
		e.t.Helper()
		rcv := newHookReceiver(e.t, http.StatusOK)
		return createWebhook(e, map[string]any{"name": "aud", "url": rcv.URL, "allow_private_cidrs": []string{"127.0.0.0/8"}}).ID
	}
	byID := func(suffix, body string, deleteFirst bool) auditRow {
		return func(e *env, ok, denied string) []auditRequest {
			id := create(e)
			reqs := []auditRequest{
				{"ok", ok, "/v1/webhooks/" + id + suffix, body, audit.OutcomeOK},
				{"failed", ok, "/v1/webhooks/no-such-webhook" + suffix, body, audit.OutcomeFailed},
				{"denied", denied, "/v1/webhooks/" + id + suffix, body, audit.OutcomeDenied},
			}
			if deleteFirst { // the denied request comes while the webhook still exists
				reqs[0], reqs[2] = reqs[2], reqs[0]
			}
			return reqs
		}
	}
	return map[string]auditRow{
		"POST /v1/webhooks": func(_ *env, ok, denied string) []auditRequest {
			body := `{"name":"aud","url":"https://hooks.example.com/x"}`
			return []auditRequest{
				{"ok", ok, "/v1/webhooks", body, audit.OutcomeOK},
				{"failed", ok, "/v1/webhooks", `{"name":"aud"}`, audit.OutcomeFailed},
				{"denied", denied, "/v1/webhooks", body, audit.OutcomeDenied},
			}
		},
		"PATCH /v1/webhooks/{id}":              byID("", `{"name":"renamed"}`, false),
		"DELETE /v1/webhooks/{id}":             byID("", "", true),
		"POST /v1/webhooks/{id}/rotate-secret": byID("/rotate-secret", "", false),
		"POST /v1/webhooks/{id}/test":          byID("/test", "", false),
	}
}

// TestWebhookEventTypesInOpenAPI holds the document's WebhookEventType enum to the detail types
// a webhook's filter takes.
func TestWebhookEventTypesInOpenAPI(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []string `yaml:"enum"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	require.NoError(t, yaml.Unmarshal(api.OpenAPIYAML(), &doc))
	assert.Equal(t, webhook.EventTypes(), doc.Components.Schemas["WebhookEventType"].Enum)
}
