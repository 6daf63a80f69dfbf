package dynamo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/device"
)

// newHostKey returns a fresh ed25519 public key in authorized_keys form.
func newHostKey(tb testing.TB) string {
	tb.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err)
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(tb, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

func tofuDevice(id string) device.Device {
	d := testDevice(id)
	d.HostKey, d.TrustOnFirstUse = "", true
	return d
}

func TestDeviceStoreConcurrentPinsOneWins(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	require.NoError(t, s.Create(ctx, tofuDevice("tofu")))

	const pinners = 8
	keys := make([]string, pinners)
	for i := range keys {
		keys[i] = newHostKey(t)
	}
	got := make([]string, pinners)
	won := make([]bool, pinners)
	errs := make([]error, pinners)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range pinners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], won[i], errs[i] = s.PinHostKey(ctx, "tofu", keys[i], time.Now())
		}()
	}
	close(start)
	wg.Wait()
	winners := 0
	for i := range pinners {
		require.NoError(t, errs[i], "pin %d", i)
		assert.Equal(t, got[0], got[i], "pin %d returns the one pinned key", i)
		if won[i] {
			winners++
			assert.Equal(t, keys[i], got[i], "the winner gets its own key back")
		}
	}
	assert.Equal(t, 1, winners, "exactly one pin wins")
	assert.Contains(t, keys, got[0], "the pinned key is one of those offered")

	d, err := s.Get(ctx, "tofu")
	require.NoError(t, err)
	assert.Equal(t, got[0], d.HostKey, "stored host key")
	require.NotNil(t, d.HostKeyLearnedAt, "learned time")
	assert.Equal(t, int64(2), d.Version, "the pin raised the version once")

	again, againWon, err := s.PinHostKey(ctx, "tofu", newHostKey(t), time.Now())
	require.NoError(t, err)
	assert.Equal(t, got[0], again, "a later pin gets the pinned key back")
	assert.False(t, againWon, "a later pin does not win")
	same, sameWon, err := s.PinHostKey(ctx, "tofu", got[0], time.Now())
	require.NoError(t, err)
	assert.Equal(t, got[0], same, "a later pin of the same key gets it back")
	assert.False(t, sameWon, "a later pin of the same key does not win either")

	_, _, err = s.PinHostKey(ctx, "gone", keys[0], time.Now())
	assert.ErrorIs(t, err, device.ErrNotFound, "pin of an unknown device")
}

func TestDeviceStorePendingAndAccept(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	d := tofuDevice("r1")
	d.HostKey = newHostKey(t)
	require.NoError(t, s.Create(ctx, d))

	older, err := device.NewPendingHostKey(newHostKey(t), time.Now())
	require.NoError(t, err)
	newer, err := device.NewPendingHostKey(newHostKey(t), time.Now())
	require.NoError(t, err)

	_, err = s.AcceptHostKey(ctx, "r1", older, time.Now())
	assert.ErrorIs(t, err, device.ErrHostKeyNotPending, "accept with nothing pending")

	require.NoError(t, s.SetPendingHostKey(ctx, "r1", older))
	got, err := s.Get(ctx, "r1")
	require.NoError(t, err)
	require.NotNil(t, got.PendingHostKey)
	assert.Equal(t, older.Fingerprint, got.PendingHostKey.Fingerprint, "pending key stored")
	assert.Equal(t, d.HostKey, got.HostKey, "the pinned key is untouched")

	// A newer key offered after the admin read the device is not accepted by the old fingerprint.
	require.NoError(t, s.SetPendingHostKey(ctx, "r1", newer))
	_, err = s.AcceptHostKey(ctx, "r1", older, time.Now())
	assert.ErrorIs(t, err, device.ErrHostKeyNotPending, "accept of a superseded pending key")

	at := time.Now().UTC().Truncate(time.Second)
	acc, err := s.AcceptHostKey(ctx, "r1", newer, at)
	require.NoError(t, err)
	assert.Equal(t, newer.Key, acc.HostKey, "accepted key pinned")
	assert.Nil(t, acc.PendingHostKey, "pending cleared")
	require.NotNil(t, acc.HostKeyLearnedAt)
	assert.True(t, at.Equal(*acc.HostKeyLearnedAt), "learned at the accept")
	stored, err := s.Get(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, acc, stored, "the returned device is the stored one")

	assert.ErrorIs(t, s.SetPendingHostKey(ctx, "gone", newer), device.ErrNotFound, "pending on an unknown device")
	_, err = s.AcceptHostKey(ctx, "gone", newer, time.Now())
	assert.ErrorIs(t, err, device.ErrNotFound, "accept on an unknown device")
}
