package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// testClock is a settable clock for the watchdog.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newWatchdog builds a watchdog over the test's stores and queue, with the bulk queue's real
// redelivery window as its threshold and clock as its clock.
func newWatchdog(t *testing.T, e *bulkEnv, clock *testClock, emf *bytes.Buffer) *bulk.Watchdog {
	t.Helper()
	sender, err := queue.NewSender(stack.SQSClient(e.st.Endpoints.SQS), e.st.Names.Queues[resources.BulkQueue])
	require.NoError(t, err)
	w, err := bulk.NewWatchdog(&bulk.Watchdog{
		Jobs: e.jobs, Runs: e.runs, Queue: sender, Logger: e.exec.Logger, Metrics: metrics.New(&lockedWriter{w: emf}),
		StaleAfter: app.BulkStaleAfter(), Period: resources.WatchdogPeriod, Now: clock.Now,
	})
	require.NoError(t, err)
	return w
}

// takeMessages receives and deletes every message on the bulk queue, as a purge or a consumer
// that lost them would, and returns them.
func takeMessages(t *testing.T, e *bulkEnv) []bulk.Message {
	t.Helper()
	client := stack.SQSClient(e.st.Endpoints.SQS)
	url := e.st.Names.Queues[resources.BulkQueue]
	var out []bulk.Message
	for {
		res, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
		})
		require.NoError(t, err)
		if len(res.Messages) == 0 {
			sort.Slice(out, func(i, j int) bool { return out[i].Batch < out[j].Batch })
			return out
		}
		for _, m := range res.Messages {
			var b bulk.Message
			require.NoError(t, json.Unmarshal([]byte(aws.ToString(m.Body)), &b))
			out = append(out, b)
			_, err := client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			require.NoError(t, err)
		}
	}
}

// batchTimes reads a batch item's updated_at and resent_at (epoch ms; 0 when absent).
func batchTimes(t *testing.T, e *bulkEnv, jobID string, batch int) (updated, resent int64) {
	t.Helper()
	out, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(e.st.Names.Tables[resources.JobsTable]), ConsistentRead: aws.Bool(true),
		Key: batchItemKey(jobID, batch),
	})
	require.NoError(t, err)
	require.NotEmpty(t, out.Item, "batch %d of job %s", batch, jobID)
	num := func(name string) int64 {
		v, ok := out.Item[name].(*dtypes.AttributeValueMemberN)
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		require.NoError(t, err)
		return n
	}
	return num("updated_at"), num("resent_at")
}

// batchItemKey is the key of a batch item of a job created by this code (the jobs table's layout:
// each batch under a partition key of its own).
func batchItemKey(jobID string, batch int) map[string]dtypes.AttributeValue {
	return map[string]dtypes.AttributeValue{
		resources.AttrPK: &dtypes.AttributeValueMemberS{Value: fmt.Sprintf("JOB#%s#B%05d", jobID, batch)},
		resources.AttrSK: &dtypes.AttributeValueMemberS{Value: fmt.Sprintf("BATCH#%05d", batch)},
	}
}

// setUpdatedAt stands in for an executor recording progress at at.
func setUpdatedAt(t *testing.T, e *bulkEnv, jobID string, batch int, at time.Time) {
	t.Helper()
	_, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.st.Names.Tables[resources.JobsTable]),
		Key:                       batchItemKey(jobID, batch),
		UpdateExpression:          aws.String("SET updated_at = :at"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]dtypes.AttributeValue{":at": &dtypes.AttributeValueMemberN{Value: strconv.FormatInt(at.UnixMilli(), 10)}},
	})
	require.NoError(t, err)
}

