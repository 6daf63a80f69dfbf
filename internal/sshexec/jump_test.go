package sshexec

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/sshdtest"
)

// The tests in this file put real OpenSSH sshd bastions (infra/sshdtest, root needed, skipped
// under -short) in front of the device simulator.

// jumpOpts are fastOpts with an auth timeout PAM's two-second delay after a failure fits in.
var jumpOpts = func() Options {
	o := fastOpts
	o.AuthTimeout = 10 * time.Second
	return o
}()

// startBastion starts an sshd that forwards TCP (plus extra options).
func startBastion(t *testing.T, extra ...string) *sshdtest.Server {
	t.Helper()
	return sshdtest.Start(t, append(extra, "AllowTcpForwarding yes")...)
}

// hopFor is a hop to srv with its password and pinned host key.
func hopFor(srv *sshdtest.Server, id string) Hop {
	return Hop{ID: id, Host: "127.0.0.1", Port: srv.Port, Username: sshdtest.User,
		AuthMethod: AuthPassword, Password: srv.Password, HostKey: srv.HostKeyLine()}
}

// authLines returns the log lines of srv that show an authentication attempt.
func authLines(srv *sshdtest.Server) []string {
	var out []string
	for _, l := range srv.Lines() {
		for _, w := range []string{"Accepted", "Failed", "Postponed", "password", "keyboard-interactive", "publickey"} {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// TestJumpHostFleet reaches every platform of the simulator through one sshd bastion; the
// output is exactly what a direct run gets.
func TestJumpHostFleet(t *testing.T) {
	bastion := startBastion(t)
	_, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, jumpOpts)
	commands := map[string]string{"linux": "uname -a", "juniper_junos": "show configuration"}
	for p, d := range devs {
		t.Run(p, func(t *testing.T) {
			command := commands[p]
			if command == "" {
				command = "show version"
			}
			direct, want := runCmd(t, r, targetFor(d), command)
			requireOutcome(t, direct, StatusSucceeded, "", want)
			tg := targetFor(d)
			tg.JumpHosts = []Hop{hopFor(bastion, "bastion")}
			res, out := runCmd(t, r, tg, command)
			requireOutcome(t, res, StatusSucceeded, "", out)
			require.NotEmpty(t, want, "direct output")
			assert.Equal(t, want, out, "output through the bastion")
			assert.Empty(t, res.JumpHostID, "JumpHostID of a success")
			assert.Empty(t, res.LearnedHopKeys, "learned hop keys with a pinned hop")
			assert.Positive(t, res.Timings.Connect, "Timings.Connect")
			assert.Positive(t, res.Timings.Auth, "Timings.Auth")
		})
	}
	// Without Tunnels each run opens (and closes) its own connection to the bastion.
	assert.Equal(t, len(devs), bastion.Count("Accepted password for"), "bastion logins")
}

// TestJumpHostChain goes through two sshd hops; a third is allowed, a fourth is not.
func TestJumpHostChain(t *testing.T) {
	first, second := startBastion(t), startBastion(t)
	f := startFleet(t, devicesim.Spec{Seed: 3, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe"}}})
	d := f.Inventory()[0]
	r := newRunner(t, jumpOpts)
	direct, want := runCmd(t, r, targetFor(d), "show ip route")
	requireOutcome(t, direct, StatusSucceeded, "", want)
	tests := []struct {
		name   string
		hops   []Hop
		status Status
		reason Reason
	}{
		{"two hops", []Hop{hopFor(first, "h1"), hopFor(second, "h2")}, StatusSucceeded, ""},
		{"three hops", []Hop{hopFor(first, "h1"), hopFor(second, "h2"), hopFor(first, "h3")}, StatusSucceeded, ""},
		{"four hops", []Hop{hopFor(first, "h1"), hopFor(second, "h2"), hopFor(first, "h3"), hopFor(second, "h4")}, StatusFailed, ReasonInvalidTarget},
		{"hop without ID", []Hop{{Host: "127.0.0.1", Username: "u", Password: "p"}}, StatusFailed, ReasonInvalidTarget},
		{"hop with a bad key", []Hop{{ID: "k", Host: "127.0.0.1", Username: "u", AuthMethod: AuthPublicKey, PrivateKeyPEM: []byte("junk")}}, StatusFailed, ReasonInvalidTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := targetFor(d)
			tg.JumpHosts = tt.hops
			res, out := runCmd(t, r, tg, "show ip route")
			requireOutcome(t, res, tt.status, tt.reason, out)
			if tt.status == StatusSucceeded {
				assert.Equal(t, want, out, "output through the chain")
			} else {
				assert.Empty(t, out, "output of a refused target")
			}
		})
	}
	// The second hop was reached through the first: both saw the chains' logins.
	assert.Equal(t, 3, first.Count("Accepted password for"), "logins on the first hop")
	assert.Equal(t, 2, second.Count("Accepted password for"), "logins on the second hop")
}

// TestJumpHostKeyRefused: a hop whose key differs from the pinned one, or is unknown with
// trust-on-first-use off, is refused before anything goes through it; TOFU learns it.
func TestJumpHostKeyRefused(t *testing.T) {
	bastion := startBastion(t)
	f := startFleet(t, devicesim.Spec{Seed: 4, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}}})
	d := f.Inventory()[0]
	r := newRunner(t, jumpOpts)
	tests := []struct {
		name    string
		mutate  func(*Hop)
		message string
	}{
		{"changed key", func(h *Hop) { h.HostKey = newHostKey(t) }, `jump host "bastion" (` + bastion.Addr() + `): host key mismatch: jump host presented ssh-ed25519`},
		{"changed key with TOFU", func(h *Hop) { h.HostKey = newHostKey(t); h.TrustOnFirstUse = true }, "host key mismatch"},
		{"unknown key", func(h *Hop) { h.HostKey = "" }, "no pinned host key and trust-on-first-use is off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hop := hopFor(bastion, "bastion")
			tt.mutate(&hop)
			tg := targetFor(d)
			tg.JumpHosts = []Hop{hop}
			res, out := runCmd(t, r, tg, "show version")
			requireOutcome(t, res, StatusHostKeyMismatch, ReasonJumpHostKeyMismatch, out)
			assert.Equal(t, "bastion", res.JumpHostID, "JumpHostID")
			assert.Equal(t, bastion.HostKeyLine(), res.OfferedHostKey, "the hop's offered key")
			assert.Contains(t, res.Message, tt.message, "message")
			assert.Empty(t, res.LearnedHopKeys, "learned keys")
			assert.NotContains(t, res.Message+res.Err.Error(), bastion.Password, "password in the result")
		})
	}
	// Nothing went past the bastion, and the bastion got no credential: sshd logs every
	// attempt at LogLevel VERBOSE.
	assert.Empty(t, f.Received(d.ID).Auth, "authentications the device received")
	assert.Empty(t, f.Received(d.ID).Commands, "commands the device received")
	require.True(t, bastion.WaitFor(5*time.Second, func(lines []string) bool {
		return sshdtest.CountLines(lines, "Connection from") == len(tests) && sshdtest.CountLines(lines, "[preauth]") >= len(tests)
	}), "the bastion logged the refused connections' ends")
	assert.Empty(t, authLines(bastion), "authentication attempts on the bastion")

	t.Run("trust on first use", func(t *testing.T) {
		hop := hopFor(bastion, "bastion")
		hop.HostKey, hop.TrustOnFirstUse = "", true
		tg := targetFor(d)
		tg.JumpHosts = []Hop{hop}
		res, out := runCmd(t, r, tg, "show version")
		requireOutcome(t, res, StatusSucceeded, "", out)
		assert.Equal(t, map[string]string{"bastion": bastion.HostKeyLine()}, res.LearnedHopKeys, "learned hop keys")
		assert.Empty(t, res.LearnedHostKey, "the device's key was pinned")
	})
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen")
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close(), "close")
	return port
}

