package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/run"
)

// The fleet's byte totals, kept by the byte purge so GET /v1/retention reads a fixed number of
// items whatever the fleet's size:
//
//	TOTAL#<nn>  BYTES        {charged, stored}: the sum of folded_charged and folded_stored over
//	                         the devices of changed-set shard nn
//	RETENTION   TOTALS_AS_OF {as_of}: the start of the last purge that folded the whole changed set
//
// A device's COUNTER item holds what the purge last folded of it (folded_charged, folded_stored):
// a fold adds the difference to the device's shard in one transaction with the new folded values,
// on condition that the old ones are still there, so a retried or concurrent fold never adds twice.
const (
	totalsPrefix = "TOTAL#"
	totalsSK     = "BYTES"
	totalsAsOfSK = "TOTALS_AS_OF"
)

func totalsKey(shard string) map[string]types.AttributeValue {
	return itemKey(totalsPrefix+shard, totalsSK)
}

// totalsShardOf is the totals shard of a device: its changed-set shard's number.
func totalsShardOf(deviceID string) string {
	return strings.TrimPrefix(changedShardKey(deviceID), changedPrefix)
}

// foldAttempts bounds the re-reads of a fold that lost its condition to a concurrent fold.
const foldAttempts = 5

// FoldTotals implements retention.Store: it adds what a device's bytes moved since it was last
// folded to the fleet totals and returns the device's bytes it folded.
func (s *RetentionStore) FoldTotals(ctx context.Context, deviceID string) (int64, error) {
	for range foldAttempts {
		l, err := readByteLedger(ctx, s.db, s.runs, deviceID)
		if err != nil {
			return 0, err
		}
		dc, ds := l.Total-l.Folded.ChargedBytes, l.Kept-l.Folded.StoredBytes
		if dc == 0 && ds == 0 {
			return l.Total, nil
		}
		asRead := expression.Name(foldedChargedAttr).Equal(expression.Value(l.Folded.ChargedBytes)).
			And(expression.Name(foldedStoredAttr).Equal(expression.Value(l.Folded.StoredBytes)))
		if l.Folded == (run.Usage{}) {
			asRead = expression.Name(foldedChargedAttr).AttributeNotExists().Or(asRead)
		}
		counter, err := expression.NewBuilder().WithCondition(asRead).WithUpdate(
			expression.Set(expression.Name(foldedChargedAttr), expression.Value(l.Total)).
				Set(expression.Name(foldedStoredAttr), expression.Value(l.Kept)).
				Set(expression.Name("device_id"), expression.Value(deviceID))).Build()
		if err != nil {
			return 0, fmt.Errorf("build fold: %w", err)
		}
		shard, err := expression.NewBuilder().WithUpdate(
			expression.Add(expression.Name("charged"), expression.Value(dc)).
				Add(expression.Name("stored"), expression.Value(ds))).Build()
		if err != nil {
			return 0, fmt.Errorf("build fold: %w", err)
		}
		err = transact(ctx, s.db,
			types.TransactWriteItem{Update: &types.Update{
				TableName: aws.String(s.runs), Key: counterKey(deviceID), UpdateExpression: counter.Update(),
				ConditionExpression: counter.Condition(), ExpressionAttributeNames: counter.Names(), ExpressionAttributeValues: counter.Values(),
			}},
			types.TransactWriteItem{Update: &types.Update{
				TableName: aws.String(s.runs), Key: totalsKey(totalsShardOf(deviceID)), UpdateExpression: shard.Update(),
				ExpressionAttributeNames: shard.Names(), ExpressionAttributeValues: shard.Values(),
			}})
		if err == nil {
			return l.Total, nil
		}
		if !onlyConditionFailed(err) {
			return 0, fmt.Errorf("fold totals of %s: %w", deviceID, err)
		}
		// Another purge folded it meanwhile: read what it folded.
	}
	return 0, fmt.Errorf("fold totals of %s: still contended after %d attempts", deviceID, foldAttempts)
}

// SetTotalsAsOf implements retention.Store; it never moves the time backwards.
func (s *RetentionStore) SetTotalsAsOf(ctx context.Context, t time.Time) error {
	return s.setForward(ctx, totalsAsOfSK, "as_of", t.UTC().Format(timeLayout), "totals as of")
}

// fleetTotals reads the fleet's totals: the changedShards totals shards, the time they are exact as of and
// the 16 stored-bytes shards of outputs stored once, in one consistent BatchGetItem. asOf is zero
// before the first purge that folded the whole changed set.
func fleetTotals(ctx context.Context, db API, table string) (run.Usage, time.Time, error) {
	keys := []map[string]types.AttributeValue{retentionKey(totalsAsOfSK)}
	for i := range changedShards {
		keys = append(keys, totalsKey(fmt.Sprintf("%02d", i)))
	}
	for i := range blobShards {
		keys = append(keys, storedKey(i))
	}
	items, err := batchGet(ctx, db, table, keys, nil)
	if err != nil {
		return run.Usage{}, time.Time{}, fmt.Errorf("read fleet totals: %w", err)
	}
	var (
		u    run.Usage
		asOf time.Time
	)
	for _, item := range items {
		var it struct {
			PK      string `dynamodbav:"pk"`
			SK      string `dynamodbav:"sk"`
			Charged int64  `dynamodbav:"charged"`
			Stored  int64  `dynamodbav:"stored"`
			Bytes   int64  `dynamodbav:"bytes"`
			AsOf    string `dynamodbav:"as_of"`
		}
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return run.Usage{}, time.Time{}, fmt.Errorf("unmarshal fleet totals: %w", err)
		}
		switch {
		case it.SK == totalsAsOfSK:
			if asOf, err = time.Parse(timeLayout, it.AsOf); err != nil {
				return run.Usage{}, time.Time{}, fmt.Errorf("parse totals as of %q: %w", it.AsOf, err)
			}
		case strings.HasPrefix(it.PK, totalsPrefix):
			u.ChargedBytes += it.Charged
			u.StoredBytes += it.Stored
		case strings.HasPrefix(it.PK, storedPrefix):
			u.StoredBytes += it.Bytes
		}
	}
	return u, asOf, nil
}

// FleetTotals returns the fleet's output bytes as the byte purge last folded them (bodies stored
// once as they are now) and the time they are exact as of (zero before the first full fold).
func (s *RunStore) FleetTotals(ctx context.Context) (run.Usage, time.Time, error) {
	return fleetTotals(ctx, s.db, s.table)
}
