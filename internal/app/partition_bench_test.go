package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// keyCounter counts DynamoDB item writes per partition: per table and partition key, and per
// global secondary index and index partition key, since an index partition takes writes at the
// same rate as a table's and throttles the table's writes when it falls behind. It reads the
// keys from each call's typed input (PutItem, UpdateItem, DeleteItem, BatchWriteItem and every
// item of TransactWriteItems, condition checks included: they consume write capacity on their
// item's partition). Index entries are known from the items it has seen put: a put writes the
// entry of each index whose key the item has, an update writes it when it sets the index's key
// or an attribute the index carries, a delete removes it.
type keyCounter struct {
	tables map[string]resources.Table // physical name -> definition
	on     atomic.Bool

	mu     sync.Mutex
	counts map[string]int64
	// items counts the writes per item (table, partition key and sort key): a partition spreads
	// its items over several partitions when they are hot, but one item never splits.
	items map[string]int64
	// kinds counts each item's writes by the call that wrote it (a transaction's cost twice).
	kinds map[string]map[string]int64
	op    string
	// units are the write units each table consumed (by logical ID), its indexes included.
	units map[string]float64
	// entries maps table|pk|sk to the index entries the item has: index name -> index pk.
	entries map[string]map[string]string
}

func newKeyCounter() *keyCounter {
	return &keyCounter{tables: map[string]resources.Table{}, counts: map[string]int64{}, items: map[string]int64{}, kinds: map[string]map[string]int64{}, units: map[string]float64{}, entries: map[string]map[string]string{}}
}

// setTables tells the counter the tables' physical names (logical ID -> name); it counts
// nothing before.
func (k *keyCounter) setTables(names map[string]string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, t := range resources.Tables() {
		k.tables[names[t.LogicalID]] = t
	}
}

// reset forgets the counts (not what it knows of the items' index entries) and starts counting.
func (k *keyCounter) reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counts, k.items, k.kinds, k.units = map[string]int64{}, map[string]int64{}, map[string]map[string]int64{}, map[string]float64{}
	k.on.Store(true)
}

// keyShare is one partition's writes.
type keyShare struct {
	Key    string
	Writes int64
	Share  float64
}

// top returns the total writes counted and the n partitions that received most of them.
func (k *keyCounter) top(n int) (int64, []keyShare) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return topOf(k.counts, n)
}

// largestOf returns how many partitions have a key starting with prefix, and the one of them
// that received most writes (its share of all writes counted).
func (k *keyCounter) largestOf(prefix string) (int, keyShare) {
	k.mu.Lock()
	defer k.mu.Unlock()
	total, _ := topOf(k.counts, 0)
	n, best := 0, keyShare{}
	for key, c := range k.counts {
		if strings.HasPrefix(key, prefix) {
			n++
			if c > best.Writes || (c == best.Writes && key < best.Key) {
				best = keyShare{Key: key, Writes: c, Share: float64(c) / float64(total)}
			}
		}
	}
	return n, best
}

// kindsOf returns how an item's writes were made: calls by operation.
func (k *keyCounter) kindsOf(item string) map[string]int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]int64{}
	for op, n := range k.kinds[item] {
		out[op] = n
	}
	return out
}

// topItems returns the total item writes (of tables, not indexes) and the n items written most.
func (k *keyCounter) topItems(n int) (int64, []keyShare) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return topOf(k.items, n)
}

func topOf(counts map[string]int64, n int) (int64, []keyShare) {
	var total int64
	all := make([]keyShare, 0, len(counts))
	for key, c := range counts {
		total += c
		all = append(all, keyShare{Key: key, Writes: c})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Writes != all[j].Writes {
			return all[i].Writes > all[j].Writes
		}
		return all[i].Key < all[j].Key
	})
	all = all[:min(n, len(all))]
	for i := range all {
		all[i].Share = float64(all[i].Writes) / float64(total)
	}
	return total, all
}

// middleware counts each write call's partitions as it is sent.
func (k *keyCounter) middleware(st *middleware.Stack) error {
	return st.Initialize.Add(middleware.InitializeMiddlewareFunc("NetAutoCountKeys", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		write := false
		if k.on.Load() {
			write = k.observe(in.Parameters)
		}
		out, md, err := next.HandleInitialize(ctx, in)
		if write {
			k.addUnits(out.Result)
		}
		return out, md, err
	}), middleware.After)
}

