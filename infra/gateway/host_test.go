package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
)

// TestHostHeaderAllowList sends requests addressed to other host names, as a DNS-rebinding page
// does (the browser sends the attacker's name in Host), to every kind of route: the API, the dev
// sign-in that issues admin tokens, the UI and a WebSocket upgrade. Only the gateway's own names
// are answered.
func TestHostHeaderAllowList(t *testing.T) {
	signer := newSigner(t)
	web := t.TempDir()
	require.NoError(t, writeFile(web+"/index.html", "<h1>NetAuto</h1>"), "write index.html")
	// The ws handler refuses every $connect (no token), so a request that reaches it ends with 401.
	ws := func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{StatusCode: http.StatusUnauthorized}, nil
	}
	gw, err := gateway.New(gateway.Options{
		API: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: "api"}, nil
		},
		WebDir: web, Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience),
		DevSignIn: signer, WS: app.WSHandler(ws), AllowedHosts: []string{"netauto.test", "192.0.2.10"},
	})
	require.NoError(t, err, "new gateway")
	srv := httptest.NewServer(gw)
	defer srv.Close()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)

	routes := []struct {
		name, method, path, body string
		upgrade                  bool
		okStatus                 int
	}{
		{"api", "GET", "/v1/health", "", false, http.StatusOK},
		{"dev sign-in", "POST", "/dev/token", `{"email":"a@example.com","role":"admin"}`, false, http.StatusOK},
		{"ui", "GET", "/", "", false, http.StatusOK},
		{"websocket upgrade", "GET", "/ws", "", true, http.StatusUnauthorized},
	}
	hosts := []struct {
		name    string
		host    string
		allowed bool
	}{
		{"ipv4 loopback", "127.0.0.1:" + port, true},
		{"other loopback address", "127.0.0.2:" + port, true},
		{"ipv6 loopback", "[::1]:" + port, true},
		{"localhost", "localhost:" + port, true},
		{"localhost upper case, trailing dot", "LOCALHOST.:" + port, true},
		{"localhost without port", "localhost", true},
		{"configured name", "netauto.test:" + port, true},
		{"configured address", "192.0.2.10:" + port, true},
		{"rebinding name", "evil.example:" + port, false},
		{"subdomain of localhost", "evil.localhost:" + port, false},
		{"name ending in localhost", "notlocalhost:" + port, false},
		{"lan address", "192.168.1.20:" + port, false},
		{"unspecified address", "0.0.0.0:" + port, false},
	}
	for _, h := range hosts {
		for _, rt := range routes {
			t.Run(h.name+"/"+rt.name, func(t *testing.T) {
				req, err := http.NewRequest(rt.method, srv.URL+rt.path, strings.NewReader(rt.body))
				require.NoError(t, err)
				req.Host = h.host
				if rt.upgrade {
					req.Header.Set("Connection", "Upgrade")
					req.Header.Set("Upgrade", "websocket")
					req.Header.Set("Sec-WebSocket-Version", "13")
					req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				if !h.allowed {
					assert.Equal(t, http.StatusMisdirectedRequest, resp.StatusCode, "status (%s)", body)
					assert.Contains(t, string(body), `"code":"host_not_allowed"`, "body")
					assert.NotContains(t, string(body), "token\":\"", "a token was issued")
					return
				}
				assert.Equal(t, rt.okStatus, resp.StatusCode, "status (%s)", body)
			})
		}
	}
}

func TestNewRefusesBadAllowedHosts(t *testing.T) {
	signer := newSigner(t)
	tests := []struct {
		name string
		host string
	}{
		{"url", "http://netauto.test"},
		{"with port", "netauto.test:8080"},
		{"empty", " "},
		{"user info", "me@netauto.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gateway.New(gateway.Options{
				API: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
					return events.APIGatewayV2HTTPResponse{}, nil
				},
				Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience), AllowedHosts: []string{tt.host},
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "allowed host", "error names the option")
		})
	}
}

// TestListenRefusesRemoteBind checks that the gateway listens on loopback only unless asked to
// expose itself, and that the refusal says why and how to opt in.
func TestListenRefusesRemoteBind(t *testing.T) {
	tests := []struct {
		name        string
		addr        string
		allowRemote bool
		refused     bool
	}{
		{"ipv4 loopback", "127.0.0.1:0", false, false},
		{"ipv6 loopback", "[::1]:0", false, false},
		{"localhost", "localhost:0", false, false},
		{"every interface", ":0", false, true},
		{"unspecified ipv4", "0.0.0.0:0", false, true},
		{"unspecified ipv6", "[::]:0", false, true},
		{"documentation address", "192.0.2.10:0", false, true},
		{"every interface, opted in", "0.0.0.0:0", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := gateway.Listen(context.Background(), tt.addr, tt.allowRemote)
			if tt.refused {
				require.Error(t, err, "listening on %s", tt.addr)
				assert.Contains(t, err.Error(), gateway.EnvAllowRemote, "the error names the opt-in")
				assert.Contains(t, err.Error(), "not a loopback address", "the error says why")
				return
			}
			if err != nil && strings.Contains(err.Error(), "cannot assign requested address") {
				t.Skipf("no such address on this machine: %v", err)
			}
			require.NoError(t, err)
			assert.NoError(t, ln.Close())
		})
	}
}
