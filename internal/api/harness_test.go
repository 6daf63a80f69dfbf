package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/credprofile"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
	"github.com/netauto/netauto/internal/secrets"
	"github.com/netauto/netauto/internal/webhook"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// env is one test's whole API: its own tables on DynamoDB Local, a file secret store, the api
// handler behind the Lambda adapter, and the local gateway with its JWT check, on a real socket.
type env struct {
	t *testing.T
	// st is the test's own tables and queues on the local stack.
	st  *stacktest.Env
	url string
	// handler is the api handler itself, for requests that skip the gateway.
	handler http.Handler
	signer  *auth.Signer
	tokens  map[auth.Role]string
	store   *dynamo.DeviceStore
	secrets *secrets.FileStore
	// secretsDir is the file secret store's folder.
	secretsDir string
	logs       *syncBuffer
	// jumpHosts is the jump host registry the API serves, for tests that record pending keys.
	jumpHosts *jumphost.Registry
	// seen collects every response body, so a test can assert no secret ever left the API.
	seen *syncBuffer
	// audit counts the audit entries the handler records; they are stored in the audit table too.
	audit *audittest.Recorder
	// jobReads counts the items the job store reads from DynamoDB.
	jobReads *stacktest.ReadCounter
	// enq is the API's enqueuer, for tests that set its limits before their first request; jobs
	// is its job store.
	enq  *bulk.Enqueuer
	jobs *dynamo.JobStore
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// teeRecorder records each entry in both recorders.
type teeRecorder [2]audit.Recorder

func (t teeRecorder) Record(ctx context.Context, e audit.Entry) error {
	return errors.Join(t[0].Record(ctx, e), t[1].Record(ctx, e))
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

func openAPIRouter(t *testing.T) routers.Router {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(api.OpenAPIYAML())
		if err != nil {
			specErr = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = err
			return
		}
		doc.Servers = nil // match any host
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	require.NoError(t, specErr, "openapi.yaml")
	return specRouter
}

// A unified diff (GET /v1/runs/{id}/diff) is checked as the plain text it is.
func init() { openapi3filter.RegisterBodyDecoder("text/x-diff", openapi3filter.PlainBodyDecoder) }

func newEnv(t *testing.T) *env {
	t.Helper()
	st := stacktest.New(t)
	store, err := dynamo.NewDeviceStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	secretsDir := t.TempDir() + "/secrets"
	sec, err := secrets.NewFileStore(secretsDir)
	require.NoError(t, err)
	inv, err := device.NewInventory(store, sec)
	require.NoError(t, err)
	profileStore, err := dynamo.NewProfileStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	profiles, err := credprofile.NewRegistry(profileStore, sec)
	require.NoError(t, err)
	inv.UseProfiles(profiles)
	jumpStore, err := dynamo.NewJumpHostStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	jumpHosts, err := jumphost.NewRegistry(jumpStore, sec)
	require.NoError(t, err)
	inv.UseJumpHosts(jumpHosts)
	// "lab" is the shared profile the tests' devices name; it allows every device.
	_, err = profiles.Create(context.Background(), credprofile.Input{
		Profile: credprofile.Profile{ID: "lab", AllowedSites: []string{credprofile.AnySite}},
		Secret:  device.Credential{Password: "lab-secret"},
	})
	require.NoError(t, err)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ddb := stack.DynamoDBClient(st.Endpoints.DynamoDB)
	jobReads := stacktest.NewReadCounter(ddb)
	jobs, err := dynamo.NewJobStore(jobReads, st.Names.Tables[resources.JobsTable])
	require.NoError(t, err)
	runs, err := dynamo.NewRunStore(ddb, st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	sender, err := queue.NewSender(stack.SQSClient(st.Endpoints.SQS), st.Names.Queues[resources.BulkQueue])
	require.NoError(t, err)
	answers, err := secrets.NewJobAnswers(sec)
	require.NoError(t, err)
	enq := &bulk.Enqueuer{Inventory: store, Jobs: jobs, Queue: sender, BatchSize: 50, Answers: answers}
	purger, err := newPurger(ddb, st)
	require.NoError(t, err)
	policies, err := dynamo.NewPolicyStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	auditStore, err := dynamo.NewAuditStore(ddb, st.Names.Tables[resources.AuditTable], 0)
	require.NoError(t, err)
	rec := &audittest.Recorder{}
	filters, err := dynamo.NewFilterStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	savedStore, err := dynamo.NewSavedJobStore(ddb, st.Names.Tables[resources.SavedJobsTable])
	require.NoError(t, err)
	savedAnswers, err := secrets.NewSavedJobAnswers(sec)
	require.NoError(t, err)
	saved, err := savedjob.New(savedStore, savedAnswers, inv)
	require.NoError(t, err)
	hookStore, err := dynamo.NewWebhookStore(ddb, st.Names.Tables[resources.WebhooksTable])
	require.NoError(t, err)
	hookSecrets, err := secrets.NewWebhooks(sec)
	require.NoError(t, err)
	hooks, err := webhook.NewRegistry(hookStore, hookSecrets, webhook.AllowLoopback())
	require.NoError(t, err)
	srv, err := api.New(api.Options{Devices: inv, Profiles: profiles, JumpHosts: jumpHosts, Bulk: enq, Jobs: jobs, Runs: runs, Usage: runs, Retention: purger, Logger: logger, Health: map[string]any{"runtime": "test"}, Policy: policies, Filters: filters, SavedJobs: saved,
		Webhooks: hooks, WebhookTester: &webhook.Notifier{Store: hookStore, Secrets: hookSecrets, AllowLoopback: true, Logger: logger},
		Audit: teeRecorder{rec, audit.NewTrail(auditStore, logger)}, AuditLog: auditStore})
	require.NoError(t, err)
	signer, err := auth.LoadOrCreateSigner(t.TempDir() + "/key.pem")
	require.NoError(t, err)
	gw, err := gateway.New(gateway.Options{
		API:      app.WithIdentity(httpadapter.NewV2(srv).ProxyWithContext),
		Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience),
		Logger:   logger,
	})
	require.NoError(t, err)
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	e := &env{t: t, st: st, url: hs.URL, handler: srv, signer: signer, tokens: map[auth.Role]string{}, store: store, secrets: sec, secretsDir: secretsDir, jumpHosts: jumpHosts, logs: logs, seen: &syncBuffer{}, audit: rec, jobReads: jobReads, enq: enq, jobs: jobs}
	for _, r := range []auth.Role{auth.Viewer, auth.Operator, auth.Admin} {
		tok, err := signer.Issue(auth.TokenSpec{Subject: string(r) + "-user", Email: string(r) + "@example.com", Groups: []string{string(r)}})
		require.NoError(t, err)
		e.tokens[r] = tok
	}
	return e
}

// response is a finished request: status, headers and body.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test when it is not JSON.
func (r response) JSON(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "body %q is not JSON", r.Body)
}

// errorBody is the API's error shape.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// do sends a request with the given token ("" for none) and validates the response against the
// OpenAPI document: an undocumented status, header or body shape fails the test.
func (e *env) do(token, method, path, contentType string, body []byte, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	_, _ = e.seen.Write(out)
	e.validate(req, body, resp, out)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: out}
}

