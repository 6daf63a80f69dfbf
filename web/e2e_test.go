// Package web_test runs the UI's end-to-end tests: the whole local system as `make dev` wires it
// (infra/localdev: gateway with the dev sign-in, WebSocket API, executor behind the local event
// source mapping) on the shared test stack, with a simulated fleet, driven by Debian's Chromium
// through playwright-core (web/e2e/*.mjs).
package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/localdev"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/config"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// chromium is Debian's Chromium, which `make deps` installs.
const chromium = "/usr/bin/chromium"

// artifacts is where the scripts put screenshots and the stack's log (ignored by git; CI keeps it).
func artifacts(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.Abs(filepath.Join("e2e", "artifacts"))
	require.NoError(tb, err, "artifacts directory")
	require.NoError(tb, os.MkdirAll(dir, 0o755), "create %s", dir)
	return dir
}

// needBrowser skips under -short and fails with the fix when the browser or the npm packages are
// missing.
func needBrowser(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("the UI tests drive Chromium against the local stack; skipped with -short")
	}
	require.FileExists(tb, chromium, "%s is missing: run `make deps` (installs the Debian package chromium)", chromium)
	for _, f := range []string{"node_modules/playwright-core/package.json", "node_modules/axe-core/axe.min.js", "vendor/preact.mjs"} {
		require.FileExists(tb, f, "web/%s is missing: run `make deps` (npm ci in web/)", f)
	}
}

// startSystem runs the local system on the shared stack with its own tables and queues and the
// given fleet, and returns the gateway's URL; it stops when the test ends. With ui set, the UI is
// also served there as an origin of its own that calls the gateway cross-origin.
func startSystem(tb testing.TB, fleet *devicesim.Spec, logName string, ui net.Listener) string {
	tb.Helper()
	return startSystemWith(tb, localdev.Options{Fleet: fleet, UIListener: ui}, logName)
}

// startSystemWith is startSystem with more of localdev's options (the fleet's FleetReady hook).
func startSystemWith(tb testing.TB, opts localdev.Options, logName string) string {
	tb.Helper()
	ep := stacktest.Endpoints(tb)
	var b [4]byte
	_, err := rand.Read(b[:])
	require.NoError(tb, err, "random prefix")
	tb.Setenv(localdev.EnvStateDir, tb.TempDir())
	logFile, err := os.Create(filepath.Join(artifacts(tb), logName))
	require.NoError(tb, err, "create the stack's log %s", logName)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		opts.Addr, opts.Prefix, opts.Endpoints = "127.0.0.1:0", "ui"+hex.EncodeToString(b[:])+"-", &ep
		opts.Logger = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
		errc <- localdev.Run(ctx, opts, func(addr string) { addrc <- addr })
	}()
	tb.Cleanup(func() {
		cancel()
		assert.NoError(tb, <-errc, "local system")
		logFile.Close()
	})
	select {
	case addr := <-addrc:
		return "http://" + addr
	case err := <-errc:
		errc <- err
		require.FailNow(tb, "local system did not start", "%v", err)
	case <-time.After(2 * time.Minute):
		require.FailNow(tb, "local system not ready within 2 minutes")
	}
	return ""
}

// node runs one of the e2e scripts and returns its output, failing the test on a non-zero exit.
func node(tb testing.TB, script string, env ...string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(), append(env, "ARTIFACTS="+artifacts(tb), "CHROMIUM="+chromium)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	tb.Logf("node %s:\n%s", script, out.String())
	require.NoError(tb, err, "node %s (screenshots and the stack's log are in %s)", script, artifacts(tb))
	return out.String()
}

