package app_test

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// capturedQueue keeps the enqueuer's batch messages so a benchmark runs them itself.
type capturedQueue struct {
	mu   sync.Mutex
	msgs []bulk.Message
}

func (q *capturedQueue) SendAll(_ context.Context, msgs []bulk.Message) ([]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, msgs...)
	return nil, nil
}

func (q *capturedQueue) take() []bulk.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs
	q.msgs = nil
	return m
}

// timedEngine notes when each device's run ended (its terminal state).
type timedEngine struct {
	next bulk.Engine
	mu   sync.Mutex
	end  map[string]time.Time // host:port -> end of run
}

func (t *timedEngine) Run(ctx context.Context, tg sshexec.Target, command string, sink sshexec.Sink) sshexec.Result {
	res := t.next.Run(ctx, tg, command, sink)
	t.mu.Lock()
	t.end[net.JoinHostPort(tg.Host, strconv.Itoa(tg.Port))] = time.Now()
	t.mu.Unlock()
	return res
}

// runJob enqueues a job over every device and runs its batches as concurrent executor
// invocations (like Lambda instances), then flushes the publisher as the Lambda handler does.
func (e *wsEnv) runJob(b *testing.B, q *capturedQueue, invocations int, subscribe func(jobID string)) (string, time.Duration) {
	b.Helper()
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 30}}, auth.Identity{Subject: "bench@example.com", Role: auth.Operator})
	require.NoError(b, err)
	msgs := q.take()
	if subscribe != nil {
		subscribe(acc.JobID)
	}
	start := time.Now()
	sem := make(chan struct{}, invocations)
	var wg sync.WaitGroup
	for _, m := range msgs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := e.exec.Handle(ctx, m)
			if assert.NoError(b, err, "batch %d", m.Batch) {
				assert.False(b, out.Retry, "batch %d: %+v asks for a retry", m.Batch, out)
			}
		}()
	}
	wg.Wait()
	require.NoError(b, e.pub.Flush(ctx))
	return acc.JobID, time.Since(start)
}

