package cronexpr_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/cronexpr"
)

func TestEventBridge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, want string
	}{
		{"daily", "@daily", "cron(0 0 * * ? *)"},
		{"daily upper case", "@DAILY", "cron(0 0 * * ? *)"},
		{"midnight", "@midnight", "cron(0 0 * * ? *)"},
		{"hourly", "@hourly", "cron(0 * * * ? *)"},
		{"weekly", "@weekly", "cron(0 0 ? * SUN *)"},
		{"monthly", "@monthly", "cron(0 0 1 * ? *)"},
		{"yearly", "@yearly", "cron(0 0 1 1 ? *)"},
		{"annually", "@annually", "cron(0 0 1 1 ? *)"},
		{"every minutes", "@every 90m", "rate(90 minutes)"},
		{"every one minute", "@every 1m", "rate(1 minute)"},
		{"every hours", "@every 6h", "rate(6 hours)"},
		{"every one hour", "@every 60m", "rate(1 hour)"},
		{"every days", "@every 48h", "rate(2 days)"},
		{"every day", "@every 24h", "rate(1 day)"},
		{"every day at 03:30", "30 3 * * *", "cron(30 3 * * ? *)"},
		{"spaces trimmed", "  30 3 * * *  ", "cron(30 3 * * ? *)"},
		{"every 15 minutes", "*/15 * * * *", "cron(0/15 * * * ? *)"},
		{"from 5 every 15 minutes", "5/15 * * * *", "cron(5/15 * * * ? *)"},
		{"stepped range listed", "0-30/10 * * * *", "cron(0,10,20,30 * * * ? *)"},
		{"every 6 hours", "0 */6 * * *", "cron(0 0/6 * * ? *)"},
		{"hour list", "0 1,13 * * *", "cron(0 1,13 * * ? *)"},
		{"first of the month", "0 2 1 * *", "cron(0 2 1 * ? *)"},
		{"day-of-month question mark", "0 2 1 * ?", "cron(0 2 1 * ? *)"},
		{"every other day of month", "0 2 */2 * *", "cron(0 2 1/2 * ? *)"},
		{"quarterly", "0 0 1 */3 *", "cron(0 0 1 1/3 ? *)"},
		{"month names", "0 0 1 jan,jul *", "cron(0 0 1 JAN,JUL ? *)"},
		{"weekdays numeric", "0 4 * * 1-5", "cron(0 4 ? * MON-FRI *)"},
		{"weekdays named", "0 4 * * mon-fri", "cron(0 4 ? * MON-FRI *)"},
		{"sunday as 0", "0 4 * * 0", "cron(0 4 ? * SUN *)"},
		{"weekend", "0 4 * * 6,0", "cron(0 4 ? * SUN,SAT *)"},
		{"day-of-week step expanded", "0 4 * * */2", "cron(0 4 ? * SUN,TUE,THU,SAT *)"},
		{"day-of-week question mark", "0 4 ? * 3", "cron(0 4 ? * WED *)"},
		{"two days not a range", "0 4 * * 1,2", "cron(0 4 ? * MON,TUE *)"},
		{"range then single", "0 4 * * 1-3,5", "cron(0 4 ? * MON-WED,FRI *)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := cronexpr.EventBridge(c.in)
			require.NoError(t, err, "EventBridge(%q)", c.in)
			assert.Equal(t, c.want, got, "EventBridge(%q)", c.in)
		})
	}
}

func TestEventBridgeRejects(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in, wantErr string
	}{
		{"empty", "", "empty"},
		{"unknown descriptor", "@fortnightly", "unknown descriptor"},
		{"every seconds", "@every 30s", "whole minutes"},
		{"every fraction", "@every 90s", "whole minutes"},
		{"every garbage", "@every soon", "@every"},
		{"four fields", "0 0 * *", "want 5 fields"},
		{"six fields", "0 0 0 * * *", "want 5 fields"},
		{"minute too big", "60 * * * *", "minute"},
		{"hour too big", "0 24 * * *", "hour"},
		{"day zero", "0 0 0 * *", "day-of-month"},
		{"month 13", "0 0 1 13 *", "month"},
		{"day-of-week 7", "0 0 * * 7", "day-of-week"},
		{"both days restricted", "0 0 1 * 1", "both restricted"},
		{"backwards range", "0 5-1 * * *", "backwards"},
		{"zero step", "*/0 * * * *", "step"},
		{"word", "daily * * * *", "minute"},
		{"question mark in minute", "? * * * *", "minute"},
		{"empty list item", "1,,2 * * * *", "minute"},
		{"time zone", "CRON_TZ=UTC 0 0 * *", "time zones"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := cronexpr.EventBridge(c.in)
			require.Error(t, err, "EventBridge(%q) = %q, want an error", c.in, got)
			assert.ErrorContains(t, err, c.wantErr, "EventBridge(%q)", c.in)
			assert.Error(t, cronexpr.Validate(c.in), "Validate(%q) accepted what EventBridge rejected", c.in)
		})
	}
}
