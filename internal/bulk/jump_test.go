package bulk_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// jumpSource is an in-memory bulk.JumpHostSource that counts its reads and records pending keys.
type jumpSource struct {
	mu      sync.Mutex
	hosts   map[string]jumphost.JumpHost
	creds   map[string]device.Credential
	gets    map[string]int
	pending map[string][]string
}

func (s *jumpSource) Get(_ context.Context, id string) (jumphost.JumpHost, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[id]++
	h, ok := s.hosts[id]
	if !ok {
		return jumphost.JumpHost{}, jumphost.ErrNotFound
	}
	return h, nil
}

func (s *jumpSource) Credential(_ context.Context, h jumphost.JumpHost) (device.Credential, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.creds[h.ID]
	if !ok {
		return device.Credential{}, fmt.Errorf("credential of jump host %s: %w", h.ID, device.ErrNotFound)
	}
	return c, nil
}

func (s *jumpSource) PinHostKey(_ context.Context, id, key string) (string, bool, error) {
	return key, true, nil
}

func (s *jumpSource) RecordPendingHostKey(_ context.Context, id, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[id] = append(s.pending[id], key)
	return nil
}

// chainEngine records each device's chain and ends every run behind a hop in refuse with that
// hop's key refused.
type chainEngine struct {
	mu     sync.Mutex
	chains map[string][]sshexec.Hop
	refuse string
	offers string
}

func (c *chainEngine) Run(_ context.Context, t sshexec.Target, _ string, sink sshexec.Sink) sshexec.Result {
	c.mu.Lock()
	c.chains[t.Host] = t.JumpHosts
	c.mu.Unlock()
	for _, h := range t.JumpHosts {
		if h.ID == c.refuse {
			return sshexec.Result{Status: sshexec.StatusHostKeyMismatch, Reason: sshexec.ReasonJumpHostKeyMismatch, JumpHostID: h.ID, OfferedHostKey: c.offers,
				Message: "jump host " + h.ID + " offered another key"}
		}
	}
	n, _ := fmt.Fprintf(sink, "output of %s\n", t.Host)
	return sshexec.Result{Status: sshexec.StatusSucceeded, Bytes: int64(n), Timings: sshexec.Timings{Total: time.Millisecond}}
}

