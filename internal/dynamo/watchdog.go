package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
)

// The watchdog's view of the jobs table (see the item layout in jobs.go): the UNFINISHED
// partition lists the jobs that have not ended, and each batch item's updated_at and resent_at
// say when it last changed and when the watchdog re-sent it.
const (
	unfinishedPK  = "UNFINISHED"
	attrUpdatedAt = "updated_at"
	attrResentAt  = "resent_at"
	// attrRequestedBy on an UNFINISHED marker is the job's requester.
	attrRequestedBy = "requested_by"
)

var _ bulk.WatchStore = (*JobStore)(nil)

func unfinishedKey(jobID string) map[string]types.AttributeValue {
	return itemKey(unfinishedPK, jobPrefix+jobID)
}

// unfinishedItem is a job's marker in the UNFINISHED partition, naming its requester
// (RunningJobs counts by it); it expires with the job.
func unfinishedItem(jobID, requestedBy string, expires int64) map[string]types.AttributeValue {
	item := unfinishedKey(jobID)
	item["job_id"] = sv(jobID)
	if requestedBy != "" {
		item[attrRequestedBy] = sv(requestedBy)
	}
	if expires > 0 {
		item[resources.TTLAttribute] = nv(expires)
	}
	return item
}

// UnfinishedJobs returns a page of the ids of jobs that have not ended (see bulk.WatchStore).
func (s *JobStore) UnfinishedJobs(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	return s.suffixPage(ctx, unfinishedPK, jobPrefix, cursor, limit, false, "unfinished jobs")
}

// suffixPage reads a page (limit items, 100 when <= 0) of partition pk of the jobs table and
// returns the sort keys that start with prefix, without it, and the cursor of the next page;
// fault.ErrBadCursor when cursor is not a position in that partition.
func (s *JobStore) suffixPage(ctx context.Context, pk, prefix, cursor string, limit int, consistent bool, what string) ([]string, string, error) {
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK)
	if !ok || (start != nil && !isSuffixKey(start, pk, prefix)) {
		return nil, "", fault.ErrBadCursor
	}
	if limit <= 0 {
		limit = 100
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(pk)},
		Limit:                     aws.Int32(int32(limit)), ExclusiveStartKey: start, ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return nil, "", fmt.Errorf("query %s: %w", what, err)
	}
	suffixes := make([]string, 0, len(out.Items))
	for _, item := range out.Items {
		if v, ok := item[resources.AttrSK].(*types.AttributeValueMemberS); ok && strings.HasPrefix(v.Value, prefix) {
			suffixes = append(suffixes, strings.TrimPrefix(v.Value, prefix))
		}
	}
	next, err := encodeCursor(out.LastEvaluatedKey)
	if err != nil {
		return nil, "", err
	}
	return suffixes, next, nil
}

// isSuffixKey reports whether key is a primary key in partition pk whose sort key starts with
// prefix.
func isSuffixKey(key map[string]types.AttributeValue, pk, prefix string) bool {
	p, _ := key[resources.AttrPK].(*types.AttributeValueMemberS)
	sk, _ := key[resources.AttrSK].(*types.AttributeValueMemberS)
	return len(key) == 2 && p != nil && p.Value == pk && sk != nil && strings.HasPrefix(sk.Value, prefix)
}

// RunningJobs counts the unfinished jobs requested by requestedBy with a filtered, strongly
// consistent Query of the UNFINISHED partition. Read bound: only the markers are read (about 100
// bytes each, every requester's: the filter drops the others after the read), so the cost
// follows the jobs unfinished right now, never the history; paging stops once atMost is
// reached.
func (s *JobStore) RunningJobs(ctx context.Context, requestedBy string, atMost int) (int, error) {
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		FilterExpression:          aws.String("#by = :by"),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.AttrPK, "#by": attrRequestedBy},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(unfinishedPK), ":by": sv(requestedBy)},
		Select:                    types.SelectCount,
		ConsistentRead:            aws.Bool(true),
	}
	n := 0
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("count unfinished jobs of %s: %w", requestedBy, err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 || (atMost > 0 && n >= atMost) {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// ForgetUnfinished drops the job's marker from the UNFINISHED partition.
func (s *JobStore) ForgetUnfinished(ctx context.Context, jobID string) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: unfinishedKey(jobID)}); err != nil {
		return fmt.Errorf("forget unfinished job %s: %w", jobID, err)
	}
	return nil
}

