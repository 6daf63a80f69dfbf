// Package queue sends NetAuto's bulk batch messages to SQS (SendMessageBatch with ten entries a
// call, several calls at once, and retries of the entries SQS did not take) and webhook
// deliveries, each delayed by its backoff.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/webhook"
)

// API is the part of the SQS client the sender uses.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Sender sends batch messages to one queue; it implements bulk.Queue.
type Sender struct {
	client API
	url    string
	// Parallel is the number of SendMessageBatch calls in flight (default 4).
	Parallel int
	// Attempts is how often an entry is tried before it counts as failed (default 4).
	Attempts int
}

// NewSender returns a Sender to the queue at url.
func NewSender(client API, url string) (*Sender, error) {
	if client == nil || url == "" {
		return nil, errors.New("new sender: client and queue URL are required")
	}
	return &Sender{client: client, url: url, Parallel: 4, Attempts: 4}, nil
}

// SendAll sends msgs and returns the indexes of those that could not be sent.
func (s *Sender) SendAll(ctx context.Context, msgs []bulk.Message) ([]int, error) {
	bodies := make([]string, len(msgs))
	for i, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode message %d: %w", i, err)
		}
		bodies[i] = string(b)
	}
	var (
		mu     sync.Mutex
		failed []int
		wg     sync.WaitGroup
		sem    = make(chan struct{}, max(1, s.Parallel))
	)
	for _, idx := range groups(bodies) {
		wg.Add(1)
		sem <- struct{}{}
		go func(idx []int) {
			defer wg.Done()
			defer func() { <-sem }()
			if bad := s.send(ctx, idx, bodies); len(bad) > 0 {
				mu.Lock()
				failed = append(failed, bad...)
				mu.Unlock()
			}
		}(idx)
	}
	wg.Wait()
	return failed, nil
}

// SQS's SendMessageBatch takes at most ten messages of at most 256 KiB together.
const (
	maxBatchEntries = 10
	maxBatchBytes   = 256 << 10
)

// groups splits the indexes of bodies, in order, into SendMessageBatch calls' worth: at most ten
// and at most maxBatchBytes each (a body larger than that alone, for SQS to refuse).
func groups(bodies []string) [][]int {
	var (
		out   [][]int
		cur   []int
		bytes int
	)
	for i, b := range bodies {
		if len(cur) == maxBatchEntries || len(cur) > 0 && bytes+len(b) > maxBatchBytes {
			out, cur, bytes = append(out, cur), nil, 0
		}
		cur = append(cur, i)
		bytes += len(b)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// send sends one group of at most ten messages, retrying the entries that fail.
func (s *Sender) send(ctx context.Context, idx []int, bodies []string) []int {
	attempts := max(1, s.Attempts)
	for attempt := 0; attempt < attempts && len(idx) > 0; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(50<<attempt) * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return idx
			case <-t.C:
			}
		}
		entries := make([]types.SendMessageBatchRequestEntry, len(idx))
		for k, i := range idx {
			entries[k] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(bodies[i])}
		}
		out, err := s.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(s.url), Entries: entries})
		if err != nil {
			continue // the whole call failed: retry every entry
		}
		var retry []int
		for _, f := range out.Failed {
			i, err := strconv.Atoi(aws.ToString(f.Id))
			if err == nil {
				retry = append(retry, i)
			}
		}
		idx = retry
	}
	return idx
}

// SendDelayed sends one message that becomes visible after delay (rounded up to whole seconds,
// at most 15 minutes, as SQS allows).
func (s *Sender) SendDelayed(ctx context.Context, m bulk.Message, delay time.Duration) error {
	if err := sendJSON(ctx, s.client, s.url, m, delay); err != nil {
		return fmt.Errorf("send continuation of job %s batch %d: %w", m.JobID, m.Batch, err)
	}
	return nil
}

// sendJSON sends v as one JSON message visible after delay (rounded up to whole seconds, at most
// SQS's 15 minutes).
func sendJSON(ctx context.Context, client API, url string, v any, delay time.Duration) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	secs := int32(min((delay+time.Second-1)/time.Second, 900))
	_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body)), DelaySeconds: secs})
	return err
}

// Deliveries sends webhook deliveries to the webhook queue; it implements webhook.Queue.
type Deliveries struct {
	client API
	url    string
}

// NewDeliveries returns the delivery sender to the queue at url.
func NewDeliveries(client API, url string) (*Deliveries, error) {
	if client == nil || url == "" {
		return nil, errors.New("new delivery sender: client and queue URL are required")
	}
	return &Deliveries{client: client, url: url}, nil
}

// Send implements webhook.Queue: the delivery becomes visible after delay (at most 15 minutes).
func (d *Deliveries) Send(ctx context.Context, m webhook.Delivery, delay time.Duration) error {
	if err := sendJSON(ctx, d.client, d.url, m, delay); err != nil {
		return fmt.Errorf("send delivery %s attempt %d: %w", m.ID, m.Attempt, err)
	}
	return nil
}

var _ webhook.Queue = (*Deliveries)(nil)

var _ bulk.DelayedQueue = (*Sender)(nil)
