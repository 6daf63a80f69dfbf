package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
)

func TestConfigAndDevSignIn(t *testing.T) {
	signer := newSigner(t)
	verifier := auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)
	handler := app.WithIdentity(func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		id, _ := auth.FromContext(ctx)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: id.Name() + " " + strings.Join(id.Groups(), ",")}, nil
	})
	web := t.TempDir()
	require.NoError(t, writeFile(web+"/index.html", "<h1>NetAuto</h1>"), "write index.html")
	newServer := func(t *testing.T, devSignIn *auth.Signer) *httptest.Server {
		t.Helper()
		gw, err := gateway.New(gateway.Options{API: handler, WebDir: web, Verifier: verifier, DevSignIn: devSignIn})
		require.NoError(t, err, "new gateway")
		srv := httptest.NewServer(gw)
		t.Cleanup(srv.Close)
		return srv
	}

	t.Run("config", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			signIn   *auth.Signer
			wantMode string
		}{
			{name: "dev sign-in on", signIn: signer, wantMode: "dev"},
			{name: "dev sign-in off", wantMode: "token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				srv := newServer(t, tc.signIn)
				resp, err := http.Get(srv.URL + "/config.json")
				require.NoError(t, err, "GET /config.json")
				defer resp.Body.Close()
				var cfg gateway.UIConfig
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&cfg), "decode /config.json")
				require.Equal(t, 200, resp.StatusCode, "status of /config.json")
				require.Equal(t, tc.wantMode, cfg.Auth.Mode, "auth.mode")
				require.Empty(t, cfg.APIURL, "api_url: want the page's own origin as API")
			})
		}
	})

	t.Run("dev token", func(t *testing.T) {
		srv := newServer(t, signer)
		for _, tc := range []struct {
			name       string
			body       string
			wantStatus int
			wantField  string
			wantAPI    string
		}{
			{name: "operator", body: `{"email":"ops@example.com","role":"operator"}`, wantStatus: 200, wantAPI: "ops@example.com operator"},
			{name: "admin", body: `{"email":"boss@example.com","role":"admin"}`, wantStatus: 200, wantAPI: "boss@example.com admin"},
			{name: "operator on two sites", body: `{"email":"ops@example.com","role":"operator","sites":["fra2"," ams1"]}`, wantStatus: 200,
				wantAPI: "ops@example.com operator:ams1,operator:fra2"},
			{name: "no sites is everywhere", body: `{"email":"ops@example.com","role":"viewer","sites":[]}`, wantStatus: 200, wantAPI: "ops@example.com viewer"},
			{name: "a site with a comma", body: `{"email":"a@example.com","role":"admin","sites":["ams1","x,admin"]}`, wantStatus: 400, wantField: "sites[1]"},
			{name: "an empty site", body: `{"email":"a@example.com","role":"admin","sites":[""]}`, wantStatus: 400, wantField: "sites[0]"},
			{name: "too many sites", body: `{"email":"a@example.com","role":"viewer","sites":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17","18","19","20","21"]}`,
				wantStatus: 400, wantField: "sites"},
			{name: "unknown role", body: `{"email":"a@example.com","role":"root"}`, wantStatus: 400, wantField: "role"},
			{name: "no email", body: `{"email":"","role":"viewer"}`, wantStatus: 400, wantField: "email"},
			{name: "email with a newline", body: `{"email":"a@b\nc","role":"viewer"}`, wantStatus: 400, wantField: "email"},
			{name: "unknown field", body: `{"email":"a@example.com","role":"viewer","groups":["admin"]}`, wantStatus: 400, wantField: "body"},
			{name: "not JSON", body: `email=a`, wantStatus: 400, wantField: "body"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := http.Post(srv.URL+"/dev/token", "application/json", strings.NewReader(tc.body))
				require.NoError(t, err, "POST /dev/token")
				defer resp.Body.Close()
				var out struct {
					Token string `json:"token"`
					Error struct {
						Field string `json:"field"`
					} `json:"error"`
				}
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&out), "decode the /dev/token answer")
				require.Equal(t, tc.wantStatus, resp.StatusCode, "status of POST /dev/token")
				require.Equal(t, tc.wantField, out.Error.Field, "error.field")
				if tc.wantAPI == "" {
					return
				}
				req, _ := http.NewRequest("GET", srv.URL+"/v1/devices", nil)
				req.Header.Set("Authorization", "Bearer "+out.Token)
				api, err := http.DefaultClient.Do(req)
				require.NoError(t, err, "GET /v1/devices with the dev token")
				defer api.Body.Close()
				b, _ := io.ReadAll(api.Body)
				require.Equal(t, 200, api.StatusCode, "status of the API with the dev token (%q)", b)
				require.Equal(t, tc.wantAPI, string(b), "the API's view of the dev token's identity")
			})
		}
	})

	t.Run("no dev sign-in unless enabled", func(t *testing.T) {
		srv := newServer(t, nil)
		resp, err := http.Post(srv.URL+"/dev/token", "application/json", strings.NewReader(`{"email":"a@example.com","role":"admin"}`))
		require.NoError(t, err, "POST /dev/token")
		resp.Body.Close()
		require.NotEqual(t, 200, resp.StatusCode, "POST /dev/token issued a token although dev sign-in is off")
	})
}
