package dynamo

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/policy"
	"github.com/netauto/netauto/internal/resources"
)

func TestPolicyStore(t *testing.T) {
	db, table := newTable(t, resources.DevicesTable)
	s, err := NewPolicyStore(db, table)
	require.NoError(t, err)
	devices, err := NewDeviceStore(db, table)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = s.GetPolicy(ctx)
	require.ErrorIs(t, err, policy.ErrNotStored, "nothing stored yet")
	_, set, err := policy.Current(ctx, s)
	require.NoError(t, err)
	assert.Same(t, policy.DefaultSet, set, "the defaults apply while nothing is stored")

	now := time.Now().UTC().Truncate(time.Millisecond)
	rules := []policy.Rule{
		{ID: "no-reload", Effect: policy.Deny, Platforms: []string{"cisco_ios"}, Pattern: "reload", Reason: "reboots"},
		{ID: "ops", Effect: policy.Allow, Roles: []string{"operator", "admin"}, Pattern: "**"},
	}
	v1, err := s.PutPolicy(ctx, policy.Policy{Rules: rules, UpdatedAt: now, UpdatedBy: "ann@example.com"}, 0)
	require.NoError(t, err)
	assert.Equal(t, int64(1), v1.Version)

	got, err := s.GetPolicy(ctx)
	require.NoError(t, err)
	assert.Equal(t, policy.Policy{Rules: rules, Version: 1, UpdatedAt: now, UpdatedBy: "ann@example.com"}, got, "rules read back in order")

	_, err = s.PutPolicy(ctx, policy.Policy{Rules: rules[:1]}, 0)
	assert.ErrorIs(t, err, policy.ErrConflict, "a create when one is stored loses")
	_, err = s.PutPolicy(ctx, policy.Policy{Rules: rules[:1]}, 5)
	assert.ErrorIs(t, err, policy.ErrConflict, "a write based on another version loses")
	v2, err := s.PutPolicy(ctx, policy.Policy{Rules: rules[:1]}, 1)
	require.NoError(t, err)
	assert.Equal(t, int64(2), v2.Version)
	got, err = s.GetPolicy(ctx)
	require.NoError(t, err)
	assert.Equal(t, rules[:1], got.Rules)

	list, _, err := devices.List(ctx, device.Filter{}, device.Page{Limit: 10})
	require.NoError(t, err)
	assert.Empty(t, list, "the policy item is not a device")
}
