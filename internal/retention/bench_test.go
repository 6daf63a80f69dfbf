package retention_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// countingDB counts the items every read returns or examines: Query and Scan by ScannedCount
// (items read before any filter), GetItem by the item found, BatchGetItem by its responses.
type countingDB struct {
	dynamo.API
	read    atomic.Int64
	deleted atomic.Int64
}

// DeleteItem counts the items it deletes.
func (c *countingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	out, err := c.API.DeleteItem(ctx, in, opts...)
	if err == nil {
		c.deleted.Add(1)
	}
	return out, err
}

// TransactWriteItems counts the items a committed transaction deletes.
func (c *countingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := c.API.TransactWriteItems(ctx, in, opts...)
	if err == nil {
		for _, it := range in.TransactItems {
			if it.Delete != nil {
				c.deleted.Add(1)
			}
		}
	}
	return out, err
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.API.Query(ctx, in, opts...)
	if err == nil {
		c.read.Add(int64(out.ScannedCount))
	}
	return out, err
}

func (c *countingDB) Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.API.Scan(ctx, in, opts...)
	if err == nil {
		c.read.Add(int64(out.ScannedCount))
	}
	return out, err
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.API.GetItem(ctx, in, opts...)
	if err == nil && out.Item != nil {
		c.read.Add(1)
	}
	return out, err
}

func (c *countingDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	out, err := c.API.BatchGetItem(ctx, in, opts...)
	if err == nil {
		for _, items := range out.Responses {
			c.read.Add(int64(len(items)))
		}
	}
	return out, err
}

// BenchmarkPurgeAge seeds a runs table of NETAUTO_RETENTION_BENCH_RUNS runs (default 200,000)
// over 1,000 devices, created evenly over 100 days, half of them with a small output (inline in the run item) and
// a third in one of 100 finished bulk jobs, then purges with a 90-day limit (10% due). It reports
// items read per item deleted, deleted items per second and the seed time. The table is seeded
// once; run it with -benchtime 1x.
func BenchmarkPurgeAge(b *testing.B) {
	n := 200_000
	if v := os.Getenv("NETAUTO_RETENTION_BENCH_RUNS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err, "NETAUTO_RETENTION_BENCH_RUNS=%q: want a number >= 1000", v)
		require.GreaterOrEqual(b, n, 1000, "NETAUTO_RETENTION_BENCH_RUNS=%q: want a number >= 1000", v)
	}
	const devices, days, maxDays = 1000, 100, 90
	st := stacktest.New(b)
	raw := stack.DynamoDBClient(st.Endpoints.DynamoDB)
	runsTable, jobsTable := st.Names.Tables[resources.RunsTable], st.Names.Tables[resources.JobsTable]
	runs, err := dynamo.NewRunStore(raw, runsTable, time.Minute)
	require.NoError(b, err, "new run store")
	ctx := context.Background()
	now := time.Now().UTC()
	seedStart := time.Now()
	for j := range days {
		_, err := raw.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(jobsTable), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprintf("JOB#bench-%03d", j)}, "sk": &types.AttributeValueMemberS{Value: "META"},
			"status": &types.AttributeValueMemberS{Value: "completed"},
		}})
		require.NoError(b, err, "put job bench-%03d", j)
	}
	seed := make([]seedRun, 0, n)
	output := []byte("Router uptime 42d")
	due := 0
	for i := range n {
		// Evenly over the days, oldest first; the last 10 days' worth are due.
		age := time.Duration(float64(days*24*time.Hour) * (float64(i) + 0.5) / float64(n))
		r := run.Run{ID: fmt.Sprintf("bench-%07d", i), DeviceID: fmt.Sprintf("dev-%04d", i%devices), Command: "show version",
			RequestedBy: "bench", Status: run.Succeeded, CreatedAt: now.Add(-age)}
		if i%3 == 0 {
			r.JobID = fmt.Sprintf("bench-%03d", int(age/(24*time.Hour)))
		}
		sr := seedRun{Run: r}
		if i%2 == 0 {
			sr.Output = output
		}
		if age > maxDays*24*time.Hour {
			due++
		}
		seed = append(seed, sr)
	}
	require.NoError(b, seedRuns(ctx, runs, seed, 256), "seed runs")
	seedTime := time.Since(seedStart)
	b.Logf("seeded %d runs (%d due) on 1,000 devices in %s (%.0f runs/s)", n, due, seedTime.Round(time.Millisecond), float64(n)/seedTime.Seconds())

	db := &countingDB{API: raw}
	store, err := dynamo.NewRetentionStore(db, runsTable, jobsTable)
	require.NoError(b, err, "new retention store")
	var rep retention.Report
	var elapsed, first time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := &retention.Purger{Store: store, Jobs: store, Settings: retention.Settings{MaxDays: maxDays},
			Now: func() time.Time { return now }, Lookback: 30 * 24 * time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: metrics.New(io.Discard)}
		start := time.Now()
		r, err := p.Purge(ctx, "bench")
		require.NoError(b, err, "purge")
		elapsed += time.Since(start)
		if i == 0 {
			rep, first = r, time.Since(start)
		}
	}
	b.StopTimer()
	a := rep.Age
	deleted := db.deleted.Load() // items: run items and chunk items (an inline tail goes with its run item)
	require.Equal(b, int64(due), a.RunsDeleted, "runs the purge deleted")
	require.True(b, rep.Complete, "purge Complete")
	read := db.read.Load()
	b.ReportMetric(float64(read)/float64(deleted), "items_read/item_deleted")
	b.ReportMetric(float64(deleted)/first.Seconds(), "deleted_items/s")
	b.ReportMetric(seedTime.Seconds(), "seed_s")
	b.Logf("purge: %d runs with %d pieces of output (%d bytes) deleted, %d items, in %s; %d items read (all iterations: %d, %s)",
		a.RunsDeleted, a.ChunksDeleted, a.BytesFreed, deleted, first.Round(time.Millisecond), read, b.N, elapsed.Round(time.Millisecond))
}

// seedRun is one finished run and its whole output, at most run.ChunkSize bytes: one chunk, kept
// inline in the run item.
type seedRun struct {
	Run    run.Run
	Output []byte
}

// seedRuns stores finished runs through the run store's FinishNew, the path of a bulk run that
// ends before its running record is needed, from `workers` goroutines at once so the store's
// coalescing fills its batch writes.
func seedRuns(ctx context.Context, store *dynamo.RunStore, runs []seedRun, workers int) error {
	todo := make(chan seedRun)
	errs := make(chan error, workers)
	for range workers {
		go func() {
			var first error
			for sr := range todo {
				if first != nil {
					continue
				}
				r := sr.Run
				if len(sr.Output) > run.ChunkSize {
					first = fmt.Errorf("seed run %s: output over one chunk", r.ID)
					continue
				}
				r.Bytes, r.Chunks = int64(len(sr.Output)), 0
				if len(sr.Output) > 0 {
					r.Chunks = 1
				}
				if err := store.FinishNew(ctx, r, sr.Output); err != nil {
					first = fmt.Errorf("seed run %s: %w", r.ID, err)
				}
			}
			errs <- first
		}()
	}
	for _, sr := range runs {
		todo <- sr
	}
	close(todo)
	var err error
	for range workers {
		err = errors.Join(err, <-errs)
	}
	return err
}
