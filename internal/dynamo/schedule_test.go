package dynamo

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
)

// oneDevice is the inventory of the scheduler tests: one device on site ams1.
type oneDevice struct{}

func (oneDevice) List(_ context.Context, f device.Filter, _ device.Page) ([]device.Device, string, error) {
	d := device.Device{ID: "r1", Site: "ams1", Platform: "cisco_ios"}
	if f.Site != "" && f.Site != d.Site {
		return nil, "", nil
	}
	return []device.Device{d}, "", nil
}

func (oneDevice) GetMany(_ context.Context, ids []string) (map[string]device.Device, error) {
	out := map[string]device.Device{}
	if slices.Contains(ids, "r1") {
		out["r1"] = device.Device{ID: "r1", Site: "ams1", Platform: "cisco_ios"}
	}
	return out, nil
}

// started records the scheduler's starts: each through Registry.Start as the owner.
type started struct {
	mu     sync.Mutex
	starts []start
}

type start struct {
	id, requester string
	due           time.Time
	devices       []string
}

// schedClock is the scheduler tests' settable clock.
type schedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *schedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *schedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type schedEnv struct {
	store *SavedJobStore
	reg   *savedjob.Registry
	clock *schedClock
	log   *started
	owner auth.Identity
}

func newSchedEnv(t *testing.T, now time.Time) *schedEnv {
	t.Helper()
	db, table := newTable(t, resources.SavedJobsTable)
	store, err := NewSavedJobStore(db, table)
	require.NoError(t, err)
	reg, err := savedjob.New(store, nil, oneDevice{})
	require.NoError(t, err)
	c := &schedClock{t: now}
	reg.Now = c.Now
	return &schedEnv{store: store, reg: reg, clock: c, log: &started{}, owner: auth.Identity{Subject: "olga", Role: auth.Operator}}
}

// scheduler is one scheduler over the env's store, starting jobs through Registry.Start with the
// owner as the caller, as the scheduler function does.
func (e *schedEnv) scheduler() *savedjob.Scheduler {
	return &savedjob.Scheduler{Store: e.store, Now: e.clock.Now, Start: func(ctx context.Context, id string, owner auth.Identity, due time.Time) (string, error) {
		req, as, err := e.reg.Start(ctx, id, owner)
		if err != nil {
			return "", err
		}
		e.log.mu.Lock()
		defer e.log.mu.Unlock()
		e.log.starts = append(e.log.starts, start{id: id, requester: as.Name(), due: due, devices: req.DeviceIDs})
		return "job-" + due.Format(time.RFC3339), nil
	}}
}

func (e *schedEnv) dues() []time.Time {
	e.log.mu.Lock()
	defer e.log.mu.Unlock()
	out := make([]time.Time, len(e.log.starts))
	for i, s := range e.log.starts {
		out[i] = s.due
	}
	return out
}

func (e *schedEnv) create(t *testing.T, sched savedjob.Schedule) savedjob.SavedJob {
	t.Helper()
	name, cmd := "nightly", "show version"
	j, err := e.reg.Create(context.Background(), savedjob.Input{Name: &name, Command: &cmd, Selector: &savedjob.Selector{Site: "ams1"}, Schedule: &sched}, e.owner)
	require.NoError(t, err)
	return j
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestSchedulerExactlyOncePerDueTime: two schedulers firing at once, at every minute of an hour
// of a */15 schedule (and each fire twice), start exactly one job per due time, as the owner.
func TestSchedulerExactlyOncePerDueTime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSchedEnv(t, at("2026-06-01T09:58:00Z"))
	j := e.create(t, savedjob.Schedule{Cron: "*/15 * * * *", Enabled: true})
	assert.Equal(t, at("2026-06-01T10:00:00Z"), j.NextDue)
	a, b := e.scheduler(), e.scheduler()
	for m := range 62 {
		e.clock.Set(at("2026-06-01T09:59:00Z").Add(time.Duration(m)*time.Minute + 3*time.Second))
		for range 2 {
			var wg sync.WaitGroup
			for _, s := range []*savedjob.Scheduler{a, b} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Tick(ctx)
					assert.NoError(t, err)
				}()
			}
			wg.Wait()
		}
	}
	assert.Equal(t, []time.Time{at("2026-06-01T10:00:00Z"), at("2026-06-01T10:15:00Z"), at("2026-06-01T10:30:00Z"), at("2026-06-01T10:45:00Z"), at("2026-06-01T11:00:00Z")}, e.dues())
	for _, s := range e.log.starts {
		assert.Equal(t, "olga", s.requester, "the owner is the requester")
		assert.Equal(t, []string{"r1"}, s.devices)
	}
	got, err := e.store.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, at("2026-06-01T11:15:00Z"), got.NextDue)
	assert.Equal(t, j.Version, got.Version, "moving the due time on is not a new version")
}