func TestWatchdogResendsThenFailsLostBatches(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 6, Seed: 21})
	e.enq.BatchSize = 3
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	require.Equal(t, 2, acc.Batches)
	// The queue loses both messages before any executor sees them.
	require.Len(t, takeMessages(t, e), 2)

	emf := &bytes.Buffer{}
	clock := &testClock{t: time.Now().UTC().Add(time.Minute)}
	w := newWatchdog(t, e, clock, emf)
	rep, err := w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{Jobs: 1}, rep, "nothing is stale before the redelivery window has passed")
	assert.Empty(t, takeMessages(t, e))

	stale := clock.Now().Add(app.BulkStaleAfter())
	clock.Set(stale)
	rep, err = w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{Jobs: 1, Resent: 2}, rep)
	job, err := e.jobs.GetJob(ctx, acc.JobID)
	require.NoError(t, err)
	resent := takeMessages(t, e) // the re-sent messages are on the queue; the queue loses them again
	assert.Equal(t, []bulk.Message{
		bulk.MessageFor(job, 0, e.ids[:3]), bulk.MessageFor(job, 1, e.ids[3:]),
	}, resent, "each lost batch is re-sent once, as the same message")
	for b := range 2 {
		_, resentAt := batchTimes(t, e, acc.JobID, b)
		assert.Equal(t, stale.UnixMilli(), resentAt, "batch %d marked re-sent", b)
	}

	// Within the period after the re-send nothing more happens.
	clock.Set(stale.Add(time.Minute))
	rep, err = w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{Jobs: 1}, rep)
	assert.Empty(t, takeMessages(t, e), "a batch is re-sent once")

	// One period after the re-send, still unchanged: the devices end delivery_lost.
	clock.Set(stale.Add(resources.WatchdogPeriod))
	rep, err = w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{Jobs: 1, Lost: 2, DevicesLost: 6}, rep)
	j, err := e.jobs.GetJob(ctx, acc.JobID)
	require.NoError(t, err)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	assert.Equal(t, 2, j.BatchesDone)
	for _, s := range run.Statuses() {
		want := 0
		if s == run.Failed {
			want = 6
		}
		assert.Equal(t, want, j.Counts[s], "count of %s", s)
	}
	states := e.allDevices(t, acc.JobID)
	require.Len(t, states, 6)
	for id, st := range states {
		assert.Equal(t, run.Failed, st.Status, "device %s", id)
		assert.Equal(t, bulk.ReasonDeliveryLost, st.Reason, "device %s", id)
	}
	// Clients catching up read the devices' progress, and the job's end.
	events, next, err := e.jobs.Events(ctx, acc.JobID, 0, "", 100)
	require.NoError(t, err)
	assert.Empty(t, next, "one page")
	var lost, done int
	for _, ev := range events {
		switch {
		case ev.Type == bulk.EventProgress && ev.Reason == bulk.ReasonDeliveryLost && ev.Status == string(run.Failed):
			lost++
		case ev.Type == bulk.EventJobDone:
			done++
		}
	}
	assert.Equal(t, 6, lost, "one delivery_lost event per device")
	assert.Equal(t, 1, done, "one job_done event")
	assert.Contains(t, e.logText(), `"reason":"delivery_lost"`, "the loss is logged")
	assert.Contains(t, emf.String(), `"DevicesLost":3`, "the loss is measured")

	// Exactly once: later sweeps find nothing left to do, and no message was sent.
	clock.Set(stale.Add(3 * resources.WatchdogPeriod))
	rep, err = w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{}, rep, "an ended job leaves the unfinished list")
	assert.Empty(t, takeMessages(t, e))
	j2, err := e.jobs.GetJob(ctx, acc.JobID)
	require.NoError(t, err)
	assert.Equal(t, j.Counts, j2.Counts)
	assert.Equal(t, j.Seq, j2.Seq)
}

func TestWatchdogResentBatchRunsToSuccess(t *testing.T) {
	e := newBulkEnv(t, devicesim.Spec{Count: 6, Seed: 22})
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	require.Len(t, takeMessages(t, e), 1)

	// The watchdog function as deployed: configuration from the environment, a scheduled event.
	e.st.Setenv(t)
	cfg, err := config.Load(config.Watchdog, os.Getenv)
	require.NoError(t, err)
	clock := &testClock{t: time.Now().UTC().Add(app.BulkStaleAfter() + time.Minute)}
	handler, _, err := app.NewWatchdog(ctx, cfg, app.WatchdogOptions{Logger: e.exec.Logger, Now: clock.Now})
	require.NoError(t, err)
	raw, err := os.ReadFile("../../events/schedule-watchdog.json")
	require.NoError(t, err)
	var ev events.EventBridgeEvent
	require.NoError(t, json.Unmarshal(raw, &ev))
	rep, err := handler(ctx, ev)
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{Jobs: 1, Resent: 1}, rep)

	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	assert.Equal(t, 6, j.Counts[run.Succeeded], "counts %v", j.Counts)
	e.checkAccounting(t, j, e.allDevices(t, acc.JobID))

	// A period later the job has ended: nothing is failed.
	clock.Set(clock.Now().Add(resources.WatchdogPeriod))
	rep, err = handler(ctx, ev)
	require.NoError(t, err)
	assert.Zero(t, rep.Lost)
	assert.Zero(t, rep.Resent)
}

