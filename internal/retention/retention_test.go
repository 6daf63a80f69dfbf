package retention_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

const (
	jobLive = "job-live"
	jobDone = "job-done"
)

// fixture is one test's own tables, stores and a fixed clock.
type fixture struct {
	t     *testing.T
	st    *stacktest.Env
	db    *dynamodb.Client
	runs  *dynamo.RunStore
	store *dynamo.RetentionStore
	now   time.Time
	// seeded runs by id, with the sizes of the chunks stored for each.
	seeded map[string]seededRun
}

type seededRun struct {
	run.Run
	chunks []int
}

func (s seededRun) bytes() int64 {
	var n int64
	for _, c := range s.chunks {
		n += int64(c)
	}
	return n
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := stacktest.New(t)
	db := stack.DynamoDBClient(st.Endpoints.DynamoDB)
	runs, err := dynamo.NewRunStore(db, st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err, "new run store")
	store, err := dynamo.NewRetentionStore(db, st.Names.Tables[resources.RunsTable], st.Names.Tables[resources.JobsTable])
	require.NoError(t, err, "new retention store")
	f := &fixture{t: t, st: st, db: db, runs: runs, store: store, now: time.Now().UTC(), seeded: map[string]seededRun{}}
	for id, status := range map[string]string{jobLive: "running", jobDone: "completed"} {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{
			TableName: aws.String(st.Names.Tables[resources.JobsTable]),
			Item: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "JOB#" + id}, "sk": &types.AttributeValueMemberS{Value: "META"},
				"id": &types.AttributeValueMemberS{Value: id}, "status": &types.AttributeValueMemberS{Value: status},
			},
		})
		require.NoError(t, err, "put job %s", id)
	}
	return f
}

// seedRun stores a run through the real run store: Start, AppendChunk for all chunks but the
// last, Finish with the last (or Start only when status is running).
func (f *fixture) seedRun(id, device string, created time.Time, status run.Status, job string, chunks ...int) {
	f.t.Helper()
	f.seed(run.Run{ID: id, DeviceID: device, Command: "show version", JobID: job, RequestedBy: "seed", CreatedAt: created}, status, chunks...)
}

// seed stores run r as seedRun does.
func (f *fixture) seed(r run.Run, status run.Status, chunks ...int) {
	f.t.Helper()
	ctx := context.Background()
	id := r.ID
	r, err := f.runs.Start(ctx, r)
	require.NoError(f.t, err, "start run %s", id)
	for i := 0; i < len(chunks)-1; i++ {
		require.NoError(f.t, f.runs.AppendChunk(ctx, r, i, bytes.Repeat([]byte{'x'}, chunks[i])), "append chunk %d of run %s", i, id)
	}
	if status != run.Running {
		r.Status = status
		var last []byte
		seq := 0
		if len(chunks) > 0 {
			seq = len(chunks) - 1
			last = bytes.Repeat([]byte{'y'}, chunks[seq])
		}
		for _, c := range chunks {
			r.Bytes += int64(c)
		}
		r.Chunks = len(chunks)
		require.NoError(f.t, f.runs.Finish(ctx, r, last), "finish run %s", id)
	} else if len(chunks) > 0 {
		require.NoError(f.t, f.runs.AppendChunk(ctx, r, len(chunks)-1, bytes.Repeat([]byte{'z'}, chunks[len(chunks)-1])), "append the last chunk of run %s", id)
	}
	r.Status = status
	f.seeded[id] = seededRun{Run: r, chunks: chunks}
}

// seedFleet seeds runs of many ages and sizes over many devices: every 5th run of a device is
// in the live job, every 7th still running, every 3rd in the finished job.
func (f *fixture) seedFleet(devices, perDevice int) {
	f.t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	type spec struct {
		id, dev, job string
		created      time.Time
		status       run.Status
		chunks       []int
	}
	var specs []spec
	for d := range devices {
		dev := fmt.Sprintf("dev-%02d", d)
		for i := range perDevice {
			age := time.Duration((i*7+d*3)%61)*24*time.Hour + time.Duration(d*13+i)*time.Minute + time.Hour
			// Run ids begin with their job's time, as the executor's do: a device's runs by id are
			// its runs by age.
			created := f.now.Add(-age)
			s := spec{id: fmt.Sprintf("%s.%s.r%03d", created.UTC().Format("20060102T150405"), dev, i), dev: dev, created: created, status: run.Succeeded}
			switch {
			case i%7 == 6:
				s.status = run.Running
			case i%5 == 4:
				s.job = jobLive
			case i%3 == 2:
				s.job, s.status = jobDone, run.Failed
			}
			for c := range (i + d) % 4 {
				s.chunks = append(s.chunks, 100+(i*31+d*17+c*7)%900)
			}
			specs = append(specs, s)
		}
	}
	sem := make(chan struct{}, 8)
	for _, s := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			mu.Lock()
			defer mu.Unlock() // seedRun writes f.seeded; the store calls dominate anyway
			f.seedRun(s.id, s.dev, s.created, s.status, s.job, s.chunks...)
		}()
	}
	wg.Wait()
}

