package api

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
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
			err := s.admit(context.Background(), req, tt.id)
			require.Error(t, err)
			assert.Equal(t, fault.Forbidden, fault.KindOf(err))
			d, ok := fault.As(err)
			require.True(t, ok)
			assert.Equal(t, "device_ids", d.Field())
			assert.Equal(t, tt.want, d.Public())
		})
	}
	four := bulk.Request{Command: "show version", DeviceIDs: []string{"a", "b", "c", "d"}}
	err := s.admit(context.Background(), four, auth.Identity{Subject: "a", Role: auth.Admin})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the admin role's limit of 3")
}
