package cli_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/cli"
	"github.com/netauto/netauto/internal/device"
)

// cliCase is one named netauto invocation as the caller holding token, and what it must print:
// the exit code, lines contained in stdout, and a part of stderr.
type cliCase struct {
	name   string
	args   []string
	stdin  string
	token  auth.Role
	code   int
	stdout []string
	stderr string
	// notStdout, when set, must not appear in stdout.
	notStdout string
}

// check runs `netauto <command> <tc.args>` in a subtest named tc.name and checks its output.
func (e *stackEnv) check(t *testing.T, command string, tc cliCase) result {
	t.Helper()
	var r result
	t.Run(tc.name, func(t *testing.T) {
		r = e.run(t, cmd{args: append([]string{command}, tc.args...), stdin: tc.stdin, env: map[string]string{"NET_AUTO_TOKEN": e.tokens[tc.token]}})
		require.Equal(t, tc.code, r.code, "exit code; stdout %s stderr %s", r.stdout, r.stderr)
		for _, s := range tc.stdout {
			assert.Contains(t, r.stdout, s, "stdout")
		}
		assert.Contains(t, r.stderr, tc.stderr, "stderr")
		if tc.notStdout != "" {
			assert.NotContains(t, r.stdout, tc.notStdout, "stdout")
		}
	})
	return r
}

