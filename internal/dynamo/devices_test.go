package dynamo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
)

func newDeviceStore(t *testing.T) *DeviceStore {
	t.Helper()
	db, table := newTable(t, resources.DevicesTable)
	s, err := NewDeviceStore(db, table)
	require.NoError(t, err)
	return s
}

func testDevice(id string) device.Device {
	now := time.Now().UTC()
	return device.Device{
		ID: id, Name: "name of " + id, Host: "10.0.0.1", Port: 22, Platform: "cisco_ios", Username: "netops",
		AuthMethod: device.AuthMethod("password"), Tags: map[string]string{"role": "edge"}, Site: "lon1",
		HostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample", LegacyAlgorithms: true, CredentialProfile: "core",
		HasCredential: true, Version: 1, CreatedAt: now, UpdatedAt: now,
	}
}

func TestNewDeviceStore(t *testing.T) {
	_, err := NewDeviceStore(nil, "devices")
	assert.Error(t, err, "no client")
	_, err = NewDeviceStore(&fakeAPI{}, "")
	assert.Error(t, err, "no table")
}

func TestDeviceStoreCreateGet(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	d := testDevice("r1")
	require.NoError(t, s.Create(ctx, d))
	got, err := s.Get(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, d, got, "device r1 as stored")

	assert.ErrorIs(t, s.Create(ctx, testDevice("r1")), device.ErrExists, "create r1 again")
	_, err = s.Get(ctx, "nope")
	assert.ErrorIs(t, err, device.ErrNotFound, "get a device never created")

	bare := device.Device{ID: "bare", Version: 1}
	require.NoError(t, s.Create(ctx, bare))
	got, err = s.Get(ctx, "bare")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{}, got.Tags, "a device without tags reads back with an empty map")
}

func TestDeviceStoreCreateBatch(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	require.NoError(t, s.Create(ctx, testDevice("taken")))
	tests := []struct {
		name    string
		ids     []string
		wantErr error
		stored  []string
		missing []string
	}{
		{"none", nil, nil, nil, nil},
		{"all new", []string{"b1", "b2", "b3"}, nil, []string{"b1", "b2", "b3"}, nil},
		{"one taken: none stored", []string{"c1", "taken", "c2"}, device.ErrExists, nil, []string{"c1", "c2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := make([]device.Device, len(tt.ids))
			for i, id := range tt.ids {
				ds[i] = testDevice(id)
			}
			err := s.CreateBatch(ctx, ds)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.ErrorContains(t, err, "taken", "the error names the device")
			} else {
				require.NoError(t, err)
			}
			for _, id := range tt.stored {
				_, err := s.Get(ctx, id)
				assert.NoErrorf(t, err, "device %s stored", id)
			}
			for _, id := range tt.missing {
				_, err := s.Get(ctx, id)
				assert.ErrorIsf(t, err, device.ErrNotFound, "device %s not stored", id)
			}
		})
	}
	t.Run("over one transaction", func(t *testing.T) {
		ds := make([]device.Device, maxTransactItems+1)
		for i := range ds {
			ds[i] = testDevice(fmt.Sprintf("x%03d", i))
		}
		assert.ErrorContains(t, s.CreateBatch(ctx, ds), "at most")
	})
}

// TestDeviceStoreUpdateBatch: devices are replaced together when every stored version matches,
// and none is when one does not (changed meanwhile, or gone).
func TestDeviceStoreUpdateBatch(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	for _, id := range []string{"u1", "u2", "u3"} {
		require.NoError(t, s.Create(ctx, testDevice(id)))
	}
	chained := func(id string, version int64) device.Device {
		d := testDevice(id)
		d.JumpHostIDs, d.Version = []string{"bastion"}, version
		return d
	}
	tests := []struct {
		name    string
		ds      []device.Device
		prev    []int64
		wantErr string
		chains  map[string][]string
	}{
		{"stale version: none written", []device.Device{chained("u1", 2), chained("u2", 6)}, []int64{1, 5}, "u2", map[string][]string{"u1": nil, "u2": nil}},
		{"one gone: none written", []device.Device{chained("u1", 2), chained("gone", 2)}, []int64{1, 1}, "gone", map[string][]string{"u1": nil}},
		{"all match", []device.Device{chained("u1", 2), chained("u3", 2)}, []int64{1, 1}, "", map[string][]string{"u1": {"bastion"}, "u2": nil, "u3": {"bastion"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.UpdateBatch(ctx, tt.ds, tt.prev)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, device.ErrConflict)
				assert.ErrorContains(t, err, tt.wantErr, "the error names the device")
			} else {
				require.NoError(t, err)
			}
			for id, chain := range tt.chains {
				d, err := s.Get(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, chain, d.JumpHostIDs, "device %s", id)
			}
		})
	}
	assert.ErrorContains(t, s.UpdateBatch(ctx, []device.Device{chained("u1", 3)}, nil), "versions", "a version per device")
}

