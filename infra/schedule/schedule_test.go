package schedule

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The local schedule and the EventBridge translation must mean the same times: a table of specs
// with the run times both agree on (EventBridge evaluates cron in UTC).
func TestParseMatchesEventBridgeMeaning(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 3, 4, 10, 17, 0, 0, time.UTC) // a Wednesday
	cases := []struct {
		name string
		spec string
		want []time.Time
	}{
		{"daily at midnight", "@daily", []time.Time{
			time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC)}},
		{"hourly on the hour", "@hourly", []time.Time{
			time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)}},
		{"weekdays 03:30", "30 3 * * 1-5", []time.Time{
			time.Date(2026, 3, 5, 3, 30, 0, 0, time.UTC), time.Date(2026, 3, 6, 3, 30, 0, 0, time.UTC), time.Date(2026, 3, 9, 3, 30, 0, 0, time.UTC)}},
		{"sunday", "0 4 * * 0", []time.Time{time.Date(2026, 3, 8, 4, 0, 0, 0, time.UTC)}},
		{"every 15 minutes", "*/15 * * * *", []time.Time{
			time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC), time.Date(2026, 3, 4, 10, 45, 0, 0, time.UTC)}},
		{"first of the month", "0 2 1 * *", []time.Time{time.Date(2026, 4, 1, 2, 0, 0, 0, time.UTC)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(c.spec, from, len(c.want))
			require.NoError(t, err, "Parse(%q)", c.spec)
			require.Len(t, got, len(c.want), "runs of %q", c.spec)
			for i := range c.want {
				assert.True(t, got[i].Equal(c.want[i]), "run %d of %q at %s, want %s", i, c.spec, got[i], c.want[i])
			}
		})
	}
}

func TestStartRejectsWhatDeployRejects(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, spec string }{
		{"both days restricted", "0 0 1 * 1"},
		{"seconds", "@every 10s"},
		{"minute out of range", "61 * * * *"},
		{"day-of-week 7", "0 4 * * 7"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(context.Background(), tt.spec, func(context.Context) {}, nil)
			if err == nil {
				s.Stop()
			}
			assert.Error(t, err, "Start(%q) accepted a schedule EventBridge cannot run", tt.spec)
		})
	}
}

func TestStartRunsAndStops(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan struct{}, 1)
	s, err := Start(ctx, "@every 1m", func(context.Context) { ran <- struct{}{} }, nil)
	require.NoError(t, err, "Start")
	next := s.Next()
	assert.False(t, next.IsZero(), "next run is zero")
	assert.LessOrEqual(t, time.Until(next), time.Minute+time.Second, "time to the next run %s", next)
	s.Stop() // returns once stopped; the job never ran in this short life
	select {
	case <-ran:
		assert.Fail(t, "job ran before its first tick")
	default:
	}
}
