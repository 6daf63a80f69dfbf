package eventsource

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeQueue hands out one message, then long-polls until the poller stops; it records deletes.
type fakeQueue struct {
	mu      sync.Mutex
	sent    bool
	deleted []string
}

func (q *fakeQueue) ReceiveMessage(ctx context.Context, _ *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q.mu.Lock()
	first := !q.sent
	q.sent = true
	q.mu.Unlock()
	if first {
		return &sqs.ReceiveMessageOutput{Messages: []types.Message{{MessageId: aws.String("m1"), ReceiptHandle: aws.String("r1"), Body: aws.String("{}")}}}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (q *fakeQueue) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		q.deleted = append(q.deleted, aws.ToString(e.ReceiptHandle))
	}
	return &sqs.DeleteMessageBatchOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibilityBatch(context.Context, *sqs.ChangeMessageVisibilityBatchInput, ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	return &sqs.ChangeMessageVisibilityBatchOutput{}, nil
}

func (q *fakeQueue) deletedHandles() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.deleted...)
}

// deadlineMoved waits, bounded, until ctx's deadline is no later than by.
func deadlineMoved(ctx context.Context, by time.Time) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(5 * time.Second)
	for {
		if dl, ok := ctx.Deadline(); ok && !dl.After(by) {
			return true
		}
		select {
		case <-tick.C:
		case <-limit:
			return false
		}
	}
}

func TestStopWindsInvocationsDown(t *testing.T) {
	const timeout = time.Minute
	tests := []struct {
		name  string
		grace time.Duration
		// handle is the handler's body once the poller was told to stop.
		handle      func(ctx context.Context) error
		wantDeleted bool
	}{
		{
			name: "without a grace period a running invocation is cancelled at once",
			handle: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
		},
		{
			name:  "with one its deadline moves to the grace period's end and its work finishes",
			grace: 30 * time.Second,
			handle: func(ctx context.Context) error {
				// The grace period began when the poller was told to stop, just before now.
				if !deadlineMoved(ctx, time.Now().Add(31*time.Second)) {
					return errors.New("the deadline did not move to the end of the grace period")
				}
				return ctx.Err() // not cancelled: the grace period runs
			},
			wantDeleted: true,
		},
		{
			name:  "work still running when the grace period ends is cancelled",
			grace: 200 * time.Millisecond,
			handle: func(ctx context.Context) error {
				<-ctx.Done()
				return ctx.Err()
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQueue{}
			started := make(chan struct{})
			stopped := make(chan struct{})
			var handled error
			m := &Mapping{
				Client: q, QueueURL: "q", Concurrency: 1, Timeout: timeout, StopGrace: tc.grace,
				Handler: func(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
					close(started)
					<-stopped
					handled = tc.handle(ctx)
					return events.SQSEventResponse{}, handled
				},
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				require.FailNow(t, "the handler was never invoked")
			}
			cancel()
			close(stopped)
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(timeout / 2):
				require.FailNow(t, "Run did not return after its context ended")
			}
			if tc.wantDeleted {
				require.NoError(t, handled)
				assert.Equal(t, []string{"r1"}, q.deletedHandles())
			} else {
				require.ErrorIs(t, handled, context.Canceled)
				assert.Empty(t, q.deletedHandles(), "a cancelled invocation's message was deleted")
			}
		})
	}
}