func TestDeviceStoreUpdateDelete(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		op      func(d device.Device) error
		wantErr error
		version int64 // the stored version afterwards; 0: gone
	}{
		{"update at the stored version", func(d device.Device) error {
			d.Version, d.Site = 2, "par1"
			return s.Update(ctx, d, 1)
		}, nil, 2},
		{"update at another version", func(d device.Device) error {
			d.Version = 3
			return s.Update(ctx, d, 2)
		}, device.ErrConflict, 1},
		{"update a missing device", func(d device.Device) error {
			d.ID = "missing"
			return s.Update(ctx, d, 1)
		}, device.ErrNotFound, 1},
		{"delete at the stored version", func(d device.Device) error { return s.Delete(ctx, d.ID, 1) }, nil, 0},
		{"delete at another version", func(d device.Device) error { return s.Delete(ctx, d.ID, 2) }, device.ErrConflict, 1},
		{"delete a missing device", func(d device.Device) error { return s.Delete(ctx, "missing", 1) }, device.ErrNotFound, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := testDevice(fmt.Sprintf("u%d", i))
			require.NoError(t, s.Create(ctx, d))
			err := tt.op(d)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			got, err := s.Get(ctx, d.ID)
			if tt.version == 0 {
				assert.ErrorIsf(t, err, device.ErrNotFound, "device %s deleted", d.ID)
				return
			}
			require.NoErrorf(t, err, "device %s", d.ID)
			assert.Equalf(t, tt.version, got.Version, "version of device %s", d.ID)
		})
	}
}

func TestDeviceStoreList(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	var all []string
	for i := range 12 {
		d := testDevice(fmt.Sprintf("d%02d", i))
		d.Platform = []string{"cisco_ios", "junos", "eos"}[i%3]
		d.Site = []string{"lon1", "par1"}[i%2]
		d.Tags = map[string]string{"rack": fmt.Sprint(i % 4)}
		if i%5 == 0 {
			d.Tags["a:b/c-d"] = "odd"
		}
		require.NoError(t, s.Create(ctx, d))
		all = append(all, d.ID)
	}
	tests := []struct {
		name   string
		filter device.Filter
		want   []string
	}{
		{"everything", device.Filter{}, all},
		{"platform", device.Filter{Platform: "junos"}, []string{"d01", "d04", "d07", "d10"}},
		{"site", device.Filter{Site: "par1"}, []string{"d01", "d03", "d05", "d07", "d09", "d11"}},
		{"platform and site", device.Filter{Platform: "eos", Site: "lon1"}, []string{"d02", "d08"}},
		{"tag value", device.Filter{TagKey: "rack", TagValue: "3"}, []string{"d03", "d07", "d11"}},
		{"tag present", device.Filter{TagKey: "a:b/c-d"}, []string{"d00", "d05", "d10"}},
		{"tag key with a dot matches no path", device.Filter{TagKey: "a.b"}, nil},
		{"no match", device.Filter{Platform: "nxos"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				require.Less(t, pages, 20, "paging ends")
				ds, next, err := s.List(ctx, tt.filter, device.Page{Limit: 5, Cursor: cursor})
				require.NoError(t, err)
				assert.LessOrEqual(t, len(ds), 5, "page size")
				for _, d := range ds {
					got = append(got, d.ID)
				}
				if next == "" {
					break
				}
				cursor = next
			}
			sort.Strings(got)
			assert.Equal(t, tt.want, got)
		})
	}
	_, next, err := s.List(ctx, device.Filter{}, device.Page{Limit: 1})
	require.NoError(t, err)
	require.NotEmpty(t, next, "a cursor after the first device")
	runCursor, err := encodeCursor(runKey("r1"))
	require.NoError(t, err)
	for name, cursor := range map[string]string{
		"garbage":            "not a cursor",
		"another table's":    runCursor,
		"foreign attributes": mustCursor(t, map[string]string{"pk": "DEV#d01", "sk": "DEV", "x": "y"}),
		"no device id":       mustCursor(t, map[string]string{"pk": "DEV#", "sk": "DEV"}),
	} {
		t.Run("bad cursor: "+name, func(t *testing.T) {
			_, _, err := s.List(ctx, device.Filter{}, device.Page{Limit: 5, Cursor: cursor})
			assert.ErrorIs(t, err, fault.ErrBadCursor)
		})
	}
}