// TestExecutorJumpChains: each device's chain reaches the engine in order with the hops'
// credentials and keys, each jump host read once per batch; a chain naming a deleted jump host or
// one without a credential ends its device unreachable, jump_host_failed, naming the hop, without
// dialling; a hop's refused key is recorded once as the jump host's pending key and audited once.
func TestExecutorJumpChains(t *testing.T) {
	pinned, offered := randomHostKey(t), randomHostKey(t)
	src := &jumpSource{
		hosts: map[string]jumphost.JumpHost{
			"outer": {ID: "outer", Host: "192.0.2.1", Port: 22, Username: "jump", AuthMethod: device.AuthPassword, HostKey: pinned, HasCredential: true},
			"inner": {ID: "inner", Host: "10.0.0.1", Port: 2222, Username: "hop", AuthMethod: device.AuthPrivateKey, TrustOnFirstUse: true, HasCredential: true},
			"bare":  {ID: "bare", Host: "192.0.2.9", Port: 22, Username: "jump", AuthMethod: device.AuthPassword, HostKey: pinned},
			"moved": {ID: "moved", Host: "192.0.2.7", Port: 22, Username: "jump", AuthMethod: device.AuthPassword, HostKey: pinned, HasCredential: true},
		},
		creds:   map[string]device.Credential{"outer": {Password: "outer-pw"}, "inner": {PrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n"}, "moved": {Password: "moved-pw"}},
		gets:    map[string]int{},
		pending: map[string][]string{},
	}
	e := newEnv(t)
	chains := map[string][]string{
		"two-a": {"outer", "inner"}, "two-b": {"outer", "inner"}, "direct": nil,
		"gone": {"outer", "deleted"}, "nocred": {"bare"}, "refused-a": {"moved"}, "refused-b": {"moved"},
	}
	var ids []string
	for id, chain := range chains {
		e.devices.Put(device.Device{ID: id, Name: id, Host: id, Port: 22, Platform: "cisco_ios", Username: "admin", JumpHostIDs: chain}, device.Credential{Password: "secret"})
		ids = append(ids, id)
	}
	eng := &chainEngine{chains: map[string][]sshexec.Hop{}, refuse: "moved", offers: offered}
	rec := &audittest.Recorder{}
	e.exec.Engine, e.exec.JumpHosts, e.exec.Audit = eng, src, rec
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.drain(t)
	states := allDevices(t, e.jobs, acc.JobID)

	tests := []struct {
		id     string
		status run.Status
		reason string
		hops   []string
	}{
		{"two-a", run.Succeeded, "", []string{"outer", "inner"}},
		{"two-b", run.Succeeded, "", []string{"outer", "inner"}},
		{"direct", run.Succeeded, "", nil},
		{"gone", run.Unreachable, "jump_host_failed", nil},
		{"nocred", run.Unreachable, "jump_host_failed", nil},
		{"refused-a", run.HostKeyMismatch, "jump_host_key_mismatch", []string{"moved"}},
		{"refused-b", run.HostKeyMismatch, "jump_host_key_mismatch", []string{"moved"}},
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			st := states[tc.id]
			assert.Equal(t, tc.status, st.Status)
			assert.Equal(t, tc.reason, st.Reason)
			got, dialled := eng.chains[tc.id]
			if tc.status == run.Unreachable {
				assert.False(t, dialled, "nothing is dialled for an unusable chain")
				r, err := e.runs.Get(context.Background(), st.RunID)
				require.NoError(t, err)
				assert.Contains(t, r.Message, map[string]string{"gone": "jump host deleted was deleted", "nocred": "jump host bare has no stored credential"}[tc.id])
				return
			}
			require.True(t, dialled)
			var hopIDs []string
			for _, h := range got {
				hopIDs = append(hopIDs, h.ID)
			}
			assert.Equal(t, tc.hops, hopIDs, "the chain in order")
		})
	}
	outer, inner := eng.chains["two-a"][0], eng.chains["two-a"][1]
	assert.Equal(t, sshexec.Hop{ID: "outer", Host: "192.0.2.1", Port: 22, Username: "jump", AuthMethod: sshexec.AuthPassword, Password: "outer-pw", PrivateKeyPEM: []byte{}, HostKey: pinned}, outer)
	assert.Equal(t, sshexec.AuthPublicKey, inner.AuthMethod)
	assert.True(t, inner.TrustOnFirstUse)
	assert.NotNil(t, inner.Pinner, "a trust-on-first-use hop without a key pins through the jump host store")
	assert.Equal(t, 1, src.gets["outer"], "each jump host is read once per batch")
	assert.Equal(t, []string{offered}, src.pending["moved"], "the refused key is recorded once")
	mismatches := 0
	for _, en := range rec.Entries() {
		if en.Action == "jump_host.host_key_mismatch" {
			mismatches++
			assert.Equal(t, "moved", en.Target)
			assert.Equal(t, device.HostKeyFingerprint(offered), en.Detail["fingerprint"])
		}
	}
	assert.Equal(t, 1, mismatches, "audited once, not once per device")
}

// TestExecutorChainWithoutJumpHosts: an executor without a jump host source ends a device with a
// chain unreachable, jump_host_failed, and dials nothing.
func TestExecutorChainWithoutJumpHosts(t *testing.T) {
	e := newEnv(t)
	e.devices.Put(device.Device{ID: "r1", Name: "r1", Host: "r1", Port: 22, Platform: "cisco_ios", Username: "admin", JumpHostIDs: []string{"j"}}, device.Credential{Password: "secret"})
	acc := e.enqueue(t, []string{"r1"}, bulk.Options{TimeoutS: 5})
	e.drain(t)
	st := allDevices(t, e.jobs, acc.JobID)["r1"]
	assert.Equal(t, run.Unreachable, st.Status)
	assert.Equal(t, "jump_host_failed", st.Reason)
	assert.Zero(t, e.engine.ranTimes()["r1"], "nothing dialled")
}
