package savedjob_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/savedjob"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestScheduleNormalize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, cron, tz string
		wantField      string
		wantTZ         string
	}{
		{name: "five fields, default UTC", cron: "30 2 * * *", wantTZ: "UTC"},
		{name: "daily in a zone", cron: "@daily", tz: "Europe/Berlin", wantTZ: "Europe/Berlin"},
		{name: "hourly", cron: "@hourly", wantTZ: "UTC"},
		{name: "empty cron", cron: " ", wantField: "schedule.cron"},
		{name: "six fields", cron: "0 0 * * * *", wantField: "schedule.cron"},
		{name: "minute out of range", cron: "60 * * * *", wantField: "schedule.cron"},
		{name: "every is not a schedule of due times", cron: "@every 5m", wantField: "schedule.cron"},
		{name: "unknown zone", cron: "@daily", tz: "Mars/Olympus", wantField: "schedule.time_zone"},
		{name: "Local is not a zone name", cron: "@daily", tz: "Local", wantField: "schedule.time_zone"},
		{name: "a path is not a zone name", cron: "@daily", tz: "../../etc/passwd", wantField: "schedule.time_zone"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := savedjob.Schedule{Cron: tc.cron, TimeZone: tc.tz, Enabled: true}
			err := s.Normalize()
			if tc.wantField == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.wantTZ, s.TimeZone)
				return
			}
			require.Error(t, err)
			d, ok := fault.As(err)
			require.True(t, ok, "a fault naming the field: %v", err)
			assert.Equal(t, fault.Invalid, d.Kind())
			assert.Equal(t, tc.wantField, d.Field())
		})
	}
}

// TestScheduleTimeZones: due times follow the zone's wall clock across daylight saving changes.
func TestScheduleTimeZones(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, cron, tz string
		from           time.Time
		want           []time.Time
	}{
		{
			name: "09:00 Berlin across the spring change", cron: "0 9 * * *", tz: "Europe/Berlin", from: utc("2026-03-28T00:00:00Z"),
			want: []time.Time{utc("2026-03-28T08:00:00Z"), utc("2026-03-29T07:00:00Z"), utc("2026-03-30T07:00:00Z")},
		},
		{
			// 02:30 does not exist in Berlin on 29 March 2026: that day has no due time.
			name: "a time the spring change skips", cron: "30 2 * * *", tz: "Europe/Berlin", from: utc("2026-03-28T00:00:00Z"),
			want: []time.Time{utc("2026-03-28T01:30:00Z"), utc("2026-03-30T00:30:00Z")},
		},
		{
			name: "09:00 New York across the autumn change", cron: "0 9 * * *", tz: "America/New_York", from: utc("2026-10-31T00:00:00Z"),
			want: []time.Time{utc("2026-10-31T13:00:00Z"), utc("2026-11-01T14:00:00Z")},
		},
		{
			name: "UTC by default", cron: "@daily", from: utc("2026-03-28T12:00:00Z"),
			want: []time.Time{utc("2026-03-29T00:00:00Z"), utc("2026-03-30T00:00:00Z")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := savedjob.Schedule{Cron: tc.cron, TimeZone: tc.tz, Enabled: true}
			require.NoError(t, s.Normalize())
			got, err := s.NextRuns(tc.from, len(tc.want))
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestScheduleLatestDue(t *testing.T) {
	t.Parallel()
	s := savedjob.Schedule{Cron: "*/5 * * * *", Enabled: true}
	require.NoError(t, s.Normalize())
	cases := []struct {
		name      string
		from, now time.Time
		want      time.Time
		ok        bool
	}{
		{name: "on time", from: utc("2026-01-01T10:05:00Z"), now: utc("2026-01-01T10:05:20Z"), want: utc("2026-01-01T10:05:00Z"), ok: true},
		{name: "the latest of several", from: utc("2026-01-01T10:00:00Z"), now: utc("2026-01-01T10:12:00Z"), want: utc("2026-01-01T10:10:00Z"), ok: true},
		{name: "none yet", from: utc("2026-01-01T10:01:00Z"), now: utc("2026-01-01T10:04:59Z")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok, err := s.LatestDue(tc.from, tc.now)
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.want, got)
		})
	}
}