// TestSchedulerLateFire: a fire up to LateGrace late starts the due time; one later skips it and
// the next due time is the first after the fire, not a burst of the missed ones.
func TestSchedulerLateFire(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		cron     string // "0 10 * * *" when empty
		fireAt   time.Time
		want     []time.Time
		wantNext time.Time
	}{
		{name: "nine minutes late starts it", fireAt: at("2026-06-01T10:09:00Z"), want: []time.Time{at("2026-06-01T10:00:00Z")}, wantNext: at("2026-06-02T10:00:00Z")},
		{name: "ten minutes late starts it", fireAt: at("2026-06-01T10:10:00Z"), want: []time.Time{at("2026-06-01T10:00:00Z")}, wantNext: at("2026-06-02T10:00:00Z")},
		{name: "eleven minutes late skips it", fireAt: at("2026-06-01T10:11:00Z"), wantNext: at("2026-06-02T10:00:00Z")},
		{name: "three days down skips them all", fireAt: at("2026-06-04T12:00:00Z"), wantNext: at("2026-06-05T10:00:00Z")},
		{name: "a fire that missed one starts the latest it missed", cron: "*/5 * * * *", fireAt: at("2026-06-01T09:11:00Z"),
			want: []time.Time{at("2026-06-01T09:10:00Z")}, wantNext: at("2026-06-01T09:15:00Z")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newSchedEnv(t, at("2026-06-01T09:00:00Z"))
			cron := "0 10 * * *"
			if tc.cron != "" {
				cron = tc.cron
			}
			j := e.create(t, savedjob.Schedule{Cron: cron, Enabled: true})
			e.clock.Set(tc.fireAt)
			rep, err := e.scheduler().Tick(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, rep.Due)
			assert.Equal(t, tc.want, nilIfEmpty(e.dues()))
			got, err := e.store.Get(ctx, j.ID)
			require.NoError(t, err)
			assert.Equal(t, tc.wantNext, got.NextDue)
		})
	}
}

func nilIfEmpty(ts []time.Time) []time.Time {
	if len(ts) == 0 {
		return nil
	}
	return ts
}

// TestSchedulerPauseResume: a paused schedule is not due; resuming starts from the next due time
// after now, so the times missed while paused are skipped.
func TestSchedulerPauseResume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSchedEnv(t, at("2026-06-01T09:50:00Z"))
	j := e.create(t, savedjob.Schedule{Cron: "@hourly", Enabled: true})
	s := e.scheduler()
	e.clock.Set(at("2026-06-01T10:00:30Z"))
	_, err := s.Tick(ctx)
	require.NoError(t, err)

	e.clock.Set(at("2026-06-01T10:20:00Z"))
	j, err = e.reg.Update(ctx, j.ID, savedjob.Input{Schedule: &savedjob.Schedule{Cron: "@hourly", Enabled: false}}, 0, e.owner)
	require.NoError(t, err)
	assert.True(t, j.NextDue.IsZero())
	assert.Empty(t, j.NextRuns(e.clock.Now()), "a paused schedule shows no next runs")
	for h := range 5 {
		e.clock.Set(at("2026-06-01T11:00:30Z").Add(time.Duration(h) * time.Hour))
		rep, err := s.Tick(ctx)
		require.NoError(t, err)
		assert.Zero(t, rep.Due, "a paused schedule is never due")
	}

	e.clock.Set(at("2026-06-01T15:05:00Z"))
	j, err = e.reg.Update(ctx, j.ID, savedjob.Input{Schedule: &savedjob.Schedule{Cron: "@hourly", Enabled: true}}, 0, e.owner)
	require.NoError(t, err)
	assert.Equal(t, at("2026-06-01T16:00:00Z"), j.NextDue)
	assert.Len(t, j.NextRuns(e.clock.Now()), savedjob.NextRunsShown)
	e.clock.Set(at("2026-06-01T15:06:00Z"))
	rep, err := s.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, rep.Started, "resuming does not start the missed times")
	e.clock.Set(at("2026-06-01T16:00:10Z"))
	_, err = s.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, []time.Time{at("2026-06-01T10:00:00Z"), at("2026-06-01T16:00:00Z")}, e.dues())
}

