package sshexec

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// checkJumpHosts validates a chain before anything is dialed: its length, and each hop's ID,
// host and credentials (a private key that does not parse is refused here, not mid-chain).
func checkJumpHosts(hops []Hop) error {
	if len(hops) > MaxJumpHosts {
		return fmt.Errorf("%d jump hosts: a chain has at most %d", len(hops), MaxJumpHosts)
	}
	for i, h := range hops {
		if strings.TrimSpace(h.ID) == "" {
			return fmt.Errorf("jump host %d has no ID", i+1)
		}
		if h.Host == "" {
			return fmt.Errorf("jump host %q has no host", h.ID)
		}
		if _, err := h.newRun(Options{}, context.Background()).clientConfig(); err != nil {
			return fmt.Errorf("jump host %q: %w", h.ID, err)
		}
	}
	return nil
}

// addr returns the hop's host:port.
func (h Hop) addr() string {
	port := h.Port
	if port == 0 {
		port = 22
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(port))
}

// newRun returns the state of one connection to the hop: the device's handshake code (host key
// verification, authentication, phase timers) serves jump hosts unchanged.
func (h Hop) newRun(opts Options, ctx context.Context) *run {
	return &run{opts: opts, ctx: ctx, peer: "jump host", t: Target{
		Host: h.Host, Port: h.Port, Username: h.Username,
		AuthMethod: h.AuthMethod, Password: h.Password, PrivateKeyPEM: h.PrivateKeyPEM, Passphrase: h.Passphrase,
		HostKey: h.HostKey, TrustOnFirstUse: h.TrustOnFirstUse, Pinner: h.Pinner, LegacyAlgorithms: h.LegacyAlgorithms,
	}}
}

// chain is one run's use of its jump hosts: the open hop connections, in order, from the
// run's Tunnels or from a private one closed when the run ends.
type chain struct {
	tn   *Tunnels
	own  bool
	hops []*hopConn
}

// openChain opens (or joins) t's hop connections. On failure the chain holds the hops that
// are open, for their learned keys.
func openChain(ctx context.Context, opts Options, t Target) (*chain, Result) {
	ch := &chain{tn: t.Tunnels}
	if ch.tn == nil {
		ch.tn, ch.own = newTunnels(ctx, opts, 1), true
	}
	var res Result
	ch.hops, res = ch.tn.acquire(ctx, t.JumpHosts)
	return ch, res
}

// dial opens a channel to the device through the last hop, waiting for a free channel slot.
func (ch *chain) dial(ctx context.Context, timeout time.Duration, addr string) (net.Conn, Result) {
	return ch.hops[len(ch.hops)-1].dialThrough(ctx, timeout, addr, nil)
}

// close closes a private Tunnels; a shared one lives on.
func (ch *chain) close() {
	if ch != nil && ch.own {
		_ = ch.tn.Close()
	}
}

// learnedKeys maps each hop whose key trust-on-first-use accepted to that key (nil if none).
func (ch *chain) learnedKeys() map[string]string {
	if ch == nil {
		return nil
	}
	var m map[string]string
	for _, hc := range ch.hops {
		if hc.learned != "" {
			if m == nil {
				m = map[string]string{}
			}
			m[hc.hop.ID] = hc.learned
		}
	}
	return m
}

// watch calls abort when the last hop's connection ends while the run uses it, so the run
// ends at once instead of at its next timeout. stop ends the watch.
func (ch *chain) watch(abort func(*abortCause)) (stop func()) {
	if ch == nil || len(ch.hops) == 0 {
		return func() {}
	}
	last := ch.hops[len(ch.hops)-1]
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-last.done:
			abort(&abortCause{last.end.Status, last.end.Reason, last.end.Message})
			// blame reports last.end with its JumpHostID.
		case <-done:
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// blame turns a failed run whose hop connection has ended (or is being ended: stopped
// answering keepalives, Tunnels closed) into that hop's failure: the device's channel died
// with the hop, so the hop is the cause. The caller's own cancellation and deadlines stay
// what they are.
func (ch *chain) blame(res Result) Result {
	if ch == nil || res.Status == StatusSucceeded || res.Status == "" || res.Status == StatusCancelled ||
		res.Reason == ReasonDeadline || res.Reason == ReasonTotalTimeout {
		return res
	}
	for _, hc := range ch.hops {
		if out, ok := hc.failed(); ok {
			out.LearnedHostKey, out.LearnedHopKeys, out.Timings, out.Commands = res.LearnedHostKey, res.LearnedHopKeys, res.Timings, res.Commands
			return out
		}
	}
	return res
}

// hopFailure turns the outcome of connecting to hop into the run's outcome: a refused host
// key is the hop's key mismatch, anything else makes the hop (and so the device) unreachable.
func hopFailure(h Hop, res Result) Result {
	out := Result{Status: StatusUnreachable, Reason: ReasonJumpHostFailed, JumpHostID: h.ID}
	if res.Status == StatusHostKeyMismatch {
		out.Status, out.Reason, out.OfferedHostKey = StatusHostKeyMismatch, ReasonJumpHostKeyMismatch, res.OfferedHostKey
	}
	out.Message = fmt.Sprintf("jump host %q (%s): %s", h.ID, h.addr(), res.Message)
	err := res.Err
	if err == nil {
		err = errors.New(res.Message)
	}
	out.Err = fmt.Errorf("jump host %s: %w", h.ID, err)
	return out
}

// forwardFailure classifies a channel hop could not open to addr. next is the hop behind it,
// or nil when addr is the device. A hop that cannot connect to the next one leaves that one
// unreachable; a device it cannot connect to is unreachable like a device dialed directly; a
// hop that refuses the forward (administratively prohibited) or loses its connection failed.
func forwardFailure(hop Hop, next *Hop, addr string, err error) Result {
	wrapped := fmt.Errorf("open channel to %s through jump host %s: %w", addr, hop.ID, err)
	var oce *ssh.OpenChannelError
	connectFailed := errors.As(err, &oce) && oce.Reason == ssh.ConnectionFailed
	timedOut := errors.Is(err, context.DeadlineExceeded)
	if connectFailed || timedOut {
		why := "timed out"
		if connectFailed {
			why = oce.Message
		}
		msg := fmt.Sprintf("jump host %q could not connect to %s: %s", hop.ID, addr, why)
		if next != nil {
			return Result{Status: StatusUnreachable, Reason: ReasonJumpHostFailed, JumpHostID: next.ID,
				Message: fmt.Sprintf("jump host %q (%s) unreachable: %s", next.ID, addr, msg), Err: wrapped}
		}
		reason := ReasonNetwork
		switch {
		case timedOut:
			reason = ReasonConnectTimeout
		case strings.Contains(strings.ToLower(why), "refused"):
			reason = ReasonRefused
		}
		return fail(StatusUnreachable, reason, msg, wrapped)
	}
	msg := fmt.Sprintf("jump host %q refused to forward to %s: %v", hop.ID, addr, err)
	if oce == nil {
		msg = fmt.Sprintf("jump host %q: connection lost while opening a channel to %s: %v", hop.ID, addr, err)
	}
	return Result{Status: StatusUnreachable, Reason: ReasonJumpHostFailed, JumpHostID: hop.ID, Message: msg, Err: wrapped}
}
