package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/resources"
)

const uiOrigin = "http://127.0.0.1:8081"

// corsGateway is a gateway allowing origins whose handler counts its calls and tries to set CORS
// headers of its own (which the gateway must drop, as API Gateway does).
func corsGateway(t *testing.T, origins ...string) (srv *httptest.Server, token string, calls *atomic.Int64) {
	t.Helper()
	signer := newSigner(t)
	calls = &atomic.Int64{}
	gw, err := gateway.New(gateway.Options{
		API: func(_ context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			calls.Add(1)
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "{}", Headers: map[string]string{
				"Access-Control-Allow-Origin": "https://evil.example", "X-Output-Bytes": "2",
			}}, nil
		},
		Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience), DevSignIn: signer, CORSOrigins: origins,
	})
	require.NoError(t, err)
	srv = httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	token, err = signer.Issue(auth.TokenSpec{Subject: "u1", Groups: []string{"viewer"}})
	require.NoError(t, err)
	return srv, token, calls
}

func TestCORSPreflight(t *testing.T) {
	cfg := resources.HTTPAPICORS()
	allowed := map[string]string{
		"Access-Control-Allow-Origin":  uiOrigin,
		"Access-Control-Allow-Methods": strings.Join(cfg.AllowMethods, ","),
		"Access-Control-Allow-Headers": strings.Join(cfg.AllowHeaders, ","),
		"Access-Control-Max-Age":       "600",
	}
	cases := []struct {
		name    string
		origins []string
		path    string
		headers map[string]string
		want    map[string]string // nil: no CORS header at all
	}{
		{name: "allowed origin, method and headers", origins: []string{uiOrigin}, path: "/v1/devices",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}, want: allowed},
		{name: "requested headers in any case and spacing", origins: []string{uiOrigin}, path: "/v1/devices/r1",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "Content-Type, Authorization"}, want: allowed},
		{name: "configured origin with a trailing slash and upper case", origins: []string{"HTTP://127.0.0.1:8081/"}, path: "/v1/devices",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "GET"}, want: allowed},
		{name: "any origin", origins: []string{"*"}, path: "/v1/devices",
			headers: map[string]string{"Origin": "https://anywhere.example", "Access-Control-Request-Method": "DELETE"},
			want:    map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": allowed["Access-Control-Allow-Methods"]}},
		{name: "dev sign-in", origins: []string{uiOrigin}, path: "/dev/token",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}, want: allowed},
		{name: "origin not allowed", origins: []string{uiOrigin}, path: "/v1/devices",
			headers: map[string]string{"Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "GET"}},
		{name: "no origins configured", path: "/v1/devices",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "GET"}},
		{name: "method not allowed", origins: []string{uiOrigin}, path: "/v1/devices",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "TRACE"}},
		{name: "method in lower case is another method", origins: []string{uiOrigin}, path: "/v1/devices",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "patch"}},
		{name: "header not allowed", origins: []string{uiOrigin}, path: "/v1/devices",
			headers: map[string]string{"Origin": uiOrigin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-debug"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, calls := corsGateway(t, tc.origins...)
			req, err := http.NewRequest(http.MethodOptions, srv.URL+tc.path, nil)
			require.NoError(t, err)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, http.StatusNoContent, resp.StatusCode, "a preflight is answered by the gateway, without a token (%s)", body)
			assert.Zero(t, calls.Load(), "the handler is not invoked for a preflight")
			got := map[string]string{}
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					got[k] = resp.Header.Get(k)
				}
			}
			want := tc.want
			if want == nil {
				want = map[string]string{}
			}
			for k, v := range want {
				assert.Equal(t, v, got[k], k)
			}
			if tc.want == nil {
				assert.Empty(t, got, "a refused preflight carries no CORS header")
			}
		})
	}
}