// TestSchedulerPausesWhenTheOwnerMayNotStart: an owner whose recorded roles no longer allow
// starting it gets the schedule paused with a visible reason, and it is not due again.
func TestSchedulerPausesWhenTheOwnerMayNotStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSchedEnv(t, at("2026-06-01T09:50:00Z"))
	j := e.create(t, savedjob.Schedule{Cron: "@hourly", Enabled: true})
	// The owner saves it again as a viewer: their recorded roles no longer let them run it.
	j.Grants.Role = auth.Viewer
	require.NoError(t, e.store.Update(ctx, j, j.Version))
	s := e.scheduler()
	e.clock.Set(at("2026-06-01T10:00:30Z"))
	rep, err := s.Tick(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Paused)
	assert.Empty(t, e.dues())
	got, err := e.store.Get(ctx, j.ID)
	require.NoError(t, err)
	require.NotNil(t, got.Schedule)
	assert.False(t, got.Schedule.Enabled)
	assert.Contains(t, got.Schedule.PausedReason, "owner")
	assert.Equal(t, j.Version+1, got.Version)
	assert.True(t, got.NextDue.IsZero())
	e.clock.Set(at("2026-06-01T11:00:30Z"))
	rep, err = s.Tick(ctx)
	require.NoError(t, err)
	assert.Zero(t, rep.Due)
}

// TestScheduleBadTimeZoneChangesNothing: an unknown zone is refused naming schedule.time_zone.
func TestScheduleBadTimeZoneChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newSchedEnv(t, at("2026-06-01T09:50:00Z"))
	j := e.create(t, savedjob.Schedule{Cron: "@hourly", Enabled: true})
	_, err := e.reg.Update(ctx, j.ID, savedjob.Input{Schedule: &savedjob.Schedule{Cron: "@daily", TimeZone: "Nowhere/City", Enabled: true}}, 0, e.owner)
	d, ok := fault.As(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "schedule.time_zone", d.Field())
	got, err := e.store.Get(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, j.Version, got.Version)
	assert.Equal(t, "@hourly", got.Schedule.Cron)
}

// TestClaimOnlyWhileStillDue: a due time is claimed once, and only while the saved job's next due
// time is still the one read from the by_due index: a schedule paused or moved after the index
// was read is not claimed from it; a late fire claims the latest due time it missed.
func TestClaimOnlyWhileStillDue(t *testing.T) {
	ctx := context.Background()
	e := newSchedEnv(t, at("2026-12-07T10:01:00Z"))
	tests := []struct {
		name   string
		change func(t *testing.T, j savedjob.SavedJob)
		due    time.Duration // after the next due time read
		want   bool
	}{
		{name: "still due", want: true},
		{name: "a late fire's latest missed due time", due: 15 * time.Minute, want: true},
		{name: "paused since", change: func(t *testing.T, j savedjob.SavedJob) {
			require.NoError(t, e.store.Advance(ctx, j.ID, j.NextDue, time.Time{}, "paused by the test"))
		}},
		{name: "moved since", change: func(t *testing.T, j savedjob.SavedJob) {
			require.NoError(t, e.store.Advance(ctx, j.ID, j.NextDue, j.NextDue.Add(time.Hour), ""))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := e.create(t, savedjob.Schedule{Cron: "*/15 * * * *", TimeZone: "UTC", Enabled: true})
			require.False(t, j.NextDue.IsZero(), "the saved job is due")
			if tt.change != nil {
				tt.change(t, j)
			}
			due := j.NextDue.Add(tt.due)
			got, err := e.store.Claim(ctx, j.ID, due, j.NextDue)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got, "claimed")
			if got {
				again, err := e.store.Claim(ctx, j.ID, due, j.NextDue)
				require.NoError(t, err)
				assert.False(t, again, "claimed twice")
			}
		})
	}
}
