package cli_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/cli"
)

var jobLine = regexp.MustCompile(`job (\S+): `)

// jobIDOf finds the job id in bulk's first stderr line.
func jobIDOf(t *testing.T, stderr string) string {
	t.Helper()
	m := jobLine.FindStringSubmatch(stderr)
	require.NotNil(t, m, "no job id in stderr %q", stderr)
	return m[1]
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, data, 0o600), "write %s", name)
	return p
}

// importFleet imports the stack's simulated fleet with `netauto devices import` and returns it.
func (e *stackEnv) importFleet(t *testing.T) []devicesim.InventoryDevice {
	t.Helper()
	inv := e.fleet.Inventory()
	data, err := json.Marshal(inv)
	require.NoError(t, err)
	r := e.run(t, cmd{args: []string{"devices", "import", writeFile(t, "fleet.json", data)}})
	require.Equal(t, 0, r.code, "import: %s%s", r.stdout, r.stderr)
	return inv
}

func inventoryCSV(t *testing.T, devs []devicesim.InventoryDevice) []byte {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write([]string{"id", "name", "host", "port", "platform", "username", "auth_method", "password", "site", "tags", "host_key"})
	for _, d := range devs {
		var tags []string
		for k, v := range d.Tags {
			tags = append(tags, k+"="+v)
		}
		_ = w.Write([]string{d.ID, d.Name, d.Host, strconv.Itoa(d.Port), d.Platform, d.Username, d.AuthMethod, d.Password, d.Site, strings.Join(tags, ";"), d.HostKey})
	}
	w.Flush()
	require.NoError(t, w.Error(), "write the inventory CSV")
	return b.Bytes()
}

