package dynamo

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
)

// Where a job's batch items live. A job created since 2026-12-07 (its META has bk = 2) keeps
// each batch under a partition key of its own, JOB#<id>#B<00000> / BATCH#<00000>, so no partition
// takes every batch's writes (each batch item is written about ten times); its batches are read by
// key, BatchGetItem, since the job knows how many it has. A job created before keeps them in the
// job's partition, JOB#<id> / BATCH#<00000>, read with a Query. A job's layout never changes, so
// the store remembers it per job.
const (
	batchKeysAttr = "bk"
	// batchOwnKeys is bk's value for batches under partition keys of their own.
	batchOwnKeys = 2
	// layoutsKept bounds the jobs whose layout one store remembers.
	layoutsKept = 4096
)

// batchLayouts remembers which jobs keep their batches under their own partition keys.
type batchLayouts = lru.Cache[string, bool]

func newBatchLayouts() *batchLayouts {
	c, err := lru.New[string, bool](layoutsKept)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

// ownBatchKey is the key of a batch under a partition key of its own.
func ownBatchKey(jobID string, batch int) map[string]types.AttributeValue {
	return itemKey(fmt.Sprintf("%s%s#B%05d", jobPrefix, jobID, batch), batchSK(batch))
}

// sharedBatchKey is the key of a batch in the job's partition (jobs created before 2026-12-07).
func sharedBatchKey(jobID string, batch int) map[string]types.AttributeValue {
	return itemKey(jobPrefix+jobID, batchSK(batch))
}

// remember notes the batch layout of the job whose META is item.
func (s *JobStore) remember(jobID string, item map[string]types.AttributeValue) {
	v, _ := item[batchKeysAttr].(*types.AttributeValueMemberN)
	s.layouts.Add(jobID, v != nil && v.Value == fmt.Sprint(batchOwnKeys))
}

// ownBatches reports whether the job keeps its batches under their own partition keys, reading
// its META when the store does not remember; bulk.ErrJobNotFound without one.
func (s *JobStore) ownBatches(ctx context.Context, jobID string) (bool, error) {
	if own, ok := s.layouts.Get(jobID); ok {
		return own, nil
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: jobKey(jobID), ConsistentRead: aws.Bool(true),
		ProjectionExpression: aws.String("#bk"), ExpressionAttributeNames: map[string]string{"#bk": batchKeysAttr},
	})
	if err != nil {
		return false, fmt.Errorf("get job %s: %w", jobID, err)
	}
	if out.Item == nil {
		return false, bulk.ErrJobNotFound
	}
	s.remember(jobID, out.Item)
	own, _ := s.layouts.Get(jobID)
	return own, nil
}

// batchKey is the key of the job's batch item, in the job's layout.
func (s *JobStore) batchKey(ctx context.Context, jobID string, batch int) (map[string]types.AttributeValue, error) {
	own, err := s.ownBatches(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if own {
		return ownBatchKey(jobID, batch), nil
	}
	return sharedBatchKey(jobID, batch), nil
}

// batchProjection is what the readers of a whole job's batches read of each: number, state,
// devices and delivery times.
func batchProjection() expression.ProjectionBuilder {
	return expression.NamesList(expression.Name("batch"), expression.Name("state"),
		expression.Name("device_ids"), expression.Name(attrUpdatedAt), expression.Name(attrResentAt))
}

// readBatches reads up to n of the job's batch items from batch start on, in order, whole or
// projected (batchProjection), and whether any follow.
func (s *JobStore) readBatches(ctx context.Context, j bulk.Job, start, n int, projected bool) ([]batchItem, bool, error) {
	own, err := s.ownBatches(ctx, j.ID)
	if err != nil {
		return nil, false, err
	}
	if !own {
		return s.queryBatchItems(ctx, j.ID, start, n, projected)
	}
	var proj *expression.Expression
	if projected {
		expr, err := expression.NewBuilder().WithProjection(batchProjection()).Build()
		if err != nil {
			return nil, false, fmt.Errorf("build projection: %w", err)
		}
		proj = &expr
	}
	end := min(start+n, j.Batches)
	var out []batchItem
	for from := start; from < end; from += maxBatchGetKeys {
		var keys []map[string]types.AttributeValue
		for b := from; b < min(from+maxBatchGetKeys, end); b++ {
			keys = append(keys, ownBatchKey(j.ID, b))
		}
		items, err := batchGet(ctx, s.db, s.table, keys, proj)
		if err != nil {
			return nil, false, fmt.Errorf("read batches of job %s: %w", j.ID, err)
		}
		page, err := unmarshalBatches(items, j.ID)
		if err != nil {
			return nil, false, err
		}
		out = append(out, page...)
	}
	slices.SortFunc(out, func(a, b batchItem) int { return cmp.Compare(a.Batch, b.Batch) })
	return out, end < j.Batches, nil
}

// queryBatchItems is readBatches for a job whose batches share its partition.
func (s *JobStore) queryBatchItems(ctx context.Context, jobID string, start, n int, projected bool) ([]batchItem, bool, error) {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(jobPrefix + jobID)).
		And(expression.Key(resources.AttrSK).Between(expression.Value(batchSK(start)), expression.Value(batchPrefix+"~")))
	b := expression.NewBuilder().WithKeyCondition(kc)
	if projected {
		b = b.WithProjection(batchProjection())
	}
	expr, err := b.Build()
	if err != nil {
		return nil, false, fmt.Errorf("build query: %w", err)
	}
	in := &dynamodb.QueryInput{
		TableName: aws.String(s.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	}
	if projected {
		in.ProjectionExpression = expr.Projection()
	}
	var out []batchItem
	for len(out) < n {
		in.Limit = aws.Int32(int32(min(n-len(out), maxBatchesPerRead)))
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, false, fmt.Errorf("query batches of job %s: %w", jobID, err)
		}
		items, err := unmarshalBatches(page.Items, jobID)
		if err != nil {
			return nil, false, err
		}
		out = append(out, items...)
		if len(page.LastEvaluatedKey) == 0 {
			return out, false, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, true, nil
}

// allBatches reads every batch item of the job, projected (batchProjection), in order.
func (s *JobStore) allBatches(ctx context.Context, jobID string) ([]batchItem, error) {
	j, err := s.JobControl(ctx, jobID)
	if err != nil {
		return nil, err
	}
	items, _, err := s.readBatches(ctx, j, 0, max(j.Batches, 1)+1, true)
	return items, err
}

// eachBatch hands the job's batch items from batch start on, in order, to take until take
// refuses one (the page is full: that batch is the next page's cursor, returned) or none is left
// ("" returned). want says how many batch items the next read takes, given the items taken.
func (s *JobStore) eachBatch(ctx context.Context, j bulk.Job, start int, want func(taken int) int, take func(batchItem) bool) (string, error) {
	taken := 0
	for {
		items, more, err := s.readBatches(ctx, j, start, max(want(taken), 1), false)
		if err != nil {
			return "", err
		}
		for _, it := range items {
			if !take(it) {
				return bulk.DevicesCursor(it.Batch), nil
			}
			taken++
			start = it.Batch + 1
		}
		if !more || len(items) == 0 {
			return "", nil
		}
	}
}

func unmarshalBatches(items []map[string]types.AttributeValue, jobID string) ([]batchItem, error) {
	var out []batchItem
	if err := attributevalue.UnmarshalListOfMaps(items, &out); err != nil {
		return nil, fmt.Errorf("unmarshal batches of job %s: %w", jobID, err)
	}
	return out, nil
}
