package retention_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
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

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/app"
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
	if err != nil {
		t.Fatal(err)
	}
	store, err := dynamo.NewRetentionStore(db, st.Names.Tables[resources.RunsTable], st.Names.Tables[resources.JobsTable])
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, db: db, runs: runs, store: store, now: time.Now().UTC(), seeded: map[string]seededRun{}}
	for id, status := range map[string]string{jobLive: "running", jobDone: "completed"} {
		_, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{
			TableName: aws.String(st.Names.Tables[resources.JobsTable]),
			Item: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: "JOB#" + id}, "sk": &types.AttributeValueMemberS{Value: "META"},
				"id": &types.AttributeValueMemberS{Value: id}, "status": &types.AttributeValueMemberS{Value: status},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// seedRun stores a run through the real run store: Start, AppendChunk for all chunks but the
// last, Finish with the last (or Start only when status is running).
func (f *fixture) seedRun(id, device string, created time.Time, status run.Status, job string, chunks ...int) {
	f.t.Helper()
	ctx := context.Background()
	r, err := f.runs.Start(ctx, run.Run{ID: id, DeviceID: device, Command: "show version", JobID: job, RequestedBy: "seed", CreatedAt: created})
	if err != nil {
		f.t.Fatalf("start %s: %v", id, err)
	}
	for i := 0; i < len(chunks)-1; i++ {
		if err := f.runs.AppendChunk(ctx, r, i, bytes.Repeat([]byte{'x'}, chunks[i])); err != nil {
			f.t.Fatalf("append %s: %v", id, err)
		}
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
		if err := f.runs.Finish(ctx, r, last); err != nil {
			f.t.Fatalf("finish %s: %v", id, err)
		}
	} else if len(chunks) > 0 {
		if err := f.runs.AppendChunk(ctx, r, len(chunks)-1, bytes.Repeat([]byte{'z'}, chunks[len(chunks)-1])); err != nil {
			f.t.Fatalf("append %s: %v", id, err)
		}
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
			s := spec{id: fmt.Sprintf("%s.r%03d", dev, i), dev: dev, created: f.now.Add(-age), status: run.Succeeded}
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
		if v, ok := it[k].(*types.AttributeValueMemberS); ok {
			return v.Value
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
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			f.t.Fatal(err)
		}
		for _, it := range page.Items {
			pk, sk := str(it, "pk"), str(it, "sk")
			switch {
			case strings.HasPrefix(pk, "RUN#") && sk == "META":
				s.runs[strings.TrimPrefix(pk, "RUN#")] = true
				if _, ok := it["tail"]; ok { // the output's last piece, kept inline: counted as a chunk
					s.chunks[strings.TrimPrefix(pk, "RUN#")]++
					s.recount[str(it, "device_id")] += num(it, "tail_size")
				}
			case strings.HasPrefix(pk, "RUN#") && strings.HasPrefix(sk, "CHUNK#"):
				s.chunks[strings.TrimPrefix(pk, "RUN#")]++
				s.recount[str(it, "device_id")] += num(it, "size")
			case strings.HasPrefix(pk, "DEVBYTES#"): // the counter and the tail ledger items
				s.counters[strings.TrimPrefix(pk, "DEVBYTES#")] += num(it, "bytes")
			}
		}
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
		if gone[id] {
			if s.runs[id] || s.chunks[id] > 0 {
				f.t.Errorf("run %s (created %s, %s, job %q) should be purged: meta %v, %d chunks left", id, r.CreatedAt.Format(time.RFC3339), r.Status, r.JobID, s.runs[id], s.chunks[id])
			}
			continue
		}
		if !s.runs[id] || s.chunks[id] != len(r.chunks) {
			f.t.Errorf("run %s (created %s, %s, job %q) should be kept whole: meta %v, %d of %d chunks", id, r.CreatedAt.Format(time.RFC3339), r.Status, r.JobID, s.runs[id], s.chunks[id], len(r.chunks))
		}
	}
	if !maps.Equal(s.counters, s.recount) {
		f.t.Errorf("counters differ from a recount:\ncounters %v\nrecount  %v", s.counters, s.recount)
	}
}

// events returns the retention.purge log events and EMF lines of a type from logs.
func purgeEvents(t *testing.T, logs *bytes.Buffer, typ string) (logged, emf []map[string]any) {
	t.Helper()
	bufMu.Lock()
	defer bufMu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(logs.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
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
	if len(logged) != 1 || len(emf) != 1 {
		t.Fatalf("%s: %d retention.purge log events and %d EMF lines, want 1 and 1", s.Type, len(logged), len(emf))
	}
	for _, m := range []map[string]any{logged[0], emf[0]} {
		for name, want := range map[string]int64{"runs_deleted": s.RunsDeleted, "chunks_deleted": s.ChunksDeleted, "bytes_freed": s.BytesFreed} {
			if got, _ := m[name].(float64); int64(got) != want {
				t.Errorf("%s telemetry %s = %v, want %d (%v)", s.Type, name, m[name], want, m)
			}
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
	if !gone["edge-due"] || gone["edge-kept"] || len(gone) < 40 || skipped < 10 {
		t.Fatalf("seed does not cover the cases: %d due, %d skipped", len(gone), skipped)
	}
	var logs bytes.Buffer
	rep, err := f.purger(retention.Settings{MaxDays: 30}, &logs).Purge(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	f.checkExact(gone)
	runs, chunks, freed := sums(f, gone)
	a := rep.Age
	if a == nil || rep.Bytes != nil {
		t.Fatalf("report %+v: want age stats only", rep)
	}
	if a.RunsDeleted != runs || a.ChunksDeleted != chunks || a.BytesFreed != freed || a.RunsSkipped != skipped {
		t.Errorf("age stats %+v, want runs %d chunks %d bytes %d skipped %d", a, runs, chunks, freed, skipped)
	}
	if !rep.Complete || rep.Continuation != "" || !a.Complete {
		t.Errorf("report not complete: %+v", rep)
	}
	if want := firstSkip.Add(-24 * time.Hour).Format(time.DateOnly); a.PurgedThrough != want {
		t.Errorf("purged through %s, want %s (the day before the first day with a skipped run)", a.PurgedThrough, want)
	}
	checkTelemetry(t, &logs, a)

	// Stored and served.
	last, err := f.store.LastReport(context.Background())
	if err != nil || last.Age == nil || last.Age.RunsDeleted != runs {
		t.Errorf("last report = %+v, %v", last, err)
	}

	// Again: nothing more is due, the skipped are skipped again, the counters stay exact.
	rep2, err := f.purger(retention.Settings{MaxDays: 30}, &bytes.Buffer{}).Purge(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Age.RunsDeleted != 0 || rep2.Age.RunsSkipped != skipped {
		t.Errorf("second purge %+v, want 0 deleted, %d skipped", rep2.Age, skipped)
	}
	f.checkExact(gone)
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
	if len(gone) < 20 || stillOver < 1 {
		t.Fatalf("seed does not cover the cases: %d due, %d still over", len(gone), stillOver)
	}
	var logs bytes.Buffer
	rep, err := f.purger(retention.Settings{MaxBytes: limit}, &logs).Purge(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	f.checkExact(gone)
	runs, chunks, freed := sums(f, gone)
	b := rep.Bytes
	if b == nil || rep.Age != nil {
		t.Fatalf("report %+v: want byte stats only", rep)
	}
	if b.RunsDeleted != runs || b.ChunksDeleted != chunks || b.BytesFreed != freed || b.DevicesStillOver != int64(stillOver) {
		t.Errorf("byte stats %+v, want runs %d chunks %d bytes %d still over %d", b, runs, chunks, freed, stillOver)
	}
	for dev, n := range f.scan().counters {
		if n > limit && dev != "dev-busy" {
			t.Errorf("device %s still holds %d bytes > %d", dev, n, limit)
		}
	}
	checkTelemetry(t, &logs, b)

	// Devices now at or below the cap left the changed set: only the one still over is read.
	rep2, err := f.purger(retention.Settings{MaxBytes: limit}, &bytes.Buffer{}).Purge(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Bytes.DevicesChecked != int64(stillOver) || rep2.Bytes.RunsDeleted != 0 {
		t.Errorf("second purge checked %d devices and deleted %d runs, want %d and 0", rep2.Bytes.DevicesChecked, rep2.Bytes.RunsDeleted, stillOver)
	}
	// A new write puts a device back in the changed set.
	f.seedRun("new-1", "dev-00", f.now, run.Succeeded, "", 5000)
	rep3, err := f.purger(retention.Settings{MaxBytes: limit}, &bytes.Buffer{}).Purge(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if rep3.Bytes.DevicesChecked != int64(stillOver)+1 || rep3.Bytes.RunsDeleted == 0 {
		t.Errorf("after a write: checked %d devices, deleted %d runs", rep3.Bytes.DevicesChecked, rep3.Bytes.RunsDeleted)
	}
	s := f.scan()
	if !maps.Equal(s.counters, s.recount) {
		t.Errorf("counters %v differ from recount %v", s.counters, s.recount)
	}
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
			if err != nil {
				t.Error(err)
			}
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
	if runs != wr || chunks != wc || freed != wb {
		t.Errorf("four purges together deleted %d runs, %d chunks, %d bytes; want each once: %d, %d, %d", runs, chunks, freed, wr, wc, wb)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete || rep.Age.Complete || rep.Continuation != retention.ContinueNextInvocation {
		t.Fatalf("a purge out of time reports %+v, want incomplete and continuing", rep)
	}
	if rep.Age.RunsDeleted >= int64(len(gone)) {
		t.Fatalf("the bounded purge deleted all %d runs; the test needs it to stop early", rep.Age.RunsDeleted)
	}
	rep2, err := f.purger(retention.Settings{MaxDays: 10}, &bytes.Buffer{}).Purge(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.Complete || rep.Age.RunsDeleted+rep2.Age.RunsDeleted != int64(len(gone)) {
		t.Errorf("continuation: %+v; together %d runs, want %d", rep2.Age, rep.Age.RunsDeleted+rep2.Age.RunsDeleted, len(gone))
	}
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
		if err != nil {
			t.Fatal(err)
		}
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
		resources.RunsTable: f.st.Names.Tables[resources.RunsTable], resources.JobsTable: f.st.Names.Tables[resources.JobsTable]},
		RunMaxDays: 30, RetentionCron: "@daily"}
	h, err := app.NewRetention(context.Background(), cfg, app.RetentionOptions{DB: f.db, Metrics: metrics.New(&bytes.Buffer{}),
		Logger: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// Delivered twice (a retried batch): subtracted once.
	for i := range 2 {
		out, err := h(context.Background(), raw)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		if resp, ok := out.(events.DynamoDBEventResponse); !ok || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("delivery %d answered %#v", i, out)
		}
	}
	s := f.scan()
	if !maps.Equal(s.counters, s.recount) || s.counters["dev-a"] != 700 {
		t.Errorf("after TTL: counters %v, recount %v; want dev-a 700", s.counters, s.recount)
	}

	// A chunk record without its size cannot be handled: that record fails, nothing after it runs.
	bad := streamRecord("5", "RUN#ttl-9", "CHUNK#000000", "dev-a", 1, "dynamodb.amazonaws.com")
	delete(bad.Change.OldImage, "size")
	raw, _ = json.Marshal(events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{bad, streamRecord("6", "RUN#ttl-9", "CHUNK#000001", "dev-a", 7, "dynamodb.amazonaws.com")}})
	out, err := h(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(events.DynamoDBEventResponse); len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "5" {
		t.Errorf("bad record answered %#v, want failure of sequence 5", resp)
	}
	if n := f.scan().counters["dev-a"]; n != 700 {
		t.Errorf("counter after a failed batch = %d, want 700", n)
	}

	// The sample event decodes and is handled (its chunk is not in this table: the counter goes
	// negative for that device, which is the point of feeding a TTL record).
	sample, err := os.ReadFile("../../events/dynamodb-ttl-delete.json")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := h(context.Background(), sample); err != nil || len(out.(events.DynamoDBEventResponse).BatchItemFailures) != 0 {
		t.Errorf("sample stream event: %#v, %v", out, err)
	}
	if n := f.scan().counters["dev-core-01"]; n != -65536 {
		t.Errorf("sample TTL record subtracted to %d, want -65536", n)
	}
}

func TestRetentionHandlerDispatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedRun("old", "dev-a", f.now.Add(-45*24*time.Hour), run.Succeeded, "", 10)
	cfg := config.Config{Tables: map[string]string{
		resources.RunsTable: f.st.Names.Tables[resources.RunsTable], resources.JobsTable: f.st.Names.Tables[resources.JobsTable]},
		RunMaxDays: 30, RetentionCron: "@daily"}
	var logs bytes.Buffer
	h, err := app.NewRetention(context.Background(), cfg, app.RetentionOptions{DB: f.db, Metrics: metrics.New(lockedWriter(&logs)), Lookback: 60 * 24 * time.Hour,
		Logger: slog.New(slog.NewJSONHandler(lockedWriter(&logs), nil))})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := os.ReadFile("../../events/schedule-retention.json")
	if err != nil {
		t.Fatal(err)
	}
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
			if (err != nil) != c.wantErr {
				t.Fatalf("handler(%s) = %v, %v", c.name, out, err)
			}
			if c.wantErr {
				return
			}
			rep, ok := out.(retention.Report)
			if !ok || rep.Trigger != app.TriggerSchedule || rep.Age == nil || rep.Age.RunsDeleted != 1 || rep.Age.BytesFreed != 10 {
				t.Errorf("scheduled purge returned %#v", out)
			}
		})
	}
	checkTelemetry(t, &logs, &retention.Stats{Type: retention.TypeAge, RunsDeleted: 1, ChunksDeleted: 1, BytesFreed: 10})
}
