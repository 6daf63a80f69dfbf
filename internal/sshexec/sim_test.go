package sshexec

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/platform"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBenchFleets()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// startFleet starts a simulated fleet that is stopped when the test ends.
func startFleet(t *testing.T, spec devicesim.Spec) *devicesim.Fleet {
	t.Helper()
	f, err := devicesim.Start(spec)
	if err != nil {
		t.Fatalf("start fleet: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close fleet: %v", err)
		}
	})
	return f
}

// targetFor turns an inventory entry into a Target with the pinned key.
func targetFor(d devicesim.InventoryDevice) Target {
	return Target{
		Host: d.Host, Port: d.Port, Platform: d.Platform, Username: d.Username,
		AuthMethod: AuthMethod(d.AuthMethod), Password: d.Password, HostKey: d.HostKey,
		LegacyAlgorithms: d.LegacyAlgorithms,
	}
}

func newRunner(t *testing.T, opts Options) *Runner {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatalf("new runner: %v", err)
	}
	return r
}

// fastOpts are short timeouts for tests.
var fastOpts = Options{
	ConnectTimeout: 2 * time.Second,
	AuthTimeout:    2 * time.Second,
	PromptTimeout:  2 * time.Second,
	IdleTimeout:    2 * time.Second,
	TotalTimeout:   10 * time.Second,
}

// runCmd runs command on target and returns the result and the output.
func runCmd(t *testing.T, r *Runner, tg Target, command string) (Result, string) {
	t.Helper()
	var buf bytes.Buffer
	res := r.Run(context.Background(), tg, command, &buf)
	return res, buf.String()
}

func onePerPlatform(t *testing.T, fault devicesim.Fault) (*devicesim.Fleet, map[string]devicesim.InventoryDevice) {
	t.Helper()
	var specs []devicesim.DeviceSpec
	for _, p := range platform.Known() {
		specs = append(specs, devicesim.DeviceSpec{Platform: p, Fault: fault})
	}
	f := startFleet(t, devicesim.Spec{Devices: specs, Seed: 7})
	byPlatform := map[string]devicesim.InventoryDevice{}
	for _, d := range f.Inventory() {
		byPlatform[d.Platform] = d
	}
	return f, byPlatform
}

// TestPlatforms runs the main commands of every platform profile against its
// simulated personality: exec mode for linux, PTY shell for the others
// (prompt, paging disabled or answered, echo stripped, CRLF normalised).
func TestPlatforms(t *testing.T) {
	_, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, fastOpts)
	tests := []struct {
		platform, command string
		want              []string // substrings of the output; "{host}" and "{version}" are replaced
		wantLines         int      // minimum number of lines
	}{
		{"linux", "uname -a", []string{"Linux {host} {version}"}, 1},
		{"linux", "cat /etc/motd", []string{"Welcome to {host}"}, 2},
		{"cisco_ios", "show version", []string{"Cisco IOS Software, Version {version}", "{host} uptime is", "Configuration register is 0x102"}, 30},
		{"cisco_ios", "show running-config", []string{"hostname {host}", "\nend\n"}, 40},
		{"cisco_iosxe", "show version", []string{"Cisco IOS XE Software, Version {version}", "Configuration register"}, 30},
		{"cisco_iosxe", "sh ip ro", []string{"Gateway of last resort", "via 10."}, 15},
		{"cisco_iosxe", "show interfaces", []string{"GigabitEthernet1/0/1 is up", "{host}-port-1"}, 40},
		{"cisco_nxos", "show version", []string{"NX-OS", "{version}"}, 30},
		{"cisco_iosxr", "show version", []string{"Cisco IOS XR Software, Version {version}"}, 30},
		{"cisco_iosxr", "show route", []string{"Gateway of last resort"}, 15},
		{"arista_eos", "show version", []string{"Arista EOS, Version {version}"}, 30},
		{"arista_eos", "show running-config", []string{"hostname {host}"}, 40},
		{"juniper_junos", "show version", []string{"Hostname: {host}", "Junos: {version}"}, 10},
		{"juniper_junos", "show configuration", []string{"host-name {host};", "ge-0/0/0 {"}, 30},
		{"juniper_junos", "show route", []string{"inet.0:", "*[OSPF/10]"}, 20},
		{"generic", "show version", []string{"vFW OS, Version {version}", "Configuration register"}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.platform+"/"+tt.command, func(t *testing.T) {
			d := devs[tt.platform]
			res, out := runCmd(t, r, targetFor(d), tt.command)
			if res.Status != StatusSucceeded {
				t.Fatalf("status %s (%s: %s), output %q", res.Status, res.Reason, res.Message, out)
			}
			for _, w := range tt.want {
				w = strings.NewReplacer("{host}", d.Name, "{version}", d.Version).Replace(w)
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if n := strings.Count(out, "\n"); n < tt.wantLines {
				t.Errorf("output has %d lines, want at least %d", n, tt.wantLines)
			}
			if strings.Contains(out, "\r") {
				t.Error("output still has carriage returns")
			}
			if strings.Contains(strings.ToLower(out), "more") && tt.platform != "juniper_junos" {
				t.Errorf("pager prompt in output:\n%s", out)
			}
			if strings.Contains(out, tt.command) {
				t.Errorf("echo of %q not stripped:\n%s", tt.command, out)
			}
			prof, _ := platform.Lookup(tt.platform)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if last := lines[len(lines)-1]; prof.Mode == platform.ModeShell && prof.Prompt.MatchString(last) {
				t.Errorf("prompt %q left in output", last)
			}
			if res.Bytes != int64(len(out)) {
				t.Errorf("Bytes = %d, sink got %d", res.Bytes, len(out))
			}
			if res.Timings.Connect <= 0 || res.Timings.Auth <= 0 || res.Timings.FirstByte <= 0 || res.Timings.Total < res.Timings.Connect {
				t.Errorf("implausible timings %+v", res.Timings)
			}
		})
	}
}

