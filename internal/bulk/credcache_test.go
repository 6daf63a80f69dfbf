package bulk_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/memstore"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
)

// cachingSource is a device source whose credentials come from a cache (bulk.CredentialCache):
// kept holds credentials read earlier, which win over the stored ones until refreshed.
type cachingSource struct {
	*memstore.Devices
	mu         sync.Mutex
	kept       map[string]device.Credential
	prefetched [][]string
	refreshed  []string
	refreshErr error
}

func (c *cachingSource) CredentialFor(ctx context.Context, d device.Device) (device.Credential, error) {
	c.mu.Lock()
	k, ok := c.kept[d.ID]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	return c.Devices.CredentialFor(ctx, d)
}

func (c *cachingSource) PrefetchCredentials(_ context.Context, ds []device.Device) error {
	ids := make([]string, 0, len(ds))
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	sort.Strings(ids)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prefetched = append(c.prefetched, ids)
	return nil
}

func (c *cachingSource) RefreshCredential(ctx context.Context, d device.Device) (device.Credential, bool, error) {
	c.mu.Lock()
	c.refreshed = append(c.refreshed, d.ID)
	delete(c.kept, d.ID)
	err := c.refreshErr
	c.mu.Unlock()
	if err != nil {
		return device.Credential{}, false, err
	}
	cred, err := c.Devices.CredentialFor(ctx, d)
	return cred, err == nil, err
}

// TestCachedCredentialRefreshedOnAuthFailure: a device that refuses a kept credential is tried
// once more with the credential read again, only when that one differs; each batch's
// credentials are read ahead together.
func TestCachedCredentialRefreshedOnAuthFailure(t *testing.T) {
	stale := device.Credential{Password: "before-rotation"}
	tests := []struct {
		name       string
		stored     string // the password stored now (the device accepts "rotated")
		refreshErr error
		want       run.Status
		runs       int
	}{
		{"a rotated credential is read again and used", "rotated", nil, run.Succeeded, 2},
		{"the same credential read again is not tried again", stale.Password, nil, run.AuthFailed, 1},
		{"a failed read ends the run as refused", "rotated", errors.New("secrets manager is down"), run.AuthFailed, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := deviceIDs("k", 3)
			e := newEnv(t, ids...)
			e.enq.BatchSize = 2
			d, err := e.devices.GetMany(context.Background(), []string{"k00"})
			require.NoError(t, err)
			e.devices.Put(d["k00"], device.Credential{Password: tc.stored})
			src := &cachingSource{Devices: e.devices, kept: map[string]device.Credential{"k00": stale}, refreshErr: tc.refreshErr}
			e.exec.Devices = src
			e.engine.password["k00"] = "rotated"
			acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
			e.drain(t)
			states := allDevices(t, e.jobs, acc.JobID)
			assert.Equal(t, tc.want, states["k00"].Status, "k00")
			assert.Equal(t, run.Succeeded, states["k01"].Status, "k01, not refused")
			assert.Equal(t, tc.runs, e.engine.ranTimes()["k00"], "runs of k00")
			assert.Equal(t, 1, e.engine.ranTimes()["k01"], "runs of k01")
			assert.Equal(t, []string{"k00"}, src.refreshed, "credentials read again")
			assert.Equal(t, [][]string{{"k00", "k01"}, {"k02"}}, src.prefetched, "credentials read ahead, per batch")
			e.checkAccounting(t, e.job(t, acc.JobID))
		})
	}
}
