package sshexec

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/devicesim"
)

// fakePinner pins like the device store: the first key wins, later calls get it back.
type fakePinner struct {
	mu     sync.Mutex
	pinned string
	err    error
	calls  []string
}

func (p *fakePinner) PinHostKey(_ context.Context, key string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, key)
	if p.err != nil {
		return "", p.err
	}
	if p.pinned == "" {
		p.pinned = key
	}
	return p.pinned, nil
}

func otherEd25519Key(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

func TestTrustOnFirstUsePinsBeforeAuth(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 12, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe"}, {Platform: "cisco_iosxe"}, {Platform: "cisco_iosxe"}, {Platform: "cisco_iosxe"},
	}})
	inv := f.Inventory()
	r := newRunner(t, fastOpts)
	tests := []struct {
		name       string
		dev        int
		pinner     *fakePinner
		pinned     string // Target.HostKey
		wantStatus Status
		wantReason Reason
		wantPins   int  // PinHostKey calls
		offered    bool // Result.OfferedHostKey is the device's key
		sent       bool // the device received a credential and the command
	}{
		{"first use pins the device's key", 0, &fakePinner{}, "", StatusSucceeded, "", 1, false, true},
		{"another run pinned another key first", 1, &fakePinner{pinned: otherEd25519Key(t)}, "", StatusHostKeyMismatch, ReasonHostKeyChanged, 1, true, false},
		{"the store fails", 2, &fakePinner{err: errors.New("table unavailable")}, "", StatusFailed, ReasonHostKeyPin, 1, false, false},
		{"pinned key differs", 3, &fakePinner{}, otherEd25519Key(t), StatusHostKeyMismatch, ReasonHostKeyChanged, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := inv[tt.dev]
			tg := targetFor(d)
			tg.HostKey, tg.TrustOnFirstUse, tg.Pinner = tt.pinned, true, tt.pinner
			res := r.Run(context.Background(), tg, "show version", nil)
			assert.Equal(t, tt.wantStatus, res.Status, "status (%s)", res.Message)
			assert.Equal(t, tt.wantReason, res.Reason, "reason")
			require.Len(t, tt.pinner.calls, tt.wantPins, "pin calls")
			if tt.wantPins > 0 {
				assert.Equal(t, d.HostKey, tt.pinner.calls[0], "the pinner got the device's key")
			}
			if tt.offered {
				assert.Equal(t, d.HostKey, res.OfferedHostKey, "offered key")
			} else {
				assert.Empty(t, res.OfferedHostKey, "offered key")
			}
			if tt.wantStatus == StatusSucceeded {
				assert.Equal(t, d.HostKey, res.LearnedHostKey, "learned key")
				assert.Equal(t, d.HostKey, tt.pinner.pinned, "pinned key")
			}
			got := f.Received(d.ID)
			if tt.sent {
				assert.NotEmpty(t, got.Auth, "credential sent")
				assert.Contains(t, got.Commands, "show version", "command sent")
				return
			}
			assert.Empty(t, got.Auth, "no credential reached the device")
			assert.Empty(t, got.Commands, "no command reached the device")
			assert.NotContains(t, res.Message, d.Password, "no password in the message")
		})
	}
}
