package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
)

// apiCall is one request a fake API answered.
type apiCall struct {
	method, path string
	body         string
}

// fakeAPI answers each "METHOD /path" with a status and JSON body and records the requests.
func fakeAPI(t *testing.T, answers map[string]func(body string) (int, string)) (string, *[]apiCall) {
	t.Helper()
	var calls []apiCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		calls = append(calls, apiCall{method: r.Method, path: r.URL.Path, body: string(data)})
		h, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, "no such route in the test", http.StatusNotFound)
			return
		}
		status, out := h(string(data))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &calls
}

// runMain runs netauto in-process against api with stdin and returns stdout, stderr and the exit code.
func runMain(t *testing.T, api, stdin string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv("HOME", t.TempDir())
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"--api", api, "--token", "t"}, args...),
		IO{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return out.String(), errb.String(), code
}

const policyJSON = `{"rules":[{"id":"no-reload","effect":"deny","pattern":"^reload","reason":"reloads need a change window"},` +
	`{"id":"show","effect":"allow","roles":["operator"],"platforms":["ios"],"pattern":"^show "}],"version":3,"default":false}`

func TestPolicyShow(t *testing.T) {
	api, _ := fakeAPI(t, map[string]func(string) (int, string){
		"GET /v1/policy": func(string) (int, string) { return 200, policyJSON },
	})
	out, _, code := runMain(t, api, "", "policy", "show")
	require.Equal(t, ExitOK, code)
	assert.Contains(t, out, "version 3")
	assert.Regexp(t, `no-reload\s+deny\s+\*\s+\*\s+\^reload\s+reloads need a change window`, out)
	assert.Regexp(t, `show\s+allow\s+operator\s+ios\s+\^show`, out)
}

