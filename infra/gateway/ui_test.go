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

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
)

func TestConfigAndDevSignIn(t *testing.T) {
	signer := newSigner(t)
	verifier := auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)
	handler := app.WithIdentity(func(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		id, _ := auth.FromContext(ctx)
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: id.Name() + " " + string(id.Role)}, nil
	})
	web := t.TempDir()
	if err := writeFile(web+"/index.html", "<h1>NetAuto</h1>"); err != nil {
		t.Fatal(err)
	}
	newServer := func(t *testing.T, devSignIn *auth.Signer) *httptest.Server {
		t.Helper()
		gw, err := gateway.New(gateway.Options{API: handler, WebDir: web, Verifier: verifier, DevSignIn: devSignIn})
		if err != nil {
			t.Fatal(err)
		}
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
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var cfg gateway.UIConfig
				if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 || cfg.Auth.Mode != tc.wantMode || cfg.APIURL != "" {
					t.Fatalf("status %d, config %+v; want mode %s and the page's own origin as API", resp.StatusCode, cfg, tc.wantMode)
				}
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
			{name: "unknown role", body: `{"email":"a@example.com","role":"root"}`, wantStatus: 400, wantField: "role"},
			{name: "no email", body: `{"email":"","role":"viewer"}`, wantStatus: 400, wantField: "email"},
			{name: "email with a newline", body: `{"email":"a@b\nc","role":"viewer"}`, wantStatus: 400, wantField: "email"},
			{name: "unknown field", body: `{"email":"a@example.com","role":"viewer","groups":["admin"]}`, wantStatus: 400, wantField: "body"},
			{name: "not JSON", body: `email=a`, wantStatus: 400, wantField: "body"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, err := http.Post(srv.URL+"/dev/token", "application/json", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var out struct {
					Token string `json:"token"`
					Error struct {
						Field string `json:"field"`
					} `json:"error"`
				}
				if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.wantStatus || out.Error.Field != tc.wantField {
					t.Fatalf("status %d field %q; want %d %q", resp.StatusCode, out.Error.Field, tc.wantStatus, tc.wantField)
				}
				if tc.wantAPI == "" {
					return
				}
				req, _ := http.NewRequest("GET", srv.URL+"/v1/devices", nil)
				req.Header.Set("Authorization", "Bearer "+out.Token)
				api, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer api.Body.Close()
				b, _ := io.ReadAll(api.Body)
				if api.StatusCode != 200 || string(b) != tc.wantAPI {
					t.Fatalf("API with the dev token: %d %q; want 200 %q", api.StatusCode, b, tc.wantAPI)
				}
			})
		}
	})

	t.Run("no dev sign-in unless enabled", func(t *testing.T) {
		srv := newServer(t, nil)
		resp, err := http.Post(srv.URL+"/dev/token", "application/json", strings.NewReader(`{"email":"a@example.com","role":"admin"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("POST /dev/token issued a token although dev sign-in is off")
		}
	})
}
