package dynamo

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/resources"
)

func testJumpHost(id string) jumphost.JumpHost {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return jumphost.JumpHost{
		ID: id, Host: "192.0.2.1", Port: 2222, Username: "bastion", AuthMethod: device.AuthPassword,
		TrustOnFirstUse: true, HasCredential: true, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
}

// TestJumpHostStore runs the jump host store against DynamoDB Local in the devices table, beside
// devices: create, get, list, versioned update and delete, the in-use scan over device chains,
// and the conditional host key writes.
func TestJumpHostStore(t *testing.T) {
	db, table := newTable(t, resources.DevicesTable)
	s, err := NewJumpHostStore(db, table)
	require.NoError(t, err)
	devices, err := NewDeviceStore(db, table)
	require.NoError(t, err)
	ctx := context.Background()

	h := testJumpHost("bastion-1")
	require.NoError(t, s.Create(ctx, h))
	require.ErrorIs(t, s.Create(ctx, h), jumphost.ErrExists)
	require.NoError(t, s.Create(ctx, testJumpHost("bastion-2")))

	got, err := s.Get(ctx, "bastion-1")
	require.NoError(t, err)
	assert.Equal(t, h, got)
	_, err = s.Get(ctx, "nope")
	assert.ErrorIs(t, err, jumphost.ErrNotFound)

	// Devices in the same table are not jump hosts, and their chains are what UsedBy counts.
	for i, chain := range [][]string{{"bastion-1"}, {"bastion-2", "bastion-1"}, {"bastion-2"}, nil} {
		d := testDevice(string(rune('a' + i)))
		d.JumpHostIDs = chain
		require.NoError(t, devices.Create(ctx, d))
	}
	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "bastion-1", list[0].ID)
	assert.Equal(t, "bastion-2", list[1].ID)
	d, err := devices.Get(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, []string{"bastion-2", "bastion-1"}, d.JumpHostIDs, "the chain keeps its order")

	n, ids, err := s.UsedBy(ctx, "bastion-1", 1)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "counts every device")
	assert.Len(t, ids, 1, "names at most limit")
	n, _, err = s.UsedBy(ctx, "bastion-3", 5)
	require.NoError(t, err)
	assert.Zero(t, n)

	h.Host, h.Version = "192.0.2.2", 2
	require.NoError(t, s.Update(ctx, h, 1))
	assert.ErrorIs(t, s.Update(ctx, h, 1), jumphost.ErrConflict)
	assert.ErrorIs(t, s.Delete(ctx, "bastion-1", 1), jumphost.ErrConflict)
	require.NoError(t, s.Delete(ctx, "bastion-1", 2))
	assert.ErrorIs(t, s.Delete(ctx, "bastion-1", 2), jumphost.ErrNotFound)
}

// TestJumpHostStoreHostKeys: of concurrent first connections one pin wins; a pending key is
// accepted only by its fingerprint.
func TestJumpHostStoreHostKeys(t *testing.T) {
	db, table := newTable(t, resources.DevicesTable)
	s, err := NewJumpHostStore(db, table)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.Create(ctx, testJumpHost("tofu")))

	const pinners = 6
	keys := make([]string, pinners)
	for i := range keys {
		keys[i] = newHostKey(t)
	}
	got, won := make([]string, pinners), make([]bool, pinners)
	var wg sync.WaitGroup
	for i := range pinners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			got[i], won[i], err = s.PinHostKey(ctx, "tofu", keys[i], time.Now())
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	winners := 0
	for i := range pinners {
		if won[i] {
			winners++
		}
		assert.Equal(t, got[0], got[i], "every pinner sees the one pinned key")
	}
	assert.Equal(t, 1, winners)
	_, _, err = s.PinHostKey(ctx, "nope", keys[0], time.Now())
	assert.ErrorIs(t, err, jumphost.ErrNotFound)

	offered := newHostKey(t)
	p, err := device.NewPendingHostKey(offered, time.Now())
	require.NoError(t, err)
	require.NoError(t, s.SetPendingHostKey(ctx, "tofu", p))
	assert.ErrorIs(t, s.SetPendingHostKey(ctx, "nope", p), jumphost.ErrNotFound)
	other, err := device.NewPendingHostKey(newHostKey(t), time.Now())
	require.NoError(t, err)
	_, err = s.AcceptHostKey(ctx, "tofu", other, time.Now())
	assert.ErrorIs(t, err, jumphost.ErrHostKeyNotPending, "another fingerprint")
	h, err := s.AcceptHostKey(ctx, "tofu", p, time.Now())
	require.NoError(t, err)
	assert.Equal(t, p.Key, h.HostKey)
	assert.Nil(t, h.PendingHostKey)
	assert.NotNil(t, h.HostKeyLearnedAt)
	_, err = s.AcceptHostKey(ctx, "tofu", p, time.Now())
	assert.ErrorIs(t, err, jumphost.ErrHostKeyNotPending, "nothing pending any more")
}
