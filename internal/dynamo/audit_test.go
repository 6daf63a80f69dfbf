package dynamo

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
)

func newAuditStore(t *testing.T, keep time.Duration, now time.Time) *AuditStore {
	t.Helper()
	db, table := newTable(t, resources.AuditTable)
	s, err := NewAuditStore(db, table, keep)
	require.NoError(t, err)
	s.now = func() time.Time { return now }
	return s
}

func TestAuditStoreRefusesADuplicateID(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	s := newAuditStore(t, 365*24*time.Hour, at)
	ctx := context.Background()
	first := audit.Entry{ID: audit.NewID(at), Time: at, Actor: "ann@example.com", Role: "admin", Action: "device.delete",
		Target: "dev-1", Outcome: audit.OutcomeOK, RequestID: "r1", Source: "192.0.2.1", Detail: map[string]string{"k": "v"}}
	require.NoError(t, s.Record(ctx, first))
	forged := first
	forged.Action, forged.Outcome, forged.Detail = "device.read", audit.OutcomeDenied, nil
	err := s.Record(ctx, forged)
	require.ErrorIs(t, err, audit.ErrDuplicateID, "a second entry with the same id")

	got, _, err := s.List(ctx, audit.Filter{}, "", 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, first, got[0], "the first entry is unchanged")

	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: itemKey("DAY#2026-12-06", first.ID)})
	require.NoError(t, err)
	ttl, ok := out.Item[resources.TTLAttribute].(*types.AttributeValueMemberN)
	require.True(t, ok, "the entry has its TTL attribute")
	assert.Equal(t, fmt.Sprint(at.Add(365*24*time.Hour).Unix()), ttl.Value)
}

// seedAudit stores n entries, one every 7 hours back from now, with rotating actors, targets and
// actions; it returns them newest first.
func seedAudit(t *testing.T, s *AuditStore, now time.Time, n int) []audit.Entry {
	t.Helper()
	actors := []string{"ann@example.com", "bob@example.com", audit.ActorExecutor}
	actions := []string{"device.update", "job.create", "run.create", "device.delete"}
	var out []audit.Entry
	for i := range n {
		at := now.Add(-time.Duration(i) * 7 * time.Hour)
		e := audit.Entry{ID: audit.NewID(at), Time: at, Actor: actors[i%len(actors)], Role: "operator", Action: actions[i%len(actions)],
			Target: fmt.Sprintf("dev-%d", i%5), Outcome: audit.OutcomeOK}
		require.NoError(t, s.Record(context.Background(), e))
		out = append(out, e)
	}
	return out
}

func ids(es []audit.Entry) []string {
	out := make([]string, len(es)) // never nil: an empty listing is []
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// listAll follows the cursors to the end and returns every entry, checking no page is over limit.
func listAll(t *testing.T, s *AuditStore, f audit.Filter, limit int) []audit.Entry {
	t.Helper()
	var all []audit.Entry
	cursor := ""
	for range 1000 {
		page, next, err := s.List(context.Background(), f, cursor, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), limit)
		all = append(all, page...)
		if next == "" {
			return all
		}
		cursor = next
	}
	require.FailNow(t, "the cursors never ended")
	return nil
}

func TestAuditStoreListsNewestFirstWithFilters(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	s := newAuditStore(t, 30*24*time.Hour, now)
	s.maxDayQueries = 5 // the trail spans 12 days: pages end early and continue
	seeded := seedAudit(t, s, now, 40)
	since := now.Add(-100 * time.Hour)
	want := func(keep func(audit.Entry) bool) []string {
		out := []string{}
		for _, e := range seeded {
			if keep(e) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	cases := []struct {
		name   string
		filter audit.Filter
		keep   func(audit.Entry) bool
	}{
		{"all", audit.Filter{}, func(audit.Entry) bool { return true }},
		{"by action", audit.Filter{Action: "job.create"}, func(e audit.Entry) bool { return e.Action == "job.create" }},
		{"by actor", audit.Filter{Actor: "bob@example.com"}, func(e audit.Entry) bool { return e.Actor == "bob@example.com" }},
		{"by target", audit.Filter{Target: "dev-3"}, func(e audit.Entry) bool { return e.Target == "dev-3" }},
		{"by actor and action", audit.Filter{Actor: "ann@example.com", Action: "device.update"},
			func(e audit.Entry) bool { return e.Actor == "ann@example.com" && e.Action == "device.update" }},
		{"by target and actor", audit.Filter{Target: "dev-0", Actor: audit.ActorExecutor},
			func(e audit.Entry) bool { return e.Target == "dev-0" && e.Actor == audit.ActorExecutor }},
		{"since", audit.Filter{Since: since}, func(e audit.Entry) bool { return !e.Time.Before(since) }},
		{"since with actor", audit.Filter{Since: since, Actor: "ann@example.com"},
			func(e audit.Entry) bool { return !e.Time.Before(since) && e.Actor == "ann@example.com" }},
		{"nothing", audit.Filter{Actor: "nobody"}, func(audit.Entry) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := want(tc.keep)
			for _, limit := range []int{1, 3, 7, 100} {
				got := ids(listAll(t, s, tc.filter, limit))
				assert.Equal(t, w, got, "limit %d", limit)
			}
		})
	}
	// The newest-first order is the ids' order.
	assert.True(t, slices.IsSortedFunc(ids(seeded), func(a, b string) int { return strings.Compare(b, a) }))
}

func TestAuditStoreStopsAtTheRetentionHorizon(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	s := newAuditStore(t, 2*24*time.Hour, now)
	// Past the retention: five days old, and one that expired an hour ago, on the horizon's day.
	for _, at := range []time.Time{now.Add(-5 * 24 * time.Hour), now.Add(-49 * time.Hour)} {
		require.NoError(t, s.Record(context.Background(), audit.Entry{ID: audit.NewID(at), Time: at, Actor: "ann@example.com",
			Action: "device.create", Target: "dev-1", Outcome: audit.OutcomeOK}))
	}
	fresh := now.Add(-time.Hour)
	recent := audit.Entry{ID: audit.NewID(fresh), Time: fresh, Actor: "ann@example.com", Action: "device.update", Target: "dev-1", Outcome: audit.OutcomeOK}
	require.NoError(t, s.Record(context.Background(), recent))
	for _, tc := range []struct {
		name   string
		filter audit.Filter
	}{
		{"every entry, by day", audit.Filter{}},
		{"by actor", audit.Filter{Actor: "ann@example.com"}},
		{"by target", audit.Filter{Target: "dev-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, next, err := s.List(context.Background(), tc.filter, "", 10)
			require.NoError(t, err)
			assert.Equal(t, []string{recent.ID}, ids(got), "entries past their retention (waiting for TTL) are not listed")
			assert.Empty(t, next)
		})
	}
}

func TestAuditStoreRefusesForeignCursors(t *testing.T) {
	t.Parallel()
	s := newAuditStore(t, 0, time.Now().UTC())
	for _, c := range []string{"not-base64!", "Zm9v", mustCursor(t, map[string]string{"pk": "x", "sk": "y"})} {
		_, _, err := s.List(context.Background(), audit.Filter{}, c, 10)
		assert.ErrorIs(t, err, fault.ErrBadCursor, "cursor %q", c)
	}
}
