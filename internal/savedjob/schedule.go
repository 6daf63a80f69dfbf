package savedjob

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/netauto/netauto/internal/cronexpr"
	"github.com/netauto/netauto/internal/fault"
)

// Schedule limits.
const (
	// LateGrace is how late a due time may still be started: a scheduler fire up to this late
	// starts it, a due time missed by more (paused, scheduler down) is skipped, not bursted.
	LateGrace = 10 * time.Minute
	// NextRunsShown is how many coming run times a saved job shows.
	NextRunsShown = 5
)

// Schedule runs a saved job on a cron in a time zone while it is enabled. PausedReason says why
// the system paused it (its owner may no longer start it); a person's change clears it.
type Schedule struct {
	Cron         string `dynamodbav:"cron"`
	TimeZone     string `dynamodbav:"time_zone"`
	Enabled      bool   `dynamodbav:"enabled"`
	PausedReason string `dynamodbav:"paused_reason,omitempty"`
}

// Normalize checks the schedule, naming each field under "schedule.": a 5-field cron or a
// descriptor such as @daily or @hourly (cronexpr's rules, without @every: an interval has no due
// times of its own), and an IANA time zone (default UTC).
func (s *Schedule) Normalize() error {
	if len(s.Cron) > 256 {
		return fault.New(fault.Invalid, "schedule.cron", "must be at most 256 characters")
	}
	if len(s.TimeZone) > 64 {
		return fault.New(fault.Invalid, "schedule.time_zone", "must be at most 64 characters")
	}
	s.Cron = strings.Join(strings.Fields(s.Cron), " ")
	if s.Cron == "" {
		return fault.New(fault.Invalid, "schedule.cron", "is required: 5 fields (minute hour day-of-month month day-of-week) or @daily/@hourly")
	}
	if strings.HasPrefix(strings.ToLower(s.Cron), "@every") {
		return fault.New(fault.Invalid, "schedule.cron", "@every is not a schedule of due times: use 5 fields, e.g. */15 * * * *")
	}
	if err := cronexpr.Validate(s.Cron); err != nil {
		return fault.Errorf(fault.Invalid, "schedule.cron", "%v", err)
	}
	if s.TimeZone == "" {
		s.TimeZone = "UTC"
	}
	if _, err := s.location(); err != nil {
		return err
	}
	if _, err := s.spec(); err != nil {
		return err
	}
	return nil
}

func (s Schedule) location() (*time.Location, error) {
	// time.LoadLocation also takes "Local" and paths' spellings; only IANA names are meant.
	if s.TimeZone == "Local" || strings.HasPrefix(s.TimeZone, "/") || strings.Contains(s.TimeZone, "..") {
		return nil, fault.Errorf(fault.Invalid, "schedule.time_zone", "%q is not an IANA time zone name such as Europe/Berlin", s.TimeZone)
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "schedule.time_zone", "%q is not an IANA time zone name such as Europe/Berlin", s.TimeZone)
	}
	return loc, nil
}

// spec parses the cron with robfig/cron's standard parser (the local schedule's parser) in the
// schedule's time zone.
func (s Schedule) spec() (*cron.SpecSchedule, error) {
	loc, err := s.location()
	if err != nil {
		return nil, err
	}
	parsed, err := cron.ParseStandard(s.Cron)
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "schedule.cron", "%v", err)
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok {
		return nil, fault.New(fault.Invalid, "schedule.cron", "is not a cron schedule")
	}
	spec.Location = loc
	return spec, nil
}

// Next returns the first due time strictly after t, in UTC; zero if the cron never matches.
func (s Schedule) Next(t time.Time) (time.Time, error) {
	spec, err := s.spec()
	if err != nil {
		return time.Time{}, err
	}
	n := spec.Next(t)
	if n.IsZero() {
		return time.Time{}, errors.New("schedule: the cron matches no time in the next five years")
	}
	return n.UTC(), nil
}

// NextRuns returns the next n due times after t, in UTC.
func (s Schedule) NextRuns(t time.Time, n int) ([]time.Time, error) {
	out := make([]time.Time, 0, n)
	for range n {
		next, err := s.Next(t)
		if err != nil {
			return out, err
		}
		out = append(out, next)
		t = next
	}
	return out, nil
}

// LatestDue is the latest due time in [from, now], if any: the one a scheduler fire at now
// starts. Earlier ones in the window are skipped rather than bursted.
func (s Schedule) LatestDue(from, now time.Time) (time.Time, bool, error) {
	t, err := s.Next(from.Add(-time.Second))
	if err != nil {
		return time.Time{}, false, err
	}
	if t.After(now) {
		return time.Time{}, false, nil
	}
	for {
		n, err := s.Next(t)
		if err != nil {
			return time.Time{}, false, err
		}
		if n.After(now) {
			return t, true, nil
		}
		t = n
	}
}

// String is the schedule as a person reads it.
func (s Schedule) String() string {
	state := "enabled"
	if !s.Enabled {
		state = "paused"
	}
	return fmt.Sprintf("%s %s (%s)", s.Cron, s.TimeZone, state)
}
