package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/secrets"
)

// countedSecrets is the local secret store, noting the names it reads one by one and in batches.
type countedSecrets struct {
	*secrets.FileStore
	mu                 sync.Mutex
	gets, batchedNames []string
	batches            int
}

func (c *countedSecrets) Get(ctx context.Context, name string) (device.Credential, error) {
	c.mu.Lock()
	c.gets = append(c.gets, name)
	c.mu.Unlock()
	return c.FileStore.Get(ctx, name)
}

func (c *countedSecrets) GetMany(ctx context.Context, names []string) (map[string]device.Credential, map[string]error, error) {
	c.mu.Lock()
	c.batches++
	c.batchedNames = append(c.batchedNames, names...)
	c.mu.Unlock()
	return c.FileStore.GetMany(ctx, names)
}

// reads returns the names read one by one, the number of batch reads and the names they read
// since the last call.
func (c *countedSecrets) reads() (gets []string, batches int, batched []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	gets, batches, batched = c.gets, c.batches, c.batchedNames
	c.gets, c.batches, c.batchedNames = nil, 0, nil
	return gets, batches, batched
}

func count(names []string, name string) int {
	n := 0
	for _, v := range names {
		if v == name {
			n++
		}
	}
	return n
}

// TestExecutorCredentialCache runs the executor over an inventory whose secrets come through a
// secrets.Cache, as the deployed executor's do, on simulated devices: a batch reads its devices'
// secrets in one call, a second job reads none, a device updated through the inventory is read
// fresh, and a device whose secret was rotated outside NetAuto (the cache still holding the old
// one) refuses it and succeeds with the one stored now.
func TestExecutorCredentialCache(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local stack")
	}
	ctx := context.Background()
	e := newBulkEnv(t, devicesim.Spec{Count: 60, Seed: 31})
	file, err := secrets.NewFileStore(e.secrets)
	require.NoError(t, err)
	store := &countedSecrets{FileStore: file}
	cache, err := secrets.NewCache(store, secrets.DefaultCacheSize, secrets.DefaultCacheTTL)
	require.NoError(t, err)
	inv, err := device.NewInventory(e.devices, cache)
	require.NoError(t, err)
	e.exec.Devices = inv
	e.enq.BatchSize = 30
	// The devices were last changed an hour ago: what the cache read since is trusted.
	devs, err := e.devices.GetMany(ctx, e.ids)
	require.NoError(t, err)
	for _, d := range devs {
		prev := d.Version
		d.UpdatedAt, d.Version = d.UpdatedAt.Add(-time.Hour), d.Version+1
		require.NoError(t, e.devices.Update(ctx, d, prev))
	}
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	job := func() map[string]bulk.DeviceState {
		acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
		require.NoError(t, err)
		e.waitJob(t, acc.JobID, 2*time.Minute)
		return e.allDevices(t, acc.JobID)
	}
	succeeded := func(t *testing.T, states map[string]bulk.DeviceState) {
		t.Helper()
		for id, st := range states {
			assert.Equal(t, run.Succeeded, st.Status, "device %s (%s)", id, st.Reason)
		}
	}

	t.Run("a batch reads its secrets together", func(t *testing.T) {
		succeeded(t, job())
		gets, batches, batched := store.reads()
		assert.Equal(t, 2, batches, "batch reads: one per batch of 30")
		assert.Len(t, batched, len(e.ids), "secrets read in batches")
		assert.Empty(t, gets, "reads of one secret")
	})
	t.Run("a second job reads none", func(t *testing.T) {
		succeeded(t, job())
		gets, batches, _ := store.reads()
		assert.Zero(t, batches, "batch reads")
		assert.Empty(t, gets, "reads of one secret")
	})
	t.Run("a device updated through the inventory is read fresh", func(t *testing.T) {
		id := e.ids[0]
		pw := e.devs[id].Password
		_, err := e.inv.Update(ctx, id, device.Patch{Password: &pw})
		require.NoError(t, err)
		succeeded(t, job())
		gets, _, batched := store.reads()
		// What the cache kept from before the update is not used (a new host would get it).
		assert.Equal(t, 1, count(batched, device.SecretName(id)), "the updated device's secret read ahead with its batch")
		assert.Equal(t, 1, count(gets, device.SecretName(id)), "and read again at its use, within a minute of the update")
		assert.Len(t, batched, 1, "secrets read in batches")
		assert.Len(t, gets, 1, "reads of one secret")
	})
	t.Run("a secret rotated outside NetAuto is read again after the device refuses it", func(t *testing.T) {
		id := e.ids[1]
		right, err := file.Get(ctx, device.SecretName(id))
		require.NoError(t, err)
		// The cache keeps a password the device no longer takes; the store has the one it takes.
		require.NoError(t, file.Put(ctx, device.SecretName(id), device.Credential{Password: "rotated-away"}))
		cache.Forget(device.SecretName(id))
		_, err = cache.Get(ctx, device.SecretName(id))
		require.NoError(t, err)
		require.NoError(t, file.Put(ctx, device.SecretName(id), right))
		store.reads()
		succeeded(t, job())
		gets, _, batched := store.reads()
		assert.Equal(t, 1, count(gets, device.SecretName(id)), "the refused device's secret read again, once")
		assert.Zero(t, count(batched, device.SecretName(id)), "the refused device's secret read in a batch")
	})
}