// TestCommandErrors checks that each platform's error marker makes the run
// fail with the device's message, and exec exit statuses.
func TestCommandErrors(t *testing.T) {
	_, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, fastOpts)
	tests := []struct {
		platform, command string
		reason            Reason
		message           string
		exit              int
	}{
		{"linux", "exit 3", ReasonExitStatus, "exit status 3", 3},
		{"linux", "frobnicate", ReasonExitStatus, "exit status 127", 127},
		{"linux", "cat /nope", ReasonExitStatus, "exit status 1", 1},
		{"cisco_ios", "show frobnicate", ReasonCommandError, "% Invalid input detected at '^' marker.", -1},
		{"cisco_iosxe", "shw version", ReasonCommandError, "% Invalid input detected at '^' marker.", -1},
		{"cisco_nxos", "show frobnicate", ReasonCommandError, "% Invalid command at '^' marker.", -1},
		{"cisco_iosxr", "show frobnicate", ReasonCommandError, "% Invalid input detected at '^' marker.", -1},
		{"arista_eos", "show frobnicate", ReasonCommandError, "% Invalid input", -1},
		{"juniper_junos", "show frobnicate", ReasonCommandError, "syntax error, expecting <command>.", -1},
		{"juniper_junos", "frobnicate", ReasonCommandError, "unknown command.", -1},
		{"generic", "frobnicate now", ReasonCommandError, "% Unknown command: frobnicate now", -1},
	}
	for _, tt := range tests {
		t.Run(tt.platform+"/"+tt.command, func(t *testing.T) {
			res, out := runCmd(t, r, targetFor(devs[tt.platform]), tt.command)
			if res.Status != StatusFailed || res.Reason != tt.reason {
				t.Fatalf("got %s/%s (%s), want failed/%s; output %q", res.Status, res.Reason, res.Message, tt.reason, out)
			}
			if res.Message != tt.message {
				t.Errorf("message %q, want %q", res.Message, tt.message)
			}
			if tt.exit >= 0 && (res.ExitStatus == nil || *res.ExitStatus != tt.exit) {
				t.Errorf("exit status %v, want %d", res.ExitStatus, tt.exit)
			}
			if res.Err == nil {
				t.Error("no error for a failed run")
			}
		})
	}
	t.Run("linux/exit status zero", func(t *testing.T) {
		res, out := runCmd(t, r, targetFor(devs["linux"]), "echo hello world")
		if res.Status != StatusSucceeded || res.ExitStatus == nil || *res.ExitStatus != 0 || out != "hello world\n" {
			t.Fatalf("got %+v, output %q", res, out)
		}
	})
}

