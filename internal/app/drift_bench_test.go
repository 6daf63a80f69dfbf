package app_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// BenchmarkDriftNights runs show running-config for some nights on a simulated fleet whose
// configurations' noise lines (change and save times, ntp clock-period, the byte count) change
// at every showing and which really changes on 2% of the devices each night: every night the
// runs' changed must be true exactly for those devices. It reports the DynamoDB write and read
// units per device-run of a steady night (the third, counted: counting slows DynamoDB Local; the
// first night keeps its outputs inline, as they have no previous run, and the second stores each
// device's body once),
// and, at the end, the bytes charged to the devices against the bytes stored (outputs stored once).
// NET_AUTO_DRIFT_DEVICES and NET_AUTO_DRIFT_NIGHTS set the fleet's size (default 1,000) and the
// nights (default 30).
func BenchmarkDriftNights(b *testing.B) {
	n, nights := envInt(b, "NET_AUTO_DRIFT_DEVICES", 1000), envInt(b, "NET_AUTO_DRIFT_NIGHTS", 30)
	e := newBulkEnv(b, devicesim.Spec{Count: n, Seed: 30, ConfigNoise: true})
	filters, err := dynamo.NewFilterStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.DevicesTable])
	require.NoError(b, err)
	e.exec.Noise = filters
	e.startWorkers(b, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 1)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(30, 2))
	for b.Loop() {
		for night := 1; night <= nights; night++ {
			changed := map[string]bool{}
			if night > 1 {
				for len(changed) < max(1, n/50) {
					id := e.ids[rng.IntN(len(e.ids))]
					if !changed[id] {
						changed[id] = true
						e.fleet.SetConfigRevision(id, night)
					}
				}
			}
			count := night == min(3, nights)
			if count {
				e.writes.units.Store(true)
			}
			before, tablesBefore := e.writes.snapshot(), e.writes.tableUnits()
			start := time.Now()
			acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show running-config", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 10}},
				auth.Identity{Subject: "nightly@example.com", Role: auth.Operator})
			require.NoError(b, err, "night %d", night)
			j := e.waitJob(b, acc.JobID, 10*time.Minute)
			took := time.Since(start)
			if count {
				e.writes.units.Store(false)
				after := e.writes.snapshot()
				_, _, wu := writes(after)
				_, _, wu0 := writes(before)
				ru, pollRU := readUnits(before, after)
				b.Logf("night %d DynamoDB requests:\n%s", night, e.writes.report(before, n))
				b.ReportMetric((wu-wu0)/float64(n), "ddb-wru/device-run")
				b.ReportMetric(ru/float64(n), "ddb-rru/device-run")
				b.ReportMetric(pollRU/float64(n), "poll-rru/device-run")
				b.ReportMetric((after["Query"].Units-before["Query"].Units)/float64(n), "ddb-query-rru/device-run")
				tables := e.writes.tableUnits()
				for _, t := range []struct{ id, metric string }{{resources.RunsTable, "runs-table-wru/device-run"}, {resources.JobsTable, "jobs-table-wru/device-run"}} {
					name := e.st.Names.Tables[t.id]
					b.ReportMetric((tables[name]-tablesBefore[name])/float64(n), t.metric)
				}
			}
			if j.Counts[run.Succeeded] != n {
				st := e.allDevices(b, acc.JobID)[e.ids[0]]
				require.Failf(b, "devices failed", "night %d: counts %v; %s: %s", night, j.Counts, e.ids[0], st.Reason)
			}
			wrong := 0
			for id, st := range e.allDevices(b, acc.JobID) {
				want := changed[id]
				switch {
				case night == 1 && st.Changed != nil:
					wrong++
				case night > 1 && (st.Changed == nil || *st.Changed != want):
					wrong++
				}
			}
			require.Zero(b, wrong, "night %d: devices whose changed is wrong", night)
			b.Logf("night %d: %d devices in %v, %d changed, all flagged exactly", night, n, took.Round(time.Millisecond), len(changed))
			if count {
				// What one unchanged run's item costs to write (1 WRU per KB).
				out, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.st.Names.Tables[resources.RunsTable]),
					Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "RUN#" + bulk.RunID(acc.JobID, e.ids[0])}, "sk": &types.AttributeValueMemberS{Value: "META"}}})
				require.NoError(b, err)
				b.Logf("night %d: a run item is %d bytes", night, itemSize(out.Item))
				b.ReportMetric(float64(itemSize(out.Item)), "run-item-bytes")
			}
		}
	}
	b.ReportMetric(float64(nights), "nights")
	// What the nights stored: every device's charged bytes (its runs' exact outputs) against the
	// bytes actually stored (what the runs keep themselves, and each shared body once).
	var use run.Usage
	for _, id := range e.ids {
		u, err := e.runs.DeviceUsage(ctx, id)
		require.NoError(b, err)
		use.ChargedBytes += u.ChargedBytes
		use.StoredBytes += u.StoredBytes
	}
	shared, err := e.runs.SharedBytes(ctx)
	require.NoError(b, err)
	use.StoredBytes += shared
	b.Logf("after %d nights: charged %d bytes, stored %d bytes (%d in shared bodies): stored/charged %.4f",
		nights, use.ChargedBytes, use.StoredBytes, shared, float64(use.StoredBytes)/float64(use.ChargedBytes))
	b.ReportMetric(float64(use.ChargedBytes), "charged-bytes")
	b.ReportMetric(float64(use.StoredBytes), "stored-bytes")
	b.ReportMetric(float64(use.StoredBytes)/float64(use.ChargedBytes), "stored/charged")
}

// envInt reads a positive whole number from the environment, def when unset.
func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, "%s=%q", name, v)
	require.Positive(tb, n, fmt.Sprintf("%s must be positive", name))
	return n
}
