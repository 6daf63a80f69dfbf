package bulk

import (
	"context"
	"log/slog"
	"sync"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/sshexec"
)

// hostKeyPin is the engine's pinner for one trust-on-first-use device: it pins through the
// device source and remembers whether this run's key was the one pinned.
type hostKeyPin struct {
	src      DeviceSource
	deviceID string

	mu  sync.Mutex
	won string // the key this run pinned, "" when it pinned none
}

// PinHostKey implements sshexec.HostKeyPinner.
func (p *hostKeyPin) PinHostKey(ctx context.Context, key string) (string, error) {
	pinned, err := p.src.PinHostKey(ctx, p.deviceID, key)
	if err != nil {
		return "", err
	}
	if pinned == key {
		p.mu.Lock()
		p.won = key
		p.mu.Unlock()
	}
	return pinned, nil
}

func (p *hostKeyPin) pinned() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.won
}

// hostKeyOutcome logs a key this run pinned, and records the key a device offered instead of
// its pinned one as the device's pending host key. A failure to record is logged: the run has
// ended host_key_mismatch either way, and nothing was sent to the device.
func (x *Executor) hostKeyOutcome(ctx context.Context, log *slog.Logger, id string, pin *hostKeyPin, res sshexec.Result) {
	if key := pin.pinned(); key != "" {
		log.Info("host key pinned on first use", "fingerprint", device.HostKeyFingerprint(key))
	}
	if res.Status != sshexec.StatusHostKeyMismatch || res.OfferedHostKey == "" {
		return
	}
	log.Warn("host key refused; recorded as pending", "reason", res.Reason, "fingerprint", device.HostKeyFingerprint(res.OfferedHostKey))
	if err := x.Devices.RecordPendingHostKey(context.WithoutCancel(ctx), id, res.OfferedHostKey); err != nil {
		log.Error("record pending host key", "err", err)
	}
}
