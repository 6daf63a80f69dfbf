package dynamo

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/resources"
)

func TestFilterStore(t *testing.T) {
	ctx := context.Background()
	db, table := newTable(t, resources.DevicesTable)
	s, err := NewFilterStore(db, table)
	require.NoError(t, err)
	_, err = NewFilterStore(nil, table)
	require.Error(t, err, "a client is required")

	got, err := s.CustomFilters(ctx)
	require.NoError(t, err)
	assert.Empty(t, got, "nothing stored")

	ios := []platform.NoiseFilter{{Pattern: `^! Time: `, Command: `^show run`, Description: "banner"}, {Pattern: `^Packets: \d+$`}}
	require.NoError(t, s.PutCustomFilters(ctx, "cisco_ios", ios))
	require.NoError(t, s.PutCustomFilters(ctx, "linux", []platform.NoiseFilter{{Pattern: "^x$"}}))
	got, err = s.CustomFilters(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string][]platform.NoiseFilter{"cisco_ios": ios, "linux": {{Pattern: "^x$"}}}, got, "stored filters in order")

	require.NoError(t, s.PutCustomFilters(ctx, "linux", nil), "an empty list removes them")
	got, err = s.CustomFilters(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[string][]platform.NoiseFilter{"cisco_ios": ios}, got, "linux's filters are gone")
}
