package dynamo

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// retentionTable is a retention store over its own runs and jobs tables, with a run store on the
// same runs table to write what it purges.
type retentionTable struct {
	*RetentionStore
	runs   runTable
	jobsDB API
}

func newRetentionStore(t *testing.T) retentionTable {
	t.Helper()
	rt := newRunStore(t)
	jobsDB, jobs := newTable(t, resources.JobsTable)
	s, err := NewRetentionStore(rt.db, rt.table, jobs)
	require.NoError(t, err)
	s.now = rt.clock.now
	return retentionTable{RetentionStore: s, runs: rt, jobsDB: jobsDB}
}

// candidate reads run id back as the purges see it: a finished run as the byte purge lists its
// device's runs, an unfinished one as the age purge lists today's.
func (rs retentionTable) candidate(t *testing.T, deviceID, id string) retention.Candidate {
	t.Helper()
	ctx := context.Background()
	cands, _, err := rs.RunsOfDevice(ctx, deviceID, "", 1000)
	require.NoError(t, err)
	cands = append(cands, rs.runsOfDay(t, time.Now().UTC(), time.Now().Add(time.Hour), 1000, 1100)...)
	for _, c := range cands {
		if c.ID == id && c.DeviceID == deviceID {
			return c
		}
	}
	require.Failf(t, "no candidate", "run %s of device %s not listed", id, deviceID)
	return retention.Candidate{}
}

// runsOfDay reads every page of RunsOfDay(day, before), limit runs a page asked, and holds each
// page to at most maxPage runs.
func (rs retentionTable) runsOfDay(t *testing.T, day, before time.Time, limit, maxPage int) []retention.Candidate {
	t.Helper()
	var all []retention.Candidate
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 200, "paging ends")
		cands, next, err := rs.RunsOfDay(context.Background(), day, before, cursor, limit)
		require.NoError(t, err)
		require.LessOrEqual(t, len(cands), maxPage, "page size")
		all = append(all, cands...)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// smallChunks stores run id with n chunks of 10 bytes and a tail of tail bytes, finished.
func (rs retentionTable) smallChunks(t *testing.T, deviceID, id string, n, tail int) {
	t.Helper()
	ctx := context.Background()
	r, err := rs.runs.Start(ctx, testRun(id, deviceID))
	require.NoError(t, err)
	for seq := range n {
		require.NoErrorf(t, rs.runs.AppendChunk(ctx, r, seq, randomOutput(10)), "chunk %d of run %s", seq, id)
	}
	r.Status, r.Bytes, r.Chunks = run.Succeeded, int64(10*n+tail), n
	if tail > 0 {
		r.Chunks++
	}
	require.NoError(t, rs.runs.Finish(ctx, r, randomOutput(tail)))
}

func TestNewRetentionStore(t *testing.T) {
	_, err := NewRetentionStore(nil, "runs", "jobs")
	assert.Error(t, err, "no client")
	_, err = NewRetentionStore(&fakeAPI{}, "", "jobs")
	assert.Error(t, err, "no runs table")
	_, err = NewRetentionStore(&fakeAPI{}, "runs", "")
	assert.Error(t, err, "no jobs table")
}

