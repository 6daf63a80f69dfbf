package api

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// TestJobDeviceLimitByRole: a job over the caller's role's device limit is refused before any
// device is read (the server here has no inventory to read).
func TestJobDeviceLimitByRole(t *testing.T) {
	s := &Server{opts: Options{MaxJobDevices: map[auth.Role]int{auth.Operator: 2, auth.Admin: 3}}}
	req := bulk.Request{Command: "show version", DeviceIDs: []string{"a", "b", "c"}}
	tests := []struct {
		name string
		id   auth.Identity
		want string
	}{
		{"operator over its limit", auth.Identity{Subject: "o", Role: auth.Operator}, "a job of 3 devices is over the operator role's limit of 2 devices per job"},
		{"scoped operator over its limit", auth.Identity{Subject: "s", Sites: map[string]auth.Role{"ams1": auth.Admin}}, "a job of 3 devices is over the operator role's limit of 2 devices per job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.admit(context.Background(), &req, tt.id)
			require.Error(t, err)
			assert.Equal(t, fault.Forbidden, fault.KindOf(err))
			d, ok := fault.As(err)
			require.True(t, ok)
			assert.Equal(t, "device_ids", d.Field())
			assert.Equal(t, tt.want, d.Public())
		})
	}
	four := bulk.Request{Command: "show version", DeviceIDs: []string{"a", "b", "c", "d"}}
	err := s.admit(context.Background(), &four, auth.Identity{Subject: "a", Role: auth.Admin})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the admin role's limit of 3")
}

// siteDevices is an inventory of devices by id that counts its reads.
type siteDevices struct {
	Devices
	devs  map[string]device.Device
	reads int
}

func (s *siteDevices) GetMany(_ context.Context, ids []string) (map[string]device.Device, error) {
	s.reads++
	out := map[string]device.Device{}
	for _, id := range ids {
		if d, ok := s.devs[id]; ok {
			out[id] = d
		}
	}
	return out, nil
}

// TestAdmitHandsDevices: an admitted request carries the devices the policy check read, so the
// enqueue does not read them again; a request with unknown devices, or refused, carries none (the
// enqueue reads and answers for itself).
func TestAdmitHandsDevices(t *testing.T) {
	inv := &siteDevices{devs: map[string]device.Device{
		"r1": {ID: "r1", Site: "ams1", Platform: "cisco_ios"},
		"r2": {ID: "r2", Platform: "cisco_ios"},
	}}
	s := &Server{opts: Options{Devices: inv}}
	op := auth.Identity{Subject: "o", Role: auth.Operator}
	ams := auth.Identity{Subject: "a", Sites: map[string]auth.Role{"ams1": auth.Operator}}
	tests := []struct {
		name      string
		id        auth.Identity
		req       bulk.Request
		wantErr   string
		wantSites map[string]string
	}{
		{name: "admitted", id: op, req: bulk.Request{Command: " show version", DeviceIDs: []string{"r1", "r2", "r1"}}, wantSites: map[string]string{"r1": "ams1", "r2": ""}},
		{name: "admitted on its site", id: ams, req: bulk.Request{Command: "show version", DeviceIDs: []string{"r1"}}, wantSites: map[string]string{"r1": "ams1"}},
		{name: "a device out of scope left to the enqueue", id: ams, req: bulk.Request{Command: "show version", DeviceIDs: []string{"r1", "r2"}}},
		{name: "unknown device left to the enqueue", id: op, req: bulk.Request{Command: "show version", DeviceIDs: []string{"r1", "zz"}}},
		{name: "refused by the policy", id: op, req: bulk.Request{Command: "reload", DeviceIDs: []string{"r1"}}, wantErr: "reload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, reads := tt.req, inv.reads
			err := s.admit(context.Background(), &req, tt.id)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			var sites map[string]string
			if req.Devices != nil {
				sites = map[string]string{}
				for id, d := range req.Devices {
					assert.Equal(t, id, d.ID, "device handed under its id")
					sites[id] = d.Site
				}
			}
			assert.Equal(t, tt.wantSites, sites, "devices handed to the enqueue, by their sites")
			assert.Equal(t, reads+1, inv.reads, "the devices are read once")
			assert.Equal(t, tt.req.Command, req.Command, "the request is left for the enqueue to normalise")
		})
	}
}