// addUnits adds a write's consumed capacity (asked for by the write counter) to its tables'.
func (k *keyCounter) addUnits(result any) {
	ccs := consumedCapacities(result)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, cc := range ccs {
		k.units[k.tables[aws.ToString(cc.TableName)].LogicalID] += aws.ToFloat64(cc.CapacityUnits)
	}
}

// tableUnits returns the write units each table consumed, indexes included.
func (k *keyCounter) tableUnits() map[string]float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]float64{}
	for t, u := range k.units {
		out[t] = u
	}
	return out
}

// observe counts a call's writes; it reports whether the call writes.
func (k *keyCounter) observe(params any) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.tables) == 0 {
		return false
	}
	k.op = fmt.Sprintf("%T", params)
	k.op = strings.TrimSuffix(strings.TrimPrefix(k.op, "*dynamodb."), "Input")
	switch p := params.(type) {
	case *dynamodb.PutItemInput:
		k.put(aws.ToString(p.TableName), p.Item)
	case *dynamodb.UpdateItemInput:
		k.update(aws.ToString(p.TableName), p.Key, aws.ToString(p.UpdateExpression), p.ExpressionAttributeNames, p.ExpressionAttributeValues)
	case *dynamodb.DeleteItemInput:
		k.delete(aws.ToString(p.TableName), p.Key)
	case *dynamodb.BatchWriteItemInput:
		for table, ws := range p.RequestItems {
			for _, w := range ws {
				switch {
				case w.PutRequest != nil:
					k.put(table, w.PutRequest.Item)
				case w.DeleteRequest != nil:
					k.delete(table, w.DeleteRequest.Key)
				}
			}
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range p.TransactItems {
			switch {
			case it.Put != nil:
				k.put(aws.ToString(it.Put.TableName), it.Put.Item)
			case it.Update != nil:
				u := it.Update
				k.update(aws.ToString(u.TableName), u.Key, aws.ToString(u.UpdateExpression), u.ExpressionAttributeNames, u.ExpressionAttributeValues)
			case it.Delete != nil:
				k.delete(aws.ToString(it.Delete.TableName), it.Delete.Key)
			case it.ConditionCheck != nil:
				k.base(aws.ToString(it.ConditionCheck.TableName), it.ConditionCheck.Key)
			}
		}
	default:
		return false
	}
	return true
}

func str(item map[string]types.AttributeValue, name string) (string, bool) {
	s, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return s.Value, true
}

// base counts one write on the item's table partition and returns the item's identity.
func (k *keyCounter) base(table string, key map[string]types.AttributeValue) string {
	t := k.tables[table]
	pk, _ := str(key, t.PartitionKey.Name)
	sk, _ := str(key, t.SortKey.Name)
	k.counts[t.LogicalID+" "+pk]++
	item := t.LogicalID + " " + pk + " " + sk
	k.items[item]++
	if k.kinds[item] == nil {
		k.kinds[item] = map[string]int64{}
	}
	k.kinds[item][k.op]++
	return table + "|" + pk + "|" + sk
}

func (k *keyCounter) put(table string, item map[string]types.AttributeValue) {
	id := k.base(table, item)
	old := k.entries[id]
	now := map[string]string{}
	for _, ix := range k.tables[table].Indexes {
		if pk, ok := str(item, ix.PartitionKey.Name); ok {
			now[ix.Name] = pk
			k.counts[k.tables[table].LogicalID+"/"+ix.Name+" "+pk]++
		}
		if pk, ok := old[ix.Name]; ok && pk != now[ix.Name] {
			k.counts[k.tables[table].LogicalID+"/"+ix.Name+" "+pk]++ // the old entry's removal
		}
	}
	k.remember(id, now)
}

func (k *keyCounter) delete(table string, key map[string]types.AttributeValue) {
	id := k.base(table, key)
	for ix, pk := range k.entries[id] {
		k.counts[k.tables[table].LogicalID+"/"+ix+" "+pk]++
	}
	delete(k.entries, id)
}

var setPattern = regexp.MustCompile(`(#[A-Za-z0-9_]+)\s*=\s*(:[A-Za-z0-9_]+)`)
var namePattern = regexp.MustCompile(`#[A-Za-z0-9_]+`)

