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

// TestCLIDrift: three runs of show running-config on a device whose noise lines change at every
// showing, the last after a real change; netauto history, diff and platforms against the real API.
func TestCLIDrift(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Count: 1, Seed: 11, ConfigNoise: true})
	inv := e.importFleet(t)
	dev := inv[0].ID
	runOnce := func() apiwire.Run {
		t.Helper()
		r := e.run(t, cmd{args: []string{"run", dev, "--json", "--", "show", "running-config"}})
		require.Equal(t, 0, r.code, "run: %s", r.stderr)
		var got apiwire.Run
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "run --json: %s", r.stdout)
		return got
	}
	first, second := runOnce(), runOnce()
	require.True(t, e.fleet.SetConfigRevision(dev, 4), "change the device")
	third := runOnce()

	t.Run("history", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"history", dev, "--command", "show running-config"}})
		require.Equal(t, 0, r.code, "history: %s", r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 4, "a header and three runs: %s", r.stdout)
		assert.Regexp(t, `^RUN\s+CREATED\s+STATUS\s+CHANGED`, lines[0], "header")
		for i, want := range []struct{ id, changed string }{{third.ID, "true"}, {second.ID, "false"}, {first.ID, "-"}} {
			f := strings.Fields(lines[i+1])
			require.GreaterOrEqual(t, len(f), 4, "row %q", lines[i+1])
			assert.Equal(t, []string{want.id, "succeeded", want.changed}, []string{f[0], f[2], f[3]}, "row %d, newest first", i+1)
		}
		r = e.run(t, cmd{args: []string{"history", dev, "--command", "show running-config", "--limit", "2", "--json"}})
		require.Equal(t, 0, r.code, "history --json: %s", r.stderr)
		var runs []apiwire.Run
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs), "history --json: %s", r.stdout)
		require.Len(t, runs, 2, "--limit")
		assert.Equal(t, second.ID, runs[0].PreviousRunID, "the newest compared with the second")
		r = e.run(t, cmd{args: []string{"history", dev}})
		assert.Equal(t, cli.ExitError, r.code, "without --command")
		assert.Contains(t, r.stderr, "--command is required", "without --command")
	})

	t.Run("device runs", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"run", dev, "--", "show", "version"}})
		require.Equal(t, 0, r.code, "run: %s", r.stderr)
		r = e.run(t, cmd{args: []string{"devices", "runs", dev}})
		require.Equal(t, 0, r.code, "devices runs: %s", r.stderr)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 5, "a header and four runs: %s", r.stdout)
		assert.Regexp(t, `^RUN\s+CREATED\s+STATUS\s+REASON\s+CHANGED\s+BYTES\s+JOB\s+COMMAND`, lines[0], "header")
		assert.True(t, strings.HasSuffix(lines[1], "show version"), "the newest run, of another command, first: %q", lines[1])
		for i, id := range []string{third.ID, second.ID, first.ID} {
			assert.True(t, strings.HasPrefix(lines[i+2], id+" "), "row %d is %s, newest first: %q", i+2, id, lines[i+2])
		}
		r = e.run(t, cmd{args: []string{"devices", "runs", dev, "--limit", "2", "--json"}})
		require.Equal(t, 0, r.code, "devices runs --json: %s", r.stderr)
		var runs []apiwire.Run
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &runs), "devices runs --json: %s", r.stdout)
		require.Len(t, runs, 2, "--limit")
		assert.Equal(t, third.ID, runs[1].ID, "the second newest")
		r = e.run(t, cmd{args: []string{"devices", "runs", "no-such-device"}})
		assert.Equal(t, cli.ExitError, r.code, "an unknown device")
		assert.Contains(t, r.stderr, "runs of no-such-device", "an unknown device")
	})

	t.Run("diff", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"diff", third.ID}})
		require.Equal(t, 0, r.code, "diff: %s", r.stderr)
		assert.Contains(t, r.stdout, "--- "+second.ID+"\n+++ "+third.ID+"\n", "against the previous run")
		assert.Contains(t, r.stdout, "\n+snmp-server location ", "the real change")
		assert.NotContains(t, r.stdout, "Last configuration change", "no noise")

		r = e.run(t, cmd{args: []string{"diff", first.ID, second.ID}})
		require.Equal(t, 0, r.code, "diff of two runs: %s", r.stderr)
		assert.Empty(t, r.stdout, "only noise changed")
		assert.Contains(t, r.stderr, "no change from "+first.ID+" to "+second.ID, "said on stderr")

		r = e.run(t, cmd{args: []string{"diff", first.ID, second.ID, "--raw", "--json"}})
		require.Equal(t, 0, r.code, "raw diff: %s", r.stderr)
		var d apiwire.Diff
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), "diff --json: %s", r.stdout)
		assert.True(t, d.Raw && d.Changed, "raw, the noise lines differ: %+v", d)
		assert.Equal(t, first.ID, d.Against, "against")

		r = e.run(t, cmd{args: []string{"diff", first.ID}})
		assert.Equal(t, cli.ExitError, r.code, "a first run has nothing to compare with")
		assert.Contains(t, r.stderr, "no_previous_run", "a first run")
	})

	t.Run("platforms", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"platforms", "list"}})
		require.Equal(t, 0, r.code, "platforms list: %s", r.stderr)
		assert.Regexp(t, `(?m)^cisco_iosxe\s+shell\s+\d+\s+0\s+Cisco IOS-XE$`, r.stdout, "iosxe row")
		r = e.run(t, cmd{args: []string{"platforms", "set-filters", "cisco_iosxe", "--file", "-"},
			stdin: `[{"pattern":"^snmp-server location ","command":"^show run","description":"moves with the rack"}]`})
		require.Equal(t, 0, r.code, "set-filters: %s", r.stderr)
		assert.Contains(t, r.stdout, "cisco_iosxe: 1 admin filters", "set-filters")
		r = e.run(t, cmd{args: []string{"platforms", "filters", "cisco_iosxe"}})
		require.Equal(t, 0, r.code, "filters: %s", r.stderr)
		assert.Regexp(t, `(?m)^admin\s+\^show run\s+\^snmp-server location\s+moves with the rack$`, r.stdout, "the admin filter")
		r = e.run(t, cmd{args: []string{"diff", third.ID}})
		require.Equal(t, 0, r.code, "diff: %s", r.stderr)
		assert.NotContains(t, r.stdout, "snmp-server location", "the new filter applies to the diff at once")
		r = e.run(t, cmd{args: []string{"platforms", "set-filters", "cisco_iosxe", "--file", "-"}, stdin: `{"filters":[{"pattern":"("}]}`})
		assert.Equal(t, cli.ExitError, r.code, "a bad filter")
		assert.Contains(t, r.stderr, "filters[0].pattern", "names the field")
	})
}
