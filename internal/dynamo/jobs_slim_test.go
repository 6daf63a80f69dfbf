package dynamo

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// finishBatch records every device of batch 0 of j running, then succeeded with the details a
// drift job stores (digest, one command's results, changed), as the executor does.
func finishBatch(t *testing.T, s *JobStore, j bulk.Job, ids []string) {
	t.Helper()
	ctx := context.Background()
	exit, no := 0, false
	for i, id := range ids {
		seq := int64(1000+i) << bulk.SeqBatchBits
		_, err := s.Record(ctx, j.ID, 0, []bulk.Change{{DeviceID: id, From: run.Queued, To: run.Running, RunID: bulk.RunID(j.ID, id), Seq: seq}})
		require.NoError(t, err)
		_, err = s.Record(ctx, j.ID, 0, []bulk.Change{{DeviceID: id, From: run.Running, To: run.Succeeded, RunID: bulk.RunID(j.ID, id),
			DurationMS: 1500 + int64(i), Seq: seq + 50_000<<bulk.SeqBatchBits, OutputDigest: fmt.Sprintf("%032x", 1<<40+i), Changed: &no,
			Commands: []run.CommandResult{{Status: run.Succeeded, ExitStatus: &exit, Bytes: 4500}}}})
		require.NoError(t, err)
	}
}

// rewriteUnits is what one more write of the batch item costs, as DynamoDB reports it: its size
// in KB, rounded up.
func rewriteUnits(t *testing.T, s *JobStore, jobID string) float64 {
	t.Helper()
	key, err := s.batchKey(context.Background(), jobID, 0)
	require.NoError(t, err)
	out, err := s.db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key, UpdateExpression: aws.String("SET probe = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": nv(1)},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal, ReturnValues: types.ReturnValueAllNew,
	})
	require.NoError(t, err)
	require.NotNil(t, out.ConsumedCapacity)
	return aws.ToFloat64(out.ConsumedCapacity.CapacityUnits)
}

// TestJobStoreSlimBatchWritesLess: a finished batch of 50 drift devices is one slim item that a
// progress record rewrites for at most 2 write units (layout 2's item takes more), which holds no
// device id, and whose devices' states read back as recorded.
func TestJobStoreSlimBatchWritesLess(t *testing.T) {
	ids := make([]string, bulk.MaxBatchSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("edge-%03d.ams1.example.net", i)
	}
	units := map[int]float64{}
	for _, layout := range []int{layoutOwnKeys, layoutSlim} {
		s := newJobStore(t)
		s.layout = layout
		j := createJob(t, s, [][]string{ids}, time.Now().UTC())
		finishBatch(t, s, j, ids)
		units[layout] = rewriteUnits(t, s, j.ID)
		states, err := s.BatchStates(context.Background(), j.ID, 0)
		require.NoError(t, err)
		require.Len(t, states, len(ids))
		st := states[ids[7]]
		assert.Equal(t, run.Succeeded, st.Status, "layout %d", layout)
		assert.Equal(t, int64(1507), st.DurationMS, "layout %d", layout)
		assert.Equal(t, fmt.Sprintf("%032x", 1<<40+7), st.OutputDigest, "layout %d", layout)
		assert.Equal(t, int64(1007+50_000)<<bulk.SeqBatchBits, st.Seq, "layout %d", layout)
		require.Len(t, st.Commands, 1, "layout %d", layout)
		assert.Equal(t, int64(4500), st.Commands[0].Bytes, "layout %d", layout)
		got := getJobCounts(t, s, j.ID)
		assert.Equal(t, map[run.Status]int{run.Succeeded: len(ids)}, got, "layout %d", layout)
		if layout == layoutSlim {
			out, err := s.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: ownBatchKey(j.ID, 0), ConsistentRead: aws.Bool(true)})
			require.NoError(t, err)
			for name, v := range out.Item {
				if sv, ok := v.(*types.AttributeValueMemberS); ok {
					assert.False(t, strings.Contains(sv.Value, "example.net"), "attribute %s holds a device id", name)
				}
			}
		}
	}
	t.Logf("write units of one more write of a finished batch item: layout 2 %.0f, slim %.0f", units[layoutOwnKeys], units[layoutSlim])
	assert.LessOrEqual(t, units[layoutSlim], 2.0, "slim batch item")
	assert.Less(t, units[layoutSlim], units[layoutOwnKeys], "slim against layout 2")
}

func getJobCounts(t *testing.T, s *JobStore, jobID string) map[run.Status]int {
	t.Helper()
	j, err := s.GetJob(context.Background(), jobID)
	require.NoError(t, err)
	out := map[run.Status]int{}
	for st, n := range j.Counts {
		if n != 0 {
			out[st] = n
		}
	}
	return out
}