func (k *keyCounter) update(table string, key map[string]types.AttributeValue, expr string, names map[string]string, values map[string]types.AttributeValue) {
	id := k.base(table, key)
	t := k.tables[table]
	touched := map[string]bool{}
	for _, n := range namePattern.FindAllString(expr, -1) {
		touched[names[n]] = true
	}
	set := map[string]string{}
	for _, m := range setPattern.FindAllStringSubmatch(expr, -1) {
		if v, ok := values[m[2]].(*types.AttributeValueMemberS); ok {
			set[names[m[1]]] = v.Value
		}
	}
	entries := k.entries[id]
	if entries == nil {
		entries = map[string]string{}
	}
	for _, ix := range t.Indexes {
		old, had := entries[ix.Name]
		if pk, ok := set[ix.PartitionKey.Name]; ok {
			if had && old != pk {
				k.counts[t.LogicalID+"/"+ix.Name+" "+old]++
			}
			entries[ix.Name] = pk
			k.counts[t.LogicalID+"/"+ix.Name+" "+pk]++
			continue
		}
		if touched[ix.PartitionKey.Name] && had { // removed
			k.counts[t.LogicalID+"/"+ix.Name+" "+old]++
			delete(entries, ix.Name)
			continue
		}
		if had && carries(ix, touched) {
			k.counts[t.LogicalID+"/"+ix.Name+" "+old]++
		}
	}
	k.remember(id, entries)
}

func (k *keyCounter) remember(id string, entries map[string]string) {
	if len(entries) == 0 {
		delete(k.entries, id)
		return
	}
	k.entries[id] = entries
}

// carries reports whether the index holds any of the attributes an update touched.
func carries(ix resources.Index, touched map[string]bool) bool {
	if len(ix.Include) == 0 {
		return len(touched) > 0
	}
	if touched[ix.SortKey.Name] {
		return true
	}
	for _, a := range ix.Include {
		if touched[a] {
			return true
		}
	}
	return false
}

// countingQueue counts the batch messages sent to the bulk queue.
type countingQueue struct {
	next        bulk.Queue
	calls, msgs atomic.Int64
}

func (q *countingQueue) SendAll(ctx context.Context, msgs []bulk.Message) ([]int, error) {
	q.calls.Add(1)
	q.msgs.Add(int64(len(msgs)))
	return q.next.SendAll(ctx, msgs)
}