func (f *fixture) purger(s retention.Settings, logs *bytes.Buffer) *retention.Purger {
	return &retention.Purger{
		Store: f.store, Jobs: f.store, Settings: s, Lookback: 90 * 24 * time.Hour,
		Logger:  slog.New(slog.NewJSONHandler(lockedWriter(logs), nil)),
		Metrics: metrics.New(lockedWriter(logs)),
		Now:     func() time.Time { return f.now },
	}
}

var bufMu sync.Mutex

type locked struct{ b *bytes.Buffer }

func (l locked) Write(p []byte) (int, error) {
	bufMu.Lock()
	defer bufMu.Unlock()
	return l.b.Write(p)
}

func lockedWriter(b *bytes.Buffer) locked { return locked{b} }

// scan reads the whole runs table (tests only): run ids present, chunks per run, and per device
// the sum of chunk sizes and the sum of its byte items (counter and tail ledger items).
type tableState struct {
	runs     map[string]bool
	chunks   map[string]int
	recount  map[string]int64
	counters map[string]int64
}

func (f *fixture) scan() tableState {
	f.t.Helper()
	s := tableState{runs: map[string]bool{}, chunks: map[string]int{}, recount: map[string]int64{}, counters: map[string]int64{}}
	p := dynamodb.NewScanPaginator(f.db, &dynamodb.ScanInput{TableName: aws.String(f.st.Names.Tables[resources.RunsTable]), ConsistentRead: aws.Bool(true)})
	str := func(it map[string]types.AttributeValue, k string) string {
		switch v := it[k].(type) {
		case *types.AttributeValueMemberS:
			return v.Value
		case *types.AttributeValueMemberB: // a digest kept as its raw bytes
			return hex.EncodeToString(v.Value)
		}
		return ""
	}
	num := func(it map[string]types.AttributeValue, k string) int64 {
		if v, ok := it[k].(*types.AttributeValueMemberN); ok {
			n, _ := strconv.ParseInt(v.Value, 10, 64)
			return n
		}
		return 0
	}
	bodies, referenced := map[string]bool{}, map[string]string{} // stored once: key/gen stored; run -> key/gen
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(f.t, err, "scan the runs table")
		for _, it := range page.Items {
			pk, sk := str(it, "pk"), str(it, "sk")
			_, inline := it["tail"]
			if _, packed := it["tail_z"]; packed {
				inline = true
			}
			switch {
			case strings.HasPrefix(pk, "RUN#") && sk == "META":
				s.runs[strings.TrimPrefix(pk, "RUN#")] = true
				if blob := str(it, "blob"); blob != "" {
					referenced[pk] = blob + "/" + str(it, "blob_gen")
				}
				if inline || str(it, "blob") != "" { // the output's last piece, inline or stored once: counted as a chunk
					s.chunks[strings.TrimPrefix(pk, "RUN#")]++
					s.recount[str(it, "device_id")] += num(it, "tail_size")
				}
			case strings.HasPrefix(pk, "BLOB#") && strings.HasPrefix(sk, "DATA#"):
				bodies[strings.TrimPrefix(pk, "BLOB#")+"/"+strings.TrimPrefix(sk, "DATA#")] = true
			case strings.HasPrefix(pk, "RUN#") && strings.HasPrefix(sk, "CHUNK#"):
				s.chunks[strings.TrimPrefix(pk, "RUN#")]++
				s.recount[str(it, "device_id")] += num(it, "size")
			case strings.HasPrefix(pk, "DEVBYTES#"): // the counter and the tail ledger items
				s.counters[strings.TrimPrefix(pk, "DEVBYTES#")] += num(it, "bytes")
			}
		}
	}
	for run, body := range referenced {
		assert.True(f.t, bodies[body], "%s references output %s, which is not stored", run, body)
	}
	for _, m := range []map[string]int64{s.recount, s.counters} {
		for d, n := range m {
			if n == 0 {
				delete(m, d)
			}
		}
	}
	return s
}

// checkExact fails unless the table holds exactly the seeded runs not in gone, each with all its
// chunks, and every counter equals a recount.
func (f *fixture) checkExact(gone map[string]bool) {
	f.t.Helper()
	s := f.scan()
	for id, r := range f.seeded {
		desc := fmt.Sprintf("run %s (device %s, created %s, %s, job %q)", id, r.DeviceID, r.CreatedAt.Format(time.RFC3339), r.Status, r.JobID)
		if gone[id] {
			assert.False(f.t, s.runs[id], "%s should be purged: its run item is left", desc)
			assert.Zero(f.t, s.chunks[id], "%s should be purged: chunks left", desc)
			continue
		}
		assert.True(f.t, s.runs[id], "%s should be kept: its run item is gone", desc)
		assert.Equal(f.t, len(r.chunks), s.chunks[id], "%s should be kept whole: chunks", desc)
	}
	assert.Equal(f.t, s.recount, s.counters, "device byte counters against a recount")
}

// events returns the retention.purge log events and EMF lines of a type from logs.
func purgeEvents(t *testing.T, logs *bytes.Buffer, typ string) (logged, emf []map[string]any) {
	t.Helper()
	bufMu.Lock()
	defer bufMu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "log line %q is not JSON", sc.Text())
		if m["type"] != typ {
			continue
		}
		if m["msg"] == "retention.purge" {
			logged = append(logged, m)
		}
		if _, ok := m["_aws"]; ok && m["event"] == "retention.purge" {
			emf = append(emf, m)
		}
	}
	return logged, emf
}

