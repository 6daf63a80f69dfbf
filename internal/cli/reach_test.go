package cli_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/cli"
)

// TestCLIReach drives jump hosts, device chains and enable secrets through the netauto binary
// against the real API on the local stack; no secret is ever printed.
func TestCLIReach(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 29, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}}})
	inv := e.importFleet(t)
	dev := inv[0].ID
	const jumpSecret, rotated, enable = "jump-pass-3141", "jump-pass-2718", "enable-1618"
	var printed strings.Builder
	tests := []struct {
		command string
		tc      cliCase
	}{
		{"jump-hosts", cliCase{name: "create", args: []string{"create", "bastion", "--host", "192.0.2.50", "--port", "2222", "--username", "jump", "--password-stdin", "--trust-on-first-use"},
			stdin: jumpSecret + "\n", token: auth.Admin, stdout: []string{"id:                    bastion", "credential:            set", "trust_on_first_use:    true"}}},
		{"jump-hosts", cliCase{name: "an operator may not create", args: []string{"create", "other", "--host", "192.0.2.51", "--username", "u", "--password-stdin"},
			stdin: jumpSecret + "\n", token: auth.Operator, code: cli.ExitError, stderr: "(forbidden)"}},
		{"jump-hosts", cliCase{name: "no secret", args: []string{"create", "other", "--host", "192.0.2.51", "--username", "u"},
			token: auth.Admin, code: cli.ExitError, stderr: "a secret is required"}},
		{"jump-hosts", cliCase{name: "list", args: []string{"list"}, token: auth.Admin,
			stdout: []string{"ID       HOST        PORT  USERNAME  HOST KEY              CREDENTIAL", "bastion  192.0.2.50  2222  jump      (learn on first use)  set"}}},
		{"devices", cliCase{name: "put the device behind it, with an enable secret", args: []string{"update", dev, "--jump-host", "bastion", "--enable-secret-stdin"},
			stdin: enable + "\n", token: auth.Admin, stdout: []string{"updated " + dev}}},
		{"devices", cliCase{name: "show the chain", args: []string{"show", dev}, token: auth.Admin,
			stdout: []string{"jump_host_ids:         bastion", "has_enable_secret:     true"}}},
		{"devices", cliCase{name: "an unknown jump host", args: []string{"update", dev, "--jump-host", "bastion", "--jump-host", "nope"},
			token: auth.Admin, code: cli.ExitError, stderr: `jump_host_ids: names no jump host "nope"`}},
		{"devices", cliCase{name: "add behind it", args: []string{"add", "--id", "behind-2", "--name", "b2", "--host", "192.0.2.60", "--username", "u",
			"--credential-profile", "", "--password-stdin", "--jump-host", "bastion"}, stdin: "dev-pass\n", token: auth.Admin, stdout: []string{"created behind-2"}}},
		{"devices", cliCase{name: "clear both chains at once", args: []string{"set-jump-chain", "--direct", dev, "behind-2"}, token: auth.Admin,
			stdout: []string{"cleared the jump host chain of 2 devices"}}},
		{"devices", cliCase{name: "the chain is gone", args: []string{"show", "behind-2"}, token: auth.Admin, stdout: []string{"id:"}, notStdout: "bastion"}},
		{"devices", cliCase{name: "an unknown device: nothing set", args: []string{"set-jump-chain", "--jump-host", "bastion", dev, "ghost-9"}, token: auth.Admin,
			code: cli.ExitError, stderr: "ghost-9"}},
		{"devices", cliCase{name: "still direct", args: []string{"show", dev}, token: auth.Admin, stdout: []string{"id:"}, notStdout: "bastion"}},
		{"devices", cliCase{name: "an operator may not", args: []string{"set-jump-chain", "--jump-host", "bastion", dev}, token: auth.Operator,
			code: cli.ExitError, stderr: "(forbidden)"}},
		{"devices", cliCase{name: "nothing to set", args: []string{"set-jump-chain", dev}, token: auth.Admin, code: cli.ExitError, stderr: "nothing to set"}},
		{"devices", cliCase{name: "put both behind it at once", args: []string{"set-jump-chain", "--jump-host", "bastion", dev, "behind-2"}, token: auth.Admin,
			stdout: []string{"set the jump host chain of 2 devices: bastion"}}},
		{"devices", cliCase{name: "show the new chain", args: []string{"show", "behind-2"}, token: auth.Admin, stdout: []string{"jump_host_ids:         bastion"}}},
		{"jump-hosts", cliCase{name: "delete in use", args: []string{"delete", "bastion"}, token: auth.Admin, code: cli.ExitError,
			stderr: "2 devices use jump host"}},
		{"jump-hosts", cliCase{name: "accept a key that is not pending", args: []string{"accept-host-key", "bastion", "--fingerprint", "SHA256:" + strings.Repeat("A", 43)},
			token: auth.Admin, code: cli.ExitError, stderr: "netauto jump-hosts show bastion"}},
		{"jump-hosts", cliCase{name: "rotate with a new port", args: []string{"update", "bastion", "--port", "2200", "--password-stdin"},
			stdin: rotated + "\n", token: auth.Admin, stdout: []string{"port:                  2200", "credential:            set", "version:               2"}}},
		{"jump-hosts", cliCase{name: "show --json", args: []string{"show", "bastion", "--json"}, token: auth.Admin, stdout: []string{`"has_credential": true`}}},
		{"devices", cliCase{name: "direct again", args: []string{"update", dev, "--direct", "--clear-enable-secret"}, token: auth.Admin, stdout: []string{"updated " + dev}}},
		{"devices", cliCase{name: "and the other", args: []string{"update", "behind-2", "--direct"}, token: auth.Admin, stdout: []string{"updated behind-2"}}},
		{"jump-hosts", cliCase{name: "delete", args: []string{"delete", "bastion"}, token: auth.Admin, stdout: []string{"deleted jump host bastion"}}},
	}
	for _, tt := range tests {
		r := e.check(t, tt.command, tt.tc)
		printed.WriteString(r.stdout + r.stderr)
	}
	for _, s := range []string{jumpSecret, rotated, enable, "dev-pass"} {
		assert.NotContains(t, printed.String(), s, "a secret was printed")
	}
}