// readOps are the DynamoDB operations that read.
var readOps = []string{"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}

// readUnits are the read units consumed between two snapshots: by the system (the executor, the
// enqueue, push), and by the test's own polling for the job's end (polling), apart.
func readUnits(before, after map[string]opStat) (system, poll float64) {
	for _, op := range readOps {
		system += after[op].Units - before[op].Units
		poll += after[pollOp(op)].Units - before[pollOp(op)].Units
	}
	return system, poll
}

// partitionJob runs one bulk job over n simulated devices on the local stack with every
// DynamoDB write's partition counted, and reports the largest share any one partition key (of a
// table or of an index) received, the top five, and the requests per device a capacity model
// needs (docs/scale.md).
func partitionJob(tb testing.TB, n int) (total int64, top []keyShare) {
	return partitionJobs(tb, n, "uname -a", 1)
}

// partitionJobs is partitionJob for command, run in jobs jobs over the same fleet, of which the
// last is counted: a command's first run keeps its output inline and a repeat stores it once.
func partitionJobs(tb testing.TB, n int, command string, jobs int) (total int64, top []keyShare) {
	var b *testing.B
	if bb, ok := tb.(*testing.B); ok {
		b = bb
	}
	keys := newKeyCounter()
	f := newBenchFleet(tb, n, withDynamoDBMiddleware(keys.middleware))
	e := f.env
	keys.setTables(e.st.Names.Tables)
	q := &countingQueue{next: e.enq.Queue}
	e.enq.Queue, e.exec.Queue = q, q
	e.exec.MaxBatches = stack.ExecutorBatches()
	// Fewer invocations at once than the deployed event source runs: locally one batch runs at a
	// time per two cores (stack.ExecutorBatches), and on a loaded host 20 invocations waiting for
	// that slot hand 200 batches on until some reach the dead-letter queue. The writes per
	// partition do not depend on how many invocations wait.
	e.startWorkers(tb, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 4)
	for i := 1; i < jobs; i++ {
		acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: command, DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}}, auth.Identity{Subject: "bench@example.com", Role: auth.Operator})
		require.NoError(tb, err)
		j := e.waitJob(tb, acc.JobID, 30*time.Minute)
		require.Equal(tb, n, j.Counts[run.Succeeded], "uncounted job %d of %s ended %s with %v: succeeded", i, j.ID, j.Status, j.Counts)
	}
	e.writes.units.Store(true)
	ops0 := e.writes.snapshot()
	msgs0, sends0 := q.msgs.Load(), q.calls.Load()
	keys.reset()
	start := time.Now()
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: command, DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}}, auth.Identity{Subject: "bench@example.com", Role: auth.Operator})
	require.NoError(tb, err)
	j := e.waitJob(tb, acc.JobID, 30*time.Minute)
	took := time.Since(start)
	if j.Counts[run.Succeeded] != n {
		logFile := filepath.Join(os.TempDir(), "netauto-partition-"+j.ID+".log")
		_ = os.WriteFile(logFile, []byte(e.logText()), 0o600)
		require.Equal(tb, n, j.Counts[run.Succeeded], "job %s ended %s with %v: succeeded; executor log in %s", j.ID, j.Status, j.Counts, logFile)
	}
	total, top = keys.top(5)
	ops := e.writes.snapshot()
	var wru float64
	for _, op := range writeOps {
		wru += ops[op].Units - ops0[op].Units
	}
	rru, pollRRU := readUnits(ops0, ops)
	itemTotal, topItems := keys.topItems(5)
	var lines strings.Builder
	for i, t := range top {
		fmt.Fprintf(&lines, "  %d. %-60s %7d writes  %6.2f%%\n", i+1, t.Key, t.Writes, 100*t.Share)
	}
	fmt.Fprintf(&lines, "items written most (of %d table item writes):\n", itemTotal)
	for i, t := range topItems {
		fmt.Fprintf(&lines, "  %d. %-60s %7d writes  %6.2f%%  %v\n", i+1, t.Key, t.Writes, 100*t.Share, keys.kindsOf(t.Key))
	}
	// The job's own items' sizes at the end: what one write of them costs (1 WRU per KB, twice in
	// a transaction).
	db := stack.DynamoDBClient(e.st.Endpoints.DynamoDB)
	for _, key := range [][2]string{{"JOB#" + j.ID, "META"}, {"JOB#" + j.ID + "#B00000", "BATCH#00000"}} {
		out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.st.Names.Tables[resources.JobsTable]),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key[0]}, "sk": &types.AttributeValueMemberS{Value: key[1]}}})
		require.NoError(tb, err)
		fmt.Fprintf(&lines, "job item %s: %d bytes\n", key[1], itemSize(out.Item))
	}
	// A run item: what its put (and each of its index entries) costs.
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.st.Names.Tables[resources.RunsTable]),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "RUN#" + bulk.RunID(j.ID, e.ids[0])}, "sk": &types.AttributeValueMemberS{Value: "META"}}})
	require.NoError(tb, err)
	fmt.Fprintf(&lines, "run item: %d bytes (output %s bytes), its largest attributes:%s\n", itemSize(out.Item), attrNumber(out.Item, "bytes"), largestAttrs(out.Item, 10))
	// The runs' day partitions: a day's runs spread over shards of by_day (DAY#<date>#<nn>).
	dayParts, dayTop := keys.largestOf(resources.RunsTable + "/" + resources.IndexRunsByDay + " DAY#")
	fmt.Fprintf(&lines, "runs' day partitions (by_day DAY#...): %d written, the largest %s %d writes %.2f%%\n", dayParts, dayTop.Key, dayTop.Writes, 100*dayTop.Share)
	units := keys.tableUnits()
	for _, t := range []string{resources.RunsTable, resources.JobsTable, resources.DevicesTable} {
		fmt.Fprintf(&lines, "%s: %.2f write units per device, indexes included\n", t, units[t]/float64(n))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	report := fmt.Sprintf("%d-device job %s in %v (%.0f devices/s, %d CPUs, load %s): %d item and index-entry writes, largest partition share %.2f%%; top partitions:\n%sDynamoDB requests of the job:\n%sSQS: %d messages in %d sends for %d batches\n",
		n, j.ID, took.Round(time.Millisecond), float64(n)/took.Seconds(), runtime.NumCPU(), strings.TrimSpace(string(load)), total, 100*top[0].Share, lines.String(), e.writes.report(ops0, n),
		q.msgs.Load()-msgs0, q.calls.Load()-sends0, acc.Batches)
	if b != nil {
		fmt.Print(report) // b.Log keeps only a benchmark's first lines
	} else {
		tb.Log(report)
	}
	if b != nil {
		b.ReportMetric(100*top[0].Share, "largest-partition-%")
		b.ReportMetric(float64(total)/float64(n), "partition-writes/device")
		b.ReportMetric(float64(top[0].Writes)/float64(n), "hottest-partition-writes/device")
		b.ReportMetric(100*dayTop.Share, "largest-day-partition-%")
		b.ReportMetric(float64(topItems[0].Writes)/float64(n), "hottest-item-writes/device")
		b.ReportMetric(wru/float64(n), "ddb-wru/device")
		b.ReportMetric(units[resources.RunsTable]/float64(n), "runs-table-wru/device")
		b.ReportMetric(units[resources.JobsTable]/float64(n), "jobs-table-wru/device")
		b.ReportMetric(rru/float64(n), "ddb-rru/device")
		b.ReportMetric(pollRRU/float64(n), "poll-rru/device")
		b.ReportMetric(float64(q.msgs.Load()-msgs0)/float64(acc.Batches), "sqs-messages/batch")
		b.ReportMetric(float64(n)/took.Seconds(), "devices/s")
	}
	return total, top
}