// TestUI drives the UI through every page against a fleet of linux devices in two software
// versions, one of which refuses connections and one of which prints slowly: sign in, filter and
// select, a bulk command watched live (its counts always its devices' statuses) and caught up by
// pages with the WebSocket blocked, a device's output, validation errors, group by output, cancel,
// retention, and the bulk flow by keyboard only.
func TestUI(t *testing.T) {
	needBrowser(t)
	const size = 10
	url := startSystem(t, &devicesim.Spec{
		Count: size, Seed: 11, Versions: 2, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}},
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 1}, {Fault: devicesim.FaultSlowDrip, Count: 1}},
		// The slow device prints one line per 150 ms: `seq 40` keeps a job partly done for 6 s, long enough to see under load.
		DripInterval: 150 * time.Millisecond,
	}, "ui-test-stack.log", nil)
	old, _ := filepath.Glob(filepath.Join(artifacts(t), "*.png"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	node(t, "e2e/ui.test.mjs", "BASE_URL="+url, "FLEET_SIZE="+strconv.Itoa(size))
}

// TestUICrossOrigin serves the UI from an origin of its own, as CloudFront serves it in AWS, with
// a config.json naming the gateway's origin as API and WebSocket API: signing in, a bulk command
// watched live and a truncated output's flag (an exposed header) must all work through CORS.
func TestUICrossOrigin(t *testing.T) {
	needBrowser(t)
	const size = 4
	// A small output cap, so that the endless device's run is truncated at once.
	t.Setenv(config.EnvOutputCapBytes, "4096")
	ui, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen for the UI")
	api := startSystem(t, &devicesim.Spec{
		Count: size, Seed: 12, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}},
		Faults:       []devicesim.FaultCount{{Fault: devicesim.FaultEndlessOutput, Count: 1}, {Fault: devicesim.FaultSlowDrip, Count: 1}},
		DripInterval: 150 * time.Millisecond,
	}, "ui-cross-origin-stack.log", ui)
	node(t, "e2e/crossorigin.test.mjs", "BASE_URL=http://"+ui.Addr().String(), "API_URL="+api, "FLEET_SIZE="+strconv.Itoa(size))
}

var metric = regexp.MustCompile(`(?m)^METRIC (\S+) ([0-9.]+)$`)

// BenchmarkDevicesPage measures the devices page with 2,000 devices in Chromium: time to the
// first rendered rows and time to select all (see web/e2e/devices.bench.mjs).
func BenchmarkDevicesPage(b *testing.B) {
	needBrowser(b)
	url := startSystem(b, nil, "bench-stack.log", nil)
	for range b.N {
		out := node(b, "e2e/devices.bench.mjs", "BASE_URL="+url, "DEVICES=2000")
		for _, m := range metric.FindAllStringSubmatch(out, -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(b, err, "metric %s", m[1])
			b.ReportMetric(v, m[1])
		}
	}
}

// TestUIPolicy edits the command policy on the Policy page, checks a command against it, sees a
// refused bulk command's rule and devices under the command field, and meets a concurrent save.
func TestUIPolicy(t *testing.T) {
	needBrowser(t)
	const size = 3
	url := startSystem(t, &devicesim.Spec{Count: size, Seed: 13, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}}, "ui-policy-stack.log", nil)
	node(t, "e2e/policy.test.mjs", "BASE_URL="+url, "FLEET_SIZE="+strconv.Itoa(size))
}

// TestUITrust drives the device page's host key (a pending key's warning, Accept as admin and not
// as operator, a 409 in place) on devices serving a changed key, and the header's roles for an
// admin and a site-scoped operator.
func TestUITrust(t *testing.T) {
	needBrowser(t)
	url := startSystem(t, &devicesim.Spec{
		Count: 3, Seed: 15, Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}},
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultChangedHostKey, Count: 2}},
	}, "ui-trust-stack.log", nil)
	node(t, "e2e/trust.test.mjs", "BASE_URL="+url)
}

// TestUISavedJobs saves a job in the Saved jobs editor, runs it now on a fleet with one
// unreachable device, and re-runs that device from the finished job's page, links both ways.
func TestUISavedJobs(t *testing.T) {
	needBrowser(t)
	const size = 3
	url := startSystem(t, &devicesim.Spec{
		Count: size, Seed: 17, Platforms: []devicesim.Weighted{{Name: "cisco_ios", Weight: 1}},
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 1}},
	}, "ui-saved-stack.log", nil)
	node(t, "e2e/saved.test.mjs", "BASE_URL="+url, "FLEET_SIZE="+strconv.Itoa(size))
}

