package bulk

import (
	"context"
	"log/slog"
	"sync"

	"github.com/netauto/netauto/internal/audit"
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
	pinned, won, err := p.src.PinHostKey(ctx, p.deviceID, key)
	if err != nil {
		return "", err
	}
	if won { // another run that pinned the same key first audits it, not this one
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

// hostKeyOutcome audits a key this run pinned, and records the key a device offered instead of
// its pinned one as the device's pending host key, audited too. A failure to record is logged:
// the run has ended host_key_mismatch either way, and nothing was sent to the device.
func (x *Executor) hostKeyOutcome(ctx context.Context, log *slog.Logger, m Message, d device.Device, pin *hostKeyPin, res sshexec.Result) {
	id := d.ID
	if key := pin.pinned(); key != "" {
		fp := device.HostKeyFingerprint(key)
		log.Info("host key pinned on first use", "fingerprint", fp)
		x.audit(ctx, audit.Entry{Action: "host_key.pin", Target: id, Detail: map[string]string{"fingerprint": fp, "job_id": m.JobID}})
	}
	if res.Status != sshexec.StatusHostKeyMismatch {
		return
	}
	fp := device.HostKeyFingerprint(res.OfferedHostKey)
	x.audit(ctx, audit.Entry{Action: "host_key.mismatch", Target: id, Outcome: audit.OutcomeDenied, Reason: string(res.Reason),
		Detail: map[string]string{"fingerprint": fp, "job_id": m.JobID}})
	if res.OfferedHostKey == "" {
		return // the device offered no key of the pinned type: nothing to accept
	}
	log.Warn("host key refused; recorded as pending", "reason", res.Reason, "fingerprint", fp)
	if d.HostKey != "" { // a key pinned by a concurrent first use is not known here
		x.Notices.hostKeyMismatch(ctx, x.noticeExpiry(), hostKeyNotice(m, d, res.OfferedHostKey, x.now()))
	}
	if err := x.Devices.RecordPendingHostKey(context.WithoutCancel(ctx), id, res.OfferedHostKey); err != nil {
		log.Error("record pending host key", "err", err)
	}
}