func TestParsePolicyFile(t *testing.T) {
	v := int64(4)
	tests := []struct {
		name    string
		in      string
		want    apiwire.PolicyUpdate
		wantErr string
	}{
		{name: "object with version", in: `{"rules":[{"id":"a","effect":"allow","pattern":"."}],"version":4}`,
			want: apiwire.PolicyUpdate{Rules: []apiwire.PolicyRule{{ID: "a", Effect: "allow", Pattern: "."}}, Version: &v}},
		{name: "object without version", in: `{"rules":[]}`, want: apiwire.PolicyUpdate{Rules: []apiwire.PolicyRule{}}},
		{name: "bare list", in: ` [{"id":"a","effect":"deny","pattern":"x"}]`,
			want: apiwire.PolicyUpdate{Rules: []apiwire.PolicyRule{{ID: "a", Effect: "deny", Pattern: "x"}}}},
		{name: "no rules", in: `{"version":1}`, wantErr: "rules: is required"},
		{name: "not JSON", in: `rules`, wantErr: "decode policy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePolicyFile([]byte(tc.in))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestPolicySet(t *testing.T) {
	tests := []struct {
		name        string
		file        string
		putStatus   int
		wantCode    int
		wantVersion string
		wantGET     bool
		wantErr     string
	}{
		{name: "version from the file", file: `{"rules":[],"version":3}`, putStatus: 200, wantCode: ExitOK, wantVersion: `"version":3`},
		{name: "version from a fresh read", file: `[]`, putStatus: 200, wantCode: ExitOK, wantVersion: `"version":3`, wantGET: true},
		{name: "conflict", file: `{"rules":[],"version":2}`, putStatus: 409, wantCode: ExitError, wantVersion: `"version":2`,
			wantErr: "someone else changed the policy since version 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api, calls := fakeAPI(t, map[string]func(string) (int, string){
				"GET /v1/policy": func(string) (int, string) { return 200, policyJSON },
				"PUT /v1/policy": func(string) (int, string) {
					if tc.putStatus == 409 {
						return 409, `{"error":{"code":"conflict","message":"the policy changed since version 2"}}`
					}
					return 200, policyJSON
				},
			})
			_, stderr, code := runMain(t, api, tc.file, "policy", "set", "-f", "-")
			require.Equal(t, tc.wantCode, code, stderr)
			last := (*calls)[len(*calls)-1]
			assert.Equal(t, "PUT", last.method)
			assert.Contains(t, last.body, tc.wantVersion)
			assert.Equal(t, tc.wantGET, (*calls)[0].method == "GET")
			if tc.wantErr != "" {
				assert.Contains(t, stderr, tc.wantErr)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	api, calls := fakeAPI(t, map[string]func(string) (int, string){
		"POST /v1/policy/check": func(string) (int, string) {
			return 200, `{"allowed":false,"version":3,"devices":[{"device_id":"r1","allowed":true},` +
				`{"device_id":"r2","allowed":false,"rule":"no-reload","reason":"reloads need a change window"}]}`
		},
	})
	out, _, code := runMain(t, api, "", "policy", "check", "--command", "reload", "--device", "r1", "--device", "r2")
	assert.Equal(t, ExitFailed, code)
	assert.JSONEq(t, `{"command":"reload","device_ids":["r1","r2"]}`, (*calls)[0].body)
	assert.Regexp(t, `r1\s+allowed`, out)
	assert.Regexp(t, `r2\s+denied\s+no-reload\s+reloads need a change window`, out)

	_, stderr, code := runMain(t, api, "", "policy", "check", "--command", "reload")
	assert.Equal(t, ExitError, code)
	assert.Contains(t, stderr, "--device is required")
}

func TestPolicyCheckSequence(t *testing.T) {
	api, calls := fakeAPI(t, map[string]func(string) (int, string){
		"POST /v1/policy/check": func(string) (int, string) {
			return 200, `{"allowed":false,"version":3,"devices":[{"device_id":"r1","allowed":false,"rule":"deny-clear","reason":"clears counters","field":"commands[1]"}]}`
		},
	})
	out, _, code := runMain(t, api, "", "policy", "check", "--command", "show clock", "--command", "clear counters", "--device", "r1")
	assert.Equal(t, ExitFailed, code)
	assert.JSONEq(t, `{"commands":[{"command":"show clock"},{"command":"clear counters"}],"device_ids":["r1"]}`, (*calls)[0].body)
	assert.Regexp(t, `r1\s+denied\s+deny-clear\s+commands\[1\]: clears counters`, out)
}

func TestCommandDeniedError(t *testing.T) {
	api, _ := fakeAPI(t, map[string]func(string) (int, string){
		"POST /v1/runs": func(string) (int, string) {
			return 403, `{"error":{"code":"command_denied","message":"the command policy refuses this command","rule":"no-reload","devices":["r2","r3"]}}`
		},
	})
	_, stderr, code := runMain(t, api, "", "run", "r2", "--", "reload")
	assert.Equal(t, ExitError, code)
	assert.Contains(t, stderr, "(command_denied)\n  rule: no-reload\n  denied devices: r2, r3")
}

func TestParseAllowedTags(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []map[string]string
		wantErr string
	}{
		{name: "none", in: nil, want: []map[string]string{}},
		{name: "two sets", in: []string{"role=core", "env=prod,role=edge"},
			want: []map[string]string{{"role": "core"}, {"env": "prod", "role": "edge"}}},
		{name: "no equals", in: []string{"core"}, wantErr: `--allowed-tag "core": want key=value`},
		{name: "empty key", in: []string{"=x"}, wantErr: "want key=value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAllowedTags(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

const profileJSON = `{"id":"core","username":"netops","allowed_sites":["ams1"],"allowed_tags":[{"role":"core"}],"has_secret":true,"version":1,` +
	`"created_at":"2026-12-01T00:00:00Z","updated_at":"2026-12-01T00:00:00Z"}`

func TestCredentialProfileCreate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantCode int
		wantBody map[string]any
		wantErr  string
	}{
		{name: "password from stdin", args: []string{"--username", "netops", "--password-stdin", "--allowed-site", "ams1", "--allowed-tag", "role=core"},
			stdin: "s3cret\n", wantCode: ExitOK,
			wantBody: map[string]any{"id": "core", "username": "netops", "password": "s3cret", "allowed_sites": []any{"ams1"}, "allowed_tags": []any{map[string]any{"role": "core"}}}},
		{name: "no secret", args: []string{"--username", "netops"}, wantCode: ExitError, wantErr: "a secret is required"},
		{name: "empty stdin", args: []string{"--password-stdin"}, wantCode: ExitError, wantErr: "--password-stdin: stdin is empty"},
		{name: "password and key", args: []string{"--password-stdin", "--private-key-file", "k"}, stdin: "x", wantCode: ExitError, wantErr: "not both"},
		{name: "password flag does not exist", args: []string{"--password", "s3cret"}, wantCode: ExitError, wantErr: "unknown flag: --password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api, calls := fakeAPI(t, map[string]func(string) (int, string){
				"POST /v1/credential-profiles": func(string) (int, string) { return 201, profileJSON },
			})
			out, stderr, code := runMain(t, api, tc.stdin, append([]string{"credential-profiles", "create", "core"}, tc.args...)...)
			require.Equal(t, tc.wantCode, code, stderr)
			assert.NotContains(t, out+stderr, "s3cret")
			if tc.wantErr != "" {
				assert.Contains(t, stderr, tc.wantErr)
				assert.Empty(t, *calls)
				return
			}
			require.Len(t, *calls, 1)
			var body map[string]any
			require.NoError(t, json.Unmarshal([]byte((*calls)[0].body), &body))
			assert.Equal(t, tc.wantBody, body)
			assert.Regexp(t, `secret:\s+set`, out)
		})
	}
}