// TestPagingAnswered: paging stays on although the device accepted the
// paging command, so the engine must answer every --More--; the output must
// equal the output of a device whose paging is off.
func TestPagingAnswered(t *testing.T) {
	for _, p := range []string{"cisco_iosxe", "cisco_nxos", "juniper_junos", "arista_eos"} {
		t.Run(p, func(t *testing.T) {
			f := startFleet(t, devicesim.Spec{Seed: 3, Devices: []devicesim.DeviceSpec{
				{Platform: p, Fault: devicesim.FaultPagingIgnored},
			}})
			cmd := "show interfaces" // several pages
			d := f.Inventory()[0]
			r := newRunner(t, fastOpts)
			res, paged := runCmd(t, r, targetFor(d), cmd)
			if res.Status != StatusSucceeded {
				t.Fatalf("paged: %s/%s %s", res.Status, res.Reason, res.Message)
			}
			// The same device over the exec channel: no pager at all.
			tg := targetFor(d)
			tg.Platform = "linux" // exec mode; output keeps CRLF
			res2, plain := runCmd(t, r, tg, cmd)
			if res2.Status != StatusSucceeded && res2.Reason != ReasonDisconnected {
				t.Fatalf("exec: %s/%s %s", res2.Status, res2.Reason, res2.Message)
			}
			plain = strings.ReplaceAll(plain, "\r\n", "\n")
			if paged != plain {
				t.Fatalf("paged output differs from unpaged output:\npaged:\n%s\nplain:\n%s", paged, plain)
			}
			if strings.Count(paged, "\n") < 50 {
				t.Fatalf("output too short to page: %d lines", strings.Count(paged, "\n"))
			}
		})
	}
}