// TestRetentionStoreDeleteRun holds the purge's accounting exact: every piece of output and
// every byte is reported and subtracted from its device exactly once.
func TestRetentionStoreDeleteRun(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	tests := []struct {
		name    string
		prepare func(t *testing.T, dev, id string)
		want    retention.Deleted
	}{
		{"no output", func(t *testing.T, dev, id string) { rs.runs.finish(t, testRun(id, dev), nil) },
			retention.Deleted{Run: true}},
		{"inline tail only", func(t *testing.T, dev, id string) { rs.runs.finish(t, testRun(id, dev), randomOutput(1000)) },
			retention.Deleted{Run: true, Chunks: 1, Bytes: 1000}},
		{"whole chunks", func(t *testing.T, dev, id string) {
			rs.runs.finish(t, testRun(id, dev), randomOutput(2*run.ChunkSize))
		}, retention.Deleted{Run: true, Chunks: 2, Bytes: 2 * run.ChunkSize}},
		{"chunks and a tail", func(t *testing.T, dev, id string) {
			rs.runs.finish(t, testRun(id, dev), randomOutput(2*run.ChunkSize+500))
		}, retention.Deleted{Run: true, Chunks: 3, Bytes: 2*run.ChunkSize + 500}},
		{"a tail and chunks filling a transaction", func(t *testing.T, dev, id string) { rs.smallChunks(t, dev, id, maxTransactItems-2, 7) },
			retention.Deleted{Run: true, Chunks: maxTransactItems - 1, Bytes: 10*(maxTransactItems-2) + 7}},
		{"several transactions", func(t *testing.T, dev, id string) { rs.smallChunks(t, dev, id, 2*deleteGroupChunks+5, 0) },
			retention.Deleted{Run: true, Chunks: 2*deleteGroupChunks + 5, Bytes: 10 * (2*deleteGroupChunks + 5)}},
		{"a chunk gone already", func(t *testing.T, dev, id string) {
			rs.runs.finish(t, testRun(id, dev), randomOutput(3*run.ChunkSize+20))
			ok, err := deleteChunk(ctx, rs.runs.db, rs.runs.table, id, dev, chunkSK(1), run.ChunkSize)
			require.NoError(t, err)
			require.True(t, ok, "chunk 1 deleted first")
		}, retention.Deleted{Run: true, Chunks: 3, Bytes: 2*run.ChunkSize + 20}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, id := fmt.Sprintf("dev-del-%d", i), fmt.Sprintf("del-%d", i)
			tt.prepare(t, dev, id)
			c := rs.candidate(t, dev, id)
			del, err := rs.DeleteRun(ctx, c)
			require.NoErrorf(t, err, "delete run %s", id)
			assert.Equalf(t, tt.want, del, "deleted of run %s", id)
			assert.Equalf(t, int64(0), rs.runs.deviceBytes(t, dev), "bytes left on device %s", dev)
			_, err = rs.runs.Get(ctx, id)
			assert.ErrorIsf(t, err, run.ErrNotFound, "run %s gone", id)
			assert.Emptyf(t, rs.runs.output(t, id), "output of run %s gone", id)
			entry, err := rs.runs.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(rs.runs.table), Key: tailKey(dev, id), ConsistentRead: aws.Bool(true)})
			require.NoError(t, err)
			assert.Emptyf(t, entry.Item, "entry of run %s gone", id)

			again, err := rs.DeleteRun(ctx, c)
			require.NoErrorf(t, err, "delete run %s again", id)
			assert.Equalf(t, retention.Deleted{}, again, "nothing left of run %s", id)
			assert.Equalf(t, int64(0), rs.runs.deviceBytes(t, dev), "bytes of device %s after a second delete", dev)
		})
	}
	t.Run("another purge deletes a chunk meanwhile", func(t *testing.T) {
		rs.runs.finish(t, testRun("raced", "dev-raced"), randomOutput(3*run.ChunkSize+20))
		c := rs.candidate(t, "dev-raced", "raced")
		racing := &racingDB{API: rs.runs.db, before: func() {
			ok, err := deleteChunk(ctx, rs.runs.db, rs.runs.table, "raced", "dev-raced", chunkSK(1), run.ChunkSize)
			require.NoError(t, err)
			require.True(t, ok, "the other purge deleted chunk 1")
		}}
		store, err := NewRetentionStore(racing, rs.runs.table, rs.jobs)
		require.NoError(t, err)
		del, err := store.DeleteRun(ctx, c)
		require.NoError(t, err)
		assert.Equal(t, retention.Deleted{Run: true, Chunks: 3, Bytes: 2*run.ChunkSize + 20}, del, "what this purge deleted")
		assert.Equal(t, int64(0), rs.runs.deviceBytes(t, "dev-raced"), "bytes of device dev-raced")
		_, err = rs.runs.Get(ctx, "raced")
		assert.ErrorIs(t, err, run.ErrNotFound, "run raced gone")
	})
	t.Run("a run that changed since it was listed", func(t *testing.T) {
		r, err := rs.runs.Start(ctx, testRun("moved", "dev-moved"))
		require.NoError(t, err)
		c := rs.candidate(t, "dev-moved", "moved")
		require.Equal(t, run.Running, c.Status)
		r.Status = run.Succeeded
		require.NoError(t, rs.runs.Finish(ctx, r, []byte("late")))
		del, err := rs.DeleteRun(ctx, c)
		require.NoError(t, err)
		assert.False(t, del.Run, "run moved is kept")
		got, err := rs.runs.Get(ctx, "moved")
		require.NoError(t, err)
		assert.Equal(t, run.Succeeded, got.Status)
		assert.Equal(t, int64(4), rs.runs.deviceBytes(t, "dev-moved"), "bytes of device dev-moved")
	})
}