// BenchmarkExecutorSubscribers compares the executor's run time of a 200-device job with no
// subscriber and with 10 (each receiving every event), push included (a run ends after the
// publisher's flush). The two cases alternate, so drift on the shared machine hits both alike.
// Reports ms/job of each and their ratio.
func BenchmarkExecutorSubscribers(b *testing.B) {
	e := newWSEnv(b, devicesim.Spec{Count: 200, Seed: 21})
	q := &capturedQueue{}
	e.enq.Queue, e.exec.Queue = q, nil
	tok := e.token(b, "viewer")
	e.runJob(b, q, 4, nil) // warm up connections and the simulator
	var total [2]time.Duration
	before := e.pub.Stats()
	for b.Loop() {
		for i, subs := range []int{0, 10} {
			var clients []*wsClient
			var views []*view
			subscribe := func(jobID string) {
				for range subs {
					c, _, err := e.dial(b, tok)
					require.NoError(b, err)
					v := newView()
					c.subscribe(b, jobID, v)
					clients, views = append(clients, c), append(views, v)
				}
			}
			_, d := e.runJob(b, q, 4, subscribe)
			total[i] += d
			for k, c := range clients {
				c.follow(b, views[k], time.Minute, nil)
				c.close()
			}
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(total[0].Milliseconds())/n, "ms/job-0subs")
	b.ReportMetric(float64(total[1].Milliseconds())/n, "ms/job-10subs")
	b.ReportMetric(float64(total[1])/float64(total[0]), "ratio")
	if st := e.pub.Stats(); st.Sent > before.Sent {
		b.ReportMetric(float64(st.Posts-before.Posts)/float64(st.Sent-before.Sent), "messages/event")
		// PostToConnection calls per device and subscriber: what docs/scale.md's model counts
		// against API Gateway's account-wide request rate.
		b.ReportMetric(float64(st.Posts-before.Posts)/(float64(len(e.ids))*10*n), "posts/device/subscriber")
	}
}

// BenchmarkPushLatency measures, over a 1,000-device job, the time from a device's terminal state
// (its SSH run returning) to the bulk_progress message arriving at a subscribed WebSocket client,
// with the deployed event source's invocations at once, running as many batches at once as the
// local executor does.
// pushWarm is BenchmarkPushLatency's warm-up, once a process.
var pushWarm sync.Once

func BenchmarkPushLatency(b *testing.B) {
	asExecutor(b)
	// A fresh DynamoDB Local serves its first 1,000-device jobs while its JIT compiler is still at
	// work (p95 two to three times a later job's here): jobs on a fleet of their own first, not
	// measured, so that the measured job is still each of its devices' first run.
	pushWarm.Do(func() {
		w := newWSEnv(b, devicesim.Spec{Count: 1000, Seed: 23})
		wq := &capturedQueue{}
		w.enq.Queue, w.exec.Queue = wq, nil
		w.exec.MaxBatches = stack.ExecutorBatches()
		warm := warmUp(b, w.st.Endpoints.DynamoDB, len(w.ids), func() { w.runJob(b, wq, resources.ExecutorMaxConcurrency, nil) })
		b.Logf("warm-up jobs' DynamoDB Local CPU per device (ms): %s", strings.Join(warm, ", "))
	})
	e := newWSEnv(b, devicesim.Spec{Count: 1000, Seed: 22})
	q := &capturedQueue{}
	e.enq.Queue, e.exec.Queue = q, nil
	te := &timedEngine{next: e.exec.Engine, end: map[string]time.Time{}}
	e.exec.Engine = te
	e.exec.MaxBatches = stack.ExecutorBatches()
	byAddr := map[string]string{}
	for id, d := range e.devs {
		byAddr[id] = net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	}
	tok := e.token(b, "viewer")
	var lat, pushLat []time.Duration
	before := e.pub.Stats()
	for b.Loop() {
		c, _, err := e.dial(b, tok)
		require.NoError(b, err)
		v := newView()
		var got []received
		var jobID string
		e.runJob(b, q, resources.ExecutorMaxConcurrency, func(id string) { jobID = id; c.subscribe(b, id, v) })
		_ = jobID
		for !v.done {
			r := c.next(b, time.Minute)
			v.apply(b, r)
			got = append(got, r)
		}
		c.close()
		te.mu.Lock()
		for _, r := range got {
			if r.msg.Type == bulk.EventProgress && run.Status(r.msg.Status).Terminal() {
				if end, ok := te.end[byAddr[r.msg.DeviceID]]; ok {
					lat = append(lat, r.at.Sub(end))
					pushLat = append(pushLat, r.at.Sub(r.msg.At))
				}
			}
		}
		te.mu.Unlock()
	}
	require.NotEmpty(b, lat, "no latencies measured")
	slices.Sort(lat)
	slices.Sort(pushLat)
	pct := func(l []time.Duration, p float64) float64 {
		return float64(l[min(len(l)-1, int(p*float64(len(l))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(lat, 0.50), "p50-ms")
	b.ReportMetric(pct(lat, 0.95), "p95-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	// The part after the event was recorded (its "at"): publisher, gateway and client.
	b.ReportMetric(pct(pushLat, 0.50), "push-p50-ms")
	b.ReportMetric(pct(pushLat, 0.95), "push-p95-ms")
	b.ReportMetric(float64(len(lat))/float64(b.N), "devices/job")
	// PostToConnection calls per device for the one subscriber, with one batch's sessions at a
	// time in the process as in a Lambda instance: what the README's cost model counts.
	if st := e.pub.Stats(); st.Sent > before.Sent {
		b.ReportMetric(float64(st.Posts-before.Posts)/float64(st.Sent-before.Sent), "messages/event")
		b.ReportMetric(float64(st.Posts-before.Posts)/float64(len(e.ids)*b.N), "posts/device")
	}
}