// TestFaults: every fault mode ends in the right status within its timeout.
func TestFaults(t *testing.T) {
	opts := Options{
		ConnectTimeout: 500 * time.Millisecond,
		AuthTimeout:    500 * time.Millisecond,
		PromptTimeout:  500 * time.Millisecond,
		IdleTimeout:    400 * time.Millisecond,
		TotalTimeout:   1500 * time.Millisecond,
		MaxOutputBytes: 256 << 10,
	}
	tests := []struct {
		name     string
		platform string
		fault    devicesim.Fault
		command  string
		status   Status
		reason   Reason
		within   time.Duration
		truncate bool
	}{
		{"refuse", "cisco_iosxe", devicesim.FaultRefuse, "show version", StatusUnreachable, ReasonRefused, 300 * time.Millisecond, false},
		{"wrong credentials", "cisco_iosxe", devicesim.FaultWrongCredentials, "show version", StatusAuthFailed, ReasonAuthRejected, time.Second, false},
		{"wrong credentials kbd-int", "juniper_junos", devicesim.FaultWrongCredentials, "show version", StatusAuthFailed, ReasonAuthRejected, time.Second, false},
		{"changed host key", "arista_eos", devicesim.FaultChangedHostKey, "show version", StatusHostKeyMismatch, ReasonHostKeyChanged, time.Second, false},
		{"hang before banner", "cisco_iosxe", devicesim.FaultHangBeforeBanner, "show version", StatusTimedOut, ReasonBannerTimeout, 800 * time.Millisecond, false},
		{"hang mid-output shell", "cisco_iosxe", devicesim.FaultHangMidOutput, "show version", StatusTimedOut, ReasonIdleTimeout, 800 * time.Millisecond, false},
		{"hang mid-output exec", "linux", devicesim.FaultHangMidOutput, "seq 100", StatusTimedOut, ReasonIdleTimeout, 800 * time.Millisecond, false},
		{"slow drip", "cisco_nxos", devicesim.FaultSlowDrip, "show version", StatusTimedOut, ReasonTotalTimeout, 1800 * time.Millisecond, false},
		{"endless output shell", "juniper_junos", devicesim.FaultEndlessOutput, "show version", StatusFailed, ReasonOutputCap, time.Second, true},
		{"endless output exec", "linux", devicesim.FaultEndlessOutput, "uname -a", StatusFailed, ReasonOutputCap, time.Second, true},
		{"disconnect mid-output shell", "cisco_iosxr", devicesim.FaultDisconnectMidOutput, "show version", StatusFailed, ReasonDisconnected, time.Second, false},
		{"disconnect mid-output exec", "linux", devicesim.FaultDisconnectMidOutput, "seq 100", StatusFailed, ReasonDisconnected, time.Second, false},
		{"exec unsupported", "linux", devicesim.FaultExecUnsupported, "uname -a", StatusFailed, ReasonExecUnsupported, time.Second, false},
		{"large output capped", "cisco_iosxe", devicesim.FaultLargeOutput, "show running-config", StatusFailed, ReasonOutputCap, 1500 * time.Millisecond, true},
		{"large output exec capped", "linux", devicesim.FaultLargeOutput, "cat /etc/netauto/running.conf", StatusFailed, ReasonOutputCap, 1500 * time.Millisecond, true},
	}
	var specs []devicesim.DeviceSpec
	for _, tt := range tests {
		specs = append(specs, devicesim.DeviceSpec{Platform: tt.platform, Fault: tt.fault})
	}
	f := startFleet(t, devicesim.Spec{Devices: specs, Seed: 11, DripInterval: 50 * time.Millisecond, FaultAfterLines: 3})
	inv := f.Inventory()
	r := newRunner(t, opts)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			res, out := runCmd(t, r, targetFor(inv[i]), tt.command)
			took := time.Since(start)
			if res.Status != tt.status || res.Reason != tt.reason {
				t.Fatalf("got %s/%s (%s), want %s/%s", res.Status, res.Reason, res.Message, tt.status, tt.reason)
			}
			if took > tt.within {
				t.Errorf("took %s, want within %s", took, tt.within)
			}
			if res.Truncated != tt.truncate {
				t.Errorf("Truncated = %v, want %v", res.Truncated, tt.truncate)
			}
			if tt.truncate && res.Bytes != opts.MaxOutputBytes {
				t.Errorf("Bytes = %d, want the cap %d", res.Bytes, opts.MaxOutputBytes)
			}
			if res.Bytes != int64(len(out)) {
				t.Errorf("Bytes = %d, sink got %d", res.Bytes, len(out))
			}
			if strings.Contains(res.Message, inv[i].Password) || strings.Contains(fmt.Sprint(res.Err), inv[i].Password) {
				t.Errorf("secret in result: %q / %v", res.Message, res.Err)
			}
		})
	}
}

// TestLargeOutputWithinCap: a 5 MiB configuration arrives whole with a cap
// above it.
func TestLargeOutputWithinCap(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 2, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe", Fault: devicesim.FaultLargeOutput}}})
	opts := fastOpts
	opts.MaxOutputBytes = 8 << 20
	r := newRunner(t, opts)
	var sink countSink
	res := r.Run(context.Background(), targetFor(f.Inventory()[0]), "show running-config", &sink)
	if res.Status != StatusSucceeded || res.Truncated {
		t.Fatalf("got %s/%s %s", res.Status, res.Reason, res.Message)
	}
	if res.Bytes < 5<<20-1024 || res.Bytes > 5<<20+1024 || res.Bytes != sink.n {
		t.Fatalf("Bytes = %d (sink %d), want about 5 MiB", res.Bytes, sink.n)
	}
	if sink.writes < 10 {
		t.Errorf("output came in %d writes; want it streamed in chunks", sink.writes)
	}
	if !bytes.HasSuffix(sink.last, []byte("end\n")) {
		t.Errorf("output does not end with the configuration's end: %q", sink.last)
	}
}

type countSink struct {
	n, writes int64
	last      []byte
}

func (s *countSink) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	s.writes++
	s.last = append(s.last[:0], p...)
	return len(p), nil
}