// asLegacyDayRun moves run id's by_day entry to its day's unsharded partition, as runs were
// written before the day was sharded.
func asLegacyDayRun(t *testing.T, db API, table, id string, created time.Time) {
	t.Helper()
	_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(table), Key: runKey(id), UpdateExpression: aws.String("SET #pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.AttrGSI2PK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "DAY#" + created.UTC().Format(time.DateOnly)}},
	})
	require.NoError(t, err, "move run %s to the legacy day partition", id)
}

func TestDayPartition(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shard int
		want  string
	}{
		{"first shard", 0, "DAY#2026-03-14#00"},
		{"last shard", dayShards - 1, "DAY#2026-03-14#63"},
		{"legacy partition", dayShards, "DAY#2026-03-14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, dayPartition("2026-03-14", tc.shard))
		})
	}
}

func TestRetentionStoreRunsOfDay(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	var want []string
	partitions := map[string]int{}
	for i := range 90 {
		r := testRun(fmt.Sprintf("day-%02d", i), fmt.Sprintf("dev-%d", i%2))
		r.CreatedAt, r.Status = day.Add(time.Duration(i)*6*time.Minute), run.Succeeded
		require.NoError(t, rs.runs.FinishNew(ctx, r, []byte("out")))
		if i%10 == 3 { // written before the day was sharded
			asLegacyDayRun(t, rs.runs.db, rs.runs.table, r.ID, r.CreatedAt)
		}
		if r.CreatedAt.Before(day.Add(6 * time.Hour)) {
			want = append(want, r.ID)
		}
		it, found, err := getItem[runItem](ctx, rs.runs.db, rs.runs.table, runKey(r.ID), "run "+r.ID)
		require.NoError(t, err)
		require.True(t, found, "run %s stored", r.ID)
		partitions[it.GSI2PK]++
	}
	next := testRun("next-day", "dev-0")
	next.CreatedAt, next.Status = day.Add(24*time.Hour), run.Succeeded
	require.NoError(t, rs.runs.FinishNew(ctx, next, nil))
	assert.Equal(t, 9, partitions["DAY#2026-03-14"], "runs in the legacy partition")
	assert.Greater(t, len(partitions), dayShards/2, "partitions the day's runs are in: %v", partitions)
	for p, n := range partitions {
		assert.LessOrEqual(t, n, 9, "runs in partition %s", p)
	}

	for _, limit := range []int{1, 7, 100} {
		t.Run(fmt.Sprintf("pages of %d", limit), func(t *testing.T) {
			var got []string
			for _, c := range rs.runsOfDay(t, day, day.Add(6*time.Hour), limit, limit) {
				got = append(got, c.ID)
				assert.Equalf(t, int64(3), c.InlineBytes, "inline bytes of run %s", c.ID)
				assert.Equalf(t, run.Succeeded, c.Status, "status of run %s", c.ID)
			}
			assert.ElementsMatch(t, want, got, "runs of the day created before 06:00, every shard and the legacy partition, each once")
		})
	}
	for name, cursor := range map[string]string{"not JSON": "garbage", "no such partition": `{"s":65}`, "negative": `{"s":-1}`, "bad key": `{"s":3,"k":"%%"}`} {
		t.Run("bad cursor: "+name, func(t *testing.T) {
			_, _, err := rs.RunsOfDay(ctx, day, day.Add(time.Hour), cursor, 2)
			assert.ErrorIs(t, err, fault.ErrBadCursor)
		})
	}
	_, _, err := rs.RunsOfDevice(ctx, "dev-0", "garbage", 2)
	assert.ErrorIs(t, err, fault.ErrBadCursor)
}

