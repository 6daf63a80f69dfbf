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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/sshdtest"
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
	require.NoError(t, err, "start fleet")
	t.Cleanup(func() { assert.NoError(t, f.Close(), "close fleet") })
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
	require.NoError(t, err, "new runner")
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

// requireOutcome stops the test unless the run ended with status and reason; the failure shows
// the run's message, error and output.
func requireOutcome(t *testing.T, res Result, status Status, reason Reason, out string) {
	t.Helper()
	require.Equal(t, string(status)+"/"+string(reason), string(res.Status)+"/"+string(res.Reason),
		"status/reason; message %q, error %v, output %q", res.Message, res.Err, out)
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
			requireOutcome(t, res, StatusSucceeded, "", out)
			for _, w := range tt.want {
				w = strings.NewReplacer("{host}", d.Name, "{version}", d.Version).Replace(w)
				assert.Contains(t, out, w, "output of %s", d.Name)
			}
			assert.GreaterOrEqual(t, strings.Count(out, "\n"), tt.wantLines, "lines of output of %s", d.Name)
			assert.NotContains(t, out, "\r", "output of %s still has carriage returns", d.Name)
			if tt.platform != "juniper_junos" {
				assert.NotContains(t, strings.ToLower(out), "more", "pager prompt in the output of %s", d.Name)
			}
			assert.NotContains(t, out, tt.command, "echo of the command not stripped from the output of %s", d.Name)
			prof, _ := platform.Lookup(tt.platform)
			lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
			if last := lines[len(lines)-1]; prof.Mode == platform.ModeShell {
				assert.False(t, prof.Prompt.MatchString(last), "prompt %q left in the output of %s", last, d.Name)
			}
			assert.Equal(t, int64(len(out)), res.Bytes, "Bytes against what the sink got")
			assert.Positive(t, res.Timings.Connect, "Timings.Connect")
			assert.Positive(t, res.Timings.Auth, "Timings.Auth")
			assert.Positive(t, res.Timings.FirstByte, "Timings.FirstByte")
			assert.GreaterOrEqual(t, res.Timings.Total, res.Timings.Connect, "Timings.Total against Timings.Connect")
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
			requireOutcome(t, res, StatusFailed, tt.reason, out)
			assert.Equal(t, tt.message, res.Message, "message")
			if tt.exit >= 0 && assert.NotNil(t, res.ExitStatus, "exit status") {
				assert.Equal(t, tt.exit, *res.ExitStatus, "exit status")
			}
			assert.Error(t, res.Err, "error of a failed run")
		})
	}
	t.Run("linux/exit status zero", func(t *testing.T) {
		res, out := runCmd(t, r, targetFor(devs["linux"]), "echo hello world")
		requireOutcome(t, res, StatusSucceeded, "", out)
		require.NotNil(t, res.ExitStatus, "exit status")
		require.Equal(t, 0, *res.ExitStatus, "exit status")
		require.Equal(t, "hello world\n", out, "output")
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
			requireOutcome(t, res, StatusSucceeded, "", paged)
			// The same device over the exec channel: no pager at all.
			tg := targetFor(d)
			tg.Platform = "linux" // exec mode; output keeps CRLF
			res2, plain := runCmd(t, r, tg, cmd)
			if res2.Status != StatusSucceeded {
				require.Equal(t, ReasonDisconnected, res2.Reason, "exec run: %s %s", res2.Status, res2.Message)
			}
			plain = strings.ReplaceAll(plain, "\r\n", "\n")
			require.Equal(t, plain, paged, "paged output against unpaged output of %s", d.Name)
			require.GreaterOrEqual(t, strings.Count(paged, "\n"), 50, "lines of output: too short to page")
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
			requireOutcome(t, res, tt.status, tt.reason, "")
			assert.LessOrEqual(t, took, tt.within, "time to the outcome")
			assert.Equal(t, tt.truncate, res.Truncated, "Truncated")
			if tt.truncate {
				assert.Equal(t, opts.MaxOutputBytes, res.Bytes, "Bytes of a capped run")
			}
			assert.Equal(t, int64(len(out)), res.Bytes, "Bytes against what the sink got")
			assert.NotContains(t, res.Message, inv[i].Password, "secret in the message")
			assert.NotContains(t, fmt.Sprint(res.Err), inv[i].Password, "secret in the error")
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
	requireOutcome(t, res, StatusSucceeded, "", "")
	require.False(t, res.Truncated, "Truncated")
	require.InDelta(t, 5<<20, res.Bytes, 1024, "Bytes: want about 5 MiB")
	require.Equal(t, sink.n, res.Bytes, "Bytes against what the sink got")
	assert.GreaterOrEqual(t, sink.writes, int64(10), "writes to the sink: want the output streamed in chunks")
	assert.True(t, bytes.HasSuffix(sink.last, []byte("end\n")), "output does not end with the configuration's end: %q", sink.last)
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
				require.FailNow(t, "run ended before streaming anything", "%s: %+v", d.Name, res)
			case <-time.After(5 * time.Second):
				require.FailNow(t, "no output streamed within 5s", d.Name)
			}
			cancelled := time.Now()
			cancel()
			select {
			case res := <-done:
				requireOutcome(t, res, StatusCancelled, ReasonCancelled, "")
				assert.LessOrEqual(t, time.Since(cancelled), 500*time.Millisecond, "time from cancel to the end of the run")
			case <-time.After(5 * time.Second):
				require.FailNow(t, "run did not stop after cancel", d.Name)
			}
		})
	}
}

