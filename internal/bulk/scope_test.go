package bulk_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
)

// TestEnqueueHonoursScope accepts a job only when the caller is an operator on every device's
// site; out-of-scope devices are refused as unknown (nothing is enqueued), and an accepted job
// records its sites.
func TestEnqueueHonoursScope(t *testing.T) {
	e := newEnv(t)
	for id, site := range map[string]string{"ams-a": "ams1", "ams-b": "ams1", "fra-a": "fra1", "bare": ""} {
		e.devices.Put(device.Device{ID: id, Name: id, Host: id, Port: 22, Platform: "cisco_ios", Username: "admin", Site: site},
			device.Credential{Password: "secret"})
	}
	scoped := auth.Identity{Subject: "scoped", Role: auth.Viewer, Sites: map[string]auth.Role{"ams1": auth.Operator}}
	global := auth.Identity{Subject: "global", Role: auth.Operator}
	tests := []struct {
		name      string
		by        auth.Identity
		ids       []string
		unknown   []string
		wantSites []string
	}{
		{name: "scoped operator on its site", by: scoped, ids: []string{"ams-a", "ams-b"}, wantSites: []string{"ams1"}},
		{name: "scoped operator reaching another site", by: scoped, ids: []string{"ams-a", "fra-a"}, unknown: []string{"fra-a"}},
		{name: "scoped operator on a device without a site", by: scoped, ids: []string{"bare"}, unknown: []string{"bare"}},
		{name: "viewer on the site", by: auth.Identity{Subject: "v", Sites: map[string]auth.Role{"ams1": auth.Viewer}}, ids: []string{"ams-a"}, unknown: []string{"ams-a"}},
		{name: "plain operator everywhere", by: global, ids: []string{"ams-a", "fra-a", "bare"}, wantSites: []string{"", "ams1", "fra1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := e.queue.SentCount()
			acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: tt.ids}, tt.by)
			if tt.unknown != nil {
				var ue *bulk.UnknownDevicesError
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, tt.unknown, ue.IDs, "refused devices")
				assert.Equal(t, sent, e.queue.SentCount(), "a refused job enqueued batches")
				return
			}
			require.NoError(t, err)
			j, err := e.jobs.GetJob(context.Background(), acc.JobID)
			require.NoError(t, err)
			assert.Equal(t, tt.wantSites, j.Sites, "the job's sites")
		})
	}
}
