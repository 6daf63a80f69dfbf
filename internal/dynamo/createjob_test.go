package dynamo

import (
	"context"
	"errors"
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
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// stuckPutAPI hands back as unprocessed, every time, the put of any item whose partition key
// ends with stuck, as DynamoDB may under throttling; everything else goes to DynamoDB Local.
type stuckPutAPI struct {
	API
	stuck string
}

func (s stuckPutAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	held := map[string][]types.WriteRequest{}
	pass := map[string][]types.WriteRequest{}
	for table, reqs := range in.RequestItems {
		for _, w := range reqs {
			if p := w.PutRequest; p != nil && strings.HasSuffix(p.Item[resources.AttrPK].(*types.AttributeValueMemberS).Value, s.stuck) {
				held[table] = append(held[table], w)
				continue
			}
			pass[table] = append(pass[table], w)
		}
	}
	out := &dynamodb.BatchWriteItemOutput{}
	if len(pass) > 0 {
		o, err := s.API.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pass}, opts...)
		if err != nil {
			return nil, err
		}
		out = o
	}
	if len(held) > 0 {
		if out.UnprocessedItems == nil {
			out.UnprocessedItems = map[string][]types.WriteRequest{}
		}
		for table, reqs := range held {
			out.UnprocessedItems[table] = append(out.UnprocessedItems[table], reqs...)
		}
	}
	return out, nil
}

// TestCreateJobThatFailsLeavesNothing: when DynamoDB never takes one of a job's batch items, the
// creation fails and leaves no job, no unfinished marker for the watchdog to send batches of,
// and none of the batch items it did write.
func TestCreateJobThatFailsLeavesNothing(t *testing.T) {
	db, name := newTable(t, resources.JobsTable)
	s, err := NewJobStore(stuckPutAPI{API: db, stuck: "#B00003"}, name)
	require.NoError(t, err)
	ids := make([]string, 250)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%03d", i)
	}
	batches := bulk.Split(ids, 50)
	now := time.Now().UTC()
	j := bulk.Job{ID: bulk.NewID(now), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: len(ids), Batches: len(batches),
		Status: bulk.JobQueued, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Counts: map[run.Status]int{run.Queued: len(ids)}}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.Error(t, s.CreateJob(ctx, j, batches, len(batches)), "a batch item DynamoDB never takes")

	_, err = s.GetJob(context.Background(), j.ID)
	assert.ErrorIs(t, err, bulk.ErrJobNotFound, "the job")
	unfinished, _, err := s.UnfinishedJobs(context.Background(), "", 100)
	require.NoError(t, err)
	assert.NotContains(t, unfinished, j.ID, "the watchdog's list")
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(name)})
	require.NoError(t, err)
	for _, it := range out.Items {
		assert.NotContains(t, it[resources.AttrPK].(*types.AttributeValueMemberS).Value, j.ID, "an item of the job left behind")
	}
}

// lostReplyAPI writes a transaction and then answers as if the connection dropped.
type lostReplyAPI struct{ API }

func (l lostReplyAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if _, err := l.API.TransactWriteItems(ctx, in, opts...); err != nil {
		return nil, err
	}
	return nil, errors.New("read tcp: connection reset by peer")
}

// TestCreateJobWhoseReplyIsLost: a creation whose transaction was written but whose answer never
// came finds the job written, keeps its batch items and reports success.
func TestCreateJobWhoseReplyIsLost(t *testing.T) {
	db, name := newTable(t, resources.JobsTable)
	s, err := NewJobStore(lostReplyAPI{API: db}, name)
	require.NoError(t, err)
	now := time.Now().UTC()
	j := bulk.Job{ID: bulk.NewID(now), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: 2, Batches: 2,
		Status: bulk.JobQueued, CreatedAt: now, ExpiresAt: now.Add(time.Hour), Counts: map[run.Status]int{run.Queued: 2}}
	require.NoError(t, s.CreateJob(context.Background(), j, [][]string{{"a"}, {"b"}}, 2))
	states, err := s.BatchStates(context.Background(), j.ID, 1)
	require.NoError(t, err, "the batch items kept")
	assert.Equal(t, run.Queued, states["b"].Status)
	unfinished, _, err := s.UnfinishedJobs(context.Background(), "", 100)
	require.NoError(t, err)
	assert.Contains(t, unfinished, j.ID, "the watchdog's list")
}
