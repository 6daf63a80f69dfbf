package devicesim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
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
	if len(inv) != 24 {
		t.Fatalf("%d devices, want 24", len(inv))
	}
	ports, names, ids := map[int]bool{}, map[string]bool{}, map[string]bool{}
	perPlatform := map[string]int{}
	versions := map[string]map[string]bool{}
	faults := map[Fault]int{}
	legacy := 0
	for _, d := range inv {
		if ports[d.Port] || names[d.Name] || ids[d.ID] {
			t.Fatalf("duplicate port, name or id: %+v", d)
		}
		ports[d.Port], names[d.Name], ids[d.ID] = true, true, true
		perPlatform[d.Platform]++
		if versions[d.Platform] == nil {
			versions[d.Platform] = map[string]bool{}
		}
		versions[d.Platform][d.Version] = true
		faults[d.Fault]++
		if d.Tags["os_version"] != d.Version || d.Tags["sim_fault"] != string(d.Fault) {
			t.Errorf("tags %v disagree with version %q / fault %q", d.Tags, d.Version, d.Fault)
		}
		if d.LegacyAlgorithms {
			legacy++
		}
		if _, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey)); err != nil {
			t.Errorf("%s: host key %q: %v", d.Name, d.HostKey, err)
		}
		if d.Host != "127.0.0.1" || d.Username == "" || d.Password == "" || d.Site == "" {
			t.Errorf("incomplete device %+v", d)
		}
		wantAuth := "password"
		if d.Platform == "juniper_junos" {
			wantAuth = "keyboard-interactive"
		}
		if d.AuthMethod != wantAuth {
			t.Errorf("%s: auth method %q, want %q", d.Platform, d.AuthMethod, wantAuth)
		}
	}
	if perPlatform["cisco_iosxe"] != 12 || perPlatform["juniper_junos"] != 6 || perPlatform["linux"] != 6 {
		t.Errorf("platform mix %v, want 12/6/6", perPlatform)
	}
	for p, v := range versions {
		if len(v) != 2 {
			t.Errorf("%s has versions %v, want 2 distinct", p, v)
		}
	}
	if faults[FaultRefuse] != 2 || faults[FaultSlowDrip] != 3 || faults[FaultNone] != 19 {
		t.Errorf("fault mix %v", faults)
	}
	if legacy != 1 {
		t.Errorf("%d legacy devices, want 1", legacy)
	}
}