func TestDeviceStoreExistingGetMany(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	var ids []string
	want := map[string]bool{}
	for i := range maxBatchGetKeys + 30 {
		id := fmt.Sprintf("e%03d", i)
		ids = append(ids, id)
		if i%2 == 0 {
			require.NoError(t, s.Create(ctx, testDevice(id)))
			want[id] = true
		}
	}
	ids = append(ids, ids[0], ids[1]) // repeats are read once
	got, err := s.Existing(ctx, ids)
	require.NoError(t, err)
	assert.Equal(t, want, got, "taken ids")

	many, err := s.GetMany(ctx, ids)
	require.NoError(t, err)
	assert.Len(t, many, len(want), "devices read")
	for id := range want {
		assert.Equalf(t, "name of "+id, many[id].Name, "device %s", id)
	}
	none, err := s.GetMany(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

// readLog records each BatchGetItem's consistency and how many keys it asked for.
type readLog struct {
	API
	mu    sync.Mutex
	reads []string // "consistent 3", "eventual 100", ...
}

func (r *readLog) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	r.mu.Lock()
	for _, ka := range in.RequestItems {
		kind := "eventual"
		if aws.ToBool(ka.ConsistentRead) {
			kind = "consistent"
		}
		r.reads = append(r.reads, fmt.Sprintf("%s %d", kind, len(ka.Keys)))
	}
	r.mu.Unlock()
	return r.API.BatchGetItem(ctx, in, o...)
}

func (r *readLog) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reads
	r.reads = nil
	slices.Sort(out)
	return out
}

// TestDeviceStoreLookup: Lookup reads eventually consistent (half the read units) and reads
// again, strongly, only the ids the first read did not find; GetMany, which comes before
// writes, reads strongly.
func TestDeviceStoreLookup(t *testing.T) {
	db, table := newTable(t, resources.DevicesTable)
	log := &readLog{API: db}
	s, err := NewDeviceStore(log, table)
	require.NoError(t, err)
	ctx := context.Background()
	for _, id := range []string{"l1", "l2", "l3"} {
		d := testDevice(id)
		d.Site = "site-" + id
		require.NoError(t, s.Create(ctx, d))
	}
	tests := []struct {
		name      string
		ids       []string
		wantFound []string
		wantReads []string
	}{
		{name: "all found by the eventual read", ids: []string{"l1", "l2", "l3"}, wantFound: []string{"l1", "l2", "l3"}, wantReads: []string{"eventual 3"}},
		{name: "the misses read again strongly", ids: []string{"l1", "gone", "l3", "nope"}, wantFound: []string{"l1", "l3"}, wantReads: []string{"consistent 2", "eventual 4"}},
		{name: "nothing asked, nothing read", ids: nil, wantFound: nil, wantReads: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log.take()
			devs, err := s.Lookup(ctx, tt.ids)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.wantFound, slices.Collect(maps.Keys(devs)), "devices looked up")
			for _, id := range tt.wantFound {
				assert.Equal(t, "name of "+id, devs[id].Name, "device %s", id)
				assert.Equal(t, "site-"+id, devs[id].Site, "device %s", id)
			}
			assert.Equal(t, tt.wantReads, log.take(), "reads of Lookup")

		})
	}
	_, err = s.GetMany(ctx, []string{"l1", "gone"})
	require.NoError(t, err)
	assert.Equal(t, []string{"consistent 2"}, log.take(), "GetMany reads strongly, once")
}
