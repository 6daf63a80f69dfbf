// Package dynamo holds NetAuto's DynamoDB adapters. Each store implements a small interface owned
// by a domain package, using the SDK's attributevalue and expression packages.
package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/resources"
)

// API is the part of the DynamoDB client the stores use.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, opts ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// encodeCursor turns a LastEvaluatedKey of string attributes into an opaque page cursor.
func encodeCursor(key map[string]types.AttributeValue) (string, error) {
	if len(key) == 0 {
		return "", nil
	}
	var m map[string]string
	if err := attributevalue.UnmarshalMap(key, &m); err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor reverses encodeCursor, accepting only the given key attribute names.
func decodeCursor(cursor string, allowed ...string) (map[string]types.AttributeValue, bool) {
	if cursor == "" {
		return nil, true
	}
	if len(cursor) > 2048 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return nil, false
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil || len(m) == 0 {
		return nil, false
	}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for k := range m {
		if !ok[k] {
			return nil, false
		}
	}
	key, err := attributevalue.MarshalMap(m)
	if err != nil {
		return nil, false
	}
	return key, true
}

// queryAll reads every page of a query and unmarshals the items into T; what names the items in
// errors.
func queryAll[T any](ctx context.Context, db API, in *dynamodb.QueryInput, what string) ([]T, error) {
	var out []T
	p := dynamodb.NewQueryPaginator(db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", what, err)
		}
		var items []T
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &items); err != nil {
			return nil, fmt.Errorf("unmarshal %s: %w", what, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// newestFirst reads one page, newest first, of the GSI1 partition partition of index, whose
// items are keyed pkPrefix<id> / metaSK, after cursor; badCursor when the cursor is not a
// position in that partition. what names the items in errors.
func newestFirst[T any](ctx context.Context, db API, table, index, partition, pkPrefix, metaSK, cursor string, limit int, badCursor error, what string) ([]T, string, error) {
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK, resources.AttrGSI1PK, resources.AttrGSI1SK)
	if !ok || (start != nil && !isGSI1Position(start, pkPrefix, metaSK, partition)) {
		return nil, "", badCursor
	}
	kc := expression.Key(resources.AttrGSI1PK).Equal(expression.Value(partition))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, "", fmt.Errorf("build query: %w", err)
	}
	out, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(table), IndexName: aws.String(index),
		KeyConditionExpression: expr.KeyCondition(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ScanIndexForward: aws.Bool(false), Limit: aws.Int32(int32(limit)), ExclusiveStartKey: start,
	})
	if err != nil {
		return nil, "", fmt.Errorf("query %s: %w", what, err)
	}
	var items []T
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		return nil, "", fmt.Errorf("unmarshal %s: %w", what, err)
	}
	next, err := encodeCursor(out.LastEvaluatedKey)
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// batchWrite writes requests to table 25 at a time (BatchWriteItem's limit), up to four calls at
// once, retrying unprocessed items with backoff.
func batchWrite(ctx context.Context, db API, table string, writes []types.WriteRequest) error {
	if len(writes) > 25 {
		// A larger set (a 10,000-device job's 200 batch items) goes several calls at once.
		return batchWriteParallel(ctx, db, table, writes, 4)
	}
	if len(writes) == 0 {
		return nil
	}
	req := map[string][]types.WriteRequest{table: writes}
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt > 10 {
			return errors.New("batch write: unprocessed items after 10 attempts")
		}
		out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			return fmt.Errorf("batch write: %w", err)
		}
		req = out.UnprocessedItems
		if len(req) > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
		}
	}
	return nil
}

// batchWriteParallel writes reqs in batches of 25 from `workers` goroutines, resending
// unprocessed items.
func batchWriteParallel(ctx context.Context, db API, table string, reqs []types.WriteRequest, workers int) error {
	workers = max(workers, 1)
	batches := make(chan []types.WriteRequest)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := batchWrite(ctx, db, table, b); err != nil {
					mu.Lock()
					first = errors.Join(first, err)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < len(reqs); i += 25 {
		batches <- reqs[i:min(i+25, len(reqs))]
	}
	close(batches)
	wg.Wait()
	return first
}