// TestJumpHostFailures: a hop that refuses the forward, the credentials or the connection
// ends the run unreachable/jump_host_failed naming it; a device the bastion cannot reach is
// unreachable like one dialed directly.
func TestJumpHostFailures(t *testing.T) {
	open := startBastion(t)
	noForward := sshdtest.Start(t, "AllowTcpForwarding no")
	f := startFleet(t, devicesim.Spec{Seed: 5, Devices: []devicesim.DeviceSpec{{Platform: "arista_eos"}}})
	d := f.Inventory()[0]
	down := closedPort(t)
	r := newRunner(t, jumpOpts)
	tests := []struct {
		name     string
		hops     []Hop
		device   func(*Target)
		status   Status
		reason   Reason
		hopID    string
		messages []string
	}{
		{"forwarding refused", []Hop{hopFor(noForward, "strict")}, nil, StatusUnreachable, ReasonJumpHostFailed, "strict",
			[]string{`jump host "strict" refused to forward to ` + d.Addr(), "administratively prohibited"}},
		{"wrong password", []Hop{func() Hop { h := hopFor(open, "bastion"); h.Password = "not-the-password"; return h }()}, nil,
			StatusUnreachable, ReasonJumpHostFailed, "bastion", []string{`jump host "bastion"`, "authentication failed"}},
		{"hop refuses the connection", []Hop{func() Hop { h := hopFor(open, "gone"); h.Port = down; return h }()}, nil,
			StatusUnreachable, ReasonJumpHostFailed, "gone", []string{`jump host "gone"`, "connection refused"}},
		{"second hop unreachable from the first", []Hop{hopFor(open, "h1"), func() Hop { h := hopFor(open, "h2"); h.Port = down; return h }()}, nil,
			StatusUnreachable, ReasonJumpHostFailed, "h2", []string{`jump host "h2"`, `jump host "h1" could not connect to 127.0.0.1:` + strconv.Itoa(down)}},
		{"device down behind the bastion", []Hop{hopFor(open, "bastion")}, func(tg *Target) { tg.Port = down }, StatusUnreachable, ReasonRefused, "",
			[]string{`jump host "bastion" could not connect to 127.0.0.1:` + strconv.Itoa(down)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := targetFor(d)
			tg.JumpHosts = tt.hops
			if tt.device != nil {
				tt.device(&tg)
			}
			res, out := runCmd(t, r, tg, "show version")
			requireOutcome(t, res, tt.status, tt.reason, out)
			assert.Equal(t, tt.hopID, res.JumpHostID, "JumpHostID")
			for _, m := range tt.messages {
				assert.Contains(t, res.Message, m, "message")
			}
			assert.NotContains(t, res.Message+res.Err.Error(), open.Password, "password in the result")
		})
	}
	assert.Empty(t, f.Received(d.ID).Commands, "commands the device received")
}

