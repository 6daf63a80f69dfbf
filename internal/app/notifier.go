package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/secrets"
	"github.com/netauto/netauto/internal/webhook"
)

// NotifierOptions are the knobs the local stack and tests turn; a Lambda main passes the zero
// value but for Logger.
type NotifierOptions struct {
	Logger *slog.Logger
	// Resolver replaces the DNS resolver of webhook hosts (tests).
	Resolver webhook.Resolver
	// Backoff replaces the retry schedule (tests, which cannot wait minutes).
	Backoff []time.Duration
	// Metrics receives the delivery metrics (EMF on stdout in a Lambda function); nil emits none.
	Metrics *metrics.Emitter
}

// Notifier is the notifier function: EventBridge events from source netauto fan out to the
// webhooks that take them, and deliveries from the webhook queue are made, retried and logged.
type Notifier struct {
	*webhook.Notifier
}

// NotifierHandler is the notifier function's Lambda handler: it takes an EventBridge event (its
// rule's target) or an SQS batch (its webhook queue's event source) and answers the latter with
// its failed records.
type NotifierHandler func(ctx context.Context, raw json.RawMessage) (*events.SQSEventResponse, error)

// NewNotifier builds the notifier from its configuration.
func NewNotifier(ctx context.Context, cfg config.Config, opts NotifierOptions) (*Notifier, error) {
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	db := dynamo.NewClient(awsCfg)
	store, err := dynamo.NewWebhookStore(db, cfg.Tables[resources.WebhooksTable])
	if err != nil {
		return nil, err
	}
	sec, err := WebhookSecrets(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	q, err := queue.NewDeliveries(sqs.NewFromConfig(awsCfg), cfg.Queues[resources.WebhookQueue])
	if err != nil {
		return nil, err
	}
	trail, _, err := AuditTrail(cfg, db, opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Notifier{&webhook.Notifier{Store: store, Secrets: sec, Queue: q, Resolver: opts.Resolver, Backoff: opts.Backoff, UIURL: cfg.UIURL, AllowLoopback: cfg.WebhookAllowLoopback, Audit: trail, Metrics: opts.Metrics, Logger: opts.Logger}}, nil
}

// WebhookSecrets builds the store of webhooks' URLs and signing secrets over the configured
// secret store.
func WebhookSecrets(cfg config.Config, awsCfg aws.Config) (*secrets.Webhooks, error) {
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return secrets.NewWebhooks(sec)
}

// Handler returns the Lambda handler, which tells the two kinds of invocation apart by shape.
func (n *Notifier) Handler() NotifierHandler {
	return func(ctx context.Context, raw json.RawMessage) (*events.SQSEventResponse, error) {
		var probe struct {
			Records    []json.RawMessage `json:"Records"`
			DetailType string            `json:"detail-type"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("notifier: the invocation is not a JSON object: %w", err)
		}
		if probe.Records != nil {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("notifier: decode SQS event: %w", err)
			}
			resp, err := n.HandleSQS(ctx, ev)
			return &resp, err
		}
		if probe.DetailType == "" {
			return nil, errors.New("notifier: the invocation is neither an SQS batch nor an EventBridge event")
		}
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(raw, &ev); err != nil {
			return nil, fmt.Errorf("notifier: decode EventBridge event: %w", err)
		}
		return nil, n.HandleEvent(ctx, ev)
	}
}

// HandleEvent fans one EventBridge event out to the webhooks (the rule's target; locally the
// event bus stand-in's). An error makes EventBridge try the event again; the delivery ids stay.
func (n *Notifier) HandleEvent(ctx context.Context, ev events.CloudWatchEvent) error {
	sent, err := n.Publish(ctx, webhook.Event{
		Version: ev.Version, ID: ev.ID, DetailType: ev.DetailType, Source: ev.Source, Account: ev.AccountID,
		Time: ev.Time.UTC(), Region: ev.Region, Resources: ev.Resources, Detail: ev.Detail,
	})
	n.logger().Info("event fanned out to webhooks", "event_id", ev.ID, "detail_type", ev.DetailType, "deliveries", sent)
	return err
}

// HandleSQS makes the deliveries of one batch at once and reports those that failed for want of
// NetAuto's own services, which SQS hands out again; a record that is no delivery is logged and
// dropped, since no retry can make it one.
func (n *Notifier) HandleSQS(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	var (
		mu   sync.Mutex
		resp events.SQSEventResponse
		wg   sync.WaitGroup
	)
	for _, rec := range ev.Records {
		var d webhook.Delivery
		if err := json.Unmarshal([]byte(rec.Body), &d); err != nil || d.ID == "" || d.WebhookID == "" {
			n.logger().Error("webhook queue: not a delivery, dropped", "message_id", rec.MessageId)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Deliver(ctx, d); err != nil {
				n.logger().Error("webhook delivery", "delivery_id", d.ID, "webhook_id", d.WebhookID, "attempt", d.Attempt, "err", err)
				mu.Lock()
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return resp, nil
}

func (n *Notifier) logger() *slog.Logger { return cmp.Or(n.Logger, slog.Default()) }
