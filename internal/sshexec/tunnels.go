package sshexec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultMaxChannelsPerHop is the channel bound of a Tunnels made with maxChannelsPerHop <= 0.
const DefaultMaxChannelsPerHop = 64

// Tunnels shares jump host connections between runs (an executor batch makes one per batch).
// Each distinct hop chain prefix is connected once, lazily, by the first run that needs it;
// runs arriving meanwhile wait for that one attempt. At most maxChannelsPerHop channels (to
// devices, or to the next hop) are open through one hop at a time; further runs wait for a
// free one, within their context. A hop connection that dies is reopened by the next run
// that needs it. A hop that could not be connected or authenticated, or whose host key was
// refused, stays failed for the Tunnels' lifetime: every later run through it ends at once
// with the same outcome, and the hop sees no storm of retries. Close ends every connection.
type Tunnels struct {
	opts   Options
	max    int
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[string]*hopConn
	closed bool
	stats  TunnelStats
}

// TunnelStats count what a Tunnels did.
type TunnelStats struct {
	// Attempts is how many hop connections were attempted, Connections how many of them were
	// established (a batch through one healthy bastion: one each).
	Attempts, Connections int
	// PeakChannels is the most channels that were open through one hop at once.
	PeakChannels int
}

// Stats returns the counts so far.
func (tn *Tunnels) Stats() TunnelStats {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.stats
}

// NewTunnels returns an empty Tunnels that opens hop connections with r's options and allows
// maxChannelsPerHop concurrent channels through each hop (DefaultMaxChannelsPerHop if <= 0).
func (r *Runner) NewTunnels(maxChannelsPerHop int) *Tunnels {
	return newTunnels(context.Background(), r.opts, maxChannelsPerHop)
}

// newTunnels returns a Tunnels whose connections end with parent.
func newTunnels(parent context.Context, opts Options, maxChannels int) *Tunnels {
	if maxChannels <= 0 {
		maxChannels = DefaultMaxChannelsPerHop
	}
	ctx, cancel := context.WithCancel(parent)
	return &Tunnels{opts: opts, max: maxChannels, ctx: ctx, cancel: cancel, conns: map[string]*hopConn{}}
}

// Close closes every hop connection, which ends the runs still using them (jump_host_failed),
// and returns once the connections' goroutines are gone. Runs after Close fail.
func (tn *Tunnels) Close() error {
	tn.mu.Lock()
	tn.closed = true
	tn.mu.Unlock()
	tn.cancel()
	tn.wg.Wait()
	return nil
}

// hopConn is one hop's connection, reached through parent (nil: over TCP).
type hopConn struct {
	tn     *Tunnels
	hop    Hop
	key    string
	parent *hopConn
	hr     *run // the connection's handshake state and guard

	// ready is closed when the connection attempt has ended; then either client or fail is set.
	ready   chan struct{}
	client  *ssh.Client
	learned string // the key trust-on-first-use accepted
	fail    Result

	// slots holds one token per channel open through this hop.
	slots chan struct{}
	// channels counts the open channels (under tn.mu), for TunnelStats.PeakChannels.
	channels int
	// done is closed when an open connection has ended; end says why.
	done chan struct{}
	end  Result
}

