// Package eventsource is the local stand-in for a Lambda SQS event source mapping: it long-polls a
// queue, hands batches of records to a handler as events.SQSEvent with a deadline (the function
// timeout), deletes the records the handler did not report as failed (ReportBatchItemFailures),
// and leaves the rest to become visible again, so SQS's receive count and redrive to the
// dead-letter queue work as in AWS.
//
// Stopping can be graceful (Mapping.StopGrace): polling stops at once, and the running
// invocations see their deadline move to the end of the grace period, so a handler that plans
// its work by its deadline (the bulk executor starts no device whose timeout does not fit)
// winds down as it does at a Lambda timeout: work in flight finishes, the rest is handed on.
package eventsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Handler is an SQS-triggered Lambda handler with partial batch responses.
type Handler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// API is the part of the SQS client the poller uses.
type API interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// Mapping is one event source mapping.
type Mapping struct {
	Client   API
	QueueURL string
	QueueARN string
	Handler  Handler
	// BatchSize is the most records per invocation (1-10, default 1).
	BatchSize int
	// Concurrency is the number of invocations at once (default 2).
	Concurrency int
	// Timeout is the function timeout: the handler's context deadline.
	Timeout time.Duration
	// VisibilityTimeout, when set, overrides the queue's visibility timeout for received
	// messages (how long a message whose handler died stays invisible).
	VisibilityTimeout time.Duration
	// RetryDelay, when set, makes failed records visible again after this long instead of
	// after the queue's visibility timeout (local development does not want to wait minutes).
	RetryDelay time.Duration
	// StopGrace is how long running invocations may go on once Run's context ends: their
	// deadline becomes the end of the grace period (or stays, if earlier), and their context is
	// cancelled when it passes. Zero cancels them at once.
	StopGrace time.Duration
	Logger    *slog.Logger

	// stopAt is when the grace period ends (Unix nanoseconds; 0 while running).
	stopAt atomic.Int64
}

// Run polls until ctx ends, then waits for running invocations.
func (m *Mapping) Run(ctx context.Context) error {
	if m.Client == nil || m.QueueURL == "" || m.Handler == nil {
		return errors.New("event source mapping: client, queue URL and handler are required")
	}
	if m.BatchSize <= 0 || m.BatchSize > 10 {
		m.BatchSize = 1
	}
	if m.Concurrency <= 0 {
		m.Concurrency = 2
	}
	if m.Timeout <= 0 {
		m.Timeout = 30 * time.Second
	}
	if m.Logger == nil {
		m.Logger = slog.Default()
	}
	// Invocations run under base, which outlives ctx by the grace period.
	base, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	defer hardStop()
	stopped := context.AfterFunc(ctx, func() {
		if m.StopGrace <= 0 {
			hardStop()
			return
		}
		m.stopAt.Store(time.Now().Add(m.StopGrace).UnixNano())
		time.AfterFunc(m.StopGrace, hardStop)
	})
	defer stopped()
	var wg sync.WaitGroup
	for range m.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.worker(ctx, base)
		}()
	}
	wg.Wait()
	return nil
}

// invocationContext is a handler's context: its deadline is the function timeout's, or the end
// of the stop grace period once stopping began, whichever is earlier.
type invocationContext struct {
	context.Context
	m *Mapping
}

// Deadline reports the earlier of the timeout's deadline and the end of the stop grace period.
// Unlike most contexts' it can move, once, earlier: a handler that looks at it before each
// piece of work (as the bulk executor does before each device) sees the stop in time.
func (c invocationContext) Deadline() (time.Time, bool) {
	dl, ok := c.Context.Deadline()
	if at := c.m.stopAt.Load(); at != 0 {
		if stop := time.Unix(0, at); !ok || stop.Before(dl) {
			return stop, true
		}
	}
	return dl, ok
}

func (m *Mapping) worker(ctx, base context.Context) {
	for ctx.Err() == nil {
		out, err := m.Client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(m.QueueURL), MaxNumberOfMessages: int32(m.BatchSize), WaitTimeSeconds: 1,
			VisibilityTimeout:           int32(m.VisibilityTimeout / time.Second),
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.Logger.Warn("receive from queue", "queue", m.QueueURL, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if len(out.Messages) == 0 {
			continue
		}
		m.invoke(base, out.Messages)
	}
}

// invoke calls the handler once for msgs and settles each message.
func (m *Mapping) invoke(ctx context.Context, msgs []types.Message) {
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(msgs))}
	for i, msg := range msgs {
		attrs := map[string]string{}
		for k, v := range msg.Attributes {
			attrs[k] = v
		}
		ev.Records[i] = events.SQSMessage{
			MessageId: aws.ToString(msg.MessageId), ReceiptHandle: aws.ToString(msg.ReceiptHandle),
			Body: aws.ToString(msg.Body), Md5OfBody: aws.ToString(msg.MD5OfBody), Attributes: attrs,
			EventSource: "aws:sqs", EventSourceARN: m.QueueARN, AWSRegion: "us-east-1",
		}
	}
	hctx, cancel := context.WithTimeout(ctx, m.Timeout)
	resp, err := m.safeCall(invocationContext{Context: hctx, m: m}, ev)
	cancel()
	failed := map[string]bool{}
	if err != nil {
		m.Logger.Error("handler failed; the batch will be retried", "queue", m.QueueURL, "err", err)
		for _, r := range ev.Records {
			failed[r.MessageId] = true
		}
	}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	var del []types.DeleteMessageBatchRequestEntry
	var retry []types.ChangeMessageVisibilityBatchRequestEntry
	for i, r := range ev.Records {
		id := aws.String(strconv.Itoa(i))
		if failed[r.MessageId] {
			retry = append(retry, types.ChangeMessageVisibilityBatchRequestEntry{Id: id, ReceiptHandle: aws.String(r.ReceiptHandle), VisibilityTimeout: int32(m.RetryDelay / time.Second)})
			continue
		}
		del = append(del, types.DeleteMessageBatchRequestEntry{Id: id, ReceiptHandle: aws.String(r.ReceiptHandle)})
	}
	sctx := context.WithoutCancel(ctx)
	if len(del) > 0 {
		if _, err := m.Client.DeleteMessageBatch(sctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(m.QueueURL), Entries: del}); err != nil {
			m.Logger.Error("delete handled messages", "err", err)
		}
	}
	if len(retry) > 0 && m.RetryDelay > 0 {
		if _, err := m.Client.ChangeMessageVisibilityBatch(sctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(m.QueueURL), Entries: retry}); err != nil {
			m.Logger.Error("release failed messages", "err", err)
		}
	}
}

// safeCall turns a handler panic into an error, as the Lambda runtime reports it.
func (m *Mapping) safeCall(ctx context.Context, ev events.SQSEvent) (resp events.SQSEventResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return m.Handler(ctx, ev)
}
