package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/cli"
)

// TestCLISequence runs command sequences with prompts through netauto run and bulk against the
// real API, executor and simulated IOS devices, and reads one command's output with run-output.
func TestCLISequence(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 71, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}, {Platform: "cisco_iosxe"}}})
	inv := e.importFleet(t)
	dev := inv[0].ID

	t.Run("run prints each command under its line; run-output reads one", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"run", dev, "--command", "show clock", "--command", "clear counters", "--prompt", "[confirm]=y",
			"--command", "show version", "--json"}})
		require.Equal(t, 0, r.code, "run: %s", r.stderr)
		var got struct {
			apiwire.Run
			Output string `json:"output"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "run --json: %s", r.stdout)
		require.Len(t, got.Commands, 3)
		assert.Equal(t, "show clock (+2 more)", got.Command)

		r = e.run(t, cmd{args: []string{"run-output", got.ID, "--command", "1"}})
		require.Equal(t, 0, r.code, "run-output: %s", r.stderr)
		assert.Contains(t, r.stdout, "CLEAR-5-COUNTERS", "command 1's output")
		assert.NotContains(t, r.stdout, "Cisco IOS Software", "only command 1's output")
		assert.Equal(t, got.Output, e.storedOutput(t, got.ID), "the whole output")

		r = e.run(t, cmd{args: []string{"run-output", got.ID, "--command", "3"}})
		assert.Equal(t, cli.ExitError, r.code)
		assert.Contains(t, r.stderr, "command: must be a command's index, from 0 to 2")

		r = e.run(t, cmd{args: []string{"run", dev, "--command", "show clock", "--command", "show bogus", "--command", "show version", "--stop-on-error"}})
		assert.Equal(t, cli.ExitFailed, r.code, "a failed command fails the run")
		assert.Contains(t, r.stdout, "--- [1/2] show clock: succeeded")
		assert.Contains(t, r.stdout, "--- [2/2] show bogus: failed (command_error)")
		assert.Contains(t, r.stdout, "% Invalid input")
		assert.NotContains(t, r.stdout, "show version", "stop_on_error: the third command never ran")
	})

	t.Run("secret prompt answers come from stdin and never show", func(t *testing.T) {
		secret := inv[0].Password // the simulated scp server's password
		r := e.run(t, cmd{stdin: secret + "\n", args: []string{"run", dev, "--command", "copy scp: flash:",
			"--prompt", "remote host []?=10.0.0.9", "--prompt", "Source filename []?=image.bin", "--prompt-regex", `Destination filename \[.*\]\?=`,
			"--secret-prompt", "Password:"}})
		require.Equal(t, 0, r.code, "run: %s", r.stderr)
		assert.Contains(t, r.stdout, "bytes copied")
		assert.NotContains(t, r.stdout+r.stderr, secret, "the secret answer is printed")
	})

	t.Run("bulk runs the sequence on every device", func(t *testing.T) {
		ids := inv[0].ID + "," + inv[1].ID
		r := e.run(t, cmd{args: []string{"bulk", "--ids", ids, "--command", "show clock", "--command", "show version", "--json"}})
		require.Equal(t, 0, r.code, "bulk: %s", r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.GreaterOrEqual(t, len(lines), 2)
		for _, l := range lines[:2] {
			var d apiwire.JobDevice
			require.NoError(t, json.Unmarshal([]byte(l), &d), "%s", l)
			assert.Equal(t, "succeeded", d.Status, "%s", l)
		}
		r = e.run(t, cmd{args: []string{"bulk", "--ids", ids, "--command", "show clock", "--", "show", "version"}})
		assert.Equal(t, cli.ExitError, r.code)
		assert.Contains(t, r.stderr, "not both")
	})
}
