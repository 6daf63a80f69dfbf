package cli_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/cli"
)

// TestCLIWebhooks drives `netauto webhooks` against the real API on the local stack and a local
// receiver: the signing secret is printed once, the URL never.
func TestCLIWebhooks(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 41, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}}})
	var status atomic.Int32
	status.Store(http.StatusOK)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	defer rcv.Close()
	const token = "T0KEN-cli-s3cret"
	hookURL := rcv.URL + "/hooks/" + token

	r := e.check(t, "webhooks", cliCase{name: "create", args: []string{"create", "--name", "ops chat", "--url-stdin", "--format", "slack",
		"--event", "Job Finished", "--allow-cidr", "127.0.0.0/8"}, stdin: hookURL + "\n", token: auth.Admin,
		stdout: []string{"name:                 ops chat", "endpoint:             " + rcv.URL, "events:               Job Finished", "signing secret (shown this once"}})
	secret := regexp.MustCompile(`whsec_[0-9a-f]{64}`).FindString(r.stdout)
	require.NotEmpty(t, secret, "the signing secret is printed: %s", r.stdout)
	id := regexp.MustCompile(`id:\s+(\S+)`).FindStringSubmatch(r.stdout)
	require.Len(t, id, 2, "the id is printed")
	hook := id[1]

	var printed strings.Builder
	printed.WriteString(r.stdout + r.stderr)
	for _, tc := range []cliCase{
		{name: "an operator may not", args: []string{"list"}, token: auth.Operator, code: cli.ExitError, stderr: "(forbidden)"},
		{name: "no URL", args: []string{"create", "--name", "x"}, token: auth.Admin, code: cli.ExitError, stderr: "a URL is required"},
		{name: "http without a range", args: []string{"create", "--name", "x", "--url", "http://hooks.example.com/" + token}, token: auth.Admin, code: cli.ExitError, stderr: "url: must use https"},
		{name: "list", args: []string{"list"}, token: auth.Admin, stdout: []string{"ID", "ENDPOINT", hook + "  ops chat  " + rcv.URL + "  Job Finished  slack   enabled"}},
		{name: "test", args: []string{"test", hook}, token: auth.Admin, stdout: []string{"delivered: HTTP 200 in"}},
		{name: "deliveries", args: []string{"deliveries", hook}, token: auth.Admin, stdout: []string{"Webhook Test", "delivered  HTTP 200"}},
		{name: "disable", args: []string{"update", hook, "--disable"}, token: auth.Admin, stdout: []string{"state:                disabled: disabled by an admin"}},
		{name: "enable, all events", args: []string{"update", hook, "--enable", "--all-events"}, token: auth.Admin, stdout: []string{"state:                enabled", "events:               all"}},
		{name: "nothing to change", args: []string{"update", hook}, token: auth.Admin, code: cli.ExitError, stderr: "nothing to change"},
		{name: "show", args: []string{"show", hook}, token: auth.Admin, stdout: []string{"id:                   " + hook}, notStdout: "signing secret"},
		{name: "rotate", args: []string{"rotate-secret", hook}, token: auth.Admin, stdout: []string{"signing secret (shown this once"}},
		{name: "a new URL without a new secret", args: []string{"update", hook, "--url-stdin"}, stdin: hookURL + "/moved\n", token: auth.Admin, code: cli.ExitError,
			stderr: "rotate_secret: must be true when url changes"},
		{name: "a new URL with a new secret", args: []string{"update", hook, "--url-stdin", "--rotate-secret"}, stdin: hookURL + "/moved\n", token: auth.Admin,
			stdout: []string{"endpoint:             " + rcv.URL, "signing secret (shown this once"}},
	} {
		r := e.check(t, "webhooks", tc)
		printed.WriteString(r.stdout + r.stderr)
	}
	status.Store(http.StatusBadGateway)
	r = e.check(t, "webhooks", cliCase{name: "a failing receiver", args: []string{"test", hook}, token: auth.Admin, code: cli.ExitError,
		stdout: []string{"failed: HTTP 502"}, stderr: "the receiver did not take it"})
	printed.WriteString(r.stdout + r.stderr)
	r = e.check(t, "webhooks", cliCase{name: "delete", args: []string{"delete", hook}, token: auth.Admin, stdout: []string{"deleted webhook " + hook}})
	printed.WriteString(r.stdout + r.stderr)
	assert.NotContains(t, printed.String(), token, "the URL was printed")
	assert.Equal(t, 1, strings.Count(printed.String(), secret), "the first signing secret is printed once")
}