// newHostKey returns a fresh ed25519 public key in authorized_keys format: a key of the same
// type as an ordinary device's that is not the device's.
func newHostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err, "generate ed25519 key")
	k, err := ssh.NewPublicKey(pub)
	require.NoError(t, err, "ssh public key")
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// keyType returns the type of a key in authorized_keys format.
func keyType(t *testing.T, authorizedKey string) string {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorizedKey))
	require.NoError(t, err, "parse %q", authorizedKey)
	return k.Type()
}

// TestHostKeys: pinned match, mismatch, unknown without TOFU, TOFU learning,
// legacy algorithms opt-in. A wrong pinned key of the device's own type is
// refused by comparing the keys' bytes; one of another type is refused
// earlier, because the device offers no host key of that type.
func TestHostKeys(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 9, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe"},
		{Platform: "cisco_ios", Legacy: true},
	}})
	inv := f.Inventory()
	otherType := inv[1].HostKey // ssh-rsa: device 0 serves ssh-ed25519
	sameType := newHostKey(t)
	require.Equal(t, keyType(t, inv[0].HostKey), keyType(t, sameType), "the same-type wrong key's type")
	require.NotEqual(t, keyType(t, inv[0].HostKey), keyType(t, otherType), "the other-type wrong key's type")
	const (
		byBytes = "host key mismatch: device presented ssh-ed25519"
		byType  = "device offers no host key of the pinned type"
	)
	r := newRunner(t, fastOpts)
	tests := []struct {
		name    string
		dev     int
		mutate  func(*Target)
		status  Status
		reason  Reason
		message string // a substring of the message, when set
		learn   bool
	}{
		{"pinned", 0, func(*Target) {}, StatusSucceeded, "", "", false},
		{"pinned wrong, same type", 0, func(tg *Target) { tg.HostKey = sameType }, StatusHostKeyMismatch, ReasonHostKeyChanged, byBytes, false},
		{"pinned wrong, same type, even with TOFU", 0, func(tg *Target) { tg.HostKey = sameType; tg.TrustOnFirstUse = true }, StatusHostKeyMismatch, ReasonHostKeyChanged, byBytes, false},
		{"pinned wrong, another type", 0, func(tg *Target) { tg.HostKey = otherType; tg.LegacyAlgorithms = true }, StatusHostKeyMismatch, ReasonHostKeyChanged, byType, false},
		{"pinned wrong, another type, even with TOFU", 0, func(tg *Target) { tg.HostKey = otherType; tg.TrustOnFirstUse = true; tg.LegacyAlgorithms = true }, StatusHostKeyMismatch, ReasonHostKeyChanged, byType, false},
		{"unknown without TOFU", 0, func(tg *Target) { tg.HostKey = "" }, StatusHostKeyMismatch, ReasonHostKeyUnknown, "", false},
		{"TOFU learns", 0, func(tg *Target) { tg.HostKey = ""; tg.TrustOnFirstUse = true }, StatusSucceeded, "", "", true},
		{"legacy device with legacy algorithms", 1, func(*Target) {}, StatusSucceeded, "", "", false},
		{"legacy device without legacy algorithms", 1, func(tg *Target) { tg.LegacyAlgorithms = false }, StatusFailed, ReasonHandshake, "", false},
		{"legacy device TOFU", 1, func(tg *Target) { tg.HostKey = ""; tg.TrustOnFirstUse = true }, StatusSucceeded, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := targetFor(inv[tt.dev])
			tt.mutate(&tg)
			res, out := runCmd(t, r, tg, "show version")
			requireOutcome(t, res, tt.status, tt.reason, out)
			if tt.learn {
				require.NotEmpty(t, res.LearnedHostKey, "LearnedHostKey")
				assert.Equal(t, inv[tt.dev].HostKey, res.LearnedHostKey, "learned key against the key of %s", inv[tt.dev].Name)
			} else {
				require.Empty(t, res.LearnedHostKey, "LearnedHostKey without TOFU or with a pinned key")
			}
			assert.Contains(t, res.Message, tt.message, "message")
			if res.Status == StatusHostKeyMismatch {
				assert.Empty(t, out, "output after a host key mismatch")
				assert.Zero(t, res.Timings.Auth, "Timings.Auth after a host key mismatch")
			}
		})
	}
}

