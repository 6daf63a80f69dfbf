package dynamo

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/resources"
)

func newConnectionStore(t *testing.T) (*ConnectionStore, *clock) {
	t.Helper()
	db, table := newTable(t, resources.ConnectionsTable)
	s, err := NewConnectionStore(db, table)
	require.NoError(t, err)
	c := newClock()
	s.now = c.now
	return s, c
}

func TestNewConnectionStore(t *testing.T) {
	_, err := NewConnectionStore(nil, "connections")
	assert.Error(t, err, "no client")
	_, err = NewConnectionStore(&fakeAPI{}, "")
	assert.Error(t, err, "no table")
}

func TestConnectionStoreConnections(t *testing.T) {
	ctx := context.Background()
	s, clk := newConnectionStore(t)
	now := clk.now()
	tests := []struct {
		name string
		conn live.Connection
	}{
		{"full identity", live.Connection{ID: "c1", Identity: auth.Identity{Subject: "u1", Email: "a@example.com", Role: auth.Viewer,
			Sites: map[string]auth.Role{"ams1": auth.Operator, "fra2": auth.Admin}},
			ConnectedAt: now, ExpiresAt: now.Add(2 * time.Hour).Truncate(time.Second)}},
		{"subject only", live.Connection{ID: "c2", Identity: auth.Identity{Subject: "u2"},
			ConnectedAt: now, ExpiresAt: now.Add(time.Hour).Truncate(time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, s.PutConnection(ctx, tt.conn))
			got, err := s.GetConnection(ctx, tt.conn.ID)
			require.NoError(t, err)
			assert.Equalf(t, tt.conn, got, "connection %s", tt.conn.ID)
		})
	}
	_, err := s.GetConnection(ctx, "never")
	assert.ErrorIs(t, err, live.ErrNotFound, "a connection never made")
	clk.advance(time.Hour + time.Second)
	_, err = s.GetConnection(ctx, "c2")
	assert.ErrorIs(t, err, live.ErrExpired, "a connection whose token expired, waiting for TTL")
	_, err = s.GetConnection(ctx, "c1")
	assert.NoError(t, err, "c1 lives on")
}

func TestConnectionStoreSubscriptions(t *testing.T) {
	ctx := context.Background()
	s, clk := newConnectionStore(t)
	now := clk.now()
	until := now.Add(time.Hour)
	for i := range 3 {
		require.NoError(t, s.PutConnection(ctx, live.Connection{ID: fmt.Sprintf("c%d", i), Identity: auth.Identity{Subject: "u"},
			ConnectedAt: now, ExpiresAt: until}))
	}
	subscribers := func(job string) []string {
		t.Helper()
		got, err := s.Subscribers(ctx, job)
		require.NoErrorf(t, err, "subscribers of %s", job)
		sort.Strings(got)
		return got
	}

	assert.ErrorIs(t, s.Subscribe(ctx, "gone", "j1", until), live.ErrNotFound, "a connection that does not exist")
	require.NoError(t, s.Subscribe(ctx, "c0", "j1", until))
	require.NoError(t, s.Subscribe(ctx, "c1", "j1", until))
	require.NoError(t, s.Subscribe(ctx, "c1", "j2", until))
	require.NoError(t, s.Subscribe(ctx, "c2", "j1", now.Add(time.Minute)))
	assert.Equal(t, []string{"c0", "c1", "c2"}, subscribers("j1"))
	assert.Equal(t, []string{"c1"}, subscribers("j2"))
	assert.Empty(t, subscribers("j3"), "a job nobody follows")

	clk.advance(2 * time.Minute)
	assert.Equal(t, []string{"c0", "c1"}, subscribers("j1"), "c2's subscription expired")
	own, err := s.partition(ctx, connPrefix+"c2", "items of c2")
	require.NoError(t, err)
	assert.Len(t, own, 1, "c2's expired subscription is deleted, its META stays: %v", own)
	subs, err := s.partition(ctx, subPrefix+"j1", "subscriptions of j1")
	require.NoError(t, err)
	assert.Len(t, subs, 2, "the expired subscription to j1 is deleted: %v", subs)

	require.NoError(t, s.Unsubscribe(ctx, "c0", "j1"))
	require.NoError(t, s.Unsubscribe(ctx, "c0", "j1"), "unsubscribe again")
	assert.Equal(t, []string{"c1"}, subscribers("j1"), "c0 unsubscribed")

	require.NoError(t, s.DeleteConnection(ctx, "c1"))
	assert.Empty(t, subscribers("j1"), "c1's subscriptions go with it")
	assert.Empty(t, subscribers("j2"), "all of them")
	_, err = s.GetConnection(ctx, "c1")
	assert.ErrorIs(t, err, live.ErrNotFound, "c1 deleted")
	assert.NoError(t, s.DeleteConnection(ctx, "c1"), "deleting again")
	assert.NoError(t, s.DeleteConnection(ctx, "never"), "deleting an unknown connection")
}

func TestConnectionStoreManySubscriptions(t *testing.T) {
	ctx := context.Background()
	s, clk := newConnectionStore(t)
	until := clk.now().Add(time.Hour)
	require.NoError(t, s.PutConnection(ctx, live.Connection{ID: "busy", Identity: auth.Identity{Subject: "u"}, ConnectedAt: clk.now(), ExpiresAt: until}))
	const jobs = 2*maxBatchWriteItems + 3 // the cleanup takes several batch writes
	for i := range jobs {
		require.NoError(t, s.Subscribe(ctx, "busy", fmt.Sprintf("job-%02d", i), until))
	}
	require.NoError(t, s.DeleteConnection(ctx, "busy"))
	for i := range jobs {
		got, err := s.Subscribers(ctx, fmt.Sprintf("job-%02d", i))
		require.NoError(t, err)
		assert.Emptyf(t, got, "subscribers of job-%02d", i)
	}
}
