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
	if m == nil {
		t.Fatalf("no job id in stderr %q", stderr)
	}
	return m[1]
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
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
	if err := w.Error(); err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}

	// Every subtest needs the fleet in the inventory: import it, three devices from JSON and two
	// from CSV, before any subtest (so -run can pick one).
	r := e.run(t, cmd{args: []string{"devices", "import", writeFile(t, "fleet.json", jsonInv)}})
	if r.code != 0 || !strings.Contains(r.stdout, "created 3, rejected 0") {
		t.Fatalf("import json = %d %q", r.code, r.stdout)
	}
	r = e.run(t, cmd{args: []string{"devices", "import", writeFile(t, "fleet.csv", inventoryCSV(t, inv[3:]))}})
	if r.code != 0 || !strings.Contains(r.stdout, "created 2, rejected 0") {
		t.Fatalf("import csv = %d %q", r.code, r.stdout)
	}

	t.Run("imported devices are listed as given", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"devices", "list", "--json"}})
		var got []apiwire.Device
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
			t.Fatalf("list = %d %q: %v", r.code, r.stdout, err)
		}
		if len(got) != len(inv) {
			t.Fatalf("listed %d devices, want %d", len(got), len(inv))
		}
		for _, d := range got {
			want := byID[d.ID]
			if d.Host != want.Host || d.Port != want.Port || d.Site != want.Site || d.HostKey != want.HostKey ||
				d.Tags["model"] != want.Tags["model"] || !d.HasCredential || d.AuthMethod != want.AuthMethod {
				t.Errorf("device %s = %+v, want %+v", d.ID, d, want)
			}
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
				if r.code != tc.code || !strings.Contains(r.stdout, tc.stdout) || !strings.Contains(r.stderr, tc.stderr) {
					t.Errorf("import = %d, stdout %q, stderr %q; want %d, %q, %q", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
				}
			})
		}
		if r := e.run(t, cmd{args: []string{"devices", "rm", "new2"}}); r.code != 0 {
			t.Fatalf("rm new2 = %d", r.code)
		}
	})

	t.Run("API errors name the field", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"devices", "add", "--id", "x1", "--name", "x", "--host", "10.0.0.1", "--username", "u", "--port", "70000"}})
		if r.code != cli.ExitError || r.stderr != "error: add device x1: port: must be from 1 to 65535 (invalid)\n" {
			t.Errorf("add = %d %q", r.code, r.stderr)
		}
		r = e.run(t, cmd{args: []string{"bulk", "--ids", healthy[0] + ",nope", "--", "show", "version"}})
		if r.code != cli.ExitError || !strings.Contains(r.stderr, "unknown devices: nope") {
			t.Errorf("bulk with an unknown id = %d %q", r.code, r.stderr)
		}
	})

	t.Run("bulk --out writes the stored outputs", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "out")
		r := e.run(t, cmd{args: []string{"bulk", "--ids", strings.Join(healthy, ","), "--out", dir, "--max-concurrency", "2", "--", "show", "version"}})
		if r.code != 0 {
			t.Fatalf("bulk = %d\n%s", r.code, r.stdout)
		}
		job := jobIDOf(t, r.stderr)
		for _, id := range healthy {
			got, err := os.ReadFile(filepath.Join(dir, id+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			want := e.storedOutput(t, bulk.RunID(job, id))
			if want == "" || string(got) != want {
				t.Errorf("%s: file has %d bytes, store %d", id, len(got), len(want))
			}
			if !strings.Contains(r.stdout, id) {
				t.Errorf("table lacks %s:\n%s", id, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "completed: succeeded 4") {
			t.Errorf("summary missing:\n%s", r.stdout)
		}
	})

	t.Run("bulk --json with a refusing device", func(t *testing.T) {
		dir := t.TempDir()
		r := e.run(t, cmd{args: []string{"bulk", "--tag", "simulated=true", "--json", "--out", dir, "--timeout", "20s", "--", "show", "version"}})
		if r.code != cli.ExitFailed {
			t.Fatalf("bulk = %d, want %d", r.code, cli.ExitFailed)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != len(inv)+1 {
			t.Fatalf("%d JSON lines, want %d:\n%s", len(lines), len(inv)+1, r.stdout)
		}
		seen := map[string]bool{}
		var job cli.JobLine
		for i, l := range lines {
			if i == len(lines)-1 {
				if err := json.Unmarshal([]byte(l), &job); err != nil || job.Type != "job" {
					t.Fatalf("last line %q: %v", l, err)
				}
				continue
			}
			var d cli.DeviceLine
			if err := json.Unmarshal([]byte(l), &d); err != nil || d.Type != "device" {
				t.Fatalf("line %q: %v", l, err)
			}
			seen[d.DeviceID] = true
			want := "succeeded"
			if d.DeviceID == refusing {
				want = "unreachable"
			}
			if d.Status != want {
				t.Errorf("%s: status %s, want %s", d.DeviceID, d.Status, want)
			}
			if d.OutputFile != "" {
				got, err := os.ReadFile(d.OutputFile)
				if err != nil || string(got) != e.storedOutput(t, d.RunID) {
					t.Errorf("%s: output file differs from the store (%v)", d.DeviceID, err)
				}
			} else if d.Status == "succeeded" {
				t.Errorf("%s succeeded without an output file", d.DeviceID)
			}
		}
		if len(seen) != len(inv) {
			t.Errorf("devices seen %v, want all %d", seen, len(inv))
		}
		if job.Status != "completed" || job.Counts["succeeded"] != len(healthy) || job.Counts["unreachable"] != 1 {
			t.Errorf("job line = %+v", job.Job)
		}
		if job.Live != cli.LiveWebSocket {
			t.Errorf("progress followed by %q, want %q (the local gateway's /ws)", job.Live, cli.LiveWebSocket)
		}
	})

	t.Run("job show and wait", func(t *testing.T) {
		// A job of its own, one device failing, so the subtest runs alone too.
		r := e.run(t, cmd{args: []string{"bulk", "--ids", healthy[0] + "," + refusing, "--json", "--", "show", "clock"}})
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		var last cli.JobLine
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || r.code != cli.ExitFailed {
			t.Fatalf("bulk = %d %q (%v)", r.code, r.stdout, err)
		}
		failedJob := last.JobID
		// A WebSocket URL where nothing listens: the CLI falls back to polling and still ends.
		r = e.run(t, cmd{args: []string{"bulk", "--ids", healthy[0], "--json", "--ws", "ws://127.0.0.1:1/ws", "--", "show", "clock"}})
		lines = strings.Split(strings.TrimSpace(r.stdout), "\n")
		var polled cli.JobLine
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &polled); err != nil || r.code != cli.ExitOK || polled.Live != cli.LivePolling {
			t.Errorf("bulk with an unreachable --ws = %d, live %q (%v), want 0 and %q", r.code, polled.Live, err, cli.LivePolling)
		}
		r = e.run(t, cmd{args: []string{"job", "show", failedJob, "--json"}})
		var j apiwire.Job
		if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || r.code != 0 || j.JobID != failedJob || j.DeviceCount != 2 {
			t.Errorf("job show = %d %q (%v)", r.code, r.stdout, err)
		}
		r = e.run(t, cmd{args: []string{"job", "wait", failedJob}})
		if r.code != cli.ExitFailed || !strings.Contains(r.stdout, refusing) || !strings.Contains(r.stderr, "1 of 2 devices did not succeed") {
			t.Errorf("job wait = %d %q %q", r.code, r.stdout, r.stderr)
		}
		r = e.run(t, cmd{args: []string{"job", "list", "--limit", "200", "--json"}})
		var jobs []apiwire.JobSummary
		if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil || r.code != 0 {
			t.Fatalf("job list --json = %d %q (%v)", r.code, r.stdout, err)
		}
		found := slices.IndexFunc(jobs, func(j apiwire.JobSummary) bool { return j.JobID == failedJob })
		if found < 0 || jobs[found].DeviceCount != 2 || jobs[found].Command != "show clock" {
			t.Errorf("job list lacks %s: %+v", failedJob, jobs)
		}
		for i := 1; i < len(jobs); i++ {
			if jobs[i].CreatedAt.After(jobs[i-1].CreatedAt) {
				t.Errorf("job list not newest first at %d: %s after %s", i, jobs[i].CreatedAt, jobs[i-1].CreatedAt)
			}
		}
		r = e.run(t, cmd{args: []string{"job", "list"}})
		if r.code != 0 || !strings.HasPrefix(r.stdout, "JOB") || !strings.Contains(r.stdout, "show clock") {
			t.Errorf("job list = %d %q", r.code, r.stdout)
		}
		if r = e.run(t, cmd{args: []string{"job", "list", "--limit", "0"}}); r.code == 0 || !strings.Contains(r.stderr, "--limit") {
			t.Errorf("job list --limit 0 = %d %q, want an error naming --limit", r.code, r.stderr)
		}
	})

	t.Run("run", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"run", healthy[0], "--json", "--", "show", "version"}})
		var got struct {
			apiwire.Run
			Output string `json:"output"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
			t.Fatalf("run --json = %d %q: %v", r.code, r.stdout, err)
		}
		if got.Status != "succeeded" || got.Output == "" || got.Output != e.storedOutput(t, got.ID) {
			t.Errorf("run = %+v", got)
		}
		r = e.run(t, cmd{args: []string{"run", healthy[1], "--", "show", "version"}})
		if r.code != 0 || !strings.Contains(r.stdout, byID[healthy[1]].Name) {
			t.Errorf("run = %d %q", r.code, r.stdout)
		}
		r = e.run(t, cmd{args: []string{"run", refusing, "--timeout", "10s", "--", "show", "version"}})
		if r.code != cli.ExitFailed || !strings.Contains(r.stderr, "unreachable") {
			t.Errorf("run on the refusing device = %d %q", r.code, r.stderr)
		}
	})

	t.Run("retention", func(t *testing.T) {
		r := e.run(t, cmd{args: []string{"retention", "show", "--json"}})
		var v struct {
			Settings struct {
				MaxDays int `json:"max_days"`
			} `json:"settings"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || v.Settings.MaxDays != 30 {
			t.Errorf("retention show = %d %q (%v)", r.code, r.stdout, err)
		}
		r = e.run(t, cmd{args: []string{"retention", "purge"}})
		if r.code != 0 || !strings.Contains(r.stdout, "(api), complete true") {
			t.Errorf("retention purge = %d %q", r.code, r.stdout)
		}
		r = e.run(t, cmd{args: []string{"retention", "purge"}, env: map[string]string{"NET_AUTO_TOKEN": e.tokens[auth.Viewer]}})
		if r.code != cli.ExitError || !strings.Contains(r.stderr, "(forbidden)") {
			t.Errorf("purge as viewer = %d %q", r.code, r.stderr)
		}
	})

	t.Run("token errors", func(t *testing.T) {
		other, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "other.pem"))
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := other.Issue(auth.TokenSpec{Subject: "x", Groups: []string{string(auth.Admin)}})
		if err != nil {
			t.Fatal(err)
		}
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
				if r.code != cli.ExitError || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
					t.Errorf("devices list = %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, tc.stderr)
				}
			})
		}
	})

	t.Run("login stores the token", func(t *testing.T) {
		cfg := t.TempDir()
		env := map[string]string{"NET_AUTO_TOKEN": "", "XDG_CONFIG_HOME": cfg}
		path := filepath.Join(cfg, "netauto", "config.json")
		r := e.run(t, cmd{args: []string{"login"}, stdin: "not-a-jwt\n", env: env})
		if _, err := os.Stat(path); r.code != cli.ExitError || err == nil {
			t.Fatalf("login with a bad token = %d, config stat %v", r.code, err)
		}
		r = e.run(t, cmd{args: []string{"login", "--token", e.tokens[auth.Viewer]}, env: env})
		fi, err := os.Stat(path)
		if r.code != 0 || err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("login = %d, config %v %v", r.code, fi, err)
		}
		r = e.run(t, cmd{args: []string{"devices", "get", healthy[0]}, env: env})
		if r.code != 0 || !strings.Contains(r.stdout, byID[healthy[0]].Name) {
			t.Errorf("get with the stored token = %d %q", r.code, r.stdout)
		}
	})
}