func checkTelemetry(t *testing.T, logs *bytes.Buffer, s *retention.Stats) {
	t.Helper()
	logged, emf := purgeEvents(t, logs, s.Type)
	require.Len(t, logged, 1, "%s: retention.purge log events", s.Type)
	require.Len(t, emf, 1, "%s: retention.purge EMF lines", s.Type)
	for _, m := range []map[string]any{logged[0], emf[0]} {
		for name, want := range map[string]int64{"runs_deleted": s.RunsDeleted, "chunks_deleted": s.ChunksDeleted, "bytes_freed": s.BytesFreed} {
			got, _ := m[name].(float64)
			assert.Equal(t, want, int64(got), "%s telemetry %s (%v)", s.Type, name, m)
		}
	}
}

// dueByAge is the oracle of the age purge.
func (f *fixture) dueByAge(days int) (gone map[string]bool, skipped int64, firstSkipDay time.Time) {
	cutoff := f.now.Add(-time.Duration(days) * 24 * time.Hour)
	gone = map[string]bool{}
	for id, r := range f.seeded {
		if !r.CreatedAt.Before(cutoff) {
			continue
		}
		if !r.Status.Terminal() || r.JobID == jobLive {
			skipped++
			d := r.CreatedAt.Truncate(24 * time.Hour)
			if firstSkipDay.IsZero() || d.Before(firstSkipDay) {
				firstSkipDay = d
			}
			continue
		}
		gone[id] = true
	}
	return gone, skipped, firstSkipDay
}

func sums(f *fixture, gone map[string]bool) (runs, chunks, bytes int64) {
	for id := range gone {
		runs++
		chunks += int64(len(f.seeded[id].chunks))
		bytes += f.seeded[id].bytes()
	}
	return runs, chunks, bytes
}

func TestPurgeByAge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedFleet(12, 14)
	// Both sides of the cutoff within its own day.
	cutoff := f.now.Add(-30 * 24 * time.Hour)
	f.seedRun("edge-due", "dev-edge", cutoff.Add(-time.Second), run.Succeeded, "", 300)
	f.seedRun("edge-kept", "dev-edge", cutoff.Add(time.Second), run.Succeeded, "", 200)
	gone, skipped, firstSkip := f.dueByAge(30)
	require.True(t, gone["edge-due"], "seed: edge-due is due")
	require.False(t, gone["edge-kept"], "seed: edge-kept is not due")
	require.GreaterOrEqual(t, len(gone), 40, "seed: runs due")
	require.GreaterOrEqual(t, skipped, int64(10), "seed: runs skipped")
	var logs bytes.Buffer
	rec := &audittest.Recorder{}
	p := f.purger(retention.Settings{MaxDays: 30}, &logs)
	p.Audit = rec
	rep, err := p.Purge(context.Background(), "test")
	require.NoError(t, err, "purge")
	f.checkExact(gone)
	runs, chunks, freed := sums(f, gone)
	if entries := rec.Entries(); assert.Len(t, entries, 1, "one audit entry per purge") {
		e := entries[0]
		assert.Equal(t, "retention.purge", e.Action)
		assert.Equal(t, audit.ActorRetention, e.Actor)
		assert.Equal(t, audit.OutcomeOK, e.Outcome)
		assert.Equal(t, map[string]string{
			"trigger": "test", "complete": "true", "age_runs_deleted": strconv.FormatInt(runs, 10),
			"age_chunks_deleted": strconv.FormatInt(chunks, 10), "age_bytes_freed": strconv.FormatInt(freed, 10),
		}, e.Detail)
	}
	a := rep.Age
	require.NotNil(t, a, "age stats of report %+v", rep)
	require.Nil(t, rep.Bytes, "byte stats of an age-only purge")
	assert.Equal(t, runs, a.RunsDeleted, "RunsDeleted")
	assert.Equal(t, chunks, a.ChunksDeleted, "ChunksDeleted")
	assert.Equal(t, freed, a.BytesFreed, "BytesFreed")
	assert.Equal(t, skipped, a.RunsSkipped, "RunsSkipped")
	assert.True(t, rep.Complete, "report Complete")
	assert.Empty(t, rep.Continuation, "report Continuation")
	assert.True(t, a.Complete, "age stats Complete")
	assert.Equal(t, firstSkip.Add(-24*time.Hour).Format(time.DateOnly), a.PurgedThrough,
		"PurgedThrough: the day before the first day with a skipped run")
	checkTelemetry(t, &logs, a)

	// Stored and served.
	last, err := f.store.LastReport(context.Background())
	if assert.NoError(t, err, "last report") && assert.NotNil(t, last.Age, "age stats of the last report") {
		assert.Equal(t, runs, last.Age.RunsDeleted, "RunsDeleted of the last report")
	}

	// Again: nothing more is due, the skipped are skipped again, the counters stay exact.
	rep2, err := f.purger(retention.Settings{MaxDays: 30}, &bytes.Buffer{}).Purge(context.Background(), "test")
	require.NoError(t, err, "second purge")
	assert.Zero(t, rep2.Age.RunsDeleted, "RunsDeleted of the second purge")
	assert.Equal(t, skipped, rep2.Age.RunsSkipped, "RunsSkipped of the second purge")
	f.checkExact(gone)
}

