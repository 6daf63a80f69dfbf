package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/sshexec"
)

// SQSHandler is the signature of an SQS-triggered handler with partial batch responses.
type SQSHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// ExecutorOptions are the knobs the local stack and tests turn; a Lambda main passes the zero
// value.
type ExecutorOptions struct {
	Logger    *slog.Logger
	Metrics   *metrics.Emitter
	Publisher bulk.Publisher
	// Engine replaces the SSH engine's default options.
	Engine sshexec.Options
	// Lease overrides the run lease (default: the executor timeout plus a minute).
	Lease time.Duration
	// Concurrency bounds devices run at once per batch (default 50).
	Concurrency int
	// DeadlineMargin is kept free before the invocation's deadline (default 5 s).
	DeadlineMargin time.Duration
	// MaxBatches bounds the batches run at once in this process (0: no bound; see
	// bulk.Executor.MaxBatches).
	MaxBatches int
}

// NewExecutor builds the executor function's handler: batches from the bulk queue are run,
// batches from the dead-letter queue have their unfinished devices failed.
func NewExecutor(ctx context.Context, cfg config.Config, opts ExecutorOptions) (SQSHandler, *bulk.Executor, error) {
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return nil, nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	db := dynamo.NewClient(awsCfg)
	jobs, err := dynamo.NewJobStore(db, cfg.Tables[resources.JobsTable])
	if err != nil {
		return nil, nil, err
	}
	lease := opts.Lease
	if lease == 0 {
		lease = time.Duration(resources.ExecutorTimeoutSeconds)*time.Second + time.Minute
	}
	runs, err := dynamo.NewRunStore(db, cfg.Tables[resources.RunsTable], lease)
	if err != nil {
		return nil, nil, err
	}
	inv, err := executorInventory(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	engOpts := opts.Engine
	if engOpts.MaxOutputBytes == 0 {
		engOpts.MaxOutputBytes = cfg.OutputCapBytes
	}
	engine, err := sshexec.New(engOpts)
	if err != nil {
		return nil, nil, err
	}
	var q bulk.Queue
	if url := cfg.Queues[resources.BulkQueue]; url != "" {
		if q, err = queue.NewSender(sqs.NewFromConfig(awsCfg), url); err != nil {
			return nil, nil, err
		}
	}
	if opts.Publisher == nil { // live progress: push what the executor records
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
	policies, err := dynamo.NewPolicyStore(db, cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, nil, err
	}
	filters, err := dynamo.NewFilterStore(db, cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, nil, err
	}
	jumpHosts, err := JumpHosts(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	answers, err := JobAnswers(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	events, err := EventPublisher(cfg, awsCfg, opts.Logger)
	if err != nil {
		return nil, nil, err
	}
	x := &bulk.Executor{
		Jobs: jobs, Runs: runs, Devices: inv, Engine: engine, Queue: q, Publisher: opts.Publisher, Policy: policies, Answers: answers, Noise: filters,
		Notices:   newNotices(events, jobs, runs, inv, opts.Logger, opts.Metrics, config.Executor),
		JumpHosts: jumpHosts, JumpMaxChannels: cfg.JumpMaxChannels,
		Logger: opts.Logger, Metrics: opts.Metrics, Concurrency: opts.Concurrency, DeadlineMargin: opts.DeadlineMargin, MaxBatches: opts.MaxBatches, Audit: trail, BatchLease: lease, RunTTL: time.Duration(cfg.RunMaxDays) * 24 * time.Hour,
	}
	return flushAfter(ExecutorHandler(x, cfg.Queues[resources.BulkDLQ], opts.Logger, opts.Metrics), opts.Publisher, opts.Logger), x, nil
}

// ExecutorHandler adapts an executor to SQS events: records from the dead-letter queue (named by
// dlqURL) fail their batch's unfinished devices, the others run their batch; batches with
// devices left over are reported as failed items so SQS redelivers them.
func ExecutorHandler(x *bulk.Executor, dlqURL string, logger *slog.Logger, emf *metrics.Emitter) SQSHandler {
	if logger == nil {
		logger = slog.Default()
	}
	dlqName := queueName(dlqURL)
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, rec := range ev.Records {
			var m bulk.Message
			if err := json.Unmarshal([]byte(rec.Body), &m); err != nil {
				// A body that is not a batch can never succeed: log it and let it go.
				logger.ErrorContext(ctx, "dropping a message that is not a batch", "message_id", rec.MessageId, "err", err)
				continue
			}
			if dlqName != "" && queueName(rec.EventSourceARN) == dlqName {
				if err := x.DeadLetter(ctx, m); err != nil {
					logger.ErrorContext(ctx, "dead letter", "job_id", m.JobID, "err", err)
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				}
				continue
			}
			start := time.Now()
			out, err := x.Handle(ctx, m)
			if err != nil {
				logger.ErrorContext(ctx, "batch", "job_id", m.JobID, "batch", m.Batch, "err", err)
			}
			if out.Retry {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			}
			if emf != nil {
				_ = emf.Emit(map[string]string{"Function": "executor"},
					map[string]any{"job_id": m.JobID, "batch": m.Batch, "retry": out.Retry},
					metrics.Metric{Name: "DevicesRun", Value: float64(out.Ran), Unit: metrics.Count},
					metrics.Metric{Name: "DevicesSkipped", Value: float64(out.Skipped), Unit: metrics.Count},
					metrics.Metric{Name: "BatchDuration", Value: float64(time.Since(start).Milliseconds()), Unit: metrics.Milliseconds})
			}
		}
		return resp, nil
	}
}

// queueName returns the last part of a queue URL or ARN.
func queueName(s string) string {
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		return s[i+1:]
	}
	return s
}