// TestJumpHostKeyboardInteractive logs in to a hop that only offers keyboard-interactive
// (sshd through PAM).
func TestJumpHostKeyboardInteractive(t *testing.T) {
	bastion := startBastion(t, "PasswordAuthentication no", "PubkeyAuthentication no")
	f := startFleet(t, devicesim.Spec{Seed: 6, Devices: []devicesim.DeviceSpec{{Platform: "juniper_junos"}}})
	d := f.Inventory()[0]
	r := newRunner(t, jumpOpts)
	for _, tt := range []struct {
		name     string
		method   AuthMethod
		password string
		status   Status
		reason   Reason
	}{
		{"keyboard-interactive", AuthKeyboardInteractive, bastion.Password, StatusSucceeded, ""},
		{"password falls back to keyboard-interactive", AuthPassword, bastion.Password, StatusSucceeded, ""},
		{"wrong password", AuthKeyboardInteractive, "wrong-wrong", StatusUnreachable, ReasonJumpHostFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hop := hopFor(bastion, "kbd")
			hop.AuthMethod, hop.Password = tt.method, tt.password
			tg := targetFor(d)
			tg.JumpHosts = []Hop{hop}
			res, out := runCmd(t, r, tg, "show version")
			requireOutcome(t, res, tt.status, tt.reason, out)
			if tt.status == StatusSucceeded {
				assert.Contains(t, out, "Hostname: "+d.Name, "output")
			}
		})
	}
}

// TestTunnelsShareOneConnection: 50 concurrent runs through one bastion with one Tunnels open
// exactly one bastion connection, with at most maxChannelsPerHop channels open at a time; a
// hop that fails is tried once, not once per run.
func TestTunnelsShareOneConnection(t *testing.T) {
	bastion := startBastion(t)
	f := startFleet(t, devicesim.Spec{Seed: 8, Count: 10, Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}}})
	r := newRunner(t, jumpOpts)
	const runs, maxChannels = 50, 4
	counter := newConnCounter(t)
	tn := r.NewTunnels(maxChannels)
	inv := f.Inventory()
	results := make([]Result, runs)
	outs := make([]strings.Builder, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := inv[i%len(inv)]
			tg := targetFor(d)
			tg.Host, tg.Port = counter.front(t, d.Addr())
			tg.JumpHosts, tg.Tunnels = []Hop{hopFor(bastion, "bastion")}, tn
			results[i] = r.Run(context.Background(), tg, "show version", &outs[i])
		}()
	}
	wg.Wait()
	for i, res := range results {
		requireOutcome(t, res, StatusSucceeded, "", outs[i].String())
		assert.Contains(t, outs[i].String(), inv[i%len(inv)].Name+" uptime is", "output of run %d", i)
	}
	assert.False(t, tn.Failed(), "no hop failed")
	require.NoError(t, tn.Close(), "close tunnels")
	assert.Equal(t, 1, bastion.Count("Connection from"), "connections to the bastion")
	assert.Equal(t, 1, bastion.Count("Accepted password for"), "logins on the bastion")
	assert.Equal(t, runs, counter.total(), "channels forwarded to the devices")
	stats := tn.Stats()
	assert.Equal(t, TunnelStats{Attempts: 1, Connections: 1, PeakChannels: stats.PeakChannels}, stats, "tunnel stats")
	assert.LessOrEqual(t, stats.PeakChannels, maxChannels, "channels open at once through the bastion")
	assert.Greater(t, stats.PeakChannels, 1, "channels open at once through the bastion (runs in parallel)")

	t.Run("a failing hop is tried once", func(t *testing.T) {
		bad := r.NewTunnels(maxChannels)
		defer func() { assert.NoError(t, bad.Close(), "close") }()
		hop := hopFor(bastion, "bastion")
		hop.Password = "wrong-password"
		before := bastion.Count("Connection from")
		var wg sync.WaitGroup
		results := make([]Result, 10)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tg := targetFor(inv[0])
				tg.JumpHosts, tg.Tunnels = []Hop{hop}, bad
				results[i] = r.Run(context.Background(), tg, "show version", nil)
			}()
		}
		wg.Wait()
		for _, res := range results {
			requireOutcome(t, res, StatusUnreachable, ReasonJumpHostFailed, "")
			assert.Equal(t, "bastion", res.JumpHostID, "JumpHostID")
		}
		assert.Equal(t, 1, bastion.Count("Connection from")-before, "connection attempts to the failing bastion")
		assert.Equal(t, TunnelStats{Attempts: 1}, bad.Stats(), "tunnel stats")
		assert.True(t, bad.Failed(), "the Tunnels remembers a failed hop")
	})
}

