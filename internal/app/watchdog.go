package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
)

// WatchdogOptions are the knobs the local stack and tests turn; a Lambda main passes the zero
// value but for Logger and Metrics.
type WatchdogOptions struct {
	Logger  *slog.Logger
	Metrics *metrics.Emitter
	// Publisher replaces the push to WebSocket subscribers built from the configuration.
	Publisher bulk.Publisher
	// StaleAfter replaces the bulk queue's redelivery window (resources: visibility timeout ×
	// maxReceiveCount) as the age of an unchanged batch that counts as lost.
	StaleAfter time.Duration
	// Period replaces the schedule's rate (resources.WatchdogPeriod).
	Period time.Duration
	// Now replaces the clock.
	Now func() time.Time
}

// WatchdogHandler is the watchdog function's Lambda handler: an EventBridge scheduled event runs
// one sweep and returns its report.
type WatchdogHandler func(ctx context.Context, ev events.EventBridgeEvent) (bulk.SweepReport, error)

// BulkStaleAfter is how long a sent batch may go unchanged before the watchdog counts its
// message as lost: as long as SQS keeps redelivering a message the executor does not finish (the
// bulk queue's visibility timeout × maxReceiveCount, 2.5 hours), after which it would have
// reached the dead-letter queue.
func BulkStaleAfter() time.Duration {
	q, _ := resources.QueueByID(resources.BulkQueue)
	return time.Duration(q.VisibilityTimeoutSeconds*q.MaxReceiveCount) * time.Second
}

// NewWatchdog builds the watchdog function's handler and the watchdog itself (the local stack
// calls its ResendUnfinished on start).
func NewWatchdog(ctx context.Context, cfg config.Config, opts WatchdogOptions) (WatchdogHandler, *bulk.Watchdog, error) {
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	db := dynamo.NewClient(awsCfg)
	jobs, err := dynamo.NewJobStore(db, cfg.Tables[resources.JobsTable])
	if err != nil {
		return nil, nil, err
	}
	runs, err := dynamo.NewRunStore(db, cfg.Tables[resources.RunsTable], time.Duration(resources.ExecutorTimeoutSeconds)*time.Second+time.Minute)
	if err != nil {
		return nil, nil, err
	}
	sender, err := queue.NewSender(sqs.NewFromConfig(awsCfg), cfg.Queues[resources.BulkQueue])
	if err != nil {
		return nil, nil, err
	}
	if opts.Publisher == nil {
		pub, err := NewPublisher(cfg, awsCfg, opts.Logger)
		if err != nil {
			return nil, nil, err
		}
		if pub != nil {
			opts.Publisher = pub
		}
	}
	trail, _, err := AuditTrail(cfg, db, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	answers, err := JobAnswers(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	devices, err := dynamo.NewDeviceStore(db, cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, nil, err
	}
	events, err := EventPublisher(cfg, awsCfg, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	savedAnswers, err := SavedJobAnswers(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	w, err := bulk.NewWatchdog(&bulk.Watchdog{
		Jobs: jobs, Runs: runs, Queue: sender, Publisher: opts.Publisher, Logger: opts.Logger, Metrics: opts.Metrics, Audit: trail, Answers: answers,
		Notices: newNotices(events, jobs, runs, devices, opts.Logger, opts.Metrics, config.Watchdog),
		Dropped: jobs, DroppedAnswers: savedAnswers,
		StaleAfter: cmp.Or(opts.StaleAfter, BulkStaleAfter()), Period: cmp.Or(opts.Period, resources.WatchdogPeriod), Now: opts.Now,
	})
	if err != nil {
		return nil, nil, err
	}
	return WatchdogSweeper(w, opts.Publisher, opts.Logger), w, nil
}

// WatchdogSweeper adapts a watchdog to the scheduled event: one sweep per event, and the progress
// it published delivered before the handler returns (Lambda freezes the environment after).
func WatchdogSweeper(w *bulk.Watchdog, pub bulk.Publisher, logger *slog.Logger) WatchdogHandler {
	logger = cmp.Or(logger, slog.Default())
	return func(ctx context.Context, ev events.EventBridgeEvent) (bulk.SweepReport, error) {
		rep, err := w.Sweep(ctx)
		if f, ok := pub.(flusher); ok {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if ferr := f.Flush(fctx); ferr != nil {
				logger.WarnContext(ctx, "progress not all pushed before the invocation ended", "err", ferr)
			}
		}
		if err != nil {
			return rep, fmt.Errorf("watchdog sweep: %w", err)
		}
		return rep, nil
	}
}