// BenchmarkPartitionWrites10000 counts the DynamoDB writes per partition key of one
// 10,000-device job (docs/scale.md). The design's bar is that no key receives more than 1% of a
// job's writes; the job's own items take far more today (the job item's counters, the event
// sequence), which is what the hot-item redesign removes, so this benchmark reports the share
// and TestPartitionWriteShare holds the bar. It also reports the largest of the runs' day
// partitions (by_day, 32 shards a day: about 0.5%).
func BenchmarkPartitionWrites10000(b *testing.B) {
	for b.Loop() {
		partitionJob(b, 10000)
	}
}

// BenchmarkOutputKB1000 counts what a device-run of a 1 KB output costs: `ip addr` (about
// 1.2 KB, each device's own addresses, lease times that change between runs) on 1,000 devices,
// the third job of three counted, when the command has run on each device before and `changed`
// compares with the previous run. The output changes between runs, so it is kept inline,
// deflated, in the run item: store-once applies only to an unchanged output.
func BenchmarkOutputKB1000(b *testing.B) {
	for b.Loop() {
		partitionJobs(b, 1000, "ip addr", 3)
	}
}

// TestPartitionWriteShare holds the design's bar: no partition key, of a table or an index,
// receives more than 1% of a 10,000-device job's writes. The race detector makes a
// 10,000-device job take minutes, so `make test` runs it on its own, without.
func TestPartitionWriteShare(t *testing.T) {
	if raceEnabled {
		t.Skip("a 10,000-device job under the race detector takes minutes: make test runs this test again without it")
	}
	if testing.Short() {
		t.Skip("needs the local stack")
	}
	_, top := partitionJob(t, 10000)
	for _, k := range top {
		if k.Share > 0.01 {
			t.Errorf("partition %s received %.2f%% of the job's writes (%d), over the 1%% bar", k.Key, 100*k.Share, k.Writes)
		}
	}
}

