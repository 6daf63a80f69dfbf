package device

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/fault"
)

// PendingHostKey is a host key a device offered that was refused because it differs from the
// pinned one (or none was pinned and trust on first use is off). An admin accepts it by its
// fingerprint; nothing is sent to the device meanwhile.
type PendingHostKey struct {
	// Key is the offered key in authorized_keys form.
	Key string `json:"key"`
	// Fingerprint is the key's SHA-256 fingerprint, "SHA256:..." as OpenSSH prints it.
	Fingerprint string `json:"fingerprint"`
	// SeenAt is when a run was refused because of it.
	SeenAt time.Time `json:"seen_at"`
}

// HostKeyStore is the part of a Store that pins and replaces host keys with conditional writes,
// so that concurrent runs and admins never overwrite each other's keys. Every write raises the
// device's version.
type HostKeyStore interface {
	// PinHostKey sets key as the host key of device id, learned at at, when the device has no
	// host key yet. It returns the device's host key afterwards: key itself, or the key another
	// writer pinned first (which may be the same key); won is set only for the write that
	// pinned it. ErrNotFound when the device is gone.
	PinHostKey(ctx context.Context, id, key string, at time.Time) (pinned string, won bool, err error)
	// SetPendingHostKey records p as the device's pending host key, replacing an earlier one.
	// ErrNotFound when the device is gone.
	SetPendingHostKey(ctx context.Context, id string, p PendingHostKey) error
	// AcceptHostKey makes the pending key p the device's host key, learned at at, and clears it,
	// provided the stored pending key still has p's fingerprint (ErrHostKeyNotPending
	// otherwise). It returns the stored device. ErrNotFound when the device is gone.
	AcceptHostKey(ctx context.Context, id string, p PendingHostKey, at time.Time) (Device, error)
}

// ErrHostKeyNotPending means an accept named no pending key of the device: none is pending, or
// the pending key has another fingerprint (a newer key was offered since it was read).
var ErrHostKeyNotPending = fault.New(fault.Conflict, "fingerprint", "the device has no pending host key with this fingerprint")

var fingerprintPattern = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// ValidFingerprint reports whether s is a SHA-256 key fingerprint as OpenSSH prints it
// ("SHA256:" and 43 characters of unpadded base64).
func ValidFingerprint(s string) bool { return fingerprintPattern.MatchString(s) }

// NewPendingHostKey describes key (authorized_keys form) as offered at at.
func NewPendingHostKey(key string, at time.Time) (PendingHostKey, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return PendingHostKey{}, fmt.Errorf("parse offered host key: %w", err)
	}
	return PendingHostKey{
		Key:         strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))),
		Fingerprint: ssh.FingerprintSHA256(pk),
		SeenAt:      at.UTC(),
	}, nil
}

// HostKeyFingerprint returns the SHA-256 fingerprint of a key in authorized_keys form, or "" when
// it does not parse.
func HostKeyFingerprint(key string) string {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return ""
	}
	return ssh.FingerprintSHA256(pk)
}

// PinHostKey pins key as the host key of device id unless one is pinned already, and returns the
// device's host key afterwards and whether this call pinned it (see HostKeyStore.PinHostKey).
func (inv *Inventory) PinHostKey(ctx context.Context, id, key string) (string, bool, error) {
	pinned, won, err := inv.store.PinHostKey(ctx, id, key, inv.now())
	if err != nil {
		return "", false, fmt.Errorf("pin host key of %s: %w", id, err)
	}
	return pinned, won, nil
}

// RecordPendingHostKey records key as the host key device id offered instead of its pinned one.
func (inv *Inventory) RecordPendingHostKey(ctx context.Context, id, key string) error {
	p, err := NewPendingHostKey(key, inv.now())
	if err != nil {
		return fmt.Errorf("record pending host key of %s: %w", id, err)
	}
	if err := inv.store.SetPendingHostKey(ctx, id, p); err != nil {
		return fmt.Errorf("record pending host key of %s: %w", id, err)
	}
	return nil
}

// AcceptHostKey makes the device's pending host key its pinned one, when fingerprint names it.
// It fails with ErrHostKeyNotPending when nothing is pending or the fingerprint differs, and the
// write is conditional, so a key offered after the caller read the device is never accepted by
// the old fingerprint.
func (inv *Inventory) AcceptHostKey(ctx context.Context, id, fingerprint string) (Device, error) {
	if !ValidFingerprint(fingerprint) {
		return Device{}, fault.New(fault.Invalid, "fingerprint", `must be a SHA-256 key fingerprint, "SHA256:" and 43 base64 characters`)
	}
	cur, err := inv.store.Get(ctx, id)
	if err != nil {
		return Device{}, fmt.Errorf("accept host key of %s: %w", id, err)
	}
	if cur.PendingHostKey == nil || cur.PendingHostKey.Fingerprint != fingerprint {
		return Device{}, fmt.Errorf("accept host key of %s: %w", id, ErrHostKeyNotPending)
	}
	d, err := inv.store.AcceptHostKey(ctx, id, *cur.PendingHostKey, inv.now())
	if err != nil {
		return Device{}, fmt.Errorf("accept host key of %s: %w", id, err)
	}
	return d, nil
}
