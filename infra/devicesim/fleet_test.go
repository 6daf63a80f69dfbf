package devicesim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, spec Spec) *Fleet {
	t.Helper()
	f, err := Start(spec)
	require.NoError(t, err, "start")
	t.Cleanup(func() { assert.NoError(t, f.Close(), "close") })
	return f
}

func TestInventoryFromMix(t *testing.T) {
	spec := Spec{
		Count: 24, Seed: 42, Versions: 2, Legacy: 1,
		Platforms: []Weighted{{"cisco_iosxe", 2}, {"juniper_junos", 1}, {"linux", 1}},
		Faults:    []FaultCount{{FaultRefuse, 2}, {FaultSlowDrip, 3}},
	}
	f := start(t, spec)
	inv := f.Inventory()
	require.Len(t, inv, 24, "devices")
	ports, names, ids := map[int]bool{}, map[string]bool{}, map[string]bool{}
	perPlatform := map[string]int{}
	versions := map[string]map[string]bool{}
	faults := map[Fault]int{}
	legacy := 0
	for _, d := range inv {
		require.False(t, ports[d.Port] || names[d.Name] || ids[d.ID], "duplicate port, name or id: %+v", d)
		ports[d.Port], names[d.Name], ids[d.ID] = true, true, true
		perPlatform[d.Platform]++
		if versions[d.Platform] == nil {
			versions[d.Platform] = map[string]bool{}
		}
		versions[d.Platform][d.Version] = true
		faults[d.Fault]++
		assert.Equal(t, d.Version, d.Tags["os_version"], "%s: os_version tag", d.ID)
		assert.Equal(t, string(d.Fault), d.Tags["sim_fault"], "%s: sim_fault tag", d.ID)
		if d.LegacyAlgorithms {
			legacy++
		}
		_, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey))
		assert.NoError(t, err, "%s: host key %q", d.Name, d.HostKey)
		assert.Equal(t, "127.0.0.1", d.Host, "%s: host", d.ID)
		assert.NotEmpty(t, d.Username, "%s: username", d.ID)
		assert.NotEmpty(t, d.Password, "%s: password", d.ID)
		assert.NotEmpty(t, d.Site, "%s: site", d.ID)
		wantAuth := "password"
		if d.Platform == "juniper_junos" {
			wantAuth = "keyboard-interactive"
		}
		assert.Equal(t, wantAuth, d.AuthMethod, "%s (%s): auth method", d.ID, d.Platform)
	}
	assert.Equal(t, map[string]int{"cisco_iosxe": 12, "juniper_junos": 6, "linux": 6}, perPlatform, "platform mix")
	for p, v := range versions {
		assert.Len(t, v, 2, "%s's distinct versions", p)
	}
	assert.Equal(t, map[Fault]int{FaultRefuse: 2, FaultSlowDrip: 3, FaultNone: 19}, faults, "fault mix")
	assert.Equal(t, 1, legacy, "legacy devices")
}

func TestDeterministicBySeed(t *testing.T) {
	spec := Spec{Count: 5, Seed: 7, Platforms: []Weighted{{"cisco_nxos", 1}, {"arista_eos", 1}}, Faults: []FaultCount{{FaultHangMidOutput, 2}}}
	a, b := start(t, spec), start(t, spec)
	spec.Seed = 8
	c := start(t, spec)
	ia, ib, ic := a.Inventory(), b.Inventory(), c.Inventory()
	for i := range ia {
		assert.Equal(t, ia[i].HostKey, ib[i].HostKey, "device %d: host key with the same seed", i)
		assert.Equal(t, ia[i].Name, ib[i].Name, "device %d: name with the same seed", i)
		assert.Equal(t, ia[i].Fault, ib[i].Fault, "device %d: fault with the same seed", i)
		assert.NotEqual(t, ia[i].HostKey, ic[i].HostKey, "device %d: host key with another seed", i)
	}
	// The outputs are deterministic too (compared on a device healthy in
	// all three fleets).
	healthy := -1
	for i := range ia {
		if ia[i].Fault == FaultNone && ic[i].Fault == FaultNone {
			healthy = i
			break
		}
	}
	require.GreaterOrEqual(t, healthy, 0, "no device healthy in both fleets")
	out := func(f *Fleet) string {
		t.Helper()
		return execOutput(t, f.Inventory()[healthy], "show version")
	}
	assert.Equal(t, out(a), out(b), "show version with the same seed")
	assert.NotEqual(t, out(a), out(c), "show version with another seed")
}

func TestPlanErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
	}{
		{"no devices", Spec{}},
		{"unknown platform", Spec{Count: 1, Platforms: []Weighted{{"cisco_catos", 1}}}},
		{"zero weight", Spec{Count: 1, Platforms: []Weighted{{"linux", 0}}}},
		{"unknown fault", Spec{Count: 1, Faults: []FaultCount{{"gremlins", 1}}}},
		{"too many faults", Spec{Count: 1, Faults: []FaultCount{{FaultRefuse, 2}}}},
		{"explicit unknown platform", Spec{Devices: []DeviceSpec{{Platform: "nope"}}}},
		{"not loopback-free address", Spec{Count: 1, Address: "256.0.0.1"}},
		{"unprivileged without a privileged mode", Spec{Devices: []DeviceSpec{{Platform: "juniper_junos", Unprivileged: true}}}},
		{"more unprivileged than privileged-mode devices", Spec{Count: 4, Platforms: []Weighted{{"linux", 1}, {"arista_eos", 1}}, Unprivileged: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Start(tt.spec)
			if err == nil {
				_ = f.Close()
			}
			assert.Error(t, err, "Start(%+v)", tt.spec)
		})
	}
}

func TestParsePlatforms(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Weighted
		wantErr bool
	}{
		{name: "weights and a bare name", in: "cisco_iosxe=3, linux ,arista_eos=1",
			want: []Weighted{{"cisco_iosxe", 3}, {"linux", 1}, {"arista_eos", 1}}},
		{name: "unknown platform", in: "nope=1", wantErr: true},
		{name: "weight not a number", in: "linux=x", wantErr: true},
		{name: "negative weight", in: "linux=-1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePlatforms(tc.in)
			if tc.wantErr {
				assert.Error(t, err, "ParsePlatforms(%q)", tc.in)
				return
			}
			require.NoError(t, err, "ParsePlatforms(%q)", tc.in)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseFaults(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []FaultCount
		wantErr bool
	}{
		{name: "counts and a bare name", in: "refuse=2,slow_drip", want: []FaultCount{{FaultRefuse, 2}, {FaultSlowDrip, 1}}},
		{name: "unknown fault", in: "gremlins=1", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFaults(tc.in)
			if tc.wantErr {
				assert.Error(t, err, "ParseFaults(%q)", tc.in)
				return
			}
			require.NoError(t, err, "ParseFaults(%q)", tc.in)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestWriteInventoryAndKnownHosts(t *testing.T) {
	f := start(t, Spec{Count: 3, Seed: 1, Platforms: []Weighted{{"linux", 1}}, Faults: []FaultCount{{FaultChangedHostKey, 1}}})
	var buf bytes.Buffer
	require.NoError(t, f.WriteInventory(&buf))
	var raw []map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &raw), "inventory is not a JSON array")
	want := []string{"auth_method", "host", "host_key", "id", "name", "password", "platform", "port", "site", "tags", "username"}
	for _, d := range raw {
		assert.ElementsMatch(t, want, slices.Collect(maps.Keys(d)), "fields of inventory entry %v", d["id"])
		assert.IsType(t, map[string]any{}, d["tags"], "%v: tags is an object", d["id"])
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	kh, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, f.WriteKnownHosts(kh))
	require.NoError(t, kh.Close())
	cb, err := knownhosts.New(path)
	require.NoError(t, err, "known_hosts does not parse")
	for _, d := range f.Inventory() {
		cfg := &ssh.ClientConfig{User: d.Username, Auth: []ssh.AuthMethod{ssh.Password(d.Password)}, HostKeyCallback: cb, Timeout: 5 * time.Second}
		c, err := ssh.Dial("tcp", d.Addr(), cfg)
		if c != nil {
			_ = c.Close()
		}
		if d.Fault == FaultChangedHostKey {
			var keyErr *knownhosts.KeyError
			assert.ErrorAs(t, err, &keyErr, "%s: a changed host key is refused by known_hosts", d.Name)
		} else {
			assert.NoError(t, err, "%s: dial with known_hosts", d.Name)
		}
	}
}

// dial opens an SSH client to d, trusting its inventory key.
func dial(t *testing.T, d InventoryDevice) *ssh.Client {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey))
	require.NoError(t, err, "%s host key", d.Name)
	cfg := &ssh.ClientConfig{
		User: d.Username,
		Auth: []ssh.AuthMethod{ssh.Password(d.Password), ssh.KeyboardInteractive(func(_, _ string, q []string, _ []bool) ([]string, error) {
			a := make([]string, len(q))
			for i := range a {
				a[i] = d.Password
			}
			return a, nil
		})},
		HostKeyCallback:   ssh.FixedHostKey(key),
		HostKeyAlgorithms: []string{key.Type()},
		Timeout:           5 * time.Second,
	}
	c, err := ssh.Dial("tcp", d.Addr(), cfg)
	require.NoError(t, err, "dial %s", d.Name)
	t.Cleanup(func() { c.Close() })
	return c
}