// TestUIReach drives the Jump hosts page (create with a field error, the in-use refusal on delete,
// a credential dropped by a new address) and the device form's ordered jump chain and enable
// secret.
func TestUIReach(t *testing.T) {
	needBrowser(t)
	url := startSystem(t, &devicesim.Spec{Count: 2, Seed: 16, Platforms: []devicesim.Weighted{{Name: "cisco_ios", Weight: 1}}}, "ui-reach-stack.log", nil)
	node(t, "e2e/reach.test.mjs", "BASE_URL="+url)
}

// TestUIWebhooks drives the Webhooks page against a receiver the script serves on loopback:
// create (the signing secret shown once, the URL never), a test delivery whose signature the
// secret verifies, the delivery log, disable with its reason and enable, a failing receiver.
func TestUIWebhooks(t *testing.T) {
	needBrowser(t)
	url := startSystem(t, &devicesim.Spec{Count: 1, Seed: 18, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}}, "ui-webhooks-stack.log", nil)
	node(t, "e2e/webhooks.test.mjs", "BASE_URL="+url)
}

// TestCommandsForm runs the unit tests of the run form's command logic (web/e2e/commands.unit.mjs,
// node's test runner; no browser): the request body, the checks that mirror the API's rules and
// where the API's field errors land.
func TestCommandsForm(t *testing.T) { nodeUnit(t, "e2e/commands.unit.mjs") }

// TestDiffLayout runs the unit tests of the diff page's layout (web/e2e/diff.unit.mjs): the API's
// hunks as numbered unified rows and as side-by-side rows (inserted, deleted, replaced and
// interleaved lines, several hunks).
func TestDiffLayout(t *testing.T) { nodeUnit(t, "e2e/diff.unit.mjs") }

// TestSavedTexts runs the unit tests of the saved jobs page's texts (web/e2e/saved.unit.mjs): each
// paused reason the scheduler sets, in words with its token, and an unknown one as it is.
func TestSavedTexts(t *testing.T) { nodeUnit(t, "e2e/saved.unit.mjs") }

// TestJobFeed runs the unit tests of the job page's live state (web/e2e/live.unit.mjs) against an
// API answered in memory: counts from the devices held, the device rule, job_done's final counts,
// a catch-up that follows next page by page, and the socket's token expiring (HTTP reads then,
// whose 401 signs out; a newer token reconnects; the server's refusals kept for the page).
func TestJobFeed(t *testing.T) { nodeUnit(t, "e2e/live.unit.mjs") }

// TestAPIHelpers runs the unit tests of the API client's helpers (web/e2e/api.unit.mjs): an API
// error under the form's inputs on screen and the rest (a 409 version conflict) in its general
// message, pages followed until enough items came, and the caller's name as the API reads it.
func TestAPIHelpers(t *testing.T) { nodeUnit(t, "e2e/api.unit.mjs") }

// TestUIAccess drives what the UI offers whom, against the API's rules, on a fleet with one slow
// device: Cancel and Re-run for a job's requester and admins only; a token whose email is not
// verified (named by its subject) owning its saved jobs and jobs; a user admin on one site and
// operator on another (Edit per row, no jump chain); Recent jobs and a device's history following
// next past pages the API answered empty; a version conflict shown in the device, jump host,
// webhook and credential profile forms; a jump host's password replaced by a key; the live feed's
// refusal on the job page; and a token expiring on a live job page, which signs the user out.
// Tokens the dev sign-in cannot make come from $TOKEN_URL (tokenServer).
func TestUIAccess(t *testing.T) {
	needBrowser(t)
	url := startSystem(t, &devicesim.Spec{
		Count: 3, Seed: 21, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}},
		Faults:       []devicesim.FaultCount{{Fault: devicesim.FaultSlowDrip, Count: 1}},
		DripInterval: 150 * time.Millisecond,
	}, "ui-access-stack.log", nil)
	node(t, "e2e/access.test.mjs", "BASE_URL="+url, "TOKEN_URL="+tokenServer(t))
}