func TestDeterministicBySeed(t *testing.T) {
	spec := Spec{Count: 5, Seed: 7, Platforms: []Weighted{{"cisco_nxos", 1}, {"arista_eos", 1}}, Faults: []FaultCount{{FaultHangMidOutput, 2}}}
	a, b := start(t, spec), start(t, spec)
	spec.Seed = 8
	c := start(t, spec)
	ia, ib, ic := a.Inventory(), b.Inventory(), c.Inventory()
	for i := range ia {
		if ia[i].HostKey != ib[i].HostKey || ia[i].Name != ib[i].Name || ia[i].Fault != ib[i].Fault {
			t.Errorf("device %d differs between two starts with the same seed", i)
		}
		if ia[i].HostKey == ic[i].HostKey {
			t.Errorf("device %d has the same host key with another seed", i)
		}
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
	if healthy < 0 {
		t.Fatal("no device healthy in both fleets")
	}
	out := func(f *Fleet) string {
		t.Helper()
		return execOutput(t, f.Inventory()[healthy], "show version")
	}
	if out(a) != out(b) {
		t.Error("show version differs between two starts with the same seed")
	}
	if out(a) == out(c) {
		t.Error("show version is the same with another seed")
	}
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Start(tt.spec)
			if err == nil {
				_ = f.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestParseMixes(t *testing.T) {
	ps, err := ParsePlatforms("cisco_iosxe=3, linux ,arista_eos=1")
	if err != nil || len(ps) != 3 || ps[0] != (Weighted{"cisco_iosxe", 3}) || ps[1] != (Weighted{"linux", 1}) {
		t.Fatalf("ParsePlatforms = %v, %v", ps, err)
	}
	fs, err := ParseFaults("refuse=2,slow_drip")
	if err != nil || len(fs) != 2 || fs[0] != (FaultCount{FaultRefuse, 2}) || fs[1] != (FaultCount{FaultSlowDrip, 1}) {
		t.Fatalf("ParseFaults = %v, %v", fs, err)
	}
	for _, bad := range []string{"nope=1", "linux=x", "linux=-1"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("ParsePlatforms(%q) succeeded", bad)
		}
	}
	if _, err := ParseFaults("gremlins=1"); err == nil {
		t.Error("ParseFaults accepted an unknown fault")
	}
}

func TestWriteInventoryAndKnownHosts(t *testing.T) {
	f := start(t, Spec{Count: 3, Seed: 1, Platforms: []Weighted{{"linux", 1}}, Faults: []FaultCount{{FaultChangedHostKey, 1}}})
	var buf bytes.Buffer
	if err := f.WriteInventory(&buf); err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatalf("inventory is not a JSON array: %v", err)
	}
	want := []string{"auth_method", "host", "host_key", "id", "name", "password", "platform", "port", "site", "tags", "username"}
	for _, d := range raw {
		for _, k := range want {
			if _, ok := d[k]; !ok {
				t.Errorf("inventory entry lacks %q: %v", k, d)
			}
		}
		if len(d) != len(want) {
			t.Errorf("inventory entry has extra fields: %v", d)
		}
		if _, ok := d["tags"].(map[string]any); !ok {
			t.Errorf("tags is not an object: %v", d["tags"])
		}
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	kh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.WriteKnownHosts(kh); err != nil {
		t.Fatal(err)
	}
	kh.Close()
	cb, err := knownhosts.New(path)
	if err != nil {
		t.Fatalf("known_hosts does not parse: %v", err)
	}
	for _, d := range f.Inventory() {
		cfg := &ssh.ClientConfig{User: d.Username, Auth: []ssh.AuthMethod{ssh.Password(d.Password)}, HostKeyCallback: cb, Timeout: 5 * time.Second}
		c, err := ssh.Dial("tcp", d.Addr(), cfg)
		var keyErr *knownhosts.KeyError
		switch {
		case d.Fault == FaultChangedHostKey:
			if !errors.As(err, &keyErr) {
				t.Errorf("%s: changed host key accepted by known_hosts: %v", d.Name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", d.Name, err)
		}
		if c != nil {
			c.Close()
		}
	}
}

// dial opens an SSH client to d, trusting its inventory key.
func dial(t *testing.T, d InventoryDevice) *ssh.Client {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey))
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatalf("dial %s: %v", d.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func execOutput(t *testing.T, d InventoryDevice, cmd string) string {
	t.Helper()
	s, err := dial(t, d).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Output(cmd)
	var missing *ssh.ExitMissingError
	if err != nil && !errors.As(err, &missing) {
		t.Fatalf("exec %q: %v", cmd, err)
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
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty("vt100", rows, 200, nil); err != nil {
		t.Fatal(err)
	}
	in, _ := s.StdinPipe()
	out, _ := s.StdoutPipe()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	return &term{t: t, in: in, out: bufio.NewReader(out)}
}

// readUntil reads until the output ends with suffix and returns all of it.
func (tm *term) readUntil(suffix string) string {
	tm.t.Helper()
	var b strings.Builder
	for !strings.HasSuffix(b.String(), suffix) {
		c, err := tm.out.ReadByte()
		if err != nil {
			tm.t.Fatalf("read until %q: %v; got %q", suffix, err, b.String())
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (tm *term) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.in, s); err != nil {
		tm.t.Fatal(err)
	}
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
			if !strings.Contains(banner, "\r\n") {
				t.Errorf("banner without CRLF: %q", banner)
			}
			// Echo and CRLF.
			tm.send("show bogus\n")
			got := tm.readUntil(tt.prompt)
			if !strings.HasPrefix(got, "show bogus\r\n") {
				t.Errorf("no echo: %q", got)
			}
			if !strings.Contains(got, tt.unknownErr) {
				t.Errorf("error %q not in %q", tt.unknownErr, got)
			}
			if tt.more == "" {
				return
			}
			// Paging is on: a long command stops at the pager.
			cmd := "show interfaces"
			tm.send(cmd + "\n")
			page := tm.readUntil(tt.more)
			if n := strings.Count(page, "\r\n"); n != 24 { // echo line + 23 output lines
				t.Errorf("first page has %d lines, want 24", n)
			}
			tm.send("q")
			tm.readUntil(tt.prompt)
			if tt.pagingOff == "" {
				return
			}
			tm.send(tt.pagingOff + "\n")
			tm.readUntil(tt.prompt)
			tm.send(cmd + "\n")
			all := tm.readUntil(tt.prompt)
			if strings.Contains(all, tt.more) {
				t.Error("paging still on after disabling it")
			}
			if strings.Count(all, "\r\n") < 40 {
				t.Errorf("short output after disabling paging: %d lines", strings.Count(all, "\r\n"))
			}
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
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			out, err := s.Output(tt.cmd)
			code := 0
			var exitErr *ssh.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitStatus()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.exit || !strings.HasPrefix(string(out), tt.out) {
				t.Errorf("got %q exit %d, want prefix %q exit %d", out, code, tt.out, tt.exit)
			}
		})
	}
	for _, d := range []InventoryDevice{inv[1], inv[2]} {
		t.Run("refused on "+d.Name, func(t *testing.T) {
			s, err := dial(t, d).NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Start("uname -a"); err == nil {
				t.Fatal("exec accepted")
			}
		})
	}
	t.Run("network exec without exit status", func(t *testing.T) {
		out := execOutput(t, inv[3], "show version")
		if !strings.Contains(out, "Cisco IOS XE Software") || !strings.Contains(out, "\r\n") {
			t.Fatalf("output %q", out)
		}
	})
}

func TestConnectionFaults(t *testing.T) {
	f := start(t, Spec{Seed: 1, Devices: []DeviceSpec{
		{Platform: "cisco_iosxe", Fault: FaultRefuse},
		{Platform: "cisco_iosxe", Fault: FaultHangBeforeBanner},
		{Platform: "cisco_iosxe", Fault: FaultWrongCredentials},
	}})
	inv := f.Inventory()
	if c, err := net.Dial("tcp", inv[0].Addr()); err == nil {
		c.Close()
		t.Error("refuse: connection accepted")
	}
	c, err := net.Dial("tcp", inv[1].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 64)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("hang before banner: read %d bytes, %v", n, err)
	}
	key, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(inv[2].HostKey))
	_, err = ssh.Dial("tcp", inv[2].Addr(), &ssh.ClientConfig{User: inv[2].Username, Auth: []ssh.AuthMethod{ssh.Password(inv[2].Password)}, HostKeyCallback: ssh.FixedHostKey(key)})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("wrong credentials: %v", err)
	}
}

func TestCloseDropsConnections(t *testing.T) {
	f, err := Start(Spec{Seed: 1, Devices: []DeviceSpec{{Platform: "cisco_iosxe", Fault: FaultHangMidOutput}, {Platform: "linux", Fault: FaultHangBeforeBanner}}})
	if err != nil {
		t.Fatal(err)
	}
	inv := f.Inventory()
	tm := openShell(t, inv[0], 0)
	tm.readUntil("ce1#")
	tm.send("show version\n")
	tm.readUntil("\r\n") // the device now hangs mid-output
	raw, err := net.Dial("tcp", inv[1].Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	done := make(chan error, 1)
	go func() { done <- f.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with hanging devices")
	}
	if c, err := net.Dial("tcp", inv[0].Addr()); err == nil {
		c.Close()
		t.Error("device still listens after Close")
	}
}
