package app_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/eventsource"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/secrets"
	"github.com/netauto/netauto/internal/sshexec"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChildExecutor())
	}
	if os.Getenv(fleetChildEnv) != "" {
		os.Exit(runChildFleet())
	}
	stacktest.Main(m)
}

// engineOptions are timeouts short enough that fault devices end quickly, yet long enough for
// hundreds of concurrent handshakes under the race detector on two cores.
var engineOptions = sshexec.Options{
	ConnectTimeout: 5 * time.Second, AuthTimeout: 5 * time.Second, PromptTimeout: 5 * time.Second,
	IdleTimeout: 3 * time.Second, MaxOutputBytes: 64 << 10,
}

// bulkEnv is the bulk pipeline on the local stack: per-test tables and queues, a simulated fleet
// in the inventory, the enqueuer, and the executor behind local event source mappings.
type bulkEnv struct {
	st      *stacktest.Env
	ddb     *dynamodb.Client // the stores' client, its writes counted
	fleet   *devicesim.Fleet
	devs    map[string]devicesim.InventoryDevice
	ids     []string
	jobs    *dynamo.JobStore
	runs    *dynamo.RunStore
	devices *dynamo.DeviceStore
	inv     *device.Inventory
	enq     *bulk.Enqueuer
	exec    *bulk.Executor
	secrets string
	logs    *bytes.Buffer
	logw    *lockedWriter
	writes  *writeCounter
	stopMu  sync.Mutex
	stop    func()
}

func newBulkEnv(t testing.TB, spec devicesim.Spec, opts ...envOption) *bulkEnv {
	t.Helper()
	var o envOptions
	for _, opt := range opts {
		opt(&o)
	}
	st := stacktest.New(t)
	fleet, err := devicesim.Start(spec)
	require.NoError(t, err, "start fleet")
	t.Cleanup(func() { fleet.Close() })
	e := newInventoryEnv(t, st, fleet.Inventory(), o)
	e.fleet = fleet
	return e
}