func TestRetentionStoreChangedDevices(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	want := map[string]bool{}
	for i := range 20 {
		dev := fmt.Sprintf("dev-ch-%02d", i)
		want[dev] = true
		if i%2 == 0 {
			rs.runs.finish(t, testRun(fmt.Sprintf("ch-%d", i), dev), randomOutput(run.ChunkSize+5)) // counter and tail
		} else {
			rs.runs.finish(t, testRun(fmt.Sprintf("ch-%d", i), dev), randomOutput(5)) // tail only
		}
	}
	changed := func() map[string]bool {
		got := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			require.Less(t, pages, 400, "paging ends")
			devs, next, err := rs.ChangedDevices(ctx, cursor, 3)
			require.NoError(t, err)
			for _, d := range devs {
				got[d] = true
			}
			if next == "" {
				return got
			}
			cursor = next
		}
	}
	assert.Equal(t, want, changed(), "every device that stored output: before any fold, by its runs since the tail items left the changed set")

	// A full fold as of now leaves the runs created in the last changedLag in the set.
	require.NoError(t, rs.SetTotalsAsOf(ctx, time.Now()))
	assert.Equal(t, want, changed(), "runs created within changedLag of the last full fold")

	// A fold as of a time past every run's creation plus changedLag leaves only marked devices:
	// the counters that chunks moved.
	require.NoError(t, rs.SetTotalsAsOf(ctx, time.Now().Add(changedLag+time.Minute)))
	marked := map[string]bool{}
	for i := 0; i < 20; i += 2 {
		marked[fmt.Sprintf("dev-ch-%02d", i)] = true
	}
	assert.Equal(t, marked, changed(), "only the marked counters once their runs are older than the fold less changedLag")

	seen := rs.runs.deviceBytes(t, "dev-ch-00")
	require.NoError(t, rs.ClearChanged(ctx, "dev-ch-00", seen-1), "with a stale total")
	assert.True(t, changed()["dev-ch-00"], "dev-ch-00 stays changed when its bytes moved")
	require.NoError(t, rs.ClearChanged(ctx, "dev-ch-00", seen), "before its bytes are folded")
	assert.True(t, changed()["dev-ch-00"], "dev-ch-00 stays changed until its bytes are folded into the totals")
	folded, err := rs.FoldTotals(ctx, "dev-ch-00")
	require.NoError(t, err)
	assert.Equal(t, seen, folded, "fold dev-ch-00: its bytes")
	require.NoError(t, rs.ClearChanged(ctx, "dev-ch-00", seen))
	delete(marked, "dev-ch-00")
	assert.Equal(t, marked, changed(), "dev-ch-00 cleared")
	assert.Equal(t, seen, rs.runs.deviceBytes(t, "dev-ch-00"), "clearing keeps the bytes")

	// A tail written longer than half changedLag after its run began marks itself.
	late := testRun("ch-late", "dev-ch-01")
	late.CreatedAt = time.Now().Add(-changedLag).UTC().Truncate(time.Millisecond)
	rs.runs.finish(t, late, randomOutput(9))
	assert.True(t, changed()["dev-ch-01"], "a late tail puts dev-ch-01 back")
	folded, err = rs.FoldTotals(ctx, "dev-ch-01")
	require.NoError(t, err)
	require.NoError(t, rs.ClearChanged(ctx, "dev-ch-01", folded))
	assert.False(t, changed()["dev-ch-01"], "dev-ch-01 cleared with its late tail")

	for name, cursor := range map[string]string{"not JSON": "{", "no such part": `{"p":33}`, "negative": `{"p":-1}`, "bad key": `{"p":1,"k":"%%"}`,
		"bad since": `{"p":40,"since":"yesterday","until":"2026-01-01"}`} {
		t.Run("bad cursor: "+name, func(t *testing.T) {
			_, _, err := rs.ChangedDevices(ctx, cursor, 3)
			assert.ErrorIs(t, err, fault.ErrBadCursor)
		})
	}
}

