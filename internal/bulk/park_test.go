package bulk

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/sshexec"
)

// TestParkedWarm: connections parked for a handed-on batch go to that batch's continuation only,
// once, and close when none claims them in time.
func TestParkedWarm(t *testing.T) {
	r, err := sshexec.New(sshexec.Options{})
	require.NoError(t, err)
	newWarm := func() *warmed {
		tn := r.NewTunnels(1)
		return &warmed{hops: &hops{}, tunnels: tn, release: func() { _ = tn.Close() }}
	}
	p := &parkedWarm{ttl: time.Hour}

	assert.Nil(t, p.take("job", 1), "nothing parked")
	p.put("job", 1, nil)
	assert.Nil(t, p.take("job", 1), "nil is not parked")

	w := newWarm()
	p.put("job", 1, w)
	assert.Nil(t, p.take("job", 2), "another batch of the job")
	assert.Nil(t, p.take("other", 1), "the same batch of another job")
	assert.Same(t, w, p.take("job", 1), "the continuation takes them")
	assert.Nil(t, p.take("job", 1), "once")
	w.close()

	w1, w2 := newWarm(), newWarm()
	p.put("job", 3, w1)
	p.put("job", 3, w2) // w1 is closed
	assert.Same(t, w2, p.take("job", 3), "the newer parking wins")
	w2.close()

	short := &parkedWarm{ttl: 10 * time.Millisecond}
	short.put("job", 4, newWarm())
	require.Eventually(t, func() bool {
		short.mu.Lock()
		defer short.mu.Unlock()
		return len(short.m) == 0
	}, 5*time.Second, 5*time.Millisecond, "unclaimed connections are closed and forgotten")
}

// pinSource is a JumpHostSource whose every pin wins.
type pinSource struct{ JumpHostSource }

func (pinSource) PinHostKey(_ context.Context, _, key string) (string, bool, error) {
	return key, true, nil
}

// TestWarmedPinsAudited: a jump host key pinned on first use by connections a batch warmed is
// audited when they close, also when no run used them (the batch was handed on and its parking
// expired, or the chains changed while it waited), and only once.
func TestWarmedPinsAudited(t *testing.T) {
	ctx := context.Background()
	r, err := sshexec.New(sshexec.Options{})
	require.NoError(t, err)
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	sshPub, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))

	rec := &audittest.Recorder{}
	x := &Executor{Audit: rec}
	pin := &hopPin{src: pinSource{}, id: "bastion"}
	h := &hops{got: map[string]hopEntry{"bastion": {pin: pin}}}
	tn := r.NewTunnels(1)
	released := 0
	w := x.newWarmed(ctx, slog.New(slog.DiscardHandler), Message{JobID: "job-1"}, h, tn, func() { released++ })
	_, err = pin.PinHostKey(ctx, key)
	require.NoError(t, err)
	w.close()
	w.close()

	assert.Equal(t, 2, released, "each close lets go (the share's release is itself once only)")
	entries := rec.Entries()
	require.Len(t, entries, 1, "one audit entry for the pin")
	assert.Equal(t, "jump_host.host_key_pin", entries[0].Action)
	assert.Equal(t, "bastion", entries[0].Target)
	assert.Equal(t, ssh.FingerprintSHA256(sshPub), entries[0].Detail["fingerprint"])
	assert.Equal(t, "job-1", entries[0].Detail["job_id"])
}

// TestTunnelShare: batches holding the process's jump host connections at the same time, or one
// soon after another, get the same set; a set nobody holds for the idle time closes and the next
// batch gets a new one; a set in which a hop failed goes to no new batch.
func TestTunnelShare(t *testing.T) {
	r, err := sshexec.New(sshexec.Options{})
	require.NoError(t, err)
	s := &tunnelShare{idle: time.Hour}
	a, releaseA := s.acquire(r, 4)
	b, releaseB := s.acquire(r, 4)
	assert.Same(t, a, b, "held at the same time: one set")
	releaseA()
	releaseA() // a second release is harmless
	releaseB()
	c, releaseC := s.acquire(r, 4)
	assert.Same(t, a, c, "held again within the idle time: the same set")
	releaseC()

	// A hop that refuses the connection: the set remembers the failure.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	d, releaseD := s.acquire(r, 4)
	d.Warm([]sshexec.Hop{{ID: "gone", Host: "127.0.0.1", Port: port, Username: "u", Password: "p", HostKey: ""}})
	require.Eventually(t, d.Failed, 10*time.Second, 5*time.Millisecond, "the hop at "+strconv.Itoa(port)+" failed")
	e, releaseE := s.acquire(r, 4)
	assert.NotSame(t, d, e, "a failed set goes to no new batch")
	releaseD()
	releaseE()

	short := &tunnelShare{idle: 10 * time.Millisecond}
	f, releaseF := short.acquire(r, 4)
	releaseF()
	require.Eventually(t, func() bool {
		short.mu.Lock()
		defer short.mu.Unlock()
		return short.cur == nil
	}, 5*time.Second, 5*time.Millisecond, "an idle set closes")
	g, releaseG := short.acquire(r, 4)
	assert.NotSame(t, f, g, "after the idle time: a new set")
	releaseG()
}

// TestSharedChannels: the shared connections allow JumpMaxChannels per batch that may run at once.
func TestSharedChannels(t *testing.T) {
	tests := []struct {
		name              string
		channels, batches int
		want              int
	}{
		{"engine default", 0, 2, 0},
		{"one batch at a time (a Lambda instance)", 10, 0, 10},
		{"one slot", 10, 1, 10},
		{"three slots", 10, 3, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := &Executor{JumpMaxChannels: tt.channels, MaxBatches: tt.batches}
			assert.Equal(t, tt.want, x.sharedChannels())
		})
	}
}
