package api_test

import (
	"context"
	"time"

	"github.com/netauto/netauto/internal/device"
)

// The memStore's host-key writes, with the conditions of the DynamoDB store.

func (m *memStore) PinHostKey(_ context.Context, id, key string, at time.Time) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return "", false, device.ErrNotFound
	}
	if d.HostKey != "" {
		return d.HostKey, false, nil
	}
	d.HostKey, d.HostKeyLearnedAt = key, &at
	d.Version++
	m.devices[id] = d
	return key, true, nil
}

func (m *memStore) SetPendingHostKey(_ context.Context, id string, p device.PendingHostKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return device.ErrNotFound
	}
	d.PendingHostKey = &p
	d.Version++
	m.devices[id] = d
	return nil
}

func (m *memStore) AcceptHostKey(_ context.Context, id string, p device.PendingHostKey, at time.Time) (device.Device, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[id]
	if !ok {
		return device.Device{}, device.ErrNotFound
	}
	if d.PendingHostKey == nil || d.PendingHostKey.Fingerprint != p.Fingerprint {
		return device.Device{}, device.ErrHostKeyNotPending
	}
	d.HostKey, d.HostKeyLearnedAt, d.PendingHostKey = p.Key, &at, nil
	d.Version++
	m.devices[id] = d
	return d, nil
}