// itemSize is an item's size as DynamoDB counts it for capacity: each attribute's name and value.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value)
	case *types.AttributeValueMemberN:
		return (len(strings.TrimLeft(x.Value, "-0"))+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(x.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		return 3 + itemSize(x.Value) + len(x.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberSS:
		n := 0
		for _, e := range x.Value {
			n += len(e)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, e := range x.Value {
			n += (len(e)+1)/2 + 1
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, e := range x.Value {
			n += len(e)
		}
		return n
	}
	return 0
}

// TestKeyCounter holds the partition counter to DynamoDB's rules for what a write touches: the
// item's table partition, and the index entries an item has or gets.
func TestKeyCounter(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	run := map[string]types.AttributeValue{"pk": s("RUN#r1"), "sk": s("META"), "gsi1pk": s("DEV#d1"), "gsi2pk": s("DAY#1"), "status": s("running")}
	key := map[string]types.AttributeValue{"pk": s("RUN#r1"), "sk": s("META")}
	put := &dynamodb.PutItemInput{TableName: aws.String("runs"), Item: run}
	update := func(expr string, names map[string]string, values map[string]types.AttributeValue) *dynamodb.UpdateItemInput {
		return &dynamodb.UpdateItemInput{TableName: aws.String("runs"), Key: key, UpdateExpression: aws.String(expr), ExpressionAttributeNames: names, ExpressionAttributeValues: values}
	}
	tests := []struct {
		name  string
		calls []any
		want  map[string]int64
	}{
		{"a put writes its partition and the index entries its keys make", []any{put},
			map[string]int64{"RunsTable RUN#r1": 1, "RunsTable/by_device DEV#d1": 1, "RunsTable/by_day DAY#1": 1}},
		{"an update that sets an index key moves the entry", []any{put, update("SET #0 = :0", map[string]string{"#0": "gsi2pk"}, map[string]types.AttributeValue{":0": s("DAY#2")})},
			map[string]int64{"RunsTable RUN#r1": 2, "RunsTable/by_device DEV#d1": 1, "RunsTable/by_day DAY#1": 2, "RunsTable/by_day DAY#2": 1}},
		{"an update of an attribute the indexes carry writes their entries", []any{put, update("SET #0 = :0", map[string]string{"#0": "status"}, map[string]types.AttributeValue{":0": s("succeeded")})},
			map[string]int64{"RunsTable RUN#r1": 2, "RunsTable/by_device DEV#d1": 2, "RunsTable/by_day DAY#1": 2}},
		{"an update of an attribute no index carries writes the item only", []any{put, update("SET #0 = :0", map[string]string{"#0": "tail"}, map[string]types.AttributeValue{":0": s("output")})},
			map[string]int64{"RunsTable RUN#r1": 2, "RunsTable/by_device DEV#d1": 1, "RunsTable/by_day DAY#1": 1}},
		{"removing an index key removes the entry", []any{put, update("REMOVE #0", map[string]string{"#0": "gsi2pk"}, nil)},
			map[string]int64{"RunsTable RUN#r1": 2, "RunsTable/by_device DEV#d1": 1, "RunsTable/by_day DAY#1": 2}},
		{"a delete removes every entry", []any{put, &dynamodb.DeleteItemInput{TableName: aws.String("runs"), Key: key}},
			map[string]int64{"RunsTable RUN#r1": 2, "RunsTable/by_device DEV#d1": 2, "RunsTable/by_day DAY#1": 2}},
		{"a transaction's items and condition checks count on their partitions", []any{&dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String("jobs"), Item: map[string]types.AttributeValue{"pk": s("JOB#j"), "sk": s("BATCH#0")}}},
			{ConditionCheck: &types.ConditionCheck{TableName: aws.String("jobs"), Key: map[string]types.AttributeValue{"pk": s("JOB#j"), "sk": s("META")}}},
		}}}, map[string]int64{"JobsTable JOB#j": 2}},
		{"a batch write's puts and deletes count on their partitions", []any{&dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
			"jobs": {{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": s("JOB#j"), "sk": s("EV#0")}}}},
			"runs": {{PutRequest: &types.PutRequest{Item: map[string]types.AttributeValue{"pk": s("RUN#r2"), "sk": s("META")}}}},
		}}}, map[string]int64{"JobsTable JOB#j": 1, "RunsTable RUN#r2": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeyCounter()
			k.setTables(map[string]string{resources.RunsTable: "runs", resources.JobsTable: "jobs"})
			k.reset()
			for _, c := range tc.calls {
				k.observe(c)
			}
			assert.Equal(t, tc.want, k.counts)
		})
	}
}

// attrNumber is a number attribute's value as stored, or "?".
func attrNumber(item map[string]types.AttributeValue, name string) string {
	if n, ok := item[name].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return "?"
}

// largestAttrs lists an item's n largest attributes with their sizes (name and value, as a
// write unit counts them).
func largestAttrs(item map[string]types.AttributeValue, n int) string {
	type attr struct {
		name string
		size int
	}
	var all []attr
	for name, v := range item {
		all = append(all, attr{name, len(name) + valueSize(v)})
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].size > all[j].size || all[i].size == all[j].size && all[i].name < all[j].name
	})
	var b strings.Builder
	for _, a := range all[:min(n, len(all))] {
		fmt.Fprintf(&b, " %s %d", a.name, a.size)
	}
	return b.String()
}
