package retention_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// checkTotals fails unless the fleet totals equal a recount: charged the sum of every device's
// stored output (a scan), stored every device's kept bytes plus the bodies stored once.
func (f *fixture) checkTotals(when string) {
	f.t.Helper()
	ctx := context.Background()
	s := f.scan()
	var charged, stored int64
	for dev, n := range s.recount {
		charged += n
		u, err := f.runs.DeviceUsage(ctx, dev)
		require.NoError(f.t, err, "%s: usage of %s", when, dev)
		stored += u.StoredBytes
	}
	shared, err := f.runs.SharedBytes(ctx)
	require.NoError(f.t, err, "%s: shared bytes", when)
	got, asOf, err := f.runs.FleetTotals(ctx)
	require.NoError(f.t, err, "%s: fleet totals", when)
	assert.False(f.t, asOf.IsZero(), "%s: totals as of a purge", when)
	assert.Equal(f.t, charged, got.ChargedBytes, "%s: charged bytes against a recount", when)
	assert.Equal(f.t, stored+shared, got.StoredBytes, "%s: stored bytes against a recount", when)
}

// seedShared stores the same noisy output (stored once) for a run of each device.
func (f *fixture) seedShared(prefix string, devices ...string) {
	f.t.Helper()
	out := []byte(fmt.Sprintf("! Last configuration change at %s\ninterface GigabitEthernet1\n no shutdown\n", prefix))
	out = append(out, bytes.Repeat([]byte("interface Loopback0\n ip address 10.0.0.1 255.255.255.255\n"), 40)...)
	for i, dev := range devices {
		r := run.Run{ID: fmt.Sprintf("%s-%d", prefix, i), DeviceID: dev, Command: "show running-config", RequestedBy: "seed",
			CreatedAt: f.now.Add(-time.Duration(i) * time.Hour), Status: run.Succeeded, Bytes: int64(len(out)), Chunks: 1, NoiseOK: true}
		require.NoError(f.t, f.runs.FinishNew(context.Background(), r, out), "finish %s", r.ID)
		f.seeded[r.ID] = seededRun{Run: r, chunks: []int{len(out)}}
	}
}

// TestFleetTotals: the totals the purge folds equal a recount after purges by age and by bytes,
// without a cap, with two purges at once, and after new writes.
func TestFleetTotals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedFleet(8, 12)
	f.seedShared("shared-a", "dev-00", "dev-01", "dev-02")
	ctx := context.Background()
	_, asOf, err := f.runs.FleetTotals(ctx)
	require.NoError(t, err, "totals before a purge")
	assert.True(t, asOf.IsZero(), "no totals_as_of before the first purge")

	for _, tc := range []struct {
		name     string
		settings retention.Settings
		purges   int
		write    func()
	}{
		{name: "no cap folds every device", settings: retention.Settings{}, purges: 1},
		{name: "by age", settings: retention.Settings{MaxDays: 30}, purges: 1},
		{name: "by bytes", settings: retention.Settings{MaxBytes: 4000}, purges: 1},
		{name: "two at once after writes", settings: retention.Settings{MaxDays: 20, MaxBytes: 3000}, purges: 2, write: func() {
			f.seedRun("later-1", "dev-03", f.now, run.Succeeded, "", 900, 2500)
			f.seedRun("later-2", "dev-new", f.now, run.Succeeded, "", 700)
			f.seedShared("shared-b", "dev-04", "dev-05")
		}},
		{name: "again: nothing moved", settings: retention.Settings{MaxDays: 20, MaxBytes: 3000}, purges: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.write != nil {
				tc.write()
			}
			var wg sync.WaitGroup
			for range tc.purges {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := f.purger(tc.settings, &bytes.Buffer{})
					p.Workers = 3
					rep, err := p.Purge(ctx, "test")
					assert.NoError(t, err, "purge")
					assert.True(t, rep.Complete, "purge complete")
				}()
			}
			wg.Wait()
			f.checkTotals(tc.name)
		})
	}
}

// failingDB fails the nth write it is asked to make (counting from 1), as a purge that crashes
// there would leave the table.
type failingDB struct {
	dynamo.API
	n, calls atomic.Int64
	fired    atomic.Bool
}

var errInjected = errors.New("injected write failure")

func (d *failingDB) fail() error {
	if d.calls.Add(1) == d.n.Load() {
		d.fired.Store(true)
		return errInjected
	}
	return nil
}

func (d *failingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.API.PutItem(ctx, in, o...)
}

func (d *failingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.API.UpdateItem(ctx, in, o...)
}

func (d *failingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.API.DeleteItem(ctx, in, o...)
}

func (d *failingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := d.fail(); err != nil {
		return nil, err
	}
	return d.API.TransactWriteItems(ctx, in, o...)
}

// TestFleetTotalsCrashAtEveryStep: a purge whose nth write fails (for every n until a purge
// makes no more writes than that) leaves totals that the next purge makes exact: no change is
// folded twice or lost.
func TestFleetTotalsCrashAtEveryStep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedFleet(3, 6)
	db := &failingDB{API: f.db}
	crashing, err := dynamo.NewRetentionStore(db, f.st.Names.Tables[resources.RunsTable], f.st.Names.Tables[resources.JobsTable])
	require.NoError(t, err)
	settings := retention.Settings{MaxDays: 20, MaxBytes: 2500}
	ctx := context.Background()
	for n := int64(1); ; n++ {
		require.Less(t, n, int64(200), "the purges end")
		// New output on two devices, one of them stored once, so every purge has work.
		f.seedRun(fmt.Sprintf("crash-%d", n), fmt.Sprintf("dev-%02d", n%3), f.now, run.Succeeded, "", 400+int(n), 1200)
		f.seedShared(fmt.Sprintf("crash-shared-%d", n), fmt.Sprintf("dev-%02d", (n+1)%3))
		db.n.Store(n)
		db.calls.Store(0)
		db.fired.Store(false)
		p := f.purger(settings, &bytes.Buffer{})
		p.Store, p.Jobs = crashing, crashing
		_, err := p.Purge(ctx, "test")
		if !db.fired.Load() {
			require.NoError(t, err, "purge without a failure")
			f.checkTotals(fmt.Sprintf("a purge of %d writes", n-1))
			return
		}
		require.ErrorIs(t, err, errInjected, "purge failing at write %d", n)
		rep, err := f.purger(settings, &bytes.Buffer{}).Purge(ctx, "test")
		require.NoError(t, err, "purge after the one failing at write %d", n)
		require.True(t, rep.Complete, "purge after the one failing at write %d: complete", n)
		f.checkTotals(fmt.Sprintf("after a purge failing at write %d", n))
	}
}