// chainKey identifies a chain prefix by everything that makes its connections differ,
// credentials included (hashed, so they are not kept in a readable key).
func chainKey(hops []Hop) string {
	h := sha256.New()
	for _, p := range hops {
		fmt.Fprintf(h, "%q %q %d %q %q %q %q %q %q %t %t|", p.ID, p.Host, p.Port, p.Username, p.AuthMethod,
			p.Password, p.PrivateKeyPEM, p.Passphrase, p.HostKey, p.TrustOnFirstUse, p.LegacyAlgorithms)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Failed reports whether a hop connection attempt of tn failed: a failure tn remembers for its
// lifetime, so a caller that shares one Tunnels between batches hands a failed one to no new batch
// (it makes a fresh one, which tries the hop again).
func (tn *Tunnels) Failed() bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	for _, hc := range tn.conns {
		select {
		case <-hc.ready:
			if hc.fail.Status != "" {
				return true
			}
		default:
		}
	}
	return false
}

// Warm starts connecting the chain hops in the background, as the first run through it would,
// and returns at once: runs that come later find the connections open (or their attempt under
// way, or its failure remembered). A batch warms its chains while it waits for its turn, so the
// jump host's handshake overlaps the previous batch's sessions. done is closed when the attempt
// has ended (connected, failed, or the Tunnels closed). It does nothing after Close or for an
// invalid chain (the runs report that): done is closed already.
func (tn *Tunnels) Warm(hops []Hop) (done <-chan struct{}) {
	ended := make(chan struct{})
	if len(hops) == 0 || checkJumpHosts(hops) != nil {
		close(ended)
		return ended
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.closed {
		close(ended)
		return ended
	}
	tn.wg.Add(1)
	go func() {
		defer tn.wg.Done()
		defer close(ended)
		_, _ = tn.acquire(tn.ctx, hops)
	}()
	return ended
}

// acquire returns the open connections of hops, in order, opening the missing ones. It fails
// with the first hop's failure, or when ctx ends while it waits (the caller then reports its
// own context's cause).
func (tn *Tunnels) acquire(ctx context.Context, hops []Hop) ([]*hopConn, Result) {
	var open []*hopConn
	var parent *hopConn
	for i, h := range hops {
		key := chainKey(hops[:i+1])
		var hc *hopConn
		for attempt := 0; ; attempt++ {
			hc = tn.get(key, h, parent)
			if hc == nil {
				return open, Result{Status: StatusUnreachable, Reason: ReasonJumpHostFailed, JumpHostID: h.ID,
					Message: fmt.Sprintf("jump host %q: the run's jump host connections are closed", h.ID)}
			}
			select {
			case <-hc.ready:
			case <-ctx.Done():
				return open, fail(StatusCancelled, ReasonCancelled, "run ended while waiting for jump host "+h.ID, ctx.Err())
			}
			if hc.fail.Status != "" {
				return open, hc.fail
			}
			if end, dead := hc.failed(); dead {
				if attempt == 0 {
					continue // it died since it was opened: the next get opens it again
				}
				return open, end
			}
			break
		}
		open = append(open, hc)
		parent = hc
	}
	return open, Result{}
}

// get returns the connection of the chain prefix key, starting its one connection attempt
// if there is none, or if the one there has ended or belongs to an ended parent. It returns
// nil after Close.
func (tn *Tunnels) get(key string, h Hop, parent *hopConn) *hopConn {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.closed {
		return nil
	}
	if hc := tn.conns[key]; hc != nil && hc.parent == parent && hc.reusable() {
		return hc
	}
	hc := &hopConn{tn: tn, hop: h, key: key, parent: parent, hr: h.newRun(tn.opts, tn.ctx),
		ready: make(chan struct{}), slots: make(chan struct{}, tn.max), done: make(chan struct{})}
	tn.conns[key] = hc
	tn.stats.Attempts++
	tn.wg.Add(1)
	go tn.open(hc)
	return hc
}

// reusable reports whether later runs should use hc: while its connection attempt runs, when
// that attempt failed (the failure is remembered), and while the connection is alive.
func (hc *hopConn) reusable() bool {
	select {
	case <-hc.ready:
	default:
		return true
	}
	if hc.fail.Status != "" {
		return true
	}
	_, dead := hc.failed()
	return !dead
}

// failed reports the failure of an open hop connection that has ended, or that is being
// ended for a recorded cause.
func (hc *hopConn) failed() (Result, bool) {
	if hc.ended() {
		return hc.end, true
	}
	if c := hc.hr.getCause(); c != nil {
		return hopFailure(hc.hop, fromCause(c)), true
	}
	return Result{}, false
}

func (hc *hopConn) ended() bool {
	select {
	case <-hc.done:
		return true
	default:
		return false
	}
}

// open connects hc, then keeps it alive with keepalives until it ends or the Tunnels closes.
func (tn *Tunnels) open(hc *hopConn) {
	defer tn.wg.Done()
	hr := hc.hr
	stop := context.AfterFunc(tn.ctx, func() {
		hr.abort(&abortCause{StatusUnreachable, ReasonJumpHostFailed, "the jump host connections were closed"})
	})
	defer stop()
	client, res := tn.connect(hc)
	if client == nil {
		if res.JumpHostID == "" {
			res = hopFailure(hc.hop, res)
		}
		hc.fail = res
		close(hc.ready)
		return
	}
	hc.client, hc.learned = client, hr.learnedKey
	tn.mu.Lock()
	tn.stats.Connections++
	tn.mu.Unlock()
	close(hc.ready)
	stopKeepalive := keepalive(client, tn.opts, hr.abort, fmt.Sprintf("jump host %q", hc.hop.ID))
	_ = client.Wait()
	stopKeepalive()
	_ = client.Close()
	switch c := hr.getCause(); {
	case c != nil:
		hc.end = hopFailure(hc.hop, fromCause(c))
	case hc.parent != nil && hc.parent.ended():
		hc.end = hc.parent.end
	default:
		hc.end = hopFailure(hc.hop, fail(StatusUnreachable, ReasonDisconnected, "connection lost", nil))
	}
	tn.mu.Lock()
	if tn.conns[hc.key] == hc {
		delete(tn.conns, hc.key)
	}
	tn.mu.Unlock()
	close(hc.done)
}

// connect dials hc's hop (over TCP, or through its parent) and runs the SSH handshake.
func (tn *Tunnels) connect(hc *hopConn) (*ssh.Client, Result) {
	hr := hc.hr
	cfg, err := hr.clientConfig()
	if err != nil {
		return nil, fail(StatusFailed, ReasonInvalidTarget, err.Error(), err)
	}
	start := time.Now()
	var conn net.Conn
	var res Result
	if hc.parent == nil {
		conn, res = hr.dialTCP(tn.ctx, hc.hop.addr())
	} else {
		conn, res = hc.parent.dialThrough(tn.ctx, tn.opts.ConnectTimeout, hc.hop.addr(), &hc.hop)
	}
	if res.Status != "" {
		return nil, res
	}
	return hr.handshake(conn, hc.hop.addr(), cfg, start)
}

// dialThrough opens a direct-tcpip channel through hc to addr once a channel slot is free;
// closing the returned connection frees the slot. next is the hop at addr, nil for a device.
func (hc *hopConn) dialThrough(ctx context.Context, timeout time.Duration, addr string, next *Hop) (net.Conn, Result) {
	select {
	case hc.slots <- struct{}{}:
	case <-hc.done:
		return nil, hc.end
	case <-ctx.Done():
		return nil, fail(StatusCancelled, ReasonCancelled, "run ended while waiting for a channel through jump host "+hc.hop.ID, ctx.Err())
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := hc.client.DialContext(dctx, "tcp", addr)
	if err != nil {
		<-hc.slots
		if ctx.Err() != nil {
			return nil, fail(StatusCancelled, ReasonCancelled, "run ended while opening a channel through jump host "+hc.hop.ID, ctx.Err())
		}
		select {
		case <-hc.done:
			return nil, hc.end
		default:
		}
		return nil, forwardFailure(hc.hop, next, addr, err)
	}
	hc.tn.mu.Lock()
	hc.channels++
	hc.tn.stats.PeakChannels = max(hc.tn.stats.PeakChannels, hc.channels)
	hc.tn.mu.Unlock()
	return &slotConn{Conn: conn, hc: hc}, Result{}
}

// slotConn is a channel through a hop; Close frees its slot once.
type slotConn struct {
	net.Conn
	hc   *hopConn
	once sync.Once
}

// Close closes the channel and frees its slot.
func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.hc.tn.mu.Lock()
		c.hc.channels--
		c.hc.tn.mu.Unlock()
		<-c.hc.slots
	})
	return err
}