// TestAuthMethods: password with keyboard-interactive fallback, public key.
func TestAuthMethods(t *testing.T) {
	keys := sshdtest.ClientKeys(t)
	sshPub, plainPEM, encPEM := keys.Public, keys.PEM, keys.EncryptedPEM
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err, "generate client key")
	block, err := ssh.MarshalPrivateKey(otherPriv, "")
	require.NoError(t, err, "marshal client key")
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
			requireOutcome(t, res, tt.status, tt.reason, out)
			for _, secret := range []string{tg.Password, tg.Passphrase} {
				if secret == "" {
					continue
				}
				assert.NotContains(t, res.Message, secret, "secret in the message")
				if res.Err != nil {
					assert.NotContains(t, res.Err.Error(), secret, "secret in the error")
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
				assert.NotContains(t, s, secret, "%s %s %q: password in result text", d.Name, d.Fault, cmd)
			}
			if cmd == "show version" && d.Fault == devicesim.FaultNone {
				assert.Equal(t, StatusSucceeded, res.Status, "healthy device %s: %s", d.Name, res.Message)
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
		t.Run("sink error/"+inv[i].Platform, func(t *testing.T) {
			res := r.Run(context.Background(), targetFor(inv[i]), cmd, &failSink{after: 2})
			requireOutcome(t, res, StatusFailed, ReasonSinkError, "")
		})
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
			requireOutcome(t, res, StatusFailed, ReasonInvalidTarget, "")
			require.Error(t, res.Err, "error of an invalid target")
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"negative timeout", Options{IdleTimeout: -time.Second}},
		{"negative cap", Options{MaxOutputBytes: -1}},
		{"narrow terminal", Options{TerminalWidth: 80}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			assert.Error(t, err, "New accepted %+v", tt.opts)
		})
	}
	t.Run("defaults", func(t *testing.T) {
		o := newRunner(t, Options{}).Options()
		assert.Equal(t, int64(DefaultMaxOutputBytes), o.MaxOutputBytes, "MaxOutputBytes")
		assert.Equal(t, DefaultTerminalWidth, o.TerminalWidth, "TerminalWidth")
		assert.Equal(t, DefaultTotalTimeout, o.TotalTimeout, "TotalTimeout")
	})
}

func TestDeadlineFromContext(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 1, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe", Fault: devicesim.FaultHangMidOutput}}})
	r := newRunner(t, Options{IdleTimeout: time.Minute, TotalTimeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := r.Run(ctx, targetFor(f.Inventory()[0]), "show version", nil)
	requireOutcome(t, res, StatusTimedOut, ReasonDeadline, "")
	assert.LessOrEqual(t, time.Since(start), time.Second, "time to the deadline outcome")
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
			assert.Equal(t, tt.want, string(cleanLine(nil, []byte(tt.in))), "cleanLine(%q)", tt.in)
		})
	}
}
