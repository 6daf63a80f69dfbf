package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
)

// SchedulerOptions are the knobs the local stack and tests turn; a Lambda main passes the zero
// value but for Logger.
type SchedulerOptions struct {
	Logger *slog.Logger
	// Now replaces the clock.
	Now func() time.Time
}

// SchedulerHandler is the scheduler function's Lambda handler: its EventBridge rule's event
// (every minute) runs one tick and returns its report.
type SchedulerHandler func(ctx context.Context, ev events.EventBridgeEvent) (savedjob.TickReport, error)

// NewScheduler builds the scheduler function's handler and the scheduler itself (the local stack
// ticks it every minute). Due saved jobs start through the API server's own start of a saved job,
// so a scheduled start is checked, limited and audited exactly as POST /v1/saved-jobs/{id}/run.
func NewScheduler(ctx context.Context, cfg config.Config, opts SchedulerOptions) (SchedulerHandler, *savedjob.Scheduler, error) {
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	srv, err := newAPIServer(ctx, cfg, &APIOptions{Logger: opts.Logger})
	if err != nil {
		return nil, nil, err
	}
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	store, err := dynamo.NewSavedJobStore(dynamo.NewClient(awsCfg), cfg.Tables[resources.SavedJobsTable])
	if err != nil {
		return nil, nil, err
	}
	owners, err := Owners(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	s := &savedjob.Scheduler{Store: store, Start: srv.RunScheduled, Owners: owners, Now: opts.Now, Logger: opts.Logger}
	return func(ctx context.Context, _ events.EventBridgeEvent) (savedjob.TickReport, error) {
		rep, err := s.Tick(ctx)
		if err != nil {
			return rep, fmt.Errorf("scheduler tick: %w", err)
		}
		return rep, nil
	}, s, nil
}
