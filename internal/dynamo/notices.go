package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
)

// A job's notice claims live beside its batches:
//
//	JOB#<id>  NOTICE#<name>  the job's notice name was sent (bulk.Notices): written once, by a
//	                         conditional put, and expiring with the job
//
// The batch and event queries read sort key ranges (BATCH#…, EVT#…) that these never fall in.
const noticePrefix = "NOTICE#"

var _ bulk.NoticeClaimer = (*JobStore)(nil)

// ClaimNotice records notice name of job jobID as sent unless it already is (see
// bulk.NoticeClaimer): one conditional put, one write unit.
func (s *JobStore) ClaimNotice(ctx context.Context, jobID, name string, expiresAt time.Time) (bool, error) {
	item := itemKey(jobPrefix+jobID, noticePrefix+name)
	item["claimed_at"] = sv(s.now().Format(time.RFC3339Nano))
	if x := expiry(expiresAt); x > 0 {
		item[resources.TTLAttribute] = nv(x)
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	})
	switch {
	case isConditionFailed(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("claim notice %s of job %s: %w", name, jobID, err)
	}
	return true, nil
}
