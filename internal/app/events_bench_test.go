package app_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	standin "github.com/netauto/netauto/infra/eventbus"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/eventbus"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/resources"
)

// BenchmarkJobFinishedEvent runs 1,000-device jobs (10 devices refusing) on the local stack with
// the executor publishing to the PutEvents stand-in, and reports how long after the job's end its
// Job Finished event arrives (median over the jobs) and the DynamoDB reads the notices made per
// job: the claim, the job's device states, the failed devices' names.
func BenchmarkJobFinishedEvent(b *testing.B) {
	const n = 1000
	e := newBulkEnv(b, devicesim.Spec{Count: n, Seed: 31, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}},
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 10}}})
	bus, err := standin.Start(context.Background(), "127.0.0.1:0", standin.Options{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = bus.Close() })
	pub, err := eventbus.New(eventbridge.New(eventbridge.Options{Region: standin.Region, BaseEndpoint: aws.String(bus.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}), "default")
	require.NoError(b, err)
	e.exec.Notices = &bulk.Notices{Publisher: pub, Claims: e.jobs, Runs: e.runs, Devices: e.devices}
	e.startWorkers(b, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), resources.ExecutorMaxConcurrency)

	var lags []time.Duration
	b.ResetTimer()
	for range b.N {
		acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "uname -a", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}},
			auth.Identity{Subject: "bench@example.com", Role: auth.Operator})
		require.NoError(b, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		got, err := bus.WaitFor(ctx, func(es []events.CloudWatchEvent) bool {
			return slices.ContainsFunc(es, func(ev events.CloudWatchEvent) bool { return isJobFinished(ev, acc.JobID) })
		})
		arrived := time.Now()
		cancel()
		require.NoError(b, err)
		j, err := e.jobs.GetJob(context.Background(), acc.JobID)
		require.NoError(b, err)
		require.NotNil(b, j.FinishedAt)
		lags = append(lags, arrived.Sub(*j.FinishedAt))
		i := slices.IndexFunc(got, func(ev events.CloudWatchEvent) bool { return isJobFinished(ev, acc.JobID) })
		var d notify.JobFinished
		require.NoError(b, json.Unmarshal(got[i].Detail, &d))
		require.GreaterOrEqual(b, len(d.Failed), 10, "the refusing devices are listed (more fail on a loaded machine: auth_timeout)")
	}
	b.StopTimer()
	slices.Sort(lags)
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "ms-event-after-end")
}

func isJobFinished(ev events.CloudWatchEvent, jobID string) bool {
	var d struct {
		JobID string `json:"job_id"`
	}
	return ev.DetailType == notify.DetailTypeJobFinished && json.Unmarshal(ev.Detail, &d) == nil && d.JobID == jobID
}