func TestCredentialProfileUpdate(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	require.NoError(t, os.WriteFile(keyFile, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n"), 0o600))
	tests := []struct {
		name     string
		args     []string
		stdin    string
		wantBody string
		wantErr  string
	}{
		{name: "rotate to a key with passphrase", args: []string{"--private-key-file", keyFile, "--passphrase-stdin"}, stdin: "pp\n",
			wantBody: `{"private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n","passphrase":"pp"}`},
		{name: "clear sites and set username", args: []string{"--clear-sites", "--username", "ops", "--version", "1"},
			wantBody: `{"username":"ops","allowed_sites":[],"version":1}`},
		{name: "nothing", args: []string{"--version", "1"}, wantErr: "nothing to change"},
		{name: "passphrase without key", args: []string{"--passphrase-stdin"}, stdin: "pp", wantErr: "needs --private-key-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api, calls := fakeAPI(t, map[string]func(string) (int, string){
				"PATCH /v1/credential-profiles/core": func(string) (int, string) { return 200, profileJSON },
			})
			_, stderr, code := runMain(t, api, tc.stdin, append([]string{"credential-profiles", "update", "core"}, tc.args...)...)
			if tc.wantErr != "" {
				assert.Equal(t, ExitError, code)
				assert.Contains(t, stderr, tc.wantErr)
				assert.Empty(t, *calls)
				return
			}
			require.Equal(t, ExitOK, code, stderr)
			require.Len(t, *calls, 1)
			assert.JSONEq(t, tc.wantBody, (*calls)[0].body)
		})
	}
}

func TestCredentialProfileDeleteInUse(t *testing.T) {
	api, _ := fakeAPI(t, map[string]func(string) (int, string){
		"DELETE /v1/credential-profiles/core": func(string) (int, string) {
			return 409, `{"error":{"code":"conflict","message":"devices use the profile"},"device_ids":["r1","r2"]}`
		},
	})
	_, stderr, code := runMain(t, api, "", "credential-profiles", "delete", "core")
	assert.Equal(t, ExitError, code)
	assert.Contains(t, stderr, "devices use the profile (conflict)\n  devices: r1, r2")
}
