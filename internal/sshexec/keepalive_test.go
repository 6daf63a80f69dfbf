package sshexec

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

// rawServer is a minimal x/crypto/ssh server (user "u", password "pw") that counts the
// keepalive requests it gets and can stop answering them, as a peer behind a dead firewall
// flow would. Exec commands: "wait-keepalives N" prints "ok" once the server watched by
// waitOn (itself by default) has received N keepalives; "hang" never ends. It also forwards
// direct-tcpip channels, so it can serve as a jump host.
type rawServer struct {
	ln      net.Listener
	cfg     *ssh.ServerConfig
	hostKey string
	mu      sync.Mutex
	// silentAfterForward makes it stop answering keepalives once it forwarded a channel.
	silentAfterForward bool
	waitOn             *rawServer
	keepalives         int
	tick               chan struct{} // closed and replaced on every keepalive
	silent             bool
	closed             bool
	done               chan struct{}
	conns              []io.Closer
	wg                 sync.WaitGroup
}

func startRawServer(t *testing.T) *rawServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err, "host key")
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err, "signer")
	cfg := &ssh.ServerConfig{PasswordCallback: func(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
		if c.User() == "u" && string(pw) == "pw" {
			return nil, nil
		}
		return nil, assert.AnError
	}}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen")
	s := &rawServer{ln: ln, cfg: cfg, tick: make(chan struct{}), done: make(chan struct{}),
		hostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}
	s.waitOn = s
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *rawServer) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.done)
		_ = s.ln.Close()
		for _, c := range s.conns {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// track registers c to be closed with the server; false when it is closing already.
func (s *rawServer) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return false
	}
	s.conns = append(s.conns, c)
	return true
}

func (s *rawServer) spawn(fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

func (s *rawServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		if s.track(c) {
			s.spawn(func() { s.serve(c) })
		}
	}
}

func (s *rawServer) serve(c net.Conn) {
	_, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	s.spawn(func() {
		for req := range reqs {
			s.mu.Lock()
			if req.Type == keepaliveRequest {
				s.keepalives++
				close(s.tick)
				s.tick = make(chan struct{})
			}
			silent := s.silent
			s.mu.Unlock()
			if !silent && req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	})
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil || !s.track(ch) {
				continue
			}
			s.spawn(func() { s.session(ch, creqs) })
		case "direct-tcpip":
			var p struct {
				Host       string
				Port       uint32
				OriginHost string
				OriginPort uint32
			}
			if ssh.Unmarshal(nc.ExtraData(), &p) != nil {
				_ = nc.Reject(ssh.ConnectionFailed, "bad request")
				continue
			}
			out, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				_ = nc.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, creqs, err := nc.Accept()
			if err != nil || !s.track(ch) || !s.track(out) {
				_ = out.Close()
				continue
			}
			go ssh.DiscardRequests(creqs)
			s.mu.Lock()
			s.silent = s.silent || s.silentAfterForward
			s.mu.Unlock()
			s.spawn(func() { _, _ = io.Copy(out, ch); _ = out.Close() })
			s.spawn(func() { _, _ = io.Copy(ch, out); _ = ch.Close() })
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "no")
		}
	}
}

func (s *rawServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			_ = req.Reply(false, nil)
			continue
		}
		var p struct{ Command string }
		_ = ssh.Unmarshal(req.Payload, &p)
		_ = req.Reply(true, nil)
		fields := strings.Fields(p.Command)
		if len(fields) == 2 && fields[0] == "wait-keepalives" {
			n, _ := strconv.Atoi(fields[1])
			s.mu.Lock()
			waitOn := s.waitOn
			s.mu.Unlock()
			if !waitOn.waitKeepalives(n) {
				return
			}
			_, _ = io.WriteString(ch, "ok\n")
			_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
			return
		}
		<-s.done // "hang"
		return
	}
}

// waitKeepalives waits until the server has received n keepalives; false if it closed first.
func (s *rawServer) waitKeepalives(n int) bool {
	for {
		s.mu.Lock()
		got, tick := s.keepalives, s.tick
		s.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-tick:
		case <-s.done:
			return false
		}
	}
}

func (s *rawServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keepalives
}

