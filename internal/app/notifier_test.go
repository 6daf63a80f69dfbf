package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/eventsource"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/webhook"
)

// TestNotifierFunctionDeliversEvents runs the notifier as deployed (configuration from the
// environment, the sample EventBridge event through its Lambda handler) on the local stack: the
// event is fanned out to the webhook queue, the queue's event source hands the delivery to the
// same function, the receiver's 500 is retried through a new queue message, and the second
// attempt arrives signed with the secret the webhook was created with.
func TestNotifierFunctionDeliversEvents(t *testing.T) {
	st := stacktest.New(t)
	st.Setenv(t)
	t.Setenv(config.EnvSecrets, "file:"+t.TempDir())
	t.Setenv(config.EnvWebhookAllowLoopback, "1") // the receiver is on loopback
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg, err := config.Load(config.Notifier, os.Getenv)
	require.NoError(t, err)

	type hit struct {
		header http.Header
		body   []byte
	}
	hits := make(chan hit, 10)
	var mu sync.Mutex
	calls := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		hits <- hit{r.Header.Clone(), b}
		if first {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()

	awsCfg, err := app.AWSConfig(ctx)
	require.NoError(t, err)
	store, err := dynamo.NewWebhookStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.WebhooksTable])
	require.NoError(t, err)
	sec, err := app.WebhookSecrets(cfg, awsCfg)
	require.NoError(t, err)
	reg, err := webhook.NewRegistry(store, sec, webhook.AllowLoopback())
	require.NoError(t, err)
	h, secret, err := reg.Create(ctx, webhook.Input{Name: "local", URL: rcv.URL + "/hook", AllowPrivateCIDRs: []string{"127.0.0.0/8"}})
	require.NoError(t, err)

	n, err := app.NewNotifier(ctx, cfg, app.NotifierOptions{Backoff: []time.Duration{0}})
	require.NoError(t, err)
	raw, err := os.ReadFile("../../events/eventbridge-job-finished.json")
	require.NoError(t, err)
	resp, err := n.Handler()(ctx, raw)
	require.NoError(t, err, "the EventBridge event")
	assert.Nil(t, resp, "an EventBridge invocation answers nothing")

	m := &eventsource.Mapping{Client: stack.SQSClient(st.Endpoints.SQS), QueueURL: st.Names.Queues[resources.WebhookQueue],
		Handler: n.HandleSQS, BatchSize: 10, Timeout: time.Duration(resources.NotifierTimeoutSeconds) * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var got []hit
	timeout := time.After(30 * time.Second)
	for len(got) < 2 {
		select {
		case x := <-hits:
			got = append(got, x)
		case <-timeout:
			require.FailNow(t, "the receiver got fewer than 2 requests", "%d", len(got))
		}
	}
	last := got[1]
	assert.Equal(t, "Job Finished", last.header.Get(webhook.HeaderEvent))
	assert.Equal(t, webhook.DeliveryID("6a7e8feb-b491-4cf7-a9f1-bf3703467718", h.ID), last.header.Get(webhook.HeaderDelivery))
	assert.Equal(t, got[0].header.Get(webhook.HeaderDelivery), last.header.Get(webhook.HeaderDelivery), "a retry is the same delivery")
	require.NoError(t, webhook.Verify(secret, last.header.Get(webhook.HeaderTimestamp), last.header.Get(webhook.HeaderSignature), last.body, time.Now(), time.Minute))

	// The log is written before the next attempt is queued: both attempts are in it by now, but
	// the second's entry may still be on its way.
	require.Eventually(t, func() bool {
		log, _, err := reg.Attempts(ctx, h.ID, "", 10)
		return err == nil && len(log) == 2
	}, 10*time.Second, 20*time.Millisecond)
	log, _, err := reg.Attempts(ctx, h.ID, "", 10)
	require.NoError(t, err)
	assert.Equal(t, webhook.OutcomeDelivered, log[0].Outcome)
	assert.Equal(t, 204, log[0].StatusCode)
	assert.Equal(t, webhook.OutcomeRetrying, log[1].Outcome)
	assert.Equal(t, 500, log[1].StatusCode)
}

// TestNotifierHandlerDropsDeliveriesOfGoneWebhooks feeds the sample SQS record (a delivery to a
// webhook that does not exist) to the Lambda handler: no failure is reported, so SQS deletes it.
func TestNotifierHandlerDropsDeliveriesOfGoneWebhooks(t *testing.T) {
	st := stacktest.New(t)
	st.Setenv(t)
	t.Setenv(config.EnvSecrets, "file:"+t.TempDir())
	t.Setenv(config.EnvWebhookAllowLoopback, "1") // the receiver is on loopback
	ctx := context.Background()
	cfg, err := config.Load(config.Notifier, os.Getenv)
	require.NoError(t, err)
	n, err := app.NewNotifier(ctx, cfg, app.NotifierOptions{})
	require.NoError(t, err)
	raw, err := os.ReadFile("../../events/sqs-webhook-delivery.json")
	require.NoError(t, err)
	resp, err := n.Handler()(ctx, raw)
	require.NoError(t, err)
	require.NotNil(t, resp)
	assert.Empty(t, resp.BatchItemFailures)
	_, err = n.Handler()(ctx, []byte(`{"hello":"world"}`))
	assert.Error(t, err, "neither kind of invocation")
}
