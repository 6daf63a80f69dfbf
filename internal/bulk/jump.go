package bulk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// JumpHostSource reads the jump hosts devices are reached through, with their credentials, and
// pins and records their host keys; *jumphost.Registry implements it.
type JumpHostSource interface {
	Get(ctx context.Context, id string) (jumphost.JumpHost, error)
	Credential(ctx context.Context, h jumphost.JumpHost) (device.Credential, error)
	// PinHostKey pins key as jump host id's host key unless one is pinned (a conditional write:
	// of concurrent pins one wins, and only it gets won set).
	PinHostKey(ctx context.Context, id, key string) (pinned string, won bool, err error)
	// RecordPendingHostKey records key as the host key jump host id offered instead of its
	// pinned one, for an admin to accept.
	RecordPendingHostKey(ctx context.Context, id, key string) error
}

// TunnelMaker is an Engine that shares jump host connections between the runs of a batch:
// *sshexec.Runner implements it.
type TunnelMaker interface {
	NewTunnels(maxChannelsPerHop int) *sshexec.Tunnels
}

// hopFailure ends a device's run before anything is dialled: its chain names a jump host that is
// gone or has no credential.
type hopFailure struct {
	id  string
	msg string
}

// hops resolves one batch's jump hosts, each once: the batch's devices share their Hop (and its
// pinner) as they share its connection.
type hops struct {
	src JumpHostSource
	mu  sync.Mutex
	got map[string]hopEntry
}

type hopEntry struct {
	hop  sshexec.Hop
	pin  *hopPin
	fail *hopFailure
}

