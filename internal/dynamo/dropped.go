package dynamo

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
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
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK)
	if !ok || (start != nil && !isDroppedKey(start)) {
		return nil, "", fault.ErrBadCursor
	}
	if limit <= 0 {
		limit = 100
	}
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#pk = :pk"),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.AttrPK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(droppedPK)},
		Limit:                     aws.Int32(int32(limit)), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, "", fmt.Errorf("query dropped answers: %w", err)
	}
	keys := make([]string, 0, len(out.Items))
	for _, item := range out.Items {
		if v, ok := item[resources.AttrSK].(*types.AttributeValueMemberS); ok && strings.HasPrefix(v.Value, droppedPrefix) {
			keys = append(keys, strings.TrimPrefix(v.Value, droppedPrefix))
		}
	}
	next, err := encodeCursor(out.LastEvaluatedKey)
	if err != nil {
		return nil, "", err
	}
	return keys, next, nil
}

// ForgetDropped implements bulk.AnswerLedger.
func (s *JobStore) ForgetDropped(ctx context.Context, key string) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: itemKey(droppedPK, droppedPrefix+key)}); err != nil {
		return fmt.Errorf("forget dropped answers %s: %w", key, err)
	}
	return nil
}

func isDroppedKey(key map[string]types.AttributeValue) bool {
	pk, _ := key[resources.AttrPK].(*types.AttributeValueMemberS)
	sk, _ := key[resources.AttrSK].(*types.AttributeValueMemberS)
	return len(key) == 2 && pk != nil && pk.Value == droppedPK && sk != nil && strings.HasPrefix(sk.Value, droppedPrefix)
}