func execOutput(t *testing.T, d InventoryDevice, cmd string) string {
	t.Helper()
	s, err := dial(t, d).NewSession()
	require.NoError(t, err, "%s: new session", d.Name)
	defer s.Close()
	out, err := s.Output(cmd)
	var missing *ssh.ExitMissingError
	if err != nil && !errors.As(err, &missing) {
		require.NoError(t, err, "%s: exec %q", d.Name, cmd)
	}
	return string(out)
}

// term is a minimal interactive client for checking the shell personality.
type term struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Reader
}

func openShell(t *testing.T, d InventoryDevice, rows int) *term {
	t.Helper()
	s, err := dial(t, d).NewSession()
	require.NoError(t, err, "%s: new session", d.Name)
	require.NoError(t, s.RequestPty("vt100", rows, 200, nil), "%s: pty", d.Name)
	in, err := s.StdinPipe()
	require.NoError(t, err)
	out, err := s.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, s.Shell(), "%s: shell", d.Name)
	return &term{t: t, in: in, out: bufio.NewReader(out)}
}

// readUntil reads until the output ends with suffix and returns all of it.
func (tm *term) readUntil(suffix string) string {
	tm.t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), suffix) {
		c, err := tm.out.ReadByte()
		require.NoError(tm.t, err, "read until %q; got %q", suffix, b.String())
		b.WriteByte(c)
	}
	return b.String()
}

func (tm *term) send(s string) {
	tm.t.Helper()
	_, err := io.WriteString(tm.in, s)
	require.NoError(tm.t, err, "send %q", s)
}

func TestShellPersonalities(t *testing.T) {
	tests := []struct {
		platform, prompt, more, pagingOff, unknownErr string
	}{
		{"cisco_ios", "r1#", " --More-- ", "terminal length 0", "% Invalid input detected at '^' marker."},
		{"cisco_iosxe", "ce1#", " --More-- ", "terminal length 0", "% Invalid input detected at '^' marker."},
		{"cisco_nxos", "nx1#", " --More-- ", "terminal length 0", "% Invalid command at '^' marker."},
		{"cisco_iosxr", "RP/0/RP0/CPU0:xr1#", " --More-- ", "terminal length 0", "% Invalid input detected at '^' marker."},
		{"arista_eos", "sw1#", " --More-- ", "terminal length 0", "% Invalid input"},
		{"juniper_junos", "netauto@mx1> ", "---(more)---", "set cli screen-length 0", "syntax error, expecting <command>."},
		{"generic", "fw1> ", "-- More --", "", "% Unknown command: show bogus"},
		{"linux", "netauto@srv1:~$ ", "", "", "-bash: show: command not found"},
	}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			f := start(t, Spec{Seed: 1, Devices: []DeviceSpec{{Platform: tt.platform}}})
			d := f.Inventory()[0]
			tm := openShell(t, d, 24)
			banner := tm.readUntil(tt.prompt)
			assert.Contains(t, banner, "\r\n", "banner ends lines in CRLF")
			// Echo and CRLF.
			tm.send("show bogus\n")
			got := tm.readUntil(tt.prompt)
			assert.True(t, strings.HasPrefix(got, "show bogus\r\n"), "no echo: %q", got)
			assert.Contains(t, got, tt.unknownErr, "unknown command's error")
			if tt.more == "" {
				return
			}
			// Paging is on: a long command stops at the pager.
			cmd := "show interfaces"
			tm.send(cmd + "\n")
			page := tm.readUntil(tt.more)
			assert.Equal(t, 24, strings.Count(page, "\r\n"), "lines of the first page: the echo and 23 of output")
			tm.send("q")
			tm.readUntil(tt.prompt)
			if tt.pagingOff == "" {
				return
			}
			tm.send(tt.pagingOff + "\n")
			tm.readUntil(tt.prompt)
			tm.send(cmd + "\n")
			all := tm.readUntil(tt.prompt)
			assert.NotContains(t, all, tt.more, "paging still on after disabling it")
			assert.GreaterOrEqual(t, strings.Count(all, "\r\n"), 40, "lines of output after disabling paging")
		})
	}
}

