package bulk_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

func randomHostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

// keyEngine is an engine whose devices (by host) present the keys in offers, checked as sshexec
// checks them: a pinned key must match, an unpinned trust-on-first-use key is pinned through the
// target's pinner.
type keyEngine struct{ offers map[string]string }

func (k keyEngine) Run(ctx context.Context, t sshexec.Target, _ string, _ sshexec.Sink) sshexec.Result {
	offered := k.offers[t.Host]
	mismatch := sshexec.Result{Status: sshexec.StatusHostKeyMismatch, Reason: sshexec.ReasonHostKeyChanged, OfferedHostKey: offered}
	switch {
	case t.HostKey != "":
		if t.HostKey != offered {
			return mismatch
		}
	case !t.TrustOnFirstUse:
		mismatch.Reason = sshexec.ReasonHostKeyUnknown
		return mismatch
	case t.Pinner == nil:
		return sshexec.Result{Status: sshexec.StatusFailed, Reason: sshexec.ReasonHandshake, Message: "no pinner"}
	default:
		pinned, err := t.Pinner.PinHostKey(ctx, offered)
		if err != nil {
			return sshexec.Result{Status: sshexec.StatusFailed, Reason: sshexec.ReasonHostKeyPin}
		}
		if pinned != offered {
			return mismatch
		}
	}
	return sshexec.Result{Status: sshexec.StatusSucceeded, Timings: sshexec.Timings{Total: time.Millisecond}}
}

func TestExecutorPinsAndRecordsHostKeys(t *testing.T) {
	pinnedKey, offeredKey := randomHostKey(t), randomHostKey(t)
	tests := []struct {
		name        string
		dev         device.Device
		offers      string
		wantStatus  run.Status
		wantPinned  string
		wantPending string
		wantAudit   string // the host-key entry besides the job's start and finish
	}{
		{"first use pins", device.Device{TrustOnFirstUse: true}, offeredKey, run.Succeeded, offeredKey, "", "host_key.pin"},
		{"pinned key matches", device.Device{HostKey: pinnedKey, TrustOnFirstUse: true}, pinnedKey, run.Succeeded, pinnedKey, "", ""},
		{"changed key is pending", device.Device{HostKey: pinnedKey, TrustOnFirstUse: true}, offeredKey, run.HostKeyMismatch, pinnedKey, offeredKey, "host_key.mismatch"},
		{"unknown key without TOFU is pending", device.Device{}, offeredKey, run.HostKeyMismatch, "", offeredKey, "host_key.mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			d := tt.dev
			d.ID, d.Name, d.Host, d.Port, d.Platform, d.Username = "r1", "r1", "r1", 22, "cisco_ios", "admin"
			e.devices.Put(d, device.Credential{Password: "secret"})
			e.exec.Engine = keyEngine{offers: map[string]string{"r1": tt.offers}}
			rec := &audittest.Recorder{}
			e.exec.Audit = rec
			acc := e.enqueue(t, []string{"r1"}, bulk.Options{TimeoutS: 5})
			e.drain(t)
			r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, "r1"))
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, r.Status, "run status")
			got, ok := e.devices.Get("r1")
			require.True(t, ok)
			var hostKeyEntries []audit.Entry
			for _, en := range rec.Entries() {
				if strings.HasPrefix(en.Action, "host_key.") {
					hostKeyEntries = append(hostKeyEntries, en)
				}
			}
			if tt.wantAudit == "" {
				assert.Empty(t, hostKeyEntries, "host-key audit entries")
			} else if assert.Len(t, hostKeyEntries, 1, "host-key audit entries") {
				en := hostKeyEntries[0]
				assert.Equal(t, tt.wantAudit, en.Action, "audit action")
				assert.Equal(t, "r1", en.Target, "audit target")
				assert.Equal(t, audit.ActorExecutor, en.Actor, "audit actor")
				assert.Equal(t, device.HostKeyFingerprint(tt.offers), en.Detail["fingerprint"], "audited fingerprint")
			}
			assert.Equal(t, tt.wantPinned, got.HostKey, "pinned key")
			if tt.dev.HostKey == "" && tt.wantPinned != "" {
				assert.NotNil(t, got.HostKeyLearnedAt, "learned time")
			}
			if tt.wantPending == "" {
				assert.Nil(t, got.PendingHostKey, "pending key")
				return
			}
			require.NotNil(t, got.PendingHostKey, "pending key")
			assert.Equal(t, tt.wantPending, got.PendingHostKey.Key, "pending key")
			assert.Equal(t, device.HostKeyFingerprint(tt.wantPending), got.PendingHostKey.Fingerprint, "pending fingerprint")
			assert.False(t, got.PendingHostKey.SeenAt.IsZero(), "seen at")
		})
	}
}
