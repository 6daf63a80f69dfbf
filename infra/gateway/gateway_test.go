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

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
)

func newSigner(t *testing.T) *auth.Signer {
	t.Helper()
	s, err := auth.LoadOrCreateSigner(t.TempDir() + "/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGatewayServesTheAPIHandlerAndTheUI(t *testing.T) {
	signer := newSigner(t)
	handler := app.WithIdentity(func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		id, ok := auth.FromContext(ctx)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: fmt.Sprintf("path=%s identity=%v role=%s", ev.RawPath, ok, id.Role)}, nil
	})
	web := t.TempDir()
	if err := writeFile(web+"/index.html", "<h1>NetAuto</h1>"); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{API: handler, WebDir: web, Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	token, err := signer.Issue(auth.TokenSpec{Subject: "u1", Groups: []string{"operator"}})
	if err != nil {
		t.Fatal(err)
	}

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
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tc.wantStatus, body)
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("body %s does not contain %s", body, tc.wantBody)
			}
			if tc.token != "" && strings.Contains(string(body), tc.token) {
				t.Errorf("response echoes the token")
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
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/devices/r%2F1?tag=a&tag=b", strings.NewReader(`{"x":1}`))
	token, _ := signer.Issue(auth.TokenSpec{Subject: "u1", Email: "u1@example.com", Groups: []string{"admin", "viewer"}})
	req.Header.Set("Authorization", "Bearer "+token)
	req.AddCookie(&http.Cookie{Name: "c", Value: "1"})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 || resp.Header.Get("X-Test") != "yes" || string(body) != "{}" {
		t.Errorf("response %d %v %q: want 201, X-Test, decoded body {}", resp.StatusCode, resp.Header, body)
	}
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
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if _, err := json.Marshal(got); err != nil {
		t.Errorf("event does not encode: %v", err)
	}
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}