func TestExecChannel(t *testing.T) {
	f := start(t, Spec{Seed: 1, Devices: []DeviceSpec{{Platform: "linux"}, {Platform: "generic"}, {Platform: "linux", Fault: FaultExecUnsupported}, {Platform: "cisco_iosxe"}}})
	inv := f.Inventory()
	linux := dial(t, inv[0])
	tests := []struct {
		cmd, out string
		exit     int
	}{
		{"uname -a", "Linux srv1 ", 0},
		{"ip addr", "1: lo: <LOOPBACK,UP,LOWER_UP>", 0},
		{"ip route", "", 1},
		{"hostname", "srv1\n", 0},
		{"echo a  b", "a b\n", 0},
		{"cat /etc/hostname", "srv1\n", 0},
		{"exit 42", "", 42},
		{"false", "", 1},
		{"nosuch", "", 127},
		{"seq 3", "1\n2\n3\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			s, err := linux.NewSession()
			require.NoError(t, err)
			defer s.Close()
			out, err := s.Output(tt.cmd)
			code := 0
			var exitErr *ssh.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitStatus()
			} else {
				require.NoError(t, err, "exec %q", tt.cmd)
			}
			assert.Equal(t, tt.exit, code, "exit status of %q", tt.cmd)
			assert.True(t, strings.HasPrefix(string(out), tt.out), "output of %q is %q, want the prefix %q", tt.cmd, out, tt.out)
		})
	}
	for _, d := range []InventoryDevice{inv[1], inv[2]} {
		t.Run("refused on "+d.Name, func(t *testing.T) {
			s, err := dial(t, d).NewSession()
			require.NoError(t, err)
			defer s.Close()
			assert.Error(t, s.Start("uname -a"), "%s accepted exec", d.Name)
		})
	}
	t.Run("network exec without exit status", func(t *testing.T) {
		out := execOutput(t, inv[3], "show version")
		assert.Contains(t, out, "Cisco IOS XE Software")
		assert.Contains(t, out, "\r\n", "network exec output ends lines in CRLF")
	})
}

func TestConnectionFaults(t *testing.T) {
	f := start(t, Spec{Seed: 1, Devices: []DeviceSpec{
		{Platform: "cisco_iosxe", Fault: FaultRefuse},
		{Platform: "cisco_iosxe", Fault: FaultHangBeforeBanner},
		{Platform: "cisco_iosxe", Fault: FaultWrongCredentials},
	}})
	inv := f.Inventory()
	t.Run("refuse", func(t *testing.T) {
		c, err := net.Dial("tcp", inv[0].Addr())
		if c != nil {
			c.Close()
		}
		assert.Error(t, err, "%s: connection accepted", inv[0].Name)
	})
	t.Run("hang before banner", func(t *testing.T) {
		c, err := net.Dial("tcp", inv[1].Addr())
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
		n, err := c.Read(make([]byte, 64))
		assert.Zero(t, n, "%s: bytes before the banner", inv[1].Name)
		assert.ErrorIs(t, err, os.ErrDeadlineExceeded, "%s: read", inv[1].Name)
	})
	t.Run("wrong credentials", func(t *testing.T) {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inv[2].HostKey))
		require.NoError(t, err)
		_, err = ssh.Dial("tcp", inv[2].Addr(), &ssh.ClientConfig{User: inv[2].Username, Auth: []ssh.AuthMethod{ssh.Password(inv[2].Password)}, HostKeyCallback: ssh.FixedHostKey(key)})
		require.Error(t, err, "%s: authenticated with rotated credentials", inv[2].Name)
		assert.Contains(t, err.Error(), "unable to authenticate", "%s", inv[2].Name)
	})
}