// asLegacyDayRun moves run id's by_day entry to its day's unsharded partition (DAY#<date>), as
// every run was written before the day's runs were spread over shards.
func (f *fixture) asLegacyDayRun(id string) {
	f.t.Helper()
	_, err := f.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(f.st.Names.Tables[resources.RunsTable]),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "RUN#" + id}, "sk": &types.AttributeValueMemberS{Value: "META"},
		},
		UpdateExpression:          aws.String("SET gsi2pk = :pk"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "DAY#" + f.seeded[id].CreatedAt.UTC().Format(time.DateOnly)}},
	})
	require.NoError(f.t, err, "move run %s to the legacy day partition", id)
}

// finishSeeded finishes a seeded running run (it moves to its day's shard, as on AWS), then
// back to the legacy partition when legacy.
func (f *fixture) finishSeeded(id string, legacy bool) {
	f.t.Helper()
	r := f.seeded[id]
	r.Status = run.Succeeded
	require.NoError(f.t, f.runs.Finish(context.Background(), r.Run, nil), "finish run %s", id)
	f.seeded[id] = r
	if legacy {
		f.asLegacyDayRun(id)
	}
}

// TestPurgeByAgeShardsAndLegacy purges days whose runs are spread over the by_day shards and,
// for runs written before the shards, in the day's legacy partition: every due run is found,
// and a run skipped in either kind of partition holds the watermark back until it is deleted.
func TestPurgeByAgeShardsAndLegacy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const maxDays = 30
	days := []time.Time{ // due days, oldest first
		f.now.Add(-45 * 24 * time.Hour).Truncate(24 * time.Hour),
		f.now.Add(-40 * 24 * time.Hour).Truncate(24 * time.Hour),
		f.now.Add(-35 * 24 * time.Hour).Truncate(24 * time.Hour),
	}
	for d, day := range days {
		for i := range 40 {
			id := fmt.Sprintf("d%d.r%02d", d, i)
			var chunks []int
			if i%2 == 0 {
				chunks = []int{100 + i}
			}
			f.seedRun(id, fmt.Sprintf("dev-%d", i%5), day.Add(time.Duration(i)*30*time.Minute+time.Minute), run.Succeeded, "", chunks...)
			if i%4 == 1 {
				f.asLegacyDayRun(id)
			}
		}
	}
	// Still running: one in the second day's legacy partition, one in a shard of the third day.
	f.seedRun("stuck-legacy", "dev-x", days[1].Add(23*time.Hour), run.Running, "", 50)
	f.asLegacyDayRun("stuck-legacy")
	f.seedRun("stuck-shard", "dev-x", days[2].Add(23*time.Hour), run.Running, "", 60)
	f.seedRun("recent", "dev-x", f.now.Add(-time.Hour), run.Succeeded, "", 70)
	f.asLegacyDayRun("recent") // not due: the cutoff stops the legacy partition's query too

	purge := func(name string) *retention.Stats {
		t.Helper()
		a, skipped := f.agePurge(name, maxDays)
		assert.Equal(t, skipped, a.RunsSkipped, "%s purge RunsSkipped", name)
		return a
	}
	dayBefore := func(d time.Time) string { return d.Add(-24 * time.Hour).Format(time.DateOnly) }

	a := purge("first")
	assert.Equal(t, int64(3*40), a.RunsDeleted, "first purge RunsDeleted: every due run of every shard and legacy partition")
	assert.Equal(t, dayBefore(days[1]), a.PurgedThrough, "first purge: a running run in the legacy partition holds the watermark")

	f.finishSeeded("stuck-legacy", true)
	a = purge("second")
	assert.Equal(t, int64(1), a.RunsDeleted, "second purge RunsDeleted: the finished legacy run")
	assert.Equal(t, dayBefore(days[2]), a.PurgedThrough, "second purge: a running run in a shard holds the watermark")

	f.finishSeeded("stuck-shard", false)
	a = purge("third")
	assert.Equal(t, int64(1), a.RunsDeleted, "third purge RunsDeleted: the finished sharded run")
	cutoff := f.now.Add(-maxDays * 24 * time.Hour)
	assert.Equal(t, dayBefore(cutoff.Truncate(24*time.Hour)), a.PurgedThrough, "third purge: the watermark reaches the day before the cutoff's")
}