// TestCLI drives the netauto binary against one stack with a simulated fleet of five devices,
// one of which refuses connections. The subtests run in order: the first ones import the fleet.
func TestCLI(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Count: 5, Seed: 7, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 1}}})
	inv := e.fleet.Inventory()
	byID := map[string]devicesim.InventoryDevice{}
	var healthy []string
	refusing := ""
	for _, d := range inv {
		byID[d.ID] = d
		if d.Fault == devicesim.FaultRefuse {
			refusing = d.ID
		} else {
			healthy = append(healthy, d.ID)
		}
	}
	jsonInv, err := json.Marshal(inv[:3])
	require.NoError(t, err)

	// Every subtest needs the fleet in the inventory: import it, three devices from JSON and two
	// from CSV, before any subtest (so -run can pick one).
	r := e.run(t, cmd{args: []string{"devices", "import", writeFile(t, "fleet.json", jsonInv)}})
	require.Equal(t, 0, r.code, "import json: %s", r.stdout)
	require.Contains(t, r.stdout, "created 3, rejected 0", "import json")
	r = e.run(t, cmd{args: []string{"devices", "import", writeFile(t, "fleet.csv", inventoryCSV(t, inv[3:]))}})
	require.Equal(t, 0, r.code, "import csv: %s", r.stdout)
	require.Contains(t, r.stdout, "created 2, rejected 0", "import csv")

	t.Run("imported devices are listed as given", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"devices", "list", "--json"}})
		require.Equal(t, 0, r.code, "list: %s", r.stdout)
		var got []apiwire.Device
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "list --json: %s", r.stdout)
		require.Len(t, got, len(inv), "listed devices")
		for _, d := range got {
			want, ok := byID[d.ID]
			require.True(t, ok, "listed an unknown device %s", d.ID)
			assert.Equal(t, want.Host, d.Host, "%s: host", d.ID)
			assert.Equal(t, want.Port, d.Port, "%s: port", d.ID)
			assert.Equal(t, want.Site, d.Site, "%s: site", d.ID)
			assert.Equal(t, want.HostKey, d.HostKey, "%s: host key", d.ID)
			assert.Equal(t, want.Tags["model"], d.Tags["model"], "%s: model tag", d.ID)
			assert.True(t, d.HasCredential, "%s: has a credential", d.ID)
			assert.Equal(t, want.AuthMethod, d.AuthMethod, "%s: auth method", d.ID)
		}
	})

	t.Run("import rejected", func(t *testing.T) {
		tests := []struct {
			name, file string
			data       []byte
			extra      []string
			code       int
			stdout     string
			stderr     string
		}{
			{name: "bad port in CSV", file: "bad.csv", data: []byte("id,name,host,port,username,password\nnew1,n,10.0.0.1,70000,u,p\n"),
				code: cli.ExitFailed, stdout: "1    new1  invalid  port: must be from 1 to 65535", stderr: "error: import: 1 of 1 rows rejected, nothing written (import_rejected)"},
			{name: "existing id in JSON", file: "dup.json", data: jsonInv, code: cli.ExitFailed, stdout: "exists", stderr: "error: import: "},
			{name: "unknown format", file: "fleet.txt", data: jsonInv, code: cli.ExitError, stderr: `unknown format "txt"`},
			{name: "format flag wins", file: "fleet.txt", data: []byte("id,name,host,username\nnew2,n,10.0.0.2,u\n"), extra: []string{"--format", "csv", "--mode", "per-row"},
				code: 0, stdout: "created 1, rejected 0 (mode per-row)"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.run(t, cmd{args: append([]string{"devices", "import", writeFile(t, tc.file, tc.data)}, tc.extra...)})
				assert.Equal(t, tc.code, r.code, "import exit code")
				assert.Contains(t, r.stdout, tc.stdout, "import stdout")
				assert.Contains(t, r.stderr, tc.stderr, "import stderr")
			})
		}
		r := e.run(t, cmd{args: []string{"devices", "rm", "new2"}})
		require.Equal(t, 0, r.code, "rm new2: %s", r.stderr)
	})

	t.Run("API errors name the field", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"devices", "add", "--id", "x1", "--name", "x", "--host", "10.0.0.1", "--username", "u", "--port", "70000"}})
		assert.Equal(t, cli.ExitError, r.code, "add exit code")
		assert.Equal(t, "error: add device x1: port: must be from 1 to 65535 (invalid)\n", r.stderr, "add stderr")
		r = e.run(t, cmd{args: []string{"bulk", "--ids", healthy[0] + ",nope", "--", "show", "version"}})
		assert.Equal(t, cli.ExitError, r.code, "bulk with an unknown id: exit code")
		assert.Contains(t, r.stderr, "unknown devices: nope", "bulk with an unknown id: stderr")
	})

	t.Run("bulk --out writes the stored outputs", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		r := e.run(t, cmd{args: []string{"bulk", "--ids", strings.Join(healthy, ","), "--out", dir, "--max-concurrency", "2", "--", "show", "version"}})
		require.Equal(t, 0, r.code, "bulk: %s", r.stdout)
		job := jobIDOf(t, r.stderr)
		for _, id := range healthy {
			got, err := os.ReadFile(filepath.Join(dir, id+".txt"))
			require.NoError(t, err, "%s: output file", id)
			want := e.storedOutput(t, bulk.RunID(job, id))
			assert.NotEmpty(t, want, "%s: stored output", id)
			assert.Equal(t, want, string(got), "%s: output file against the store", id)
			assert.Contains(t, r.stdout, id, "table lists %s", id)
		}
		assert.Contains(t, r.stdout, "completed: succeeded 4", "summary")
	})

	t.Run("bulk --json with a refusing device", func(t *testing.T) {
		dir := t.TempDir()
		r := e.run(t, cmd{args: []string{"bulk", "--tag", "simulated=true", "--json", "--out", dir, "--timeout", "20s", "--", "show", "version"}})
		require.Equal(t, cli.ExitFailed, r.code, "bulk exit code")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, len(inv)+1, "JSON lines: one per device and the job:\n%s", r.stdout)
		seen := map[string]bool{}
		var job cli.JobLine
		for i, l := range lines {
			if i == len(lines)-1 {
				require.NoError(t, json.Unmarshal([]byte(l), &job), "last line %q", l)
				require.Equal(t, "job", job.Type, "last line %q", l)
				continue
			}
			var d cli.DeviceLine
			require.NoError(t, json.Unmarshal([]byte(l), &d), "line %q", l)
			require.Equal(t, "device", d.Type, "line %q", l)
			seen[d.DeviceID] = true
			want := "succeeded"
			if d.DeviceID == refusing {
				want = "unreachable"
			}
			assert.Equal(t, want, d.Status, "%s: status", d.DeviceID)
			if d.OutputFile != "" {
				got, err := os.ReadFile(d.OutputFile)
				require.NoError(t, err, "%s: output file", d.DeviceID)
				assert.Equal(t, e.storedOutput(t, d.RunID), string(got), "%s: output file against the store", d.DeviceID)
			} else {
				assert.NotEqual(t, "succeeded", d.Status, "%s succeeded without an output file", d.DeviceID)
			}
		}
		assert.Len(t, seen, len(inv), "devices seen: %v", seen)
		assert.Equal(t, "completed", job.Status, "job status")
		assert.Equal(t, len(healthy), job.Counts["succeeded"], "job's succeeded count")
		assert.Equal(t, 1, job.Counts["unreachable"], "job's unreachable count")
		assert.Equal(t, cli.LiveWebSocket, job.Live, "progress followed through the local gateway's /ws")
	})

	t.Run("job show and wait", func(t *testing.T) {
		// A job of its own, one device failing, so the subtest runs alone too.
		r := e.run(t, cmd{args: []string{"bulk", "--ids", healthy[0] + "," + refusing, "--json", "--", "show", "clock"}})
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Equal(t, cli.ExitFailed, r.code, "bulk: %s", r.stdout)
		var last cli.JobLine
		require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last), "bulk's last line: %s", r.stdout)
		failedJob := last.JobID
		// A WebSocket URL where nothing listens: the CLI falls back to polling and still ends.
		r = e.run(t, cmd{args: []string{"bulk", "--ids", healthy[0], "--json", "--ws", "ws://127.0.0.1:1/ws", "--", "show", "clock"}})
		lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
		var polled cli.JobLine
		assert.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &polled), "bulk with an unreachable --ws: last line")
		assert.Equal(t, cli.ExitOK, r.code, "bulk with an unreachable --ws: exit code")
		assert.Equal(t, cli.LivePolling, polled.Live, "bulk with an unreachable --ws: followed by polling")
		r = e.run(t, cmd{args: []string{"job", "show", failedJob, "--json"}})
		var j apiwire.Job
		assert.Equal(t, 0, r.code, "job show: %s", r.stderr)
		if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &j), "job show --json: %s", r.stdout) {
			assert.Equal(t, failedJob, j.JobID, "job show: job id")
			assert.Equal(t, 2, j.DeviceCount, "job show %s: devices", failedJob)
		}
		r = e.run(t, cmd{args: []string{"job", "wait", failedJob}})
		assert.Equal(t, cli.ExitFailed, r.code, "job wait %s: exit code", failedJob)
		assert.Contains(t, r.stdout, refusing, "job wait %s lists the refusing device", failedJob)
		assert.Contains(t, r.stderr, "1 of 2 devices did not succeed", "job wait %s", failedJob)
		r = e.run(t, cmd{args: []string{"job", "list", "--limit", "200", "--json"}})
		require.Equal(t, 0, r.code, "job list --json: %s", r.stderr)
		var jobs []apiwire.JobSummary
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &jobs), "job list --json: %s", r.stdout)
		found := slices.IndexFunc(jobs, func(j apiwire.JobSummary) bool { return j.JobID == failedJob })
		if assert.GreaterOrEqual(t, found, 0, "job list lacks %s: %+v", failedJob, jobs) {
			assert.Equal(t, 2, jobs[found].DeviceCount, "job list: devices of %s", failedJob)
			assert.Equal(t, "show clock", jobs[found].Command, "job list: command of %s", failedJob)
		}
		for i := 1; i < len(jobs); i++ {
			assert.False(t, jobs[i].CreatedAt.After(jobs[i-1].CreatedAt), "job list not newest first at %d: %s after %s", i, jobs[i].CreatedAt, jobs[i-1].CreatedAt)
		}
		r = e.run(t, cmd{args: []string{"job", "list"}})
		assert.Equal(t, 0, r.code, "job list: %s", r.stderr)
		assert.True(t, strings.HasPrefix(r.stdout, "JOB"), "job list's header: %q", r.stdout)
		assert.Contains(t, r.stdout, "show clock", "job list")
		r = e.run(t, cmd{args: []string{"job", "list", "--limit", "0"}})
		assert.NotEqual(t, 0, r.code, "job list --limit 0: exit code")
		assert.Contains(t, r.stderr, "--limit", "job list --limit 0: the error names --limit")
	})

	t.Run("run", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"run", healthy[0], "--json", "--", "show", "version"}})
		var got struct {
			apiwire.Run
			Output string `json:"output"`
		}
		require.Equal(t, 0, r.code, "run --json: %s", r.stderr)
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &got), "run --json: %s", r.stdout)
		assert.Equal(t, "succeeded", got.Status, "run %s: status", got.ID)
		assert.NotEmpty(t, got.Output, "run %s: output", got.ID)
		assert.Equal(t, e.storedOutput(t, got.ID), got.Output, "run %s: output against the store", got.ID)
		r = e.run(t, cmd{args: []string{"run", healthy[1], "--", "show", "version"}})
		assert.Equal(t, 0, r.code, "run on %s: %s", healthy[1], r.stderr)
		assert.Contains(t, r.stdout, byID[healthy[1]].Name, "run on %s prints its output", healthy[1])
		r = e.run(t, cmd{args: []string{"run", refusing, "--timeout", "10s", "--", "show", "version"}})
		assert.Equal(t, cli.ExitFailed, r.code, "run on the refusing device %s: exit code", refusing)
		assert.Contains(t, r.stderr, "unreachable", "run on the refusing device %s", refusing)
	})

	t.Run("retention", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"retention", "show", "--json"}})
		var v struct {
			Settings struct {
				MaxDays int `json:"max_days"`
			} `json:"settings"`
		}
		assert.Equal(t, 0, r.code, "retention show: %s", r.stderr)
		if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &v), "retention show --json: %s", r.stdout) {
			assert.Equal(t, 30, v.Settings.MaxDays, "retention show: max_days")
		}
		r = e.run(t, cmd{args: []string{"devices", "show", healthy[0]}})
		assert.Equal(t, 0, r.code, "devices show: %s", r.stderr)
		assert.Regexp(t, `(?m)^charged_bytes:\s+[1-9][0-9]*\n^stored_bytes:\s+[0-9]+$`, r.stdout, "devices show prints the device's bytes")
		r = e.run(t, cmd{args: []string{"retention", "purge"}})
		assert.Equal(t, 0, r.code, "retention purge: %s", r.stderr)
		assert.Contains(t, r.stdout, "(api), complete true", "retention purge")
		r = e.run(t, cmd{args: []string{"retention", "show"}})
		assert.Equal(t, 0, r.code, "retention show: %s", r.stderr)
		assert.Regexp(t, `(?m)^charged_bytes:\s+[1-9][0-9]*\n^stored_bytes:\s+[1-9][0-9]*\n^totals_as_of:\s+20\d\d-\S+ \(the last purge`, r.stdout,
			"retention show prints the byte totals the purge folded (runs ran above)")
		r = e.run(t, cmd{args: []string{"retention", "purge"}, env: map[string]string{"NET_AUTO_TOKEN": e.tokens[auth.Viewer]}})
		assert.Equal(t, cli.ExitError, r.code, "purge as viewer: exit code")
		assert.Contains(t, r.stderr, "(forbidden)", "purge as viewer")

		// Both purges are in the audit trail, newest first: the viewer's refused, the admin's done.
		r = e.run(t, cmd{args: []string{"audit", "--action", "retention.purge", "--since", "1h", "--limit", "1"}})
		assert.Equal(t, 0, r.code, "audit: %s", r.stderr)
		assert.Regexp(t, `viewer@example.com\s+retention.purge\s+denied\s+forbidden`, r.stdout, "audit, first page")
		assert.Contains(t, r.stdout, "more: netauto audit --cursor ", "audit prints the next page's cursor")
		r = e.run(t, cmd{args: []string{"audit", "--action", "retention.purge", "--json"}})
		var l apiwire.AuditList
		if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &l), "audit --json: %s", r.stdout) && assert.Len(t, l.Items, 2) {
			assert.Equal(t, []string{"denied", "ok"}, []string{l.Items[0].Outcome, l.Items[1].Outcome})
		}
		r = e.run(t, cmd{args: []string{"audit", "--since", "yesterday"}})
		assert.Equal(t, cli.ExitError, r.code, "audit --since yesterday")
		assert.Contains(t, r.stderr, "--since")
		r = e.run(t, cmd{args: []string{"audit"}, env: map[string]string{"NET_AUTO_TOKEN": e.tokens[auth.Operator]}})
		assert.Equal(t, cli.ExitError, r.code, "audit as operator: exit code")
	})

	t.Run("token errors", func(t *testing.T) {
		other, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "other.pem"))
		require.NoError(t, err)
		foreign, err := other.Issue(auth.TokenSpec{Subject: "x", Groups: []string{string(auth.Admin)}})
		require.NoError(t, err)
		tests := []struct {
			name, token, stderr string
		}{
			{name: "missing", token: "", stderr: "error: no token: pass --token, set NET_AUTO_TOKEN, or run `netauto login`\n"},
			{name: "garbage", token: "not-a-jwt", stderr: "(unauthorized)\n  the token is missing, expired or invalid"},
			{name: "foreign signer", token: foreign, stderr: "(unauthorized)\n  the token is missing, expired or invalid"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := e.run(t, cmd{args: []string{"devices", "list"}, env: map[string]string{"NET_AUTO_TOKEN": tc.token}})
				assert.Equal(t, cli.ExitError, r.code, "devices list: exit code")
				assert.Contains(t, r.stderr, tc.stderr, "devices list: stderr")
				assert.Empty(t, r.stdout, "devices list: stdout")
			})
		}
	})

	t.Run("login stores the token", func(t *testing.T) {
		cfg := t.TempDir()
		env := map[string]string{"NET_AUTO_TOKEN": "", "XDG_CONFIG_HOME": cfg}
		path := filepath.Join(cfg, "netauto", "config.json")
		r := e.run(t, cmd{args: []string{"login"}, stdin: "not-a-jwt\n", env: env})
		require.Equal(t, cli.ExitError, r.code, "login with a bad token: exit code")
		_, err := os.Stat(path)
		require.ErrorIs(t, err, os.ErrNotExist, "login with a bad token wrote the config")
		r = e.run(t, cmd{args: []string{"login", "--token", e.tokens[auth.Viewer]}, env: env})
		require.Equal(t, 0, r.code, "login: %s", r.stderr)
		assert.Contains(t, r.stderr, "signed in as viewer@example.com: viewer\n", "login names the roles the token grants")
		fi, err := os.Stat(path)
		require.NoError(t, err, "config after login")
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "config file mode")
		r = e.run(t, cmd{args: []string{"devices", "get", healthy[0]}, env: env})
		assert.Equal(t, 0, r.code, "get with the stored token: %s", r.stderr)
		assert.Contains(t, r.stdout, byID[healthy[0]].Name, "get %s with the stored token", healthy[0])
	})
}