func (s *rawServer) target() Target {
	port := s.ln.Addr().(*net.TCPAddr).Port
	return Target{Host: "127.0.0.1", Port: port, Platform: "linux", Username: "u", AuthMethod: AuthPassword,
		Password: "pw", HostKey: s.hostKey}
}

func (s *rawServer) hop(id string) Hop {
	tg := s.target()
	return Hop{ID: id, Host: tg.Host, Port: tg.Port, Username: tg.Username, Password: tg.Password, HostKey: tg.HostKey}
}

// keepaliveOpts send a keepalive every 50ms and give up after three unanswered intervals;
// the idle timeout is far longer, so only keepalives can end a silent run early.
var keepaliveOpts = func() Options {
	o := fastOpts
	o.IdleTimeout, o.TotalTimeout = 20*time.Second, 30*time.Second
	o.KeepaliveInterval, o.KeepaliveMax = 50*time.Millisecond, 3
	return o
}()

// TestKeepalivesSent: the device, and every hop, receive keepalive@openssh.com requests while
// a run lasts (the command only ends once they arrived).
func TestKeepalivesSent(t *testing.T) {
	r := newRunner(t, keepaliveOpts)
	t.Run("device", func(t *testing.T) {
		dev := startRawServer(t)
		res, out := runCmd(t, r, dev.target(), "wait-keepalives 3")
		requireOutcome(t, res, StatusSucceeded, "", out)
		assert.Equal(t, "ok\n", out, "output")
		assert.GreaterOrEqual(t, dev.count(), 3, "keepalives the device received")
	})
	t.Run("hop", func(t *testing.T) {
		hop, dev := startRawServer(t), startRawServer(t)
		dev.mu.Lock()
		dev.waitOn = hop
		dev.mu.Unlock()
		tg := dev.target()
		tg.JumpHosts = []Hop{hop.hop("raw")}
		res, out := runCmd(t, r, tg, "wait-keepalives 3")
		requireOutcome(t, res, StatusSucceeded, "", out)
		assert.GreaterOrEqual(t, hop.count(), 3, "keepalives the hop received")
	})
}

// TestKeepaliveSilentPeer: a device, or a hop, that stops answering keepalives ends the run
// after KeepaliveMax intervals, long before the idle timeout.
func TestKeepaliveSilentPeer(t *testing.T) {
	r := newRunner(t, keepaliveOpts)
	t.Run("device", func(t *testing.T) {
		dev := startRawServer(t)
		dev.mu.Lock()
		dev.silent = true
		dev.mu.Unlock()
		start := time.Now()
		res, out := runCmd(t, r, dev.target(), "hang")
		requireOutcome(t, res, StatusFailed, ReasonDisconnected, out)
		assert.Contains(t, res.Message, "device stopped answering", "message")
		assert.Less(t, time.Since(start), keepaliveOpts.IdleTimeout/2, "time to detect the silent device")
	})
	t.Run("hop", func(t *testing.T) {
		hop, dev := startRawServer(t), startRawServer(t)
		hop.mu.Lock()
		hop.silentAfterForward = true
		hop.mu.Unlock()
		tg := dev.target()
		tg.JumpHosts = []Hop{hop.hop("silent")}
		tg.Tunnels = r.NewTunnels(0)
		defer func() { assert.NoError(t, tg.Tunnels.Close(), "close tunnels") }()
		start := time.Now()
		res, out := runCmd(t, r, tg, "hang")
		requireOutcome(t, res, StatusUnreachable, ReasonJumpHostFailed, out)
		assert.Equal(t, "silent", res.JumpHostID, "JumpHostID")
		assert.Contains(t, res.Message, `jump host "silent" stopped answering`, "message")
		assert.Less(t, time.Since(start), keepaliveOpts.IdleTimeout/2, "time to detect the silent hop")

		// The dead hop connection is reopened by the next run through the same Tunnels.
		hop.mu.Lock()
		hop.silent, hop.silentAfterForward = false, false
		hop.mu.Unlock()
		res, out = r.Run(context.Background(), tg, "wait-keepalives 1", nil), ""
		requireOutcome(t, res, StatusSucceeded, "", out)
		assert.Equal(t, TunnelStats{Attempts: 2, Connections: 2, PeakChannels: 1}, tg.Tunnels.Stats(), "tunnel stats")
	})
}