// notifySink signals its first write.
type notifySink struct {
	once  sync.Once
	first chan struct{}
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (s *notifySink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	s.once.Do(func() { close(s.first) })
	return len(p), nil
}

// TestStreamingAndCancel: output reaches the sink while the command still
// runs, and cancelling the context stops the run at once.
func TestStreamingAndCancel(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 5, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe", Fault: devicesim.FaultSlowDrip},
		{Platform: "linux", Fault: devicesim.FaultHangMidOutput},
	}, DripInterval: 20 * time.Millisecond})
	r := newRunner(t, Options{TotalTimeout: time.Minute, IdleTimeout: time.Minute})
	for i, d := range f.Inventory() {
		t.Run(d.Platform, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sink := &notifySink{first: make(chan struct{})}
			done := make(chan Result, 1)
			cmd := []string{"show version", "seq 50"}[i]
			go func() { done <- r.Run(ctx, targetFor(d), cmd, sink) }()
			select {
			case <-sink.first:
			case res := <-done:
				t.Fatalf("run ended before streaming anything: %+v", res)
			case <-time.After(5 * time.Second):
				t.Fatal("no output streamed within 5s")
			}
			cancelled := time.Now()
			cancel()
			select {
			case res := <-done:
				if res.Status != StatusCancelled || res.Reason != ReasonCancelled {
					t.Fatalf("got %s/%s, want cancelled", res.Status, res.Reason)
				}
				if d := time.Since(cancelled); d > 500*time.Millisecond {
					t.Errorf("cancel took %s", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not stop after cancel")
			}
		})
	}
}

// TestHostKeys: pinned match, mismatch, unknown without TOFU, TOFU learning,
// legacy algorithms opt-in.
func TestHostKeys(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 9, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe"},
		{Platform: "cisco_ios", Legacy: true},
	}})
	inv := f.Inventory()
	other := f.Inventory()[1].HostKey
	r := newRunner(t, fastOpts)
	tests := []struct {
		name   string
		dev    int
		mutate func(*Target)
		status Status
		reason Reason
		learn  bool
	}{
		{"pinned", 0, func(*Target) {}, StatusSucceeded, "", false},
		{"pinned wrong", 0, func(tg *Target) { tg.HostKey = other; tg.LegacyAlgorithms = true }, StatusHostKeyMismatch, ReasonHostKeyChanged, false},
		{"pinned wrong even with TOFU", 0, func(tg *Target) { tg.HostKey = other; tg.TrustOnFirstUse = true; tg.LegacyAlgorithms = true }, StatusHostKeyMismatch, ReasonHostKeyChanged, false},
		{"unknown without TOFU", 0, func(tg *Target) { tg.HostKey = "" }, StatusHostKeyMismatch, ReasonHostKeyUnknown, false},
		{"TOFU learns", 0, func(tg *Target) { tg.HostKey = ""; tg.TrustOnFirstUse = true }, StatusSucceeded, "", true},
		{"legacy device with legacy algorithms", 1, func(*Target) {}, StatusSucceeded, "", false},
		{"legacy device without legacy algorithms", 1, func(tg *Target) { tg.LegacyAlgorithms = false }, StatusFailed, ReasonHandshake, false},
		{"legacy device TOFU", 1, func(tg *Target) { tg.HostKey = ""; tg.TrustOnFirstUse = true }, StatusSucceeded, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := targetFor(inv[tt.dev])
			tt.mutate(&tg)
			res, out := runCmd(t, r, tg, "show version")
			if res.Status != tt.status || res.Reason != tt.reason {
				t.Fatalf("got %s/%s (%s), want %s/%s", res.Status, res.Reason, res.Message, tt.status, tt.reason)
			}
			if tt.learn != (res.LearnedHostKey != "") {
				t.Fatalf("LearnedHostKey = %q", res.LearnedHostKey)
			}
			if tt.learn && res.LearnedHostKey != inv[tt.dev].HostKey {
				t.Errorf("learned %q, device has %q", res.LearnedHostKey, inv[tt.dev].HostKey)
			}
			if res.Status == StatusHostKeyMismatch && (out != "" || res.Timings.Auth != 0) {
				t.Errorf("went further after a host key mismatch: output %q, auth %s", out, res.Timings.Auth)
			}
		})
	}
}