// chain returns the hops of a device's chain in order, or the first that cannot be used; err is
// a failure to read them, worth a retry.
func (h *hops) chain(ctx context.Context, ids []string) ([]sshexec.Hop, *hopFailure, error) {
	if h == nil || h.src == nil {
		return nil, &hopFailure{id: ids[0], msg: "jump hosts are not configured on this executor"}, nil
	}
	out := make([]sshexec.Hop, 0, len(ids))
	for _, id := range ids {
		e, err := h.entry(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		if e.fail != nil {
			return nil, e.fail, nil
		}
		out = append(out, e.hop)
	}
	return out, nil, nil
}

func (h *hops) entry(ctx context.Context, id string) (hopEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock() // one read per jump host and batch, so the few reads are serialised
	if e, ok := h.got[id]; ok {
		return e, nil
	}
	var e hopEntry
	j, err := h.src.Get(ctx, id)
	switch {
	case errors.Is(err, jumphost.ErrNotFound):
		e.fail = &hopFailure{id: id, msg: fmt.Sprintf("jump host %s was deleted", id)}
	case err != nil:
		return hopEntry{}, fmt.Errorf("read jump host %s: %w", id, err)
	default:
		c, err := h.src.Credential(ctx, j)
		switch {
		case errors.Is(err, device.ErrNotFound):
			e.fail = &hopFailure{id: id, msg: fmt.Sprintf("jump host %s has no stored credential (its address changed; give it a new one)", id)}
		case err != nil:
			return hopEntry{}, fmt.Errorf("credential of jump host %s: %w", id, err)
		default:
			e.hop = sshexec.Hop{
				ID: j.ID, Host: j.Host, Port: j.Port, Username: j.Username, AuthMethod: engineAuth(j.AuthMethod),
				Password: c.Password, PrivateKeyPEM: []byte(c.PrivateKey), Passphrase: c.Passphrase,
				HostKey: j.HostKey, TrustOnFirstUse: j.TrustOnFirstUse,
			}
			if j.TrustOnFirstUse && j.HostKey == "" {
				e.pin = &hopPin{src: h.src, id: id}
				e.hop.Pinner = e.pin
			}
		}
	}
	if h.got == nil {
		h.got = map[string]hopEntry{}
	}
	h.got[id] = e
	return e, nil
}

// hop returns jump host id as this batch resolved it.
func (h *hops) hop(id string) (sshexec.Hop, bool) {
	if h == nil {
		return sshexec.Hop{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.got[id]
	return e.hop, ok && e.fail == nil
}

// pinned returns the hops whose key this batch pinned on first use, each once.
func (h *hops) pinned() map[string]string {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for id, e := range h.got {
		if e.pin != nil {
			if key := e.pin.take(); key != "" {
				out[id] = key
			}
		}
	}
	return out
}

// hopPin is the engine's pinner for one trust-on-first-use jump host.
type hopPin struct {
	src JumpHostSource
	id  string

	mu      sync.Mutex
	won     string
	audited bool
}

// PinHostKey implements sshexec.HostKeyPinner.
func (p *hopPin) PinHostKey(ctx context.Context, key string) (string, error) {
	pinned, won, err := p.src.PinHostKey(ctx, p.id, key)
	if err != nil {
		return "", err
	}
	if won {
		p.mu.Lock()
		p.won = key
		p.mu.Unlock()
	}
	return pinned, nil
}

// take returns the key this batch pinned, once.
func (p *hopPin) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.audited {
		return ""
	}
	if p.won != "" {
		p.audited = true
	}
	return p.won
}

// anyChain reports whether any of ds is reached through jump hosts.
func anyChain(ds map[string]device.Device) bool {
	for _, d := range ds {
		if len(d.JumpHostIDs) > 0 {
			return true
		}
	}
	return false
}

// engineAuth is the engine's auth method for an inventory one.
func engineAuth(m device.AuthMethod) sshexec.AuthMethod {
	switch m {
	case device.AuthKeyboardInteractive:
		return sshexec.AuthKeyboardInteractive
	case device.AuthPrivateKey:
		return sshexec.AuthPublicKey
	}
	return sshexec.AuthPassword
}

// hopFailed is the run of a device whose chain cannot be used: unreachable, jump_host_failed, the
// hop named, nothing dialled.
func hopFailed(f *hopFailure) (run.Status, string, string) {
	return run.Unreachable, string(sshexec.ReasonJumpHostFailed), f.msg
}

// hopOutcome audits the jump host keys this batch pinned on first use, and records the key a jump
// host offered instead of its pinned one as its pending host key, audited too. The engine ends
// every device behind that hop host_key_mismatch; the key is recorded once per batch and offered
// key. A failure to record is logged: nothing was sent through the hop either way.
func (x *Executor) hopOutcome(ctx context.Context, log *slog.Logger, m Message, bd *batchDevices, deviceID string, res sshexec.Result) {
	x.auditPins(ctx, log, m.JobID, bd.hops)
	if res.Reason != sshexec.ReasonJumpHostKeyMismatch || res.JumpHostID == "" || res.OfferedHostKey == "" {
		return
	}
	if !bd.firstMismatch(res.JumpHostID, res.OfferedHostKey) {
		return
	}
	fp := device.HostKeyFingerprint(res.OfferedHostKey)
	x.audit(ctx, audit.Entry{Action: "jump_host.host_key_mismatch", Target: res.JumpHostID, Outcome: audit.OutcomeDenied, Reason: string(res.Reason),
		Detail: map[string]string{"fingerprint": fp, "job_id": m.JobID}})
	log.Warn("jump host key refused; recorded as pending", "jump_host_id", res.JumpHostID, "fingerprint", fp)
	if hop, ok := bd.hops.hop(res.JumpHostID); ok && hop.HostKey != "" {
		x.Notices.hostKeyMismatch(ctx, x.noticeExpiry(), notify.HostKeyMismatch{
			Kind: notify.KindJumpHost, ID: hop.ID, Name: hop.ID, Host: hop.Host, Port: cmp.Or(hop.Port, device.DefaultPort),
			PresentedFingerprint: fp, PinnedFingerprint: device.HostKeyFingerprint(hop.HostKey),
			JobID: m.JobID, RunID: RunID(m.JobID, deviceID), SeenAt: x.now(),
		})
	}
	if err := bd.hops.src.RecordPendingHostKey(context.WithoutCancel(ctx), res.JumpHostID, res.OfferedHostKey); err != nil {
		log.Error("record pending host key of jump host", "jump_host_id", res.JumpHostID, "err", err)
	}
}

// auditPins audits the jump host keys h pinned on first use that are not audited yet.
func (x *Executor) auditPins(ctx context.Context, log *slog.Logger, jobID string, h *hops) {
	for id, key := range h.pinned() {
		fp := device.HostKeyFingerprint(key)
		log.Info("jump host key pinned on first use", "jump_host_id", id, "fingerprint", fp)
		x.audit(ctx, audit.Entry{Action: "jump_host.host_key_pin", Target: id, Detail: map[string]string{"fingerprint": fp, "job_id": jobID}})
	}
}

// warmed is what a batch prepared while it waited for its slot: its jump hosts, resolved once,
// and its hold on the process's connections through them (tunnelShare), opening.
type warmed struct {
	hops    *hops
	tunnels *sshexec.Tunnels
	// release lets go of tunnels (safe to call more than once).
	release func()
	// attempts end when the connection attempts this batch started have ended.
	attempts []<-chan struct{}
	// closed audits the keys the connections pinned on first use that no run reported (the
	// batch never took them over, or none of its devices ran): a pin is a change either way.
	closed func()
}

// newWarmed is a batch's warmed connections through h, over tunnels (released by release), for
// m's job.
func (x *Executor) newWarmed(ctx context.Context, log *slog.Logger, m Message, h *hops, tunnels *sshexec.Tunnels, release func()) *warmed {
	w := &warmed{hops: h, tunnels: tunnels, release: release}
	w.closed = func() { x.auditPins(context.WithoutCancel(ctx), log, m.JobID, h) }
	return w
}

// close waits for the connection attempts the batch started (and so for their pins), audits what
// they pinned, and lets go of the connections; nil does nothing. The batch calls it when it is
// done with them, also when it took them over.
func (w *warmed) close() {
	if w == nil {
		return
	}
	for _, done := range w.attempts {
		<-done
	}
	if w.closed != nil {
		w.closed()
	}
	if w.release != nil {
		w.release()
	}
}

// sharedChannels is the channel bound per hop of the process's shared connections: JumpMaxChannels
// for each batch that may run its sessions at once (MaxBatches; one when unbounded, as a Lambda
// instance runs one batch at a time), so batches sharing a hop do not share one batch's bound.
func (x *Executor) sharedChannels() int {
	if x.JumpMaxChannels <= 0 {
		return 0 // the engine's default
	}
	return x.JumpMaxChannels * max(1, x.MaxBatches)
}

// shareIdle is how long the process keeps its jump host connections with no batch using them,
// for the next batch.
const shareIdle = 5 * time.Second

// tunnelShare is the process's one set of jump host connections (one sshexec.Tunnels), shared by
// the batches that run at the same time or one after another, so a jump host sees one login per
// process and busy spell rather than one per batch. A set in which a hop failed goes to no new
// batch (the next one gets a fresh set, which tries the hop again); a set no batch has held for
// idle (shareIdle when zero) closes, and is never reused after that time even before its timer
// fires (a Lambda instance frozen between invocations: its connections may be gone).
type tunnelShare struct {
	idle time.Duration
	mu   sync.Mutex
	cur  *sharedTunnels
}

// sharedTunnels is one set and the batches holding it.
type sharedTunnels struct {
	tn       *sshexec.Tunnels
	holders  int
	timer    *time.Timer
	released time.Time // when the last holder let go
	detached bool      // no longer handed out: closed when its last holder lets go
}

// acquire returns the process's set (made with tm when there is none to share) and its release,
// which is safe to call more than once.
func (s *tunnelShare) acquire(tm TunnelMaker, maxChannels int) (*sshexec.Tunnels, func()) {
	s.mu.Lock()
	var stale *sshexec.Tunnels
	idle := cmp.Or(s.idle, shareIdle)
	st := s.cur
	if st != nil && (st.tn.Failed() || st.holders == 0 && time.Since(st.released) > idle) {
		st.detached, s.cur = true, nil
		if st.holders == 0 {
			stale = st.tn
		}
		st = nil
	}
	if st == nil {
		st = &sharedTunnels{tn: tm.NewTunnels(maxChannels)}
		s.cur = st
	}
	if st.timer != nil {
		st.timer.Stop()
		st.timer = nil
	}
	st.holders++
	s.mu.Unlock()
	if stale != nil {
		_ = stale.Close()
	}
	return st.tn, sync.OnceFunc(func() { s.release(st) })
}

func (s *tunnelShare) release(st *sharedTunnels) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.holders--
	if st.holders > 0 {
		return
	}
	if st.detached || st.tn.Failed() {
		if s.cur == st {
			s.cur = nil
		}
		go func() { _ = st.tn.Close() }()
		return
	}
	st.released = time.Now()
	st.timer = time.AfterFunc(cmp.Or(s.idle, shareIdle), func() {
		s.mu.Lock()
		if st.holders > 0 { // held again while this fired
			s.mu.Unlock()
			return
		}
		if s.cur == st {
			s.cur = nil
		}
		s.mu.Unlock()
		_ = st.tn.Close()
	})
}

// warm starts opening the jump host connections of m's devices, each distinct chain once, and
// returns them (nil when there are none or the engine cannot share connections). The chains are
// the ones the job's last batch that read its devices had (jobChains), or, when none did yet,
// read from m's devices; the batch reads its devices again once its turn comes, and runs those.
// A chain guessed wrong costs one unneeded login: the batch's runs share its Tunnels, so a hop
// still sees at most one connection per batch. A failure is left for the batch to meet.
func (x *Executor) warm(ctx context.Context, log *slog.Logger, m Message) *warmed {
	tm, ok := x.Engine.(TunnelMaker)
	if !ok || x.JumpHosts == nil {
		return nil
	}
	chains, known := x.jobChains.get(m.JobID)
	if !known {
		devs, _, err := x.devicesOf(ctx, m)
		if err != nil {
			log.Warn("read devices to open their jump host connections early", "err", err)
			return nil
		}
		chains = distinctChains(devs)
		x.jobChains.note(m.JobID, chains)
	}
	if len(chains) == 0 {
		return nil
	}
	tn, release := x.share.acquire(tm, x.sharedChannels())
	w := x.newWarmed(ctx, log, m, &hops{src: x.JumpHosts}, tn, release)
	for _, ids := range chains {
		if chain, failed, err := w.hops.chain(ctx, ids); err == nil && failed == nil {
			w.attempts = append(w.attempts, w.tunnels.Warm(chain))
		}
	}
	return w
}

// Bounds of what jobChains remembers.
const (
	maxChainJobs = 1000
	// maxWarmChains bounds the chains a waiting batch warms.
	maxWarmChains = 8
)

// distinctChains returns the distinct jump host chains of devs (at most maxWarmChains), in a
// stable order.
func distinctChains(devs map[string]device.Device) [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, d := range devs {
		key := strings.Join(d.JumpHostIDs, "\x00")
		if len(d.JumpHostIDs) == 0 || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, d.JumpHostIDs)
	}
	slices.SortFunc(out, func(a, b []string) int { return slices.Compare(a, b) })
	return out[:min(len(out), maxWarmChains)]
}