func TestCloseDropsConnections(t *testing.T) {
	f, err := Start(Spec{Seed: 1, Devices: []DeviceSpec{{Platform: "cisco_iosxe", Fault: FaultHangMidOutput}, {Platform: "linux", Fault: FaultHangBeforeBanner}}})
	require.NoError(t, err)
	inv := f.Inventory()
	tm := openShell(t, inv[0], 0)
	tm.readUntil("ce1#")
	tm.send("show version\n")
	tm.readUntil("\r\n") // the device now hangs mid-output
	raw, err := net.Dial("tcp", inv[1].Addr())
	require.NoError(t, err)
	defer raw.Close()
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case err := <-done:
		require.NoError(t, err, "close")
	case <-time.After(5 * time.Second):
		require.FailNow(t, "Close hangs with hanging devices")
	}
	c, err := net.Dial("tcp", inv[0].Addr())
	if c != nil {
		c.Close()
	}
	assert.Error(t, err, "%s still listens after Close", inv[0].Name)
}

// TestUnprivilegedLogin: an unprivileged IOS device logs in at ">", refuses a privileged command
// there, asks three times for the enable secret without echoing it, and grants "#" to the right
// one; Received lists the answers.
func TestUnprivilegedLogin(t *testing.T) {
	f := start(t, Spec{Seed: 1, EnableSecret: "en-secret", Devices: []DeviceSpec{{Platform: "cisco_ios", Unprivileged: true}}})
	d := f.Inventory()[0]
	require.True(t, d.Unprivileged, "inventory marks the device unprivileged")
	require.Equal(t, "en-secret", d.EnableSecret, "the inventory carries the enable secret to import")
	tm := openShell(t, d, 0)
	tm.readUntil("r1>")
	tm.send("show running-config\n")
	assert.Contains(t, tm.readUntil("r1>"), "% Invalid input detected at '^' marker.", "privileged command at >")
	tm.send("enable\n")
	tm.readUntil("Password: ")
	tm.send("wrong-1\n")
	tm.readUntil("Password: ")
	tm.send("wrong-2\n")
	tm.readUntil("Password: ")
	tm.send("wrong-3\n")
	denied := tm.readUntil("r1>")
	assert.Contains(t, denied, "% Bad secrets", "after three wrong secrets")
	assert.NotContains(t, denied, "wrong-", "the secret was echoed")
	tm.send("enable\n")
	tm.readUntil("Password: ")
	tm.send(f.EnableSecret() + "\n")
	tm.readUntil("r1#")
	tm.send("clear counters\n")
	tm.readUntil("[confirm]")
	tm.send("\n")
	assert.Contains(t, tm.readUntil("r1#"), "Clear counter on all interfaces", "confirmed dialog")
	assert.Equal(t, []string{"wrong-1", "wrong-2", "wrong-3", "en-secret", ""}, f.Received(d.ID).Answers, "answers received")
}

// TestUnprivilegedMix: Spec.Unprivileged picks that many devices among the platforms with a
// privileged mode.
func TestUnprivilegedMix(t *testing.T) {
	f := start(t, Spec{Seed: 2, Count: 6, Platforms: []Weighted{{"linux", 1}, {"cisco_ios", 1}, {"juniper_junos", 1}}, Unprivileged: 2})
	var unpriv []string
	for _, d := range f.Inventory() {
		if d.Unprivileged {
			unpriv = append(unpriv, d.Platform)
			assert.Equal(t, f.EnableSecret(), d.EnableSecret, "enable secret of %s", d.ID)
		} else {
			assert.Empty(t, d.EnableSecret, "enable secret of privileged %s", d.ID)
		}
	}
	assert.Equal(t, []string{"cisco_ios", "cisco_ios"}, unpriv, "unprivileged devices' platforms")
}