// TestTunnelsWarm: Warm logs in to the bastion with no run asking, runs that come later use that
// connection (one attempt in all), and Warm after Close or of an invalid chain dials nothing.
func TestTunnelsWarm(t *testing.T) {
	bastion := startBastion(t)
	f := startFleet(t, devicesim.Spec{Seed: 9, Count: 3, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}})
	r := newRunner(t, jumpOpts)
	tn := r.NewTunnels(4)
	hop := hopFor(bastion, "bastion")
	tn.Warm([]Hop{hop})
	require.True(t, bastion.WaitFor(10*time.Second, func(lines []string) bool {
		return sshdtest.CountLines(lines, "Accepted password for") == 1
	}), "Warm logged in to the bastion on its own")
	for _, d := range f.Inventory() {
		tg := targetFor(d)
		tg.JumpHosts, tg.Tunnels = []Hop{hop}, tn
		var out strings.Builder
		requireOutcome(t, r.Run(context.Background(), tg, "uname -a", &out), StatusSucceeded, "", out.String())
	}
	tn.Warm([]Hop{hop}) // already open: nothing new
	require.NoError(t, tn.Close(), "close tunnels")
	assert.Equal(t, TunnelStats{Attempts: 1, Connections: 1, PeakChannels: 1}, tn.Stats(), "tunnel stats")

	tn.Warm([]Hop{hop}) // closed: nothing
	invalid := r.NewTunnels(4)
	invalid.Warm([]Hop{{ID: "", Host: "127.0.0.1", Port: bastion.Port}})
	invalid.Warm(nil)
	require.NoError(t, invalid.Close(), "close tunnels")
	assert.Equal(t, TunnelStats{}, invalid.Stats(), "an invalid chain is not dialled")
	assert.Equal(t, 1, bastion.Count("Connection from"), "connections to the bastion")
}

// connCounter is a set of TCP proxies in front of devices that count the connections the
// bastion forwards.
type connCounter struct {
	mu      sync.Mutex
	fronts  map[string]string
	n       atomic.Int64
	wg      sync.WaitGroup
	closers []io.Closer
}

func newConnCounter(t *testing.T) *connCounter {
	t.Helper()
	c := &connCounter{fronts: map[string]string{}}
	t.Cleanup(func() {
		c.mu.Lock()
		for _, cl := range c.closers {
			_ = cl.Close()
		}
		c.mu.Unlock()
		c.wg.Wait()
	})
	return c
}

// front returns the address of the proxy to backend, starting it on first use.
func (c *connCounter) front(t *testing.T, backend string) (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.fronts[backend]; ok {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		return host, p
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Errorf("proxy listen: %v", err)
		return "", 0
	}
	c.closers = append(c.closers, ln)
	c.fronts[backend] = ln.Addr().String()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				c.serve(in, backend)
			}()
		}
	}()
	return "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
}

func (c *connCounter) serve(in net.Conn, backend string) {
	defer in.Close()
	c.n.Add(1)
	c.mu.Lock()
	c.closers = append(c.closers, in)
	c.mu.Unlock()
	out, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer out.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(out, in)
		_ = out.Close()
		close(done)
	}()
	_, _ = io.Copy(in, out)
	_ = in.Close()
	<-done
}

func (c *connCounter) total() int { return int(c.n.Load()) }