func (e *env) validate(req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	e.t.Helper()
	router := openAPIRouter(e.t)
	vreq := req.Clone(context.Background())
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
			return // an undocumented route is expected to be refused
		}
		assert.Fail(e.t, "an undocumented route answered", "%s %s answered %d but is not in openapi.yaml: %v", req.Method, req.URL.Path, resp.StatusCode, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	assert.NoError(e.t, openapi3filter.ValidateResponse(context.Background(), out),
		"%s %s: response %d does not match openapi.yaml\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, truncate(body))
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// mustJSON encodes v.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// deviceJSON is a valid device body with overrides applied.
func deviceJSON(id string, overrides map[string]any) map[string]any {
	d := map[string]any{
		"id": id, "name": "router " + id, "host": "10.0.0.1", "port": 22, "platform": "cisco_ios",
		"username": "netops", "password": "s3cret-" + id, "tags": map[string]string{"role": "core"}, "site": "ams1",
	}
	for k, v := range overrides {
		if v == nil {
			delete(d, k)
			continue
		}
		d[k] = v
	}
	return d
}

// assertNoSecrets fails when any of the secrets appears in a response body or a log line.
func (e *env) assertNoSecrets(secrets ...string) {
	e.t.Helper()
	for _, s := range secrets {
		// The message names the secret, never the text around it (which may hold others).
		assert.False(e.t, strings.Contains(e.seen.String(), s), "a response contains the secret %q", s)
		assert.False(e.t, strings.Contains(e.logs.String(), s), "a log line contains the secret %q", s)
	}
}

// forT returns a copy of e whose requests report to t, so subtests (also parallel ones) can
// share one env's tables and gateway.
func (e *env) forT(t *testing.T) *env {
	t.Helper()
	c := *e
	c.t = t
	return &c
}

// snapshot is what the inventory holds: every device id with its version.
func (e *env) snapshot() map[string]int64 {
	e.t.Helper()
	out := map[string]int64{}
	p := device.Page{Limit: device.MaxPageSize}
	for {
		ds, next, err := e.store.List(context.Background(), device.Filter{}, p)
		require.NoError(e.t, err, "list store")
		for _, d := range ds {
			out[d.ID] = d.Version
		}
		if next == "" {
			return out
		}
		p.Cursor = next
	}
}

// assertUnchanged fails when the inventory differs from before (a device added, removed or
// changed) or when any of ids has a stored credential.
func (e *env) assertUnchanged(before map[string]int64, ids ...string) {
	e.t.Helper()
	after := e.snapshot()
	for id, v := range after {
		if bv, ok := before[id]; assert.True(e.t, ok, "device %q was written", id) {
			assert.Equal(e.t, bv, v, "device %q's version changed", id)
		}
	}
	for id := range before {
		assert.Contains(e.t, after, id, "device %q was deleted", id)
	}
	for _, id := range ids {
		_, err := e.secrets.Get(context.Background(), device.SecretName(id))
		assert.Error(e.t, err, "a credential was stored for %q", id)
	}
}

// benchEnv is newEnv for benchmarks: the same tables, secret store, api handler and gateway with
// its JWT check, without the per-response OpenAPI validation.
type benchEnv struct {
	url   string
	admin string
	store *dynamo.DeviceStore
}

func newBenchEnv(b *testing.B) *benchEnv {
	b.Helper()
	st := stacktest.New(b)
	store, err := dynamo.NewDeviceStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.DevicesTable])
	require.NoError(b, err)
	sec, err := secrets.NewFileStore(b.TempDir() + "/secrets")
	require.NoError(b, err)
	inv, err := device.NewInventory(store, sec)
	require.NoError(b, err)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	ddb := stack.DynamoDBClient(st.Endpoints.DynamoDB)
	jobs, err := dynamo.NewJobStore(ddb, st.Names.Tables[resources.JobsTable])
	require.NoError(b, err)
	runs, err := dynamo.NewRunStore(ddb, st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(b, err)
	sender, err := queue.NewSender(stack.SQSClient(st.Endpoints.SQS), st.Names.Queues[resources.BulkQueue])
	require.NoError(b, err)
	enq := &bulk.Enqueuer{Inventory: store, Jobs: jobs, Queue: sender, BatchSize: 50}
	srv, err := api.New(api.Options{Devices: inv, Bulk: enq, Jobs: jobs, Runs: runs, Logger: logger})
	require.NoError(b, err)
	signer, err := auth.LoadOrCreateSigner(b.TempDir() + "/key.pem")
	require.NoError(b, err)
	gw, err := gateway.New(gateway.Options{
		API:      app.WithIdentity(httpadapter.NewV2(srv).ProxyWithContext),
		Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience),
		Logger:   logger,
	})
	require.NoError(b, err)
	hs := httptest.NewServer(gw)
	b.Cleanup(hs.Close)
	tok, err := signer.Issue(auth.TokenSpec{Subject: "bench", Groups: []string{string(auth.Admin)}})
	require.NoError(b, err)
	return &benchEnv{url: hs.URL, admin: tok, store: store}
}