// TestAuthMethods: password with keyboard-interactive fallback, public key.
func TestAuthMethods(t *testing.T) {
	keys := clientKeys(t)
	sshPub, plainPEM, encPEM := keys.pub, keys.plainPEM, keys.encPEM
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(otherPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	otherPEM := pem.EncodeToMemory(block)

	f := startFleet(t, devicesim.Spec{Seed: 4, AuthorizedKeys: []ssh.PublicKey{sshPub}, Devices: []devicesim.DeviceSpec{
		{Platform: "linux"}, {Platform: "juniper_junos"},
	}})
	linux, junos := f.Inventory()[0], f.Inventory()[1]
	r := newRunner(t, fastOpts)
	tests := []struct {
		name   string
		dev    devicesim.InventoryDevice
		mutate func(*Target)
		status Status
		reason Reason
	}{
		{"password", linux, func(*Target) {}, StatusSucceeded, ""},
		{"keyboard-interactive only device", junos, func(*Target) {}, StatusSucceeded, ""},
		{"password method falls back to keyboard-interactive", junos, func(tg *Target) { tg.AuthMethod = AuthPassword }, StatusSucceeded, ""},
		{"wrong password", linux, func(tg *Target) { tg.Password = "not-the-password" }, StatusAuthFailed, ReasonAuthRejected},
		{"wrong password kbd-int", junos, func(tg *Target) { tg.Password = "not-the-password" }, StatusAuthFailed, ReasonAuthRejected},
		{"public key", linux, func(tg *Target) { tg.AuthMethod = AuthPublicKey; tg.PrivateKeyPEM = plainPEM }, StatusSucceeded, ""},
		{"public key with passphrase", linux, func(tg *Target) {
			tg.AuthMethod = AuthPublicKey
			tg.PrivateKeyPEM = encPEM
			tg.Passphrase = testKeyPassphrase
		}, StatusSucceeded, ""},
		{"public key wrong passphrase", linux, func(tg *Target) {
			tg.AuthMethod = AuthPublicKey
			tg.PrivateKeyPEM = encPEM
			tg.Passphrase = "wrong-passphrase"
		}, StatusFailed, ReasonInvalidTarget},
		{"public key not authorised", junos, func(tg *Target) { tg.AuthMethod = AuthPublicKey; tg.PrivateKeyPEM = otherPEM }, StatusAuthFailed, ReasonAuthRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := targetFor(tt.dev)
			tt.mutate(&tg)
			cmd := "show version"
			if tg.Platform == "linux" {
				cmd = "hostname"
			}
			res, out := runCmd(t, r, tg, cmd)
			if res.Status != tt.status || res.Reason != tt.reason {
				t.Fatalf("got %s/%s (%s), want %s/%s; output %q", res.Status, res.Reason, res.Message, tt.status, tt.reason, out)
			}
			for _, secret := range []string{tg.Password, tg.Passphrase} {
				if secret == "" {
					continue
				}
				if strings.Contains(res.Message, secret) || (res.Err != nil && strings.Contains(res.Err.Error(), secret)) {
					t.Errorf("secret %q leaked: %q / %v", secret, res.Message, res.Err)
				}
			}
		})
	}
}

// TestSecretsNeverInErrors runs failing cases with a password that would be
// easy to spot and checks every text of the result. The command itself
// contains the password, so redaction is exercised too.
func TestSecretsNeverInErrors(t *testing.T) {
	const secret = "Sup3r-Secret-Pa55"
	f := startFleet(t, devicesim.Spec{Seed: 8, Password: secret, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe"}, {Platform: "cisco_iosxe", Fault: devicesim.FaultWrongCredentials}, {Platform: "cisco_iosxe", Fault: devicesim.FaultRefuse},
	}})
	r := newRunner(t, fastOpts)
	for _, d := range f.Inventory() {
		for _, cmd := range []string{"show " + secret, "show version"} {
			res, _ := runCmd(t, r, targetFor(d), cmd)
			texts := []string{res.Message, string(res.Reason), fmt.Sprint(res.Err), fmt.Sprintf("%+v", res)}
			if res.Err != nil {
				for e := errors.Unwrap(res.Err); e != nil; e = errors.Unwrap(e) {
					texts = append(texts, e.Error())
				}
			}
			for _, s := range texts {
				if strings.Contains(s, secret) {
					t.Errorf("%s %q: password in result text %q", d.Fault, cmd, s)
				}
			}
			if cmd == "show version" && d.Fault == devicesim.FaultNone && res.Status != StatusSucceeded {
				t.Errorf("healthy device: %s %s", res.Status, res.Message)
			}
		}
	}
}