func TestCORSActualRequests(t *testing.T) {
	expose := strings.Join(resources.HTTPAPICORS().ExposeHeaders, ",")
	cases := []struct {
		name       string
		method     string
		path       string
		origin     string
		withToken  bool
		body       string
		wantStatus int
		wantOrigin string // "" : no Access-Control-Allow-Origin
	}{
		{name: "allowed origin", method: "GET", path: "/v1/devices", origin: uiOrigin, withToken: true, wantStatus: 200, wantOrigin: uiOrigin},
		{name: "the authorizer's refusal is readable cross-origin", method: "GET", path: "/v1/devices", origin: uiOrigin, wantStatus: 401, wantOrigin: uiOrigin},
		{name: "OPTIONS that is no preflight goes to the authorizer", method: "OPTIONS", path: "/v1/devices", origin: uiOrigin, wantStatus: 401, wantOrigin: uiOrigin},
		{name: "dev sign-in", method: "POST", path: "/dev/token", origin: uiOrigin, body: `{"email":"a@example.com","role":"viewer"}`, wantStatus: 200, wantOrigin: uiOrigin},
		{name: "origin not allowed", method: "GET", path: "/v1/devices", origin: "https://evil.example", withToken: true, wantStatus: 200},
		{name: "same origin (no Origin header)", method: "GET", path: "/v1/devices", withToken: true, wantStatus: 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, token, _ := corsGateway(t, uiOrigin)
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.withToken {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Equal(t, tc.wantOrigin, resp.Header.Get("Access-Control-Allow-Origin"), "the handler's own CORS headers are dropped")
			if tc.wantOrigin != "" {
				assert.Equal(t, expose, resp.Header.Get("Access-Control-Expose-Headers"))
			} else {
				assert.Empty(t, resp.Header.Get("Access-Control-Expose-Headers"))
			}
			assert.Contains(t, resp.Header.Values("Vary"), "Origin")
		})
	}
}

func TestCORSOriginsAreValidated(t *testing.T) {
	cases := []struct {
		name, origin, want string
		wantErr            bool
	}{
		{name: "http with port", origin: "http://127.0.0.1:8081", want: "http://127.0.0.1:8081"},
		{name: "https default port dropped", origin: "https://UI.example.com:443/", want: "https://ui.example.com"},
		{name: "any", origin: "*", want: "*"},
		{name: "a path", origin: "https://ui.example.com/app", wantErr: true},
		{name: "no scheme", origin: "ui.example.com", wantErr: true},
		{name: "another scheme", origin: "ftp://ui.example.com", wantErr: true},
		{name: "a query", origin: "https://ui.example.com?x=1", wantErr: true},
	}
	signer := newSigner(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gateway.NormalizeOrigin(tc.origin)
			_, newErr := gateway.New(gateway.Options{API: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
				return events.APIGatewayV2HTTPResponse{}, nil
			}, Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience), CORSOrigins: []string{tc.origin}})
			if tc.wantErr {
				assert.Error(t, err)
				assert.ErrorContains(t, newErr, "must be scheme://host[:port]")
				return
			}
			require.NoError(t, err)
			require.NoError(t, newErr)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestUIOriginNamesTheAPIOfAnotherOrigin(t *testing.T) {
	web := t.TempDir()
	require.NoError(t, writeFile(web+"/index.html", "<h1>NetAuto</h1>"))
	cfg := gateway.UIConfig{APIURL: "http://127.0.0.1:8080", WSURL: "ws://127.0.0.1:8080/ws", Auth: gateway.UIAuth{Mode: "dev"}}
	srv := httptest.NewServer(gateway.NewUIOrigin(web, cfg))
	defer srv.Close()
	cases := []struct {
		name, path string
		wantStatus int
		wantBody   string
	}{
		{name: "index", path: "/", wantStatus: 200, wantBody: "<h1>NetAuto</h1>"},
		{name: "config", path: "/config.json", wantStatus: 200, wantBody: `"api_url":"http://127.0.0.1:8080"`},
		{name: "no API here", path: "/v1/devices", wantStatus: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tc.path)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
			assert.Contains(t, string(body), tc.wantBody)
			if tc.path == "/config.json" {
				var got gateway.UIConfig
				require.NoError(t, json.Unmarshal(body, &got))
				assert.Equal(t, cfg, got)
			}
		})
	}
}

func TestWebSocketFromTheUIOrigin(t *testing.T) {
	signer := newSigner(t)
	gw, err := gateway.New(gateway.Options{
		API: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200}, nil
		},
		WS: func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 200}, nil
		},
		Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience), CORSOrigins: []string{uiOrigin},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()
	cases := []struct {
		name       string
		origin     string
		wantStatus int
	}{
		{name: "the UI's origin", origin: uiOrigin, wantStatus: http.StatusSwitchingProtocols},
		{name: "the gateway's own origin", origin: srv.URL, wantStatus: http.StatusSwitchingProtocols},
		{name: "no origin (not a browser)", wantStatus: http.StatusSwitchingProtocols},
		{name: "another origin", origin: "http://127.0.0.1:9999", wantStatus: http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/ws", nil)
			require.NoError(t, err)
			for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="} {
				req.Header.Set(k, v)
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.wantStatus, resp.StatusCode)
		})
	}
}