// jobChains remembers, per job, the jump host chains of its last batch that read its devices
// (none: the job's devices are reached directly), so its batches waiting for a slot warm them
// without reading their devices once more. Forgetting costs only that read.
type jobChains struct {
	mu   sync.Mutex
	jobs map[string][][]string
}

func (c *jobChains) get(jobID string) ([][]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	chains, ok := c.jobs[jobID]
	return chains, ok
}

func (c *jobChains) note(jobID string, chains [][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.jobs == nil || len(c.jobs) >= maxChainJobs {
		c.jobs = map[string][][]string{}
	}
	c.jobs[jobID] = chains
}

// parkTTL is how long parked connections wait for their batch's continuation (sent with a
// second's delay) before they close.
const parkTTL = 20 * time.Second

// parkedWarm keeps the connections a batch warmed while it waited in vain for its slot, for the
// continuation that carries the batch on (same job and batch), so a hop sees no second login for
// the batch; what no continuation claims within ttl (parkTTL when zero) is closed.
type parkedWarm struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]*warmed
}

func parkKey(jobID string, batch int) string { return jobID + "/" + strconv.Itoa(batch) }

// put parks w (nil: nothing) for the batch, closing what was parked for it before.
func (p *parkedWarm) put(jobID string, batch int, w *warmed) {
	if w == nil {
		return
	}
	key := parkKey(jobID, batch)
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]*warmed{}
	}
	old := p.m[key]
	p.m[key] = w
	p.mu.Unlock()
	old.close()
	time.AfterFunc(cmp.Or(p.ttl, parkTTL), func() {
		p.mu.Lock()
		expired := p.m[key] == w
		if expired {
			delete(p.m, key)
		}
		p.mu.Unlock()
		if expired {
			w.close()
		}
	})
}

// take returns what is parked for the batch and unparks it; nil when nothing is.
func (p *parkedWarm) take(jobID string, batch int) *warmed {
	key := parkKey(jobID, batch)
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.m[key]
	delete(p.m, key)
	return w
}