// tokenServer serves tokens of the local stack's issuer (started by startSystem, which sets the
// state folder holding its key) that the dev sign-in does not make: POST /token?sub=&email=
// &verified=true|false&groups=a,b&ttl_s=N answers the token as text.
func tokenServer(t *testing.T) string {
	t.Helper()
	signer, err := localdev.Signer()
	require.NoError(t, err, "the local issuer's key")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		ttl, err := strconv.Atoi(q.Get("ttl_s"))
		if r.Method != http.MethodPost || r.URL.Path != "/token" || q.Get("sub") == "" || err != nil || ttl < 1 {
			http.Error(w, "POST /token?sub=&email=&verified=true|false&groups=a,b&ttl_s=N", http.StatusBadRequest)
			return
		}
		tok, err := signer.Issue(auth.TokenSpec{
			Subject: q.Get("sub"), Email: q.Get("email"), EmailUnverified: q.Get("verified") == "false",
			Groups: strings.Split(q.Get("groups"), ","), TTL: time.Duration(ttl) * time.Second,
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(tok))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// nodeUnit runs one file of UI unit tests under node's test runner (no browser).
func nodeUnit(tb testing.TB, script string) {
	tb.Helper()
	require.FileExists(tb, "node_modules/preact/package.json", "web/node_modules is missing: run `make deps` (npm ci in web/)")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", "--test", script).CombinedOutput()
	require.NoError(tb, err, "node --test %s:\n%s", script, out)
}

// TestUICommands drives command sequences through the UI on simulated Cisco IOS devices: three
// commands pasted into the bulk dialog, a [confirm] and an scp copy's password (a secret answer)
// answered, a prompt's field error, a tab per command on the run page and in the job's output
// groups, an operator's refused command named by its place, and the single-device form.
func TestUICommands(t *testing.T) {
	needBrowser(t)
	var b [6]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err, "random password")
	// The fleet's password is also the scp copy's: the secret answer the page must never show.
	secret := "scp-" + hex.EncodeToString(b[:])
	const size = 3
	url := startSystem(t, &devicesim.Spec{
		Count: size, Seed: 17, Platforms: []devicesim.Weighted{{Name: "cisco_ios", Weight: 1}}, Password: secret,
	}, "ui-commands-stack.log", nil)
	node(t, "e2e/commands.test.mjs", "BASE_URL="+url, "FLEET_SIZE="+strconv.Itoa(size), "SECRET_ANSWER="+secret)
}

// TestUIDrift drives the drift views on three IOS-XE devices whose configurations carry noise
// lines that change on every listing: first runs, a night of noise only, then a real change on
// one device (POST $CONTROL_URL/change?device=ID&rev=N, Fleet.SetConfigRevision) seen in the job page's
// changed badges and filter, the diff page (side by side, unified, raw), the device's history,
// a group's diff against the largest and the Platforms page's noise filters.
func TestUIDrift(t *testing.T) {
	needBrowser(t)
	fleets := make(chan *devicesim.Fleet, 1)
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/change" {
			http.Error(w, "POST /change?device=ID&rev=N", http.StatusNotFound)
			return
		}
		fleet := <-fleets
		fleets <- fleet
		rev, err := strconv.Atoi(r.URL.Query().Get("rev"))
		if err != nil || !fleet.SetConfigRevision(r.URL.Query().Get("device"), rev) {
			http.Error(w, "no such device or revision", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(control.Close)
	url := startSystemWith(t, localdev.Options{
		Fleet:      &devicesim.Spec{Count: 3, Seed: 17, ConfigNoise: true, Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}}},
		FleetReady: func(f *devicesim.Fleet) { fleets <- f },
	}, "ui-drift-stack.log")
	node(t, "e2e/drift.test.mjs", "BASE_URL="+url, "CONTROL_URL="+control.URL)
}

// TestUIDiffTooLarge drives the diff page on one simulated Linux device through a diff whose JSON
// form the API refuses (422 diff_too_large): the page says why and offers the unified diff and
// both outputs as downloads, whose contents the script checks.
func TestUIDiffTooLarge(t *testing.T) {
	needBrowser(t)
	url := startSystem(t, &devicesim.Spec{Count: 1, Seed: 19, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}}, "ui-bigdiff-stack.log", nil)
	node(t, "e2e/bigdiff.test.mjs", "BASE_URL="+url)
}