// TestCLITrust drives whoami, host keys, the command policy and credential profiles through the
// netauto binary against the real API on the local stack: what each prints on success and on
// refusal, and that no secret is ever printed. The subtests run in order on one stack.
func TestCLITrust(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 23, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe"}, {Platform: "cisco_iosxe"}}})
	inv := e.importFleet(t)
	dev, other := inv[0], inv[1]
	token := func(t *testing.T, spec auth.TokenSpec) string {
		t.Helper()
		tok, err := e.signer.Issue(spec)
		require.NoError(t, err, "issue a token")
		return tok
	}
	as := func(tok string) map[string]string { return map[string]string{"NET_AUTO_TOKEN": tok} }

	t.Run("whoami", func(t *testing.T) {
		tests := []struct {
			name   string
			spec   auth.TokenSpec
			code   int
			stdout []string
			stderr string
		}{
			{name: "admin everywhere", spec: auth.TokenSpec{Subject: "u-ada", Email: "ada@example.com", Groups: []string{"admin"}},
				stdout: []string{"name:     ada@example.com", "subject:  u-ada", "email:    ada@example.com", "role:     admin\n"}},
			{name: "operator on two sites", spec: auth.TokenSpec{Subject: "u-olga", Email: "olga@example.com", Groups: []string{"operator:fra2", "operator:ams1"}},
				stdout: []string{"role:     operator on ams1, fra2\n"}},
			{name: "viewer everywhere and admin on one site", spec: auth.TokenSpec{Subject: "u-max", Email: "max@example.com", Groups: []string{"viewer", "admin:lab"}},
				stdout: []string{"role:     admin on lab\n          viewer\n"}},
			{name: "unverified email", spec: auth.TokenSpec{Subject: "u-eve", Email: "boss@example.com", EmailUnverified: true, Groups: []string{"viewer"}},
				stdout: []string{"name:     u-eve", "email:    (none verified)"}},
			{name: "no role", spec: auth.TokenSpec{Subject: "u-none", Email: "none@example.com"}, code: cli.ExitError,
				stderr: "error: whoami: this needs the viewer role on at least one site (forbidden)\n"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.run(t, cmd{args: []string{"whoami"}, env: as(token(t, tc.spec))})
				require.Equal(t, tc.code, r.code, "exit code; stderr %s", r.stderr)
				for _, s := range tc.stdout {
					assert.Contains(t, r.stdout, s, "stdout")
				}
				assert.Equal(t, tc.stderr, r.stderr, "stderr")
			})
		}
		for _, tc := range []struct {
			name   string
			spec   auth.TokenSpec
			stderr string
		}{
			{name: "login names a scoped role", spec: auth.TokenSpec{Subject: "u-l", Email: "l@example.com", Groups: []string{"viewer", "operator:ams1"}},
				stderr: "signed in as l@example.com: operator on ams1; viewer\n"},
			{name: "login warns of a token without a role", spec: auth.TokenSpec{Subject: "u-n", Email: "n@example.com"},
				stderr: "warning: the token grants no role: the API will refuse every request\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.run(t, cmd{args: []string{"login", "--token", token(t, tc.spec)}, env: map[string]string{"NET_AUTO_TOKEN": ""}})
				require.Equal(t, 0, r.code, "login: %s", r.stderr)
				assert.Contains(t, r.stderr, tc.stderr, "login's stderr")
			})
		}
		r := e.run(t, cmd{args: []string{"whoami", "--json"}, env: as(token(t, auth.TokenSpec{Subject: "u-j", Email: "j@example.com", Groups: []string{"operator:ams1"}}))})
		require.Equal(t, 0, r.code, "whoami --json: %s", r.stderr)
		var me apiwire.WhoAmI
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &me), "whoami --json: %s", r.stdout)
		assert.Equal(t, []apiwire.RoleGrant{{Role: "operator", Sites: []string{"ams1"}}}, me.Roles, "roles")
	})

	t.Run("host keys", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"devices", "show", dev.ID}})
		require.Equal(t, 0, r.code, "show: %s", r.stderr)
		pinned := device.HostKeyFingerprint(dev.HostKey)
		assert.Regexp(t, `host_key_fingerprint:\s+`+regexp.QuoteMeta(pinned)+"\n", r.stdout, "the pinned key's fingerprint")
		assert.NotContains(t, r.stdout, "pending_host_key", "nothing pending yet")

		changed, err := e.fleet.ChangeHostKey(dev.ID)
		require.NoError(t, err, "change the device's host key")
		offered := device.HostKeyFingerprint(changed)
		r = e.run(t, cmd{args: []string{"run", dev.ID, "--", "show", "version"}})
		require.Equal(t, cli.ExitFailed, r.code, "a run against the changed key: %s", r.stderr)
		assert.Contains(t, r.stderr, "host_key_mismatch", "the run's status")

		r = e.run(t, cmd{args: []string{"devices", "show", dev.ID}})
		require.Equal(t, 0, r.code, "show: %s", r.stderr)
		assert.Regexp(t, `host_key_fingerprint:\s+`+regexp.QuoteMeta(pinned)+"\n", r.stdout, "the pinned key is kept")
		assert.Regexp(t, `pending_host_key:\s+`+regexp.QuoteMeta(offered)+` \(seen 20`, r.stdout, "the offered key is pending")
		assert.Contains(t, r.stdout, "netauto devices accept-host-key "+dev.ID+" --fingerprint "+offered, "how to accept it")
		r = e.run(t, cmd{args: []string{"devices", "list"}})
		require.Equal(t, 0, r.code, "list: %s", r.stderr)
		assert.Equal(t, "warning: host key changed on 1 of these devices; they refuse runs until an admin accepts the new key: "+dev.ID+
			"\n  see `netauto devices show ID`\n", r.stderr, "list warns of the pending key")

		tests := []cliCase{
			{name: "fingerprint is required", args: []string{dev.ID}, token: auth.Admin, code: cli.ExitError,
				stderr: "error: --fingerprint is required: the pending key's SHA256:... fingerprint, as `netauto devices show " + dev.ID + "` prints it\n"},
			{name: "an operator is refused", args: []string{dev.ID, "--fingerprint", offered}, token: auth.Operator, code: cli.ExitError,
				stderr: "error: accept host key of " + dev.ID + ": this needs the admin role everywhere (an unscoped group) (forbidden)\n"},
			{name: "the pinned key's fingerprint is not pending", args: []string{dev.ID, "--fingerprint", pinned}, token: auth.Admin, code: cli.ExitError,
				stderr: "error: accept host key of " + dev.ID + ": fingerprint: the device has no pending host key with this fingerprint; read the device again (host_key_not_pending)\n" +
					"  run `netauto devices show " + dev.ID + "` to see the pending key\n"},
			{name: "a device without a pending key", args: []string{other.ID, "--fingerprint", offered}, token: auth.Admin, code: cli.ExitError,
				stderr: "(host_key_not_pending)"},
			{name: "the pending key is accepted", args: []string{dev.ID, "--fingerprint", offered}, token: auth.Admin,
				stdout: []string{"pinned host key " + offered + " on " + dev.ID}},
		}
		for _, tc := range tests {
			tc.args = append([]string{"accept-host-key"}, tc.args...)
			e.check(t, "devices", tc)
		}

		r = e.run(t, cmd{args: []string{"devices", "show", dev.ID, "--json"}})
		require.Equal(t, 0, r.code, "show: %s", r.stderr)
		var d apiwire.Device
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), "show --json")
		assert.Equal(t, changed, d.HostKey, "the accepted key is pinned")
		assert.Equal(t, offered, d.HostKeyFingerprint, "its fingerprint")
		assert.NotNil(t, d.HostKeyLearnedAt, "learned time")
		assert.Nil(t, d.PendingHostKey, "nothing pending")
		r = e.run(t, cmd{args: []string{"run", dev.ID, "--", "show", "version"}})
		assert.Equal(t, 0, r.code, "a run after the accept: %s", r.stderr)
	})

	t.Run("policy", func(t *testing.T) {
		rules := `{"rules": [
			{"id": "no-clock", "effect": "deny", "roles": ["operator"], "pattern": "show clock", "reason": "the clock is private"},
			{"id": "ops-show", "effect": "allow", "roles": ["operator"], "pattern": "show **"},
			{"id": "admin-any", "effect": "allow", "roles": ["admin"], "pattern": "**"}]}`
		tests := []cliCase{
			{name: "show the defaults", args: []string{"show"}, token: auth.Admin,
				stdout: []string{"version 0 (built-in defaults)", "admin-any", "ID  "}},
			{name: "an operator may not show", args: []string{"show"}, token: auth.Operator, code: cli.ExitError,
				stderr: "error: policy: this needs the admin role everywhere (an unscoped group) (forbidden)\n"},
			{name: "an operator may not set", args: []string{"set", "-f", "-"}, stdin: rules, token: auth.Operator, code: cli.ExitError,
				stderr: "(forbidden)\n"},
			{name: "a bad rule names its field", args: []string{"set", "-f", "-"}, token: auth.Admin, code: cli.ExitError,
				stdin:  `[{"id": "x", "effect": "maybe", "pattern": "**"}]`,
				stderr: "rules[0].effect: must be allow or deny"},
			{name: "the defaults still hold", args: []string{"check", "--command", "show clock", "--device", dev.ID}, token: auth.Operator,
				stdout: []string{"allowed"}},
			{name: "an admin sets rules", args: []string{"set", "-f", "-"}, stdin: rules, token: auth.Admin,
				stdout: []string{"version 1, updated 20", " by admin@example.com", "no-clock   deny    operator  *          show clock  the clock is private"}},
			{name: "a stale version is a conflict", args: []string{"set", "-f", "-"}, token: auth.Admin, code: cli.ExitError,
				stdin:  `{"version": 0, "rules": [{"id": "admin-any", "effect": "allow", "roles": ["admin"], "pattern": "**"}]}`,
				stderr: "someone else changed the policy since version 0"},
			{name: "a denied command prints its rule", args: []string{"check", "--command", "show clock", "--device", dev.ID, "--device", other.ID}, token: auth.Operator,
				code:   cli.ExitFailed,
				stdout: []string{dev.ID + "  denied   no-clock  the clock is private", other.ID + "  denied   no-clock", "policy version 1: allowed on all devices: false"}},
			{name: "an allowed command", args: []string{"check", "--command", "show version", "--device", dev.ID}, token: auth.Operator,
				stdout: []string{dev.ID + "  allowed", "allowed on all devices: true"}},
			{name: "the set policy is shown", args: []string{"show"}, token: auth.Admin,
				stdout: []string{"version 1, updated", "ops-show"}},
		}
		for _, tc := range tests {
			e.check(t, "policy", tc)
		}
		r := e.run(t, cmd{args: []string{"bulk", "--ids", dev.ID, "--", "show", "clock"}, env: as(e.tokens[auth.Operator])})
		assert.Equal(t, cli.ExitError, r.code, "a denied bulk command: %s", r.stdout)
		assert.Contains(t, r.stderr, "(command_denied)\n  rule: no-clock\n  denied devices: "+dev.ID, "the refusal names the rule and the devices")
	})

	t.Run("credential profiles", func(t *testing.T) {
		const secret, rotated = "pr0file-s3cret-one", "pr0file-s3cret-two"
		var printed strings.Builder
		tests := []cliCase{
			{name: "create", args: []string{"create", "core", "--username", "netops", "--password-stdin", "--allowed-site", dev.Site}, stdin: secret + "\n",
				token: auth.Admin, stdout: []string{"id:             core", "username:       netops", "allowed sites:  " + dev.Site, "secret:         set", "version:        1"}},
			{name: "an operator may not create", args: []string{"create", "edge", "--username", "u", "--password-stdin"}, stdin: secret + "\n",
				token: auth.Operator, code: cli.ExitError, stderr: "this needs the admin role everywhere (an unscoped group) (forbidden)"},
			{name: "an operator may not list", args: []string{"list"}, token: auth.Operator, code: cli.ExitError, stderr: "(forbidden)"},
			{name: "a duplicate id", args: []string{"create", "core", "--username", "netops", "--password-stdin"}, stdin: secret + "\n",
				token: auth.Admin, code: cli.ExitError, stderr: "core"},
			{name: "list", args: []string{"list"}, token: auth.Admin, stdout: []string{"ID    USERNAME  ALLOWED SITES", "core  netops    " + dev.Site}},
			{name: "rotate the secret", args: []string{"update", "core", "--password-stdin"}, stdin: rotated + "\n", token: auth.Admin,
				stdout: []string{"secret:         set", "version:        2"}},
			{name: "show", args: []string{"show", "core"}, token: auth.Admin, stdout: []string{"id:             core", "version:        2"}},
			{name: "show --json", args: []string{"show", "core", "--json"}, token: auth.Admin, stdout: []string{`"has_secret": true`}},
			{name: "an unknown profile", args: []string{"show", "nope"}, token: auth.Admin, code: cli.ExitError, stderr: "(not_found)"},
		}
		for _, tc := range tests {
			r := e.check(t, "credential-profiles", tc)
			printed.WriteString(r.stdout + r.stderr)
		}
		// A device names the profile: it is in use, so it cannot be deleted.
		r := e.run(t, cmd{args: []string{"devices", "add", "--id", "prof-r1", "--name", "r1", "--host", "192.0.2.10", "--username", "netops",
			"--credential-profile", "core", "--site", dev.Site}})
		printed.WriteString(r.stdout + r.stderr)
		require.Equal(t, 0, r.code, "add a device naming the profile: %s", r.stderr)
		r = e.run(t, cmd{args: []string{"credential-profiles", "delete", "core"}})
		printed.WriteString(r.stdout + r.stderr)
		assert.Equal(t, cli.ExitError, r.code, "delete a profile in use")
		assert.Contains(t, r.stderr, "prof-r1", "the refusal lists the device using it")
		r = e.run(t, cmd{args: []string{"devices", "show", "prof-r1"}})
		printed.WriteString(r.stdout + r.stderr)
		assert.Regexp(t, `credential_profile:\s+core`, r.stdout, "the device names the profile")
		for _, s := range []string{secret, rotated} {
			assert.NotContains(t, printed.String(), s, "a profile's secret was printed")
		}
	})
}