// newInventoryEnv is newBulkEnv on devices served elsewhere (the fleet processes of a scale
// benchmark): the stores, the inventory with these devices imported, the enqueuer and executor.
func newInventoryEnv(t testing.TB, st *stacktest.Env, devs []devicesim.InventoryDevice, o envOptions) *bulkEnv {
	t.Helper()
	e := &bulkEnv{st: st, devs: map[string]devicesim.InventoryDevice{}, secrets: t.TempDir(), writes: &writeCounter{}}
	ddb := dynamodb.New(dynamodb.Options{
		Region: stack.Region, BaseEndpoint: aws.String(e.st.Endpoints.DynamoDB),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		HTTPClient:  app.HTTPClient(), APIOptions: append([]func(*middleware.Stack) error{e.writes.count}, o.ddbOptions...),
	})
	e.ddb = ddb
	var err error
	e.devices, err = dynamo.NewDeviceStore(ddb, e.st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	e.jobs, err = dynamo.NewJobStore(ddb, e.st.Names.Tables[resources.JobsTable])
	require.NoError(t, err)
	// The lease outlives the mapping's 30 s timeout, as in AWS (executor timeout plus a minute).
	e.runs, err = dynamo.NewRunStore(ddb, e.st.Names.Tables[resources.RunsTable], 40*time.Second)
	require.NoError(t, err)
	sec, err := secrets.NewFileStore(e.secrets)
	require.NoError(t, err)
	e.inv, err = device.NewInventory(e.devices, sec)
	require.NoError(t, err)
	rows := make([]device.Input, 0)
	for _, d := range devs {
		e.devs[d.ID] = d
		e.ids = append(e.ids, d.ID)
		in := api.DeviceInputFromWire(d.DeviceInput)
		if o.clientKeyPEM != "" {
			in.AuthMethod, in.Credential = device.AuthPrivateKey, device.Credential{PrivateKey: o.clientKeyPEM}
		}
		rows = append(rows, in)
	}
	_, err = e.inv.Import(context.Background(), rows, device.ImportAtomic)
	require.NoError(t, err, "import fleet")
	sender, err := queue.NewSender(stack.SQSClient(e.st.Endpoints.SQS), e.st.Names.Queues[resources.BulkQueue])
	require.NoError(t, err)
	answers, err := secrets.NewJobAnswers(sec)
	require.NoError(t, err)
	e.enq = &bulk.Enqueuer{Inventory: e.devices, Jobs: e.jobs, Queue: sender, BatchSize: 50, Answers: answers}
	engine, err := sshexec.New(engineOptions)
	require.NoError(t, err)
	e.logs = &bytes.Buffer{}
	e.logw = &lockedWriter{w: e.logs}
	e.exec = &bulk.Executor{Jobs: e.jobs, Runs: e.runs, Devices: e.inv, Engine: engine, Queue: sender, Answers: answers,
		Logger: slog.New(slog.NewJSONHandler(e.logw, nil)), DeadlineMargin: time.Second, BatchLease: 40 * time.Second}
	return e
}

// logText is what the executor has logged so far.
func (e *bulkEnv) logText() string {
	e.logw.mu.Lock()
	defer e.logw.mu.Unlock()
	return e.logs.String()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startWorkers runs the executor behind event source mappings on the bulk queue and the DLQ.
func (e *bulkEnv) startWorkers(t testing.TB, handler app.SQSHandler, concurrency int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := stack.SQSClient(e.st.Endpoints.SQS)
	var wg sync.WaitGroup
	for _, id := range []string{resources.BulkQueue, resources.BulkDLQ} {
		m := &eventsource.Mapping{
			Client: client, QueueURL: e.st.Names.Queues[id], QueueARN: e.st.Names.QueueARNs[id],
			Handler: eventsource.Handler(handler), BatchSize: 1, Concurrency: concurrency, Timeout: 30 * time.Second,
			VisibilityTimeout: 40 * time.Second, RetryDelay: time.Second,
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.Run(ctx)
		}()
	}
	e.stopMu.Lock()
	e.stop = func() { cancel(); wg.Wait() }
	e.stopMu.Unlock()
	t.Cleanup(e.stopWorkers)
}

func (e *bulkEnv) stopWorkers() {
	e.stopMu.Lock()
	stop := e.stop
	e.stop = nil
	e.stopMu.Unlock()
	if stop != nil {
		stop()
	}
}

// waitJob polls the job until it ends or the bound passes.
func (e *bulkEnv) waitJob(t testing.TB, id string, bound time.Duration) bulk.Job {
	t.Helper()
	deadline := time.Now().Add(bound)
	ctx := polling(context.Background())
	for {
		j, err := e.jobs.GetJob(ctx, id)
		require.NoError(t, err, "get job")
		if j.Status.Terminal() {
			return j
		}
		require.False(t, time.Now().After(deadline), "job %s did not end within %s: %+v", id, bound, j)
		time.Sleep(50 * time.Millisecond) // polling an asynchronous outcome, bounded
	}
}

// allDevices reads every device state of a job.
func (e *bulkEnv) allDevices(t testing.TB, jobID string) map[string]bulk.DeviceState {
	t.Helper()
	out := map[string]bulk.DeviceState{}
	cursor := ""
	for {
		items, next, err := e.jobs.Devices(context.Background(), jobID, cursor, 500)
		require.NoError(t, err)
		for _, d := range items {
			require.NotContains(t, out, d.DeviceID, "device %s listed twice", d.DeviceID)
			out[d.DeviceID] = d
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// output returns a run's stored output.
func (e *bulkEnv) output(t *testing.T, runID string) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, e.runs.WriteOutput(context.Background(), runID, &b))
	return b.Bytes()
}

// checkAccounting asserts, for each device, exactly one run in the job, a byte counter equal to
// its stored output, and the job's counts equal to a recount of its device states.
func (e *bulkEnv) checkAccounting(t *testing.T, j bulk.Job, states map[string]bulk.DeviceState) {
	t.Helper()
	ctx := context.Background()
	recount := map[run.Status]int{}
	for id, st := range states {
		recount[st.Status]++
		assert.True(t, st.Status.Terminal(), "device %s ended %s, want a terminal status", id, st.Status)
		r, err := e.runs.Get(ctx, bulk.RunID(j.ID, id))
		if st.Reason == "cancelled" || st.Reason == "max_errors" || st.Reason == "enqueue_failed" {
			if err == nil {
				assert.True(t, r.Status == run.Cancelled || r.Status.Terminal(), "cancelled device %s has a run in status %s", id, r.Status)
			}
			continue
		}
		if !assert.NoError(t, err, "run of device %s", id) {
			continue
		}
		assert.Equal(t, st.Status, r.Status, "device %s: the job's status (left) against the run's (right)", id)
		out := e.output(t, r.ID)
		assert.EqualValues(t, r.Bytes, len(out), "run %s: the record's bytes (left) against the stored output's", r.ID)
		counter, err := e.runs.DeviceBytes(ctx, id)
		require.NoError(t, err, "device %s's bytes", id)
		assert.EqualValues(t, len(out), counter, "device %s: stored output (left) against the byte counter", id)
	}
	for _, s := range run.Statuses() {
		assert.Equal(t, recount[s], j.Counts[s], "job %s: count of %s against a recount of the devices", j.ID, s)
	}
}

// jobIDs lists the ids of every job in the test's jobs table.
func jobIDs(e *bulkEnv) ([]string, error) {
	out, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(e.st.Names.Tables[resources.JobsTable]),
	})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, item := range out.Items {
		if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok && sk.Value == "META" {
			ids = append(ids, item["id"].(*types.AttributeValueMemberS).Value)
		}
	}
	return ids, nil
}

// runMapping serves the bulk queue with handler until the process is killed.
func runMapping(ctx context.Context, ep stack.Endpoints, cfg config.Config, handler app.SQSHandler) int {
	url := cfg.Queues[resources.BulkQueue]
	m := &eventsource.Mapping{
		Client: stack.SQSClient(ep.SQS), QueueURL: url, QueueARN: url, Handler: eventsource.Handler(handler),
		BatchSize: 1, Concurrency: 2, Timeout: 10 * time.Second, VisibilityTimeout: 12 * time.Second, RetryDelay: time.Second,
	}
	if err := m.Run(ctx); err != nil {
		return 1
	}
	return 0
}

// envOptions tune newBulkEnv.
type envOptions struct {
	clientKeyPEM string
	// ddbOptions are more middlewares on the DynamoDB client (after the write counter).
	ddbOptions []func(*middleware.Stack) error
}

type envOption func(*envOptions)

// withClientKey makes every device authenticate NetAuto by this private key.
func withClientKey(pem string) envOption {
	return func(o *envOptions) { o.clientKeyPEM = pem }
}

// withDynamoDBMiddleware adds a middleware to the stores' DynamoDB client.
func withDynamoDBMiddleware(m func(*middleware.Stack) error) envOption {
	return func(o *envOptions) { o.ddbOptions = append(o.ddbOptions, m) }
}

// pollKey marks the context of a test's own reads of a job while it waits for its end.
type pollKey struct{}

// polling marks ctx as the waiting test's: writeCounter counts its calls apart (pollOp), as they
// are an observer's cost, not a device-run's. An operator watches a job over the WebSocket; a
// script polls GET /v1/bulk/{id}.
func polling(ctx context.Context) context.Context { return context.WithValue(ctx, pollKey{}, true) }

// pollOp is the name a polling call's operation is counted under.
func pollOp(op string) string { return "poll " + op }

// writeCounter counts every DynamoDB operation's calls, items (of transactions and batch writes;
// one for any other call) and time spent waiting for DynamoDB.
type writeCounter struct {
	mu  sync.Mutex
	ops map[string]*opStat
	// units asks DynamoDB Local for each call's consumed capacity.
	units atomic.Bool
	// tables are the write units each table consumed (by physical name), indexes included.
	tables map[string]float64
}

// writeOps are the DynamoDB operations that write.
var writeOps = []string{"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}

// writes returns the write requests, the items they wrote and the WRU they consumed, from a
// snapshot's totals.
func writes(ops map[string]opStat) (calls, items int64, units float64) {
	for _, op := range writeOps {
		calls += ops[op].Calls
		items += ops[op].Items
		units += ops[op].Units
	}
	return calls, items, units
}

// opStat is one DynamoDB operation's totals.
type opStat struct {
	Calls, Items int64
	// Units are the capacity units consumed: WRU for writes, RRU for reads.
	Units float64
	Wait  time.Duration
}

func (c *writeCounter) record(op string, items int64, units float64, wait time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ops == nil {
		c.ops = map[string]*opStat{}
	}
	s := c.ops[op]
	if s == nil {
		s = &opStat{}
		c.ops[op] = s
	}
	s.Calls++
	s.Items += items
	s.Units += units
	s.Wait += wait
}

// addTableUnits adds a write's consumed capacity to its tables'.
func (c *writeCounter) addTableUnits(result any) {
	ccs := consumedCapacities(result)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tables == nil {
		c.tables = map[string]float64{}
	}
	for _, cc := range ccs {
		c.tables[aws.ToString(cc.TableName)] += aws.ToFloat64(cc.CapacityUnits)
	}
}

// tableUnits returns a copy of the write units per table (physical name).
func (c *writeCounter) tableUnits() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]float64, len(c.tables))
	for k, v := range c.tables {
		out[k] = v
	}
	return out
}

