// Package schedule is the local stand-in for the EventBridge schedule: it runs a job on
// NET_AUTO_RETENTION_CRON (5-field cron or @daily-style, in UTC, as EventBridge runs the
// translated expression) with robfig/cron, one run at a time.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/netauto/netauto/internal/cronexpr"
)

// Job is what the schedule runs.
type Job func(ctx context.Context)

// Scheduler runs one job on a cron schedule until stopped.
type Scheduler struct {
	c *cron.Cron
}

// Start validates spec as config does (so the local schedule accepts exactly what deploys),
// parses it with robfig/cron's standard parser in UTC, and runs job at every tick until ctx ends
// or Stop is called. A tick that comes while the previous run is still going is skipped.
func Start(ctx context.Context, spec string, job Job, logger *slog.Logger) (*Scheduler, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := cronexpr.Validate(spec); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	c := cron.New(cron.WithLocation(time.UTC), cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := c.AddFunc(spec, func() { job(ctx) }); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	c.Start()
	s := &Scheduler{c: c}
	go func() {
		<-ctx.Done()
		s.Stop()
	}()
	if e := c.Entries(); len(e) == 1 {
		logger.Info("schedule started", "spec", spec, "next", e[0].Next)
	}
	return s, nil
}

// Next returns the job's next run time.
func (s *Scheduler) Next() time.Time {
	if e := s.c.Entries(); len(e) == 1 {
		return e[0].Next
	}
	return time.Time{}
}

// Stop stops the schedule and waits for a running job to return.
func (s *Scheduler) Stop() {
	<-s.c.Stop().Done()
}

// Parse reports the next n run times of spec after from (UTC), as the local schedule would run
// them.
func Parse(spec string, from time.Time, n int) ([]time.Time, error) {
	if err := cronexpr.Validate(spec); err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	out := make([]time.Time, 0, n)
	t := from.UTC()
	for range n {
		t = sched.Next(t)
		out = append(out, t)
	}
	return out, nil
}