// TestPurgeByAgeListedRuns purges runs that a batch's run list lists for them: each is deleted
// once due with exact counters, and one created after the cutoff by a list made before it is
// skipped and holds the watermark back until it is due.
func TestPurgeByAgeListedRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const maxDays = 30
	// Twenty seconds past midnight: the cutoff falls just after the list of a batch that began
	// the day before.
	f.now = f.now.Truncate(24 * time.Hour).Add(20 * time.Second)
	cutoff := f.now.Add(-maxDays * 24 * time.Hour)
	type list struct {
		batch   int
		at      time.Time
		created []time.Duration // after at, one run each
	}
	lists := []list{
		{batch: 0, at: cutoff.Add(-5 * 24 * time.Hour).Add(10 * time.Hour), created: []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}},
		// Its runs begin the next day: listed on the day before theirs, all due.
		{batch: 1, at: cutoff.Add(-2*24*time.Hour - 30*time.Second), created: []time.Duration{20 * time.Second, 40 * time.Second}},
		// Begun ten seconds before midnight, the day before the cutoff's: one run due, two not.
		{batch: 2, at: cutoff.Add(-30 * time.Second), created: []time.Duration{20 * time.Second, 40 * time.Second, 50 * time.Second}},
	}
	for _, l := range lists {
		var devs []string
		for i := range l.created {
			devs = append(devs, fmt.Sprintf("dev-l%d-%d", l.batch, i))
		}
		require.NoError(t, f.runs.ListRuns(context.Background(), jobDone, l.batch, devs, l.at, time.Time{}), "list batch %d", l.batch)
		for i, d := range devs {
			var chunks []int
			if i%2 == 0 {
				chunks = []int{run.ChunkSize, 100 + i}
			}
			f.seed(run.Run{ID: bulk.RunID(jobDone, d), DeviceID: d, Command: "show version", JobID: jobDone, RequestedBy: "seed",
				CreatedAt: l.at.Add(l.created[i]), Listed: true}, run.Succeeded, chunks...)
		}
	}
	f.seedRun("own-due", "dev-own", cutoff.Add(-3*24*time.Hour), run.Succeeded, "", 70)

	purge := func(name string) *retention.Stats {
		t.Helper()
		a, _ := f.agePurge(name, maxDays)
		return a
	}
	a := purge("first")
	assert.Equal(t, int64(4+2+1+1), a.RunsDeleted, "first purge RunsDeleted: every listed run created before the cutoff, and the run listed by its day")
	assert.Equal(t, int64(2), a.RunsSkipped, "first purge RunsSkipped: the two listed runs created after the cutoff")
	assert.Equal(t, cutoff.Add(-2*24*time.Hour).Format(time.DateOnly), a.PurgedThrough,
		"first purge: the day of a list whose runs are not all due is purged again")

	f.now = f.now.Add(time.Minute)
	a = purge("second")
	assert.Equal(t, int64(2), a.RunsDeleted, "second purge RunsDeleted: the rest of the midnight batch")
	assert.Zero(t, a.RunsSkipped, "second purge RunsSkipped")
	assert.Equal(t, cutoff.Add(-24*time.Hour).Format(time.DateOnly), a.PurgedThrough, "second purge: through the day before the cutoff's")
}

// agePurge runs a complete age purge of runs older than maxDays and holds the store to the oracle
// (dueByAge); it returns the purge's age stats and the runs the oracle skips.
func (f *fixture) agePurge(name string, maxDays int) (*retention.Stats, int64) {
	f.t.Helper()
	rep, err := f.purger(retention.Settings{MaxDays: maxDays}, &bytes.Buffer{}).Purge(context.Background(), "test")
	require.NoError(f.t, err, "%s purge", name)
	require.True(f.t, rep.Complete, "%s purge Complete", name)
	gone, skipped, _ := f.dueByAge(maxDays)
	f.checkExact(gone)
	return rep.Age, skipped
}

// dueByBytes is the oracle of the byte purge: per device, its oldest runs that are terminal and
// not in the live job, until the device's total is at or below the cap.
func (f *fixture) dueByBytes(limit int64) (gone map[string]bool, stillOver int) {
	byDev := map[string][]seededRun{}
	for _, r := range f.seeded {
		byDev[r.DeviceID] = append(byDev[r.DeviceID], r)
	}
	gone = map[string]bool{}
	for _, rs := range byDev {
		slices.SortFunc(rs, func(a, b seededRun) int { return a.CreatedAt.Compare(b.CreatedAt) })
		var total int64
		for _, r := range rs {
			total += r.bytes()
		}
		for _, r := range rs {
			if total <= limit {
				break
			}
			if r.Status.Terminal() && r.JobID != jobLive {
				gone[r.ID] = true
				total -= r.bytes()
			}
		}
		if total > limit {
			stillOver++
		}
	}
	return gone, stillOver
}

func TestPurgeByBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedFleet(10, 12)
	// A device whose only output is in runs that still run: over the cap, nothing to delete.
	f.seedRun("busy-1", "dev-busy", f.now.Add(-2*time.Hour), run.Running, "", 2000, 2000)
	f.seedRun("busy-2", "dev-busy", f.now.Add(-time.Hour), run.Succeeded, jobLive, 1500)
	const limit = 4000
	gone, stillOver := f.dueByBytes(limit)
	require.GreaterOrEqual(t, len(gone), 20, "seed: runs due")
	require.GreaterOrEqual(t, stillOver, 1, "seed: devices still over the cap")
	var logs bytes.Buffer
	rep, err := f.purger(retention.Settings{MaxBytes: limit}, &logs).Purge(context.Background(), "test")
	require.NoError(t, err, "purge")
	f.checkExact(gone)
	runs, chunks, freed := sums(f, gone)
	b := rep.Bytes
	require.NotNil(t, b, "byte stats of report %+v", rep)
	require.Nil(t, rep.Age, "age stats of a bytes-only purge")
	assert.Equal(t, runs, b.RunsDeleted, "RunsDeleted")
	assert.Equal(t, chunks, b.ChunksDeleted, "ChunksDeleted")
	assert.Equal(t, freed, b.BytesFreed, "BytesFreed")
	assert.Equal(t, int64(stillOver), b.DevicesStillOver, "DevicesStillOver")
	for dev, n := range f.scan().counters {
		if dev != "dev-busy" {
			assert.LessOrEqual(t, n, int64(limit), "bytes device %s still holds", dev)
		}
	}
	checkTelemetry(t, &logs, b)

	// Devices now at or below the cap left the changed set: only the one still over is read.
	rep2, err := f.purger(retention.Settings{MaxBytes: limit}, &bytes.Buffer{}).Purge(context.Background(), "test")
	require.NoError(t, err, "second purge")
	assert.Equal(t, int64(stillOver), rep2.Bytes.DevicesChecked, "DevicesChecked of the second purge")
	assert.Zero(t, rep2.Bytes.RunsDeleted, "RunsDeleted of the second purge")
	// A new write puts a device back in the changed set.
	f.seedRun("new-1", "dev-00", f.now, run.Succeeded, "", 5000)
	rep3, err := f.purger(retention.Settings{MaxBytes: limit}, &bytes.Buffer{}).Purge(context.Background(), "test")
	require.NoError(t, err, "purge after a write")
	assert.Equal(t, int64(stillOver)+1, rep3.Bytes.DevicesChecked, "DevicesChecked after a write to dev-00")
	assert.NotZero(t, rep3.Bytes.RunsDeleted, "RunsDeleted after a write to dev-00")
	s := f.scan()
	assert.Equal(t, s.recount, s.counters, "device byte counters against a recount")
}

func TestConcurrentPurgesKeepCountersExact(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedFleet(6, 16)
	goneAge, _, _ := f.dueByAge(20)
	settings := retention.Settings{MaxDays: 20}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		reports []retention.Report
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := f.purger(settings, &bytes.Buffer{})
			p.Workers = 3
			rep, err := p.Purge(context.Background(), "test")
			assert.NoError(t, err, "concurrent purge")
			mu.Lock()
			reports = append(reports, rep)
			mu.Unlock()
		}()
	}
	wg.Wait()
	f.checkExact(goneAge)
	var runs, chunks, freed int64
	for _, r := range reports {
		runs += r.Age.RunsDeleted
		chunks += r.Age.ChunksDeleted
		freed += r.Age.BytesFreed
	}
	wr, wc, wb := sums(f, goneAge)
	assert.Equal(t, wr, runs, "runs the four purges deleted together: want each once")
	assert.Equal(t, wc, chunks, "chunks the four purges deleted together: want each once")
	assert.Equal(t, wb, freed, "bytes the four purges freed together: want each once")
}

func TestPurgeStopsAtDeadlineAndContinues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedFleet(6, 12)
	gone, _, _ := f.dueByAge(10)
	// A clock that moves a second per look: the 30 s budget ends after a few days.
	var mu sync.Mutex
	tick := f.now
	p := f.purger(retention.Settings{MaxDays: 10}, &bytes.Buffer{})
	p.Budget = 30 * time.Second
	p.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick = tick.Add(time.Second)
		return tick
	}
	rep, err := p.Purge(context.Background(), "test")
	require.NoError(t, err, "bounded purge")
	require.False(t, rep.Complete, "Complete of a purge out of time")
	require.False(t, rep.Age.Complete, "age stats Complete of a purge out of time")
	require.Equal(t, retention.ContinueNextInvocation, rep.Continuation, "Continuation of a purge out of time")
	require.Less(t, rep.Age.RunsDeleted, int64(len(gone)), "the bounded purge deleted all runs; the test needs it to stop early")
	rep2, err := f.purger(retention.Settings{MaxDays: 10}, &bytes.Buffer{}).Purge(context.Background(), "test")
	require.NoError(t, err, "continuation purge")
	assert.True(t, rep2.Complete, "Complete of the continuation: %+v", rep2.Age)
	assert.Equal(t, int64(len(gone)), rep.Age.RunsDeleted+rep2.Age.RunsDeleted, "runs the two purges deleted together")
	f.checkExact(gone)
}

// streamRecord is the stream record DynamoDB TTL writes when it deletes a chunk.
func streamRecord(seq, pk, sk, device string, size int, principal string) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventID: "e" + seq, EventName: "REMOVE", EventSource: "aws:dynamodb",
		UserIdentity: &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: principal},
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: seq, StreamViewType: "OLD_IMAGE",
			Keys: map[string]events.DynamoDBAttributeValue{"pk": events.NewStringAttribute(pk), "sk": events.NewStringAttribute(sk)},
			OldImage: map[string]events.DynamoDBAttributeValue{
				"pk": events.NewStringAttribute(pk), "sk": events.NewStringAttribute(sk),
				"device_id": events.NewStringAttribute(device), "size": events.NewNumberAttribute(strconv.Itoa(size)),
				"expires_at": events.NewNumberAttribute("1764115100"),
			},
		},
	}
}