// snapshot returns a copy of the per-operation totals.
func (c *writeCounter) snapshot() map[string]opStat {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]opStat, len(c.ops))
	for k, v := range c.ops {
		out[k] = *v
	}
	return out
}

// report formats the per-operation totals since before, per device.
func (c *writeCounter) report(before map[string]opStat, devices int) string {
	var b strings.Builder
	now := c.snapshot()
	ops := make([]string, 0, len(now))
	for op := range now {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	for _, op := range ops {
		d := now[op]
		p := before[op]
		calls, items, units, wait := d.Calls-p.Calls, d.Items-p.Items, d.Units-p.Units, d.Wait-p.Wait
		if calls == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-18s calls %5d (%.3f/device) items %5d (%.3f/device)", op, calls, float64(calls)/float64(devices), items, float64(items)/float64(devices))
		if units > 0 {
			fmt.Fprintf(&b, " units %.2f/device", units/float64(devices))
		}
		fmt.Fprintf(&b, ", mean %5.1f ms/call\n", float64(wait.Microseconds())/1000/float64(calls))
	}
	return b.String()
}

// count is an SDK middleware that counts each DynamoDB call, the items it writes (read from the
// typed input: a transaction's or a batch write's items, one for any other call), the capacity
// units DynamoDB Local reports it consumed (indexes included; only while units is set, as
// computing them costs DynamoDB Local enough CPU to slow a job down) and the time the call took,
// retries included.
func (c *writeCounter) count(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("NetAutoCountOps", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		n := 1
		switch p := in.Parameters.(type) {
		case *dynamodb.TransactWriteItemsInput:
			n = len(p.TransactItems)
		case *dynamodb.BatchWriteItemInput:
			n = 0
			for _, writes := range p.RequestItems {
				n += len(writes)
			}
		}
		if c.units.Load() {
			// Every item operation's input has a ReturnConsumedCapacity field.
			if f := reflect.ValueOf(in.Parameters).Elem().FieldByName("ReturnConsumedCapacity"); f.IsValid() {
				f.Set(reflect.ValueOf(types.ReturnConsumedCapacityTotal))
			}
		}
		start := time.Now()
		out, md, err := next.HandleInitialize(ctx, in)
		op := middleware.GetOperationName(ctx)
		if ctx.Value(pollKey{}) != nil {
			op = pollOp(op)
		}
		c.record(op, int64(n), consumedUnits(out.Result), time.Since(start))
		if slices.Contains(writeOps, op) {
			c.addTableUnits(out.Result)
		}
		return out, md, err
	}), middleware.After)
}

// consumedUnits sums the capacity units an output reports.
func consumedUnits(result any) float64 {
	var cu float64
	for _, c := range consumedCapacities(result) {
		cu += aws.ToFloat64(c.CapacityUnits)
	}
	return cu
}

// consumedCapacities returns the consumed capacity an output reports: its ConsumedCapacity field
// is one *types.ConsumedCapacity or, for batch and transaction calls, a slice of them (one per
// table).
func consumedCapacities(result any) []types.ConsumedCapacity {
	v := reflect.ValueOf(result)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return nil
	}
	field := v.Elem().FieldByName("ConsumedCapacity")
	if !field.IsValid() {
		return nil
	}
	switch f := field.Interface().(type) {
	case *types.ConsumedCapacity:
		if f != nil {
			return []types.ConsumedCapacity{*f}
		}
	case []types.ConsumedCapacity:
		return f
	}
	return nil
}