// Deliveries returns every batch of the job in order, with its delivery times.
func (s *JobStore) Deliveries(ctx context.Context, jobID string) ([]bulk.Delivery, error) {
	items, err := s.allBatches(ctx, jobID)
	if err != nil {
		return nil, err
	}
	out := make([]bulk.Delivery, len(items))
	for i, it := range items {
		out[i] = bulk.Delivery{Batch: it.Batch, State: bulk.BatchState(it.State), DeviceIDs: it.DeviceIDs,
			UpdatedAt: msTime(it.UpdatedAt), ResentAt: msTime(it.ResentAt)}
	}
	return out, nil
}

func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// MarkResent records the watchdog's re-send of a sent batch unchanged since seen and not re-sent
// since; bulk.ErrBatchChanged otherwise.
func (s *JobStore) MarkResent(ctx context.Context, jobID string, batch int, seen, at time.Time) error {
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:          aws.String("SET #ra = :at"),
		ConditionExpression:       aws.String("#state = :sent AND #ua = :seen AND (attribute_not_exists(#ra) OR #ra < :seen)"),
		ExpressionAttributeNames:  map[string]string{"#ra": attrResentAt, "#ua": attrUpdatedAt, "#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": nv(at.UnixMilli()), ":seen": nv(seen.UnixMilli()), ":sent": sv(batchSent)},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("mark batch %d of job %s re-sent: %w", batch, jobID, bulk.ErrBatchChanged)
	}
	if err != nil {
		return fmt.Errorf("mark batch %d of job %s re-sent: %w", batch, jobID, err)
	}
	return nil
}

// UnmarkResent takes back MarkResent(at), if it is still the batch's latest re-send.
func (s *JobStore) UnmarkResent(ctx context.Context, jobID string, batch int, at time.Time) error {
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:          aws.String("REMOVE #ra"),
		ConditionExpression:       aws.String("#ra = :at"),
		ExpressionAttributeNames:  map[string]string{"#ra": attrResentAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": nv(at.UnixMilli())},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("unmark batch %d of job %s re-sent: %w", batch, jobID, err)
	}
	return nil
}

// ClaimStale takes a sent batch's lease for holder, like ClaimBatch, only while it is unchanged
// since seen and no other lease runs; bulk.ErrBatchChanged otherwise. The claim counts as one, so
// no later executor takes the batch for never claimed.
func (s *JobStore) ClaimStale(ctx context.Context, jobID string, batch int, seen time.Time, holder string, until, now time.Time) error {
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:    aws.String("SET #lu = :until, #lb = :me, #ua = :now ADD #claims :one"),
		ConditionExpression: aws.String("#state = :sent AND #ua = :seen AND (attribute_not_exists(#lu) OR #lu <= :now)"),
		ExpressionAttributeNames: map[string]string{
			"#lu": "lease_until", "#lb": "lease_by", "#claims": "claims", "#ua": attrUpdatedAt, "#state": "state",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until": nv(until.UnixMilli()), ":me": sv(holder), ":one": nv(1), ":now": nv(now.UnixMilli()),
			":seen": nv(seen.UnixMilli()), ":sent": sv(batchSent),
		},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("claim stale batch %d of job %s: %w", batch, jobID, bulk.ErrBatchChanged)
	}
	if err != nil {
		return fmt.Errorf("claim stale batch %d of job %s: %w", batch, jobID, err)
	}
	return nil
}

// Touch restarts a sent batch's staleness clock at at (a fresh delivery); other batches are left
// alone.
func (s *JobStore) Touch(ctx context.Context, jobID string, batch int, at time.Time) error {
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:          aws.String("SET #ua = :at REMOVE #ra"),
		ConditionExpression:       aws.String("#state = :sent"),
		ExpressionAttributeNames:  map[string]string{"#ua": attrUpdatedAt, "#ra": attrResentAt, "#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":at": nv(at.UnixMilli()), ":sent": sv(batchSent)},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("touch batch %d of job %s: %w", batch, jobID, err)
	}
	return nil
}