func TestRetentionStoreWatermarkAndReport(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	got, err := rs.AgeWatermark(ctx)
	require.NoError(t, err)
	assert.True(t, got.IsZero(), "no watermark before the first purge")
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	for _, step := range []struct {
		name string
		set  time.Time
		want time.Time
	}{
		{"first", day, day},
		{"backwards is ignored", day.AddDate(0, 0, -1), day},
		{"forwards", day.AddDate(0, 0, 2), day.AddDate(0, 0, 2)},
	} {
		require.NoErrorf(t, rs.SetAgeWatermark(ctx, step.set), "set watermark: %s", step.name)
		got, err := rs.AgeWatermark(ctx)
		require.NoError(t, err)
		assert.Equalf(t, step.want, got, "watermark: %s", step.name)
	}

	_, err = rs.LastReport(ctx)
	assert.ErrorIs(t, err, retention.ErrNoReport)
	rep := retention.Report{Trigger: "schedule", StartedAt: day, FinishedAt: day.Add(time.Minute), Complete: true,
		Age: &retention.Stats{}}
	require.NoError(t, rs.SaveReport(ctx, rep))
	last, err := rs.LastReport(ctx)
	require.NoError(t, err)
	assert.Equal(t, rep, last)
}

func TestRetentionStoreJobRunning(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	for id, status := range map[string]string{"running": "running", "queued": "queued", "done": "completed", "stopped": "stopped"} {
		item := jobKey(id)
		st, err := attributevalue.Marshal(status)
		require.NoError(t, err)
		item["status"] = st
		_, err = rs.jobsDB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(rs.jobs), Item: item})
		require.NoError(t, err)
	}
	for id, want := range map[string]bool{"running": true, "queued": true, "done": false, "stopped": false, "expired": false} {
		got, err := rs.JobRunning(ctx, id)
		require.NoErrorf(t, err, "job %s", id)
		assert.Equalf(t, want, got, "job %s running", id)
	}
}

func TestRetentionStoreForgetTTLChunk(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	r := rs.runs.finish(t, testRun("ttl", "dev-ttl"), randomOutput(2*run.ChunkSize+300))
	require.Equal(t, int64(2*run.ChunkSize+300), rs.runs.deviceBytes(t, "dev-ttl"))
	steps := []struct {
		name       string
		sk         string
		size       int64
		subtracted bool
		left       int64
	}{
		{"a chunk", chunkSK(0), run.ChunkSize, true, run.ChunkSize + 300},
		{"the same chunk redelivered", chunkSK(0), run.ChunkSize, false, run.ChunkSize + 300},
		{"the run item's tail", runMetaSK, 300, true, run.ChunkSize},
		{"the tail redelivered", runMetaSK, 300, false, run.ChunkSize},
		{"the other chunk", chunkSK(1), run.ChunkSize, true, 0},
	}
	for _, step := range steps {
		got, err := rs.ForgetTTLChunk(ctx, runPrefix+r.ID, step.sk, "dev-ttl", step.size)
		require.NoErrorf(t, err, "forget %s", step.name)
		assert.Equalf(t, step.subtracted, got, "subtracted %s", step.name)
		assert.Equalf(t, step.left, rs.runs.deviceBytes(t, "dev-ttl"), "bytes of dev-ttl after %s", step.name)
	}
	for name, key := range map[string][2]string{
		"not a run":      {"JOB#x", chunkSK(0)},
		"not output":     {runPrefix + "ttl", "OTHER"},
		"without device": {runPrefix + "ttl", chunkSK(0)},
	} {
		t.Run(name, func(t *testing.T) {
			dev := "dev-ttl"
			if name == "without device" {
				dev = ""
			}
			_, err := rs.ForgetTTLChunk(ctx, key[0], key[1], dev, 1)
			assert.Error(t, err)
		})
	}
}

// racingDB runs before once, just ahead of the first transaction: another writer that gets
// there first.
type racingDB struct {
	API
	once   sync.Once
	before func()
}

func (r *racingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	r.once.Do(r.before)
	return r.API.TransactWriteItems(ctx, in, opts...)
}
