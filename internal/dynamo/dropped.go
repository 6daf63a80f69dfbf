package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/netauto/netauto/internal/bulk"
)

// The DROPPED_ANSWERS partition of the jobs table lists secret answers nothing names any more
// whose delete has not succeeded yet (bulk.AnswerLedger), one item per key (sk ANS#<key>,
// recorded_at epoch ms), without a TTL: an item goes only when its answers are deleted. The
// watchdog, which reads the jobs table already, queries the partition every sweep; it is empty
// but for failed deletes.
const (
	droppedPK     = "DROPPED_ANSWERS"
	droppedPrefix = "ANS#"
)

var _ bulk.AnswerLedger = (*JobStore)(nil)

// RecordDropped implements bulk.AnswerLedger.
func (s *JobStore) RecordDropped(ctx context.Context, key string) error {
	item := itemKey(droppedPK, droppedPrefix+key)
	item["recorded_at"] = nv(s.now().UnixMilli())
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("record dropped answers %s: %w", key, err)
	}
	return nil
}

// Dropped implements bulk.AnswerLedger: a Query of the one partition (strongly consistent).
func (s *JobStore) Dropped(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	return s.suffixPage(ctx, droppedPK, droppedPrefix, cursor, limit, true, "dropped answers")
}

// ForgetDropped implements bulk.AnswerLedger.
func (s *JobStore) ForgetDropped(ctx context.Context, key string) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: itemKey(droppedPK, droppedPrefix+key)}); err != nil {
		return fmt.Errorf("forget dropped answers %s: %w", key, err)
	}
	return nil
}