type failSink struct{ after int }

func (s *failSink) Write(p []byte) (int, error) {
	if s.after <= 0 {
		return 0, errors.New("disk full")
	}
	s.after--
	return len(p), nil
}

func TestSinkErrorAndInvalidTargets(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 6, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe", Fault: devicesim.FaultLargeOutput}, {Platform: "linux", Fault: devicesim.FaultLargeOutput},
	}})
	inv := f.Inventory()
	r := newRunner(t, fastOpts)
	for i, cmd := range []string{"show running-config", "cat /etc/netauto/running.conf"} {
		res := r.Run(context.Background(), targetFor(inv[i]), cmd, &failSink{after: 2})
		if res.Status != StatusFailed || res.Reason != ReasonSinkError {
			t.Errorf("%s: got %s/%s %s, want failed/sink_error", inv[i].Platform, res.Status, res.Reason, res.Message)
		}
	}
	good := targetFor(inv[0])
	tests := []struct {
		name    string
		mutate  func(*Target)
		command string
	}{
		{"unknown platform", func(tg *Target) { tg.Platform = "cisco_catos" }, "show version"},
		{"empty command", func(*Target) {}, "  "},
		{"multi-line command", func(*Target) {}, "show version\nreload"},
		{"no host", func(tg *Target) { tg.Host = "" }, "show version"},
		{"bad host key", func(tg *Target) { tg.HostKey = "ssh-ed25519 not-base64!" }, "show version"},
		{"no password", func(tg *Target) { tg.Password = "" }, "show version"},
		{"bad private key", func(tg *Target) { tg.AuthMethod = AuthPublicKey; tg.PrivateKeyPEM = []byte("junk") }, "show version"},
		{"unknown auth method", func(tg *Target) { tg.AuthMethod = "telepathy" }, "show version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := good
			tt.mutate(&tg)
			res, _ := runCmd(t, r, tg, tt.command)
			if res.Status != StatusFailed || res.Reason != ReasonInvalidTarget || res.Err == nil {
				t.Fatalf("got %s/%s %v", res.Status, res.Reason, res.Err)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"negative timeout": {IdleTimeout: -time.Second},
		"negative cap":     {MaxOutputBytes: -1},
		"narrow terminal":  {TerminalWidth: 80},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	r := newRunner(t, Options{})
	if o := r.Options(); o.MaxOutputBytes != DefaultMaxOutputBytes || o.TerminalWidth != DefaultTerminalWidth || o.TotalTimeout != DefaultTotalTimeout {
		t.Errorf("defaults not applied: %+v", o)
	}
}

func TestDeadlineFromContext(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 1, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe", Fault: devicesim.FaultHangMidOutput}}})
	r := newRunner(t, Options{IdleTimeout: time.Minute, TotalTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := r.Run(ctx, targetFor(f.Inventory()[0]), "show version", nil)
	if res.Status != StatusTimedOut || res.Reason != ReasonDeadline {
		t.Fatalf("got %s/%s, want timed_out/deadline", res.Status, res.Reason)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
}

func TestCleanLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "interface Gi1", "interface Gi1"},
		{"crlf", "line\r", "line"},
		{"double cr", "line\r\r", "line"},
		{"cisco more erase", "\b\b\b\b    \b\b\b\bnext line", "next line"},
		{"cr overwrite", "\r          \rnext", "next"},
		{"ansi", "\x1b[1mbold\x1b[0m text\x1b[K", "bold text"},
		{"tab kept", "a\tb", "a\tb"},
		{"bell dropped", "a\x07b", "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(cleanLine(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("cleanLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
