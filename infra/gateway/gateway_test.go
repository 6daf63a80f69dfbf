package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
)

func newSigner(t *testing.T) *auth.Signer {
	t.Helper()
	s, err := auth.LoadOrCreateSigner(t.TempDir() + "/key.pem")
	require.NoError(t, err, "signer")
	return s
}

func TestGatewayServesTheAPIHandlerAndTheUI(t *testing.T) {
	signer := newSigner(t)
	handler := app.WithIdentity(func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		id, ok := auth.FromContext(ctx)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: fmt.Sprintf("path=%s identity=%v role=%s", ev.RawPath, ok, id.Role)}, nil
	})
	web := t.TempDir()
	require.NoError(t, writeFile(web+"/index.html", "<h1>NetAuto</h1>"), "write index.html")
	gw, err := gateway.New(gateway.Options{API: handler, WebDir: web, Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)})
	require.NoError(t, err, "new gateway")
	srv := httptest.NewServer(gw)
	defer srv.Close()
	token, err := signer.Issue(auth.TokenSpec{Subject: "u1", Groups: []string{"operator"}})
	require.NoError(t, err, "issue token")

	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       string
		wantStatus int
		wantBody   string
	}{
		{name: "health needs no token", method: "GET", path: "/v1/health", wantStatus: 200, wantBody: "identity=false"},
		{name: "openapi needs no token", method: "GET", path: "/v1/openapi.json", wantStatus: 200, wantBody: "path=/v1/openapi.json"},
		{name: "protected route without token", method: "GET", path: "/v1/devices", wantStatus: 401, wantBody: `"code":"unauthorized"`},
		{name: "protected route with token", method: "GET", path: "/v1/devices", token: token, wantStatus: 200, wantBody: "identity=true role=operator"},
		{name: "garbage token", method: "GET", path: "/v1/devices", token: "abc.def.ghi", wantStatus: 401, wantBody: "rejected"},
		{name: "ui", method: "GET", path: "/", wantStatus: 200, wantBody: "<h1>NetAuto</h1>"},
		{name: "oversized body", method: "POST", path: "/v1/devices", token: token, body: strings.Repeat("x", gateway.MaxBodyBytes+1), wantStatus: 413, wantBody: `"code":"payload_too_large"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err, "%s %s", tc.method, tc.path)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tc.wantStatus, resp.StatusCode, "status of %s %s (%s)", tc.method, tc.path, body)
			assert.Contains(t, string(body), tc.wantBody, "body of %s %s", tc.method, tc.path)
			if tc.token != "" {
				// Checked without printing the body: a failure must not show the token.
				assert.False(t, strings.Contains(string(body), tc.token), "response echoes the token")
			}
		})
	}
}

func TestGatewayBuildsPayloadV2Events(t *testing.T) {
	var got events.APIGatewayV2HTTPRequest
	signer := newSigner(t)
	gw, err := gateway.New(gateway.Options{API: func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got = ev
		return events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"X-Test": "yes"}, Body: "e30=", IsBase64Encoded: true}, nil
	}, Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)})
	require.NoError(t, err, "new gateway")
	srv := httptest.NewServer(gw)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/devices/r%2F1?tag=a&tag=b", strings.NewReader(`{"x":1}`))
	token, _ := signer.Issue(auth.TokenSpec{Subject: "u1", Email: "u1@example.com", Groups: []string{"admin", "viewer"}})
	req.Header.Set("Authorization", "Bearer "+token)
	req.AddCookie(&http.Cookie{Name: "c", Value: "1"})
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "POST /v1/devices/r%2F1")
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, 201, resp.StatusCode, "status")
	assert.Equal(t, "yes", resp.Header.Get("X-Test"), "X-Test header")
	assert.Equal(t, "{}", string(body), "decoded body")
	checks := []struct{ name, got, want string }{
		{"version", got.Version, "2.0"},
		{"method", got.RequestContext.HTTP.Method, "POST"},
		{"raw path keeps escapes", got.RawPath, "/v1/devices/r%2F1"},
		{"query joined", got.QueryStringParameters["tag"], "a,b"},
		{"lower-case headers", got.Headers["authorization"], "Bearer " + token},
		{"authorizer claims", got.RequestContext.Authorizer.JWT.Claims["email"], "u1@example.com"},
		{"groups flattened as API Gateway does", got.RequestContext.Authorizer.JWT.Claims["cognito:groups"], "[admin viewer]"},
		{"body", got.Body, `{"x":1}`},
		{"cookies", strings.Join(got.Cookies, ";"), "c=1"},
		{"stage", got.RequestContext.Stage, "$default"},
	}
	for _, c := range checks {
		assert.Equal(t, c.want, c.got, c.name)
	}
	_, err = json.Marshal(got)
	assert.NoError(t, err, "event does not encode")
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}
