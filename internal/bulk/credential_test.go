package bulk

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
)

// profileSource answers CredentialFor as the inventory does: the profile's login, with the
// device's own enable secret when it has one.
type profileSource struct {
	DeviceSource
	own map[string]string // device id -> its own enable secret
}

func (p profileSource) CredentialFor(_ context.Context, d device.Device) (device.Credential, error) {
	c := device.Credential{Password: "profile-login", EnableSecret: "profile-enable"}
	if d.HasEnableSecret {
		c.EnableSecret = p.own[d.ID]
	}
	return c, nil
}

// TestBatchCredentialOwnEnableSecret: a profile's credential read once per batch is shared by
// devices with the same site and tags, but never a device's own enable secret.
func TestBatchCredentialOwnEnableSecret(t *testing.T) {
	bd := &batchDevices{src: profileSource{own: map[string]string{"a": "enable-of-a"}}, shared: map[string]device.Credential{}}
	dev := func(id string, own bool) device.Device {
		return device.Device{ID: id, CredentialProfile: "lab", Site: "ams1", Tags: map[string]string{"role": "edge"}, HasEnableSecret: own}
	}
	tests := []struct {
		name   string
		d      device.Device
		enable string
	}{
		{"own enable secret", dev("a", true), "enable-of-a"},
		{"the profile's, after a device with its own", dev("b", false), "profile-enable"},
		{"the profile's, shared", dev("c", false), "profile-enable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := bd.credential(context.Background(), tc.d)
			require.NoError(t, err)
			assert.Equal(t, tc.enable, c.EnableSecret)
			assert.Equal(t, "profile-login", c.Password)
		})
	}
}