func TestWatchdogLeavesProgressingAndWaitingJobsAlone(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 9, Seed: 23})
	e.enq.BatchSize = 3
	ctx := context.Background()
	enqueue := func(ids []string, opts bulk.Options) bulk.Accepted {
		t.Helper()
		opts.TimeoutS = 5
		acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: ids, Options: opts}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
		require.NoError(t, err)
		return acc
	}
	progressing := enqueue(e.ids[:3], bulk.Options{})
	waiting := enqueue(e.ids[3:9], bulk.Options{MaxConcurrency: 3}) // batch 0 sent, batch 1 waits its turn
	lost := enqueue(e.ids[:3], bulk.Options{})
	require.Len(t, takeMessages(t, e), 3, "no executor ever sees these jobs' messages")

	now := time.Now().UTC().Add(app.BulkStaleAfter() + time.Hour)
	// Executors recorded progress on the first two jobs' sent batches a minute ago.
	setUpdatedAt(t, e, progressing.JobID, 0, now.Add(-time.Minute))
	setUpdatedAt(t, e, waiting.JobID, 0, now.Add(-time.Minute))
	clock := &testClock{t: now}
	w := newWatchdog(t, e, clock, &bytes.Buffer{})
	for _, at := range []time.Time{now, now.Add(resources.WatchdogPeriod), now.Add(2 * resources.WatchdogPeriod)} {
		clock.Set(at)
		_, err := w.Sweep(ctx)
		require.NoError(t, err)
	}
	got := takeMessages(t, e)
	require.Len(t, got, 1, "only the lost job's batch is re-sent")
	assert.Equal(t, lost.JobID, got[0].JobID)
	for _, id := range []string{progressing.JobID, waiting.JobID} {
		j, err := e.jobs.GetJob(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, bulk.JobQueued, j.Status, "job %s untouched", id)
		assert.Zero(t, j.Counts[run.Failed], "job %s has no failed device", id)
		_, resent := batchTimes(t, e, id, 0)
		assert.Zero(t, resent, "job %s was not re-sent", id)
	}
	pending, err := e.jobs.PendingBatches(ctx, waiting.JobID)
	require.NoError(t, err)
	assert.Equal(t, []int{1}, pending, "the waiting batch still waits its turn")
	j, err := e.jobs.GetJob(ctx, lost.JobID)
	require.NoError(t, err)
	assert.Equal(t, bulk.JobCompleted, j.Status, "the control job was lost and ended")
	assert.Equal(t, 3, j.Counts[run.Failed])
}

// TestBatchWritesMarkUpdatedAt checks that every write that changes a batch moves its
// updated_at (the watchdog's sign of progress).
func TestBatchWritesMarkUpdatedAt(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 2, Seed: 24})
	e.enq.BatchSize = 1
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{MaxConcurrency: 1}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	job, err := e.jobs.GetJob(ctx, acc.JobID)
	require.NoError(t, err)
	for b := range 2 {
		updated, _ := batchTimes(t, e, acc.JobID, b)
		require.NotZero(t, updated, "batch %d written without updated_at", b)
	}
	id := e.ids[0]
	steps := []struct {
		name  string
		batch int
		write func() error
	}{
		{"claim", 0, func() error {
			_, err := e.jobs.ClaimBatch(ctx, acc.JobID, 0, "h1", time.Now().Add(time.Minute))
			return err
		}},
		{"record", 0, func() error {
			_, err := e.jobs.Record(ctx, acc.JobID, 0, []bulk.Change{{DeviceID: id, From: run.Queued, To: run.Running, RunID: bulk.RunID(acc.JobID, id)}})
			return err
		}},
		{"release", 0, func() error { return e.jobs.ReleaseBatch(ctx, acc.JobID, 0, "h1") }},
		{"finish", 0, func() error {
			_, err := e.jobs.FinishBatch(ctx, acc.JobID, 0)
			return err
		}},
		{"sent", 1, func() error {
			b, _, ok, err := e.jobs.ClaimPendingBatch(ctx, job.ID)
			if err == nil {
				assert.True(t, ok, "no pending batch claimed")
				assert.Equal(t, 1, b, "claimed pending batch")
			}
			return err
		}},
	}
	for _, s := range steps {
		setUpdatedAt(t, e, acc.JobID, s.batch, time.UnixMilli(1)) // long ago
		require.NoError(t, s.write(), s.name)
		updated, _ := batchTimes(t, e, acc.JobID, s.batch)
		assert.Greater(t, updated, int64(1), "%s did not move updated_at", s.name)
	}
}