// TestJobStoreSlimCountsHeal: a slim batch's counts reach its count shard after the record that
// moved them; an entry lost between the two writes is made good by the batch's finish, and an
// older entry never replaces a newer one.
func TestJobStoreSlimCountsHeal(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	j := createJob(t, s, [][]string{{"a", "b", "c"}, {"d"}}, time.Now().UTC())
	record := func(dev string, from, to run.Status) {
		t.Helper()
		_, err := s.Record(ctx, j.ID, 0, []bulk.Change{{DeviceID: dev, From: from, To: to, RunID: bulk.RunID(j.ID, dev)}})
		require.NoError(t, err)
	}
	record("a", run.Queued, run.Running)
	stale, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: ownBatchKey(j.ID, 0), ConsistentRead: aws.Bool(true)})
	require.NoError(t, err)
	record("a", run.Running, run.Succeeded)
	record("b", run.Queued, run.Failed)
	assert.Equal(t, map[run.Status]int{run.Queued: 2, run.Succeeded: 1, run.Failed: 1}, getJobCounts(t, s, j.ID), "counts after the records")

	require.NoError(t, s.syncCounts(ctx, j.ID, 0, stale.Item), "a late write of an older version")
	assert.Equal(t, map[run.Status]int{run.Queued: 2, run.Succeeded: 1, run.Failed: 1}, getJobCounts(t, s, j.ID), "the older entry is refused")

	// The counts of c's move are lost: the entry is taken back to before it.
	record("c", run.Queued, run.Cancelled)
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: countsKey(j.ID, 0), UpdateExpression: aws.String("REMOVE #k"),
		ExpressionAttributeNames: map[string]string{"#k": countEntryAttr(0)},
	})
	require.NoError(t, err)
	assert.Equal(t, map[run.Status]int{run.Queued: 4}, getJobCounts(t, s, j.ID), "the entry lost")
	_, err = s.FinishBatch(ctx, j.ID, 0)
	require.NoError(t, err)
	assert.Equal(t, map[run.Status]int{run.Queued: 1, run.Succeeded: 1, run.Failed: 1, run.Cancelled: 1}, getJobCounts(t, s, j.ID), "made good by the finish")

	// A retried record whose first try was stored: its condition fails and the counts are
	// written again from the batch.
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: countsKey(j.ID, 0), UpdateExpression: aws.String("REMOVE #k"),
		ExpressionAttributeNames: map[string]string{"#k": countEntryAttr(0)},
	})
	require.NoError(t, err)
	_, err = s.Record(ctx, j.ID, 0, []bulk.Change{{DeviceID: "c", From: run.Queued, To: run.Cancelled, RunID: bulk.RunID(j.ID, "c")}})
	require.ErrorIs(t, err, bulk.ErrStateChanged)
	assert.Equal(t, map[run.Status]int{run.Queued: 1, run.Succeeded: 1, run.Failed: 1, run.Cancelled: 1}, getJobCounts(t, s, j.ID), "made good by the retry")
}

// TestJobStoreSlimFinishRepeats: a slim batch's finish cut short after counting it done (the
// batch item still sent) is finished by the next delivery's, and the batch is counted once.
func TestJobStoreSlimFinishRepeats(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	j := createJob(t, s, [][]string{{"a"}, {"b"}}, time.Now().UTC())
	_, err := s.Record(ctx, j.ID, 1, []bulk.Change{{DeviceID: "b", From: run.Queued, To: run.Succeeded, RunID: bulk.RunID(j.ID, "b")}})
	require.NoError(t, err)
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: doneKey(j.ID), UpdateExpression: aws.String("ADD #done :b"),
		ExpressionAttributeNames:  map[string]string{"#done": attrDone},
		ExpressionAttributeValues: map[string]types.AttributeValue{":b": &types.AttributeValueMemberNS{Value: []string{"1"}}},
	})
	require.NoError(t, err)
	before, err := s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	require.Equal(t, bulk.BatchState(batchSent), before[1].State, "the cut-short finish left the batch sent")
	for range 2 {
		got, err := s.FinishBatch(ctx, j.ID, 1)
		require.NoError(t, err)
		assert.Equal(t, 1, got.BatchesDone, "batches done")
	}
	after, err := s.Deliveries(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, bulk.BatchState(batchDone), after[1].State, "batch 1")
	got, err := s.GetJob(ctx, j.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, got.BatchesDone, "batches done, read with the counts")
	_, err = s.FinishBatch(ctx, bulk.NewID(time.Now()), 0)
	require.ErrorIs(t, err, bulk.ErrJobNotFound, "an unknown job")
}

// TestJobStoreSlimRecordsWholeBatch: one record may move every device of a full batch at once
// (a stopping job's batch ended), within DynamoDB's expression limits, and counts them all.
func TestJobStoreSlimRecordsWholeBatch(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	ids := make([]string, bulk.MaxBatchSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("core-%02d.fra1.example.net", i)
	}
	j := createJob(t, s, [][]string{ids}, time.Now().UTC())
	var changes []bulk.Change
	for i, id := range ids {
		from := run.Queued
		if i%2 == 1 {
			from = run.Running
			_, err := s.Record(ctx, j.ID, 0, []bulk.Change{{DeviceID: id, From: run.Queued, To: run.Running, RunID: bulk.RunID(j.ID, id)}})
			require.NoError(t, err)
		}
		changes = append(changes, bulk.Change{DeviceID: id, From: from, To: run.Cancelled, RunID: bulk.RunID(j.ID, id), Reason: "cancelled",
			Seq: int64(5000+i) << bulk.SeqBatchBits})
	}
	events, err := s.Record(ctx, j.ID, 0, changes)
	require.NoError(t, err)
	assert.Len(t, events, len(ids), "events")
	assert.Equal(t, map[run.Status]int{run.Cancelled: len(ids)}, getJobCounts(t, s, j.ID))
	states, err := s.BatchStates(ctx, j.ID, 0)
	require.NoError(t, err)
	for _, id := range ids {
		assert.Equal(t, run.Cancelled, states[id].Status, "device %s", id)
		assert.Equal(t, "cancelled", states[id].Reason, "device %s", id)
	}
}
