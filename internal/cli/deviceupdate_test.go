package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/cli"
)

// TestCLIDevicesUpdate changes a device field by field through `netauto devices update` against
// the real API on the local stack: only the fields given change, bad combinations are refused
// before anything is sent, and the new password is never printed.
func TestCLIDevicesUpdate(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 31, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}, {Platform: "cisco_ios"}}})
	inv := e.importFleet(t)
	dev, other := inv[0].ID, inv[1]
	// runOn runs show version on the other device and returns how it ended.
	runOn := func(t *testing.T) result {
		t.Helper()
		return e.run(t, cmd{args: []string{"run", other.ID, "--", "show", "version"}})
	}
	show := func(t *testing.T) apiwire.Device {
		t.Helper()
		r := e.run(t, cmd{args: []string{"devices", "show", dev, "--json"}})
		require.Equal(t, 0, r.code, "show: %s", r.stderr)
		var d apiwire.Device
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), "show --json: %s", r.stdout)
		return d
	}
	before := show(t)
	const newPassword = "rotated-pass-5772"
	var printed strings.Builder
	tests := []struct {
		tc    cliCase
		check func(t *testing.T, d apiwire.Device)
	}{
		{tc: cliCase{name: "rename, move and re-tag", args: []string{"update", dev, "--name", "core-1", "--host", "192.0.2.77", "--port", "2022",
			"--site", "lab-2", "--tag", "role=core", "--tag", "env=lab", "--legacy-algorithms"}, token: auth.Admin, stdout: []string{"updated " + dev}},
			check: func(t *testing.T, d apiwire.Device) {
				assert.Equal(t, []string{"core-1", "192.0.2.77", "lab-2"}, []string{d.Name, d.Host, d.Site}, "name, host, site")
				assert.Equal(t, 2022, d.Port, "port")
				assert.Equal(t, map[string]string{"role": "core", "env": "lab"}, d.Tags, "tags")
				assert.True(t, d.LegacyAlgorithms, "legacy algorithms")
				assert.Equal(t, before.Platform, d.Platform, "platform untouched")
				assert.Equal(t, before.Username, d.Username, "username untouched")
				assert.Equal(t, before.Version+1, d.Version, "one change")
			}},
		{tc: cliCase{name: "a switch turned off, the tags cleared", args: []string{"update", dev, "--legacy-algorithms=false", "--clear-tags"},
			token: auth.Admin, stdout: []string{"updated " + dev}},
			check: func(t *testing.T, d apiwire.Device) {
				assert.False(t, d.LegacyAlgorithms, "legacy algorithms")
				assert.Empty(t, d.Tags, "tags")
				assert.Equal(t, "core-1", d.Name, "name kept")
			}},
		{tc: cliCase{name: "a new password from stdin", args: []string{"update", other.ID, "--password-stdin"}, stdin: newPassword + "\n",
			token: auth.Admin, stdout: []string{"updated " + other.ID}},
			check: func(t *testing.T, _ apiwire.Device) {
				r := runOn(t)
				assert.NotEqual(t, 0, r.code, "the device refuses the new password: %s%s", r.stdout, r.stderr)
				assert.Contains(t, r.stdout+r.stderr, "auth", "the device refuses the new password")
			}},
		{tc: cliCase{name: "the device's own password again", args: []string{"update", other.ID, "--password-stdin"}, stdin: other.Password + "\n",
			token: auth.Admin, stdout: []string{"updated " + other.ID}},
			check: func(t *testing.T, _ apiwire.Device) {
				r := runOn(t)
				assert.Equal(t, 0, r.code, "the device takes its password: %s%s", r.stdout, r.stderr)
			}},
		{tc: cliCase{name: "a new user name", args: []string{"update", dev, "--username", "ops"}, token: auth.Admin, stdout: []string{"updated " + dev}},
			check: func(t *testing.T, d apiwire.Device) { assert.Equal(t, "ops", d.Username, "username") }},
		{tc: cliCase{name: "a stale version", args: []string{"update", dev, "--name", "stale", "--version", "1"}, token: auth.Admin,
			code: cli.ExitError, stderr: "version"},
			check: func(t *testing.T, d apiwire.Device) { assert.Equal(t, "core-1", d.Name, "nothing changed") }},
		{tc: cliCase{name: "a bad port", args: []string{"update", dev, "--port", "70000"}, token: auth.Admin, code: cli.ExitError, stderr: "port"},
			check: func(t *testing.T, d apiwire.Device) { assert.Equal(t, 2022, d.Port, "nothing changed") }},
		{tc: cliCase{name: "nothing to change", args: []string{"update", dev}, token: auth.Admin, code: cli.ExitError, stderr: "nothing to change"}},
		{tc: cliCase{name: "tags given and cleared", args: []string{"update", dev, "--tag", "a=b", "--clear-tags"}, token: auth.Admin,
			code: cli.ExitError, stderr: "--clear-tags"}},
		{tc: cliCase{name: "a password in an argument", args: []string{"update", dev, "--password", "x"}, token: auth.Admin,
			code: cli.ExitError, stderr: "unknown flag: --password"}},
		{tc: cliCase{name: "a password and a key", args: []string{"update", dev, "--password-stdin", "--private-key-file", "/dev/null"}, stdin: "y\n", token: auth.Admin,
			code: cli.ExitError, stderr: "either a password or a private key"}},
		{tc: cliCase{name: "two secrets on stdin", args: []string{"update", dev, "--password-stdin", "--enable-secret-stdin"}, stdin: "y\n", token: auth.Admin,
			code: cli.ExitError, stderr: "stdin carries one secret"}},
		{tc: cliCase{name: "an operator may not", args: []string{"update", dev, "--name", "x"}, token: auth.Operator, code: cli.ExitError, stderr: "(forbidden)"},
			check: func(t *testing.T, d apiwire.Device) { assert.Equal(t, "core-1", d.Name, "nothing changed") }},
	}
	for _, tt := range tests {
		r := e.check(t, "devices", tt.tc)
		printed.WriteString(r.stdout + r.stderr)
		if tt.check != nil {
			t.Run(tt.tc.name+": the device", func(t *testing.T) { tt.check(t, show(t)) })
		}
	}
	assert.NotContains(t, printed.String(), newPassword, "the password was printed")
	assert.NotContains(t, printed.String(), other.Password, "the password was printed")
}
