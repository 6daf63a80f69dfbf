package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
)

// TestDeviceStoreScope reads devices' sites and lists only the devices of a caller's sites, in
// the scan's filter.
func TestDeviceStoreScope(t *testing.T) {
	s := newDeviceStore(t)
	ctx := context.Background()
	for id, site := range map[string]string{"a1": "ams1", "a2": "ams1", "f1": "fra1", "l1": "lon1", "n1": ""} {
		d := testDevice(id)
		d.Site = site
		require.NoError(t, s.Create(ctx, d))
	}
	devs, err := s.Lookup(ctx, []string{"a1", "f1", "n1", "missing"})
	require.NoError(t, err)
	sites := map[string]string{}
	for id, d := range devs {
		sites[id] = d.Site
	}
	assert.Equal(t, map[string]string{"a1": "ams1", "f1": "fra1", "n1": ""}, sites, "sites of existing devices")

	tests := []struct {
		name string
		f    device.Filter
		want []string
	}{
		{"unscoped", device.Filter{}, []string{"a1", "a2", "f1", "l1", "n1"}},
		{"one site", device.Filter{Sites: []string{"ams1"}}, []string{"a1", "a2"}},
		{"two sites", device.Filter{Sites: []string{"ams1", "lon1"}}, []string{"a1", "a2", "l1"}},
		{"a site filter out of scope", device.Filter{Site: "fra1", Sites: []string{"ams1"}}, nil},
		{"no sites", device.Filter{Sites: []string{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			p := device.Page{Limit: 2}
			for range 10 {
				ds, next, err := s.List(ctx, tt.f, p)
				require.NoError(t, err)
				for _, d := range ds {
					got = append(got, d.ID)
				}
				if next == "" {
					break
				}
				p.Cursor = next
			}
			assert.ElementsMatch(t, tt.want, got)
		})
	}
}

// TestJobStoreSites keeps a job's sites, in the job and in the job list.
func TestJobStoreSites(t *testing.T) {
	s := newJobStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	j := bulk.Job{ID: bulk.NewID(now), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: 2, Batches: 1,
		Status: bulk.JobQueued, CreatedAt: now, Counts: map[run.Status]int{run.Queued: 2}, Sites: []string{"", "ams1"}}
	require.NoError(t, s.CreateJob(ctx, j, [][]string{{"a", "b"}}, 1))
	got, err := s.GetJob(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, []string{"", "ams1"}, got.Sites, "the job's sites")
	list, _, err := s.ListJobs(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, []string{"", "ams1"}, list[0].Sites, "the listed job's sites")
}