func TestTTLStreamConsumer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedRun("ttl-1", "dev-a", f.now.Add(-40*24*time.Hour), run.Succeeded, "", 500, 300)
	f.seedRun("ttl-2", "dev-a", f.now.Add(-time.Hour), run.Succeeded, "", 700)
	// DynamoDB TTL deletes the first run's items (no counter change): simulate it.
	for _, sk := range []string{"META", "CHUNK#000000", "CHUNK#000001"} {
		_, err := f.db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName: aws.String(f.st.Names.Tables[resources.RunsTable]),
			Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "RUN#ttl-1"}, "sk": &types.AttributeValueMemberS{Value: sk}},
		})
		require.NoError(t, err, "delete RUN#ttl-1 %s", sk)
	}
	// The run item carries the output's last piece (300 bytes) inline: its record counts it.
	meta := streamRecord("1", "RUN#ttl-1", "META", "dev-a", 0, "dynamodb.amazonaws.com")
	delete(meta.Change.OldImage, "size")
	meta.Change.OldImage["tail_size"] = events.NewNumberAttribute("300")
	// A run item without output has no bytes of its own: ignored.
	empty := streamRecord("3", "RUN#ttl-0", "META", "dev-a", 0, "dynamodb.amazonaws.com")
	delete(empty.Change.OldImage, "size")
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		meta,
		streamRecord("2", "RUN#ttl-1", "CHUNK#000000", "dev-a", 500, "dynamodb.amazonaws.com"),
		empty,
		// A purge's own delete (the function's role) is not TTL: ignored.
		streamRecord("4", "RUN#ttl-2", "CHUNK#000000", "dev-a", 700, "AROAEXAMPLE:netauto-retention"),
	}}
	cfg := config.Config{Tables: map[string]string{
		resources.RunsTable: f.st.Names.Tables[resources.RunsTable], resources.JobsTable: f.st.Names.Tables[resources.JobsTable],
		resources.AuditTable: f.st.Names.Tables[resources.AuditTable]},
		RunMaxDays: 30, RetentionCron: "@daily"}
	h, err := app.NewRetention(context.Background(), cfg, app.RetentionOptions{DB: f.db, Metrics: metrics.New(&bytes.Buffer{}),
		Logger: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))})
	require.NoError(t, err, "new retention handler")
	raw, err := json.Marshal(ev)
	require.NoError(t, err, "encode the stream event")
	// Delivered twice (a retried batch): subtracted once.
	for i := range 2 {
		out, err := h(context.Background(), raw)
		require.NoError(t, err, "delivery %d", i)
		require.IsType(t, events.DynamoDBEventResponse{}, out, "delivery %d", i)
		require.Empty(t, out.(events.DynamoDBEventResponse).BatchItemFailures, "batch item failures of delivery %d", i)
	}
	s := f.scan()
	assert.Equal(t, s.recount, s.counters, "device byte counters after TTL against a recount")
	assert.Equal(t, int64(700), s.counters["dev-a"], "byte counter of dev-a after TTL")

	// A chunk record without its size cannot be handled: that record fails, nothing after it runs.
	bad := streamRecord("5", "RUN#ttl-9", "CHUNK#000000", "dev-a", 1, "dynamodb.amazonaws.com")
	delete(bad.Change.OldImage, "size")
	raw, _ = json.Marshal(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{bad, streamRecord("6", "RUN#ttl-9", "CHUNK#000001", "dev-a", 7, "dynamodb.amazonaws.com")}})
	out, err := h(context.Background(), raw)
	require.NoError(t, err, "delivery of a bad record")
	require.IsType(t, events.DynamoDBEventResponse{}, out, "delivery of a bad record")
	assert.Equal(t, []events.DynamoDBBatchItemFailure{{ItemIdentifier: "5"}}, out.(events.DynamoDBEventResponse).BatchItemFailures,
		"batch item failures: want the failure of sequence 5")
	assert.Equal(t, int64(700), f.scan().counters["dev-a"], "byte counter of dev-a after a failed batch")

	// The sample event decodes and is handled (its chunk is not in this table: the counter goes
	// negative for that device, which is the point of feeding a TTL record).
	sample, err := os.ReadFile("../../events/dynamodb-ttl-delete.json")
	require.NoError(t, err, "read the sample event")
	out, err = h(context.Background(), sample)
	if assert.NoError(t, err, "sample stream event") && assert.IsType(t, events.DynamoDBEventResponse{}, out, "sample stream event") {
		assert.Empty(t, out.(events.DynamoDBEventResponse).BatchItemFailures, "batch item failures of the sample stream event")
	}
	assert.Equal(t, int64(-65536), f.scan().counters["dev-core-01"], "byte counter of dev-core-01 after the sample TTL record")
}

func TestRetentionHandlerDispatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedRun("old", "dev-a", f.now.Add(-45*24*time.Hour), run.Succeeded, "", 10)
	cfg := config.Config{Tables: map[string]string{
		resources.RunsTable: f.st.Names.Tables[resources.RunsTable], resources.JobsTable: f.st.Names.Tables[resources.JobsTable],
		resources.AuditTable: f.st.Names.Tables[resources.AuditTable]},
		RunMaxDays: 30, RetentionCron: "@daily"}
	var logs bytes.Buffer
	h, err := app.NewRetention(context.Background(), cfg, app.RetentionOptions{DB: f.db, Metrics: metrics.New(lockedWriter(&logs)), Lookback: 60 * 24 * time.Hour,
		Logger: slog.New(slog.NewJSONHandler(lockedWriter(&logs), nil))})
	require.NoError(t, err, "new retention handler")
	sched, err := os.ReadFile("../../events/schedule-retention.json")
	require.NoError(t, err, "read the sample schedule event")
	cases := []struct {
		name    string
		event   string
		wantErr bool
	}{
		{"scheduled event purges", string(sched), false},
		{"unknown event refused", `{"hello":"world"}`, true},
		{"not json refused", `[1,2`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := h(context.Background(), json.RawMessage(c.event))
			if c.wantErr {
				require.Error(t, err, "handler answered %v", out)
				return
			}
			require.NoError(t, err, "handler")
			rep, ok := out.(retention.Report)
			require.True(t, ok, "scheduled purge returned %#v, want a retention.Report", out)
			assert.Equal(t, app.TriggerSchedule, rep.Trigger, "Trigger")
			if assert.NotNil(t, rep.Age, "age stats") {
				assert.Equal(t, int64(1), rep.Age.RunsDeleted, "RunsDeleted")
				assert.Equal(t, int64(10), rep.Age.BytesFreed, "BytesFreed")
			}
		})
	}
	checkTelemetry(t, &logs, &retention.Stats{Type: retention.TypeAge, RunsDeleted: 1, ChunksDeleted: 1, BytesFreed: 10})

	// The scheduled purge is in the audit table, as the retention function's.
	_, trail, err := app.AuditTrail(cfg, f.db, nil)
	require.NoError(t, err)
	entries, _, err := trail.List(context.Background(), audit.Filter{Action: "retention.purge"}, "", 10)
	require.NoError(t, err)
	if assert.Len(t, entries, 1, "audit entries of the scheduled purge") {
		assert.Equal(t, audit.ActorRetention, entries[0].Actor)
		assert.Equal(t, app.TriggerSchedule, entries[0].Detail["trigger"])
		assert.Equal(t, "1", entries[0].Detail["age_runs_deleted"])
	}
}

// TestTTLStreamConsumerSharedOutput: the stream consumer's part in outputs stored once: a run
// item TTL deleted names its body in its old image, and its reference goes (the body with it,
// as it was the last), once however often the record comes; a head's record of a body already
// gone changes nothing.
func TestTTLStreamConsumerSharedOutput(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	table := f.st.Names.Tables[resources.RunsTable]
	runs, err := dynamo.NewRunStore(f.db, table, time.Minute)
	require.NoError(t, err)
	output := []byte(strings.Repeat("interface GigabitEthernet1\n no shutdown\n", 40))
	r := run.Run{ID: "ttl-shared", DeviceID: "dev-s", Command: "show running-config", RequestedBy: "t", CreatedAt: f.now.Add(-40 * 24 * time.Hour),
		Status: run.Succeeded, Bytes: int64(len(output)), Chunks: 1, NoiseOK: true, Attempt: 2, PreviousRunID: "ttl-before", Changed: new(bool)}
	require.NoError(t, runs.FinishNew(ctx, r, output))
	shared, err := runs.SharedBytes(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(len(output)), shared, "the output is stored once")
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "RUN#ttl-shared"}, "sk": &types.AttributeValueMemberS{Value: "META"}}
	item, err := f.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key})
	require.NoError(t, err)
	key32 := item.Item["blob"].(*types.AttributeValueMemberB).Value // the body's key, as its raw bytes
	blob := hex.EncodeToString(key32)
	_, err = f.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: key}) // TTL's deletion
	require.NoError(t, err)

	meta := streamRecord("1", "RUN#ttl-shared", "META", "dev-s", 0, "dynamodb.amazonaws.com")
	delete(meta.Change.OldImage, "size")
	meta.Change.OldImage["tail_size"] = events.NewNumberAttribute(strconv.Itoa(len(output)))
	meta.Change.OldImage["blob"] = events.NewBinaryAttribute(key32)
	meta.Change.OldImage["attempt"] = events.NewNumberAttribute("2") // each attempt references under its own item
	head := streamRecord("2", "BLOB#"+blob, "HEAD", "", len(output), "dynamodb.amazonaws.com")
	head.Change.OldImage["gen"] = events.NewStringAttribute("0000000000000000")
	cfg := config.Config{Tables: map[string]string{
		resources.RunsTable: table, resources.JobsTable: f.st.Names.Tables[resources.JobsTable], resources.AuditTable: f.st.Names.Tables[resources.AuditTable]},
		RunMaxDays: 30, RetentionCron: "@daily"}
	h, err := app.NewRetention(ctx, cfg, app.RetentionOptions{DB: f.db, Metrics: metrics.New(&bytes.Buffer{}), Logger: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))})
	require.NoError(t, err)
	raw, err := json.Marshal(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{meta, head}})
	require.NoError(t, err)
	for i := range 2 {
		out, err := h(ctx, raw)
		require.NoError(t, err, "delivery %d", i)
		require.Empty(t, out.(events.DynamoDBEventResponse).BatchItemFailures, "batch item failures of delivery %d", i)
	}
	shared, err = runs.SharedBytes(ctx)
	require.NoError(t, err)
	assert.Zero(t, shared, "the body went with its last reference")
	use, err := runs.DeviceUsage(ctx, "dev-s")
	require.NoError(t, err)
	assert.Equal(t, run.Usage{}, use, "the device's bytes after TTL")
}
