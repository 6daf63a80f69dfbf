package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/resources"
)

// The shared mechanics of every store: DynamoDB's limits, the one retry policy, transactions,
// batch reads and writes, condition failures, keys and page cursors.

// DynamoDB's limits on one request.
const (
	// maxTransactItems is the most items one TransactWriteItems may hold.
	maxTransactItems = 100
	// maxTransactBytes is the most bytes one TransactWriteItems may carry.
	maxTransactBytes = 4 << 20
	// maxBatchWriteItems is the most requests one BatchWriteItem may hold.
	maxBatchWriteItems = 25
	// maxBatchGetKeys is the most keys one BatchGetItem may read.
	maxBatchGetKeys = 100
	// maxCursorLen bounds the page cursors decodeCursor accepts (a cursor this package issued
	// holds one short key).
	maxCursorLen = 2048
)

// The retry policy for work DynamoDB hands back to be redone: unprocessed items of a batch
// request, and transactions cancelled only because another write touched one of their items at
// the same moment. At most retryAttempts calls; the waits between them double from retryBase up to
// retryMaxWait, each jittered so writers that collided once do not collide again in step.
const (
	retryAttempts = 10
	retryBase     = 10 * time.Millisecond
	retryMaxWait  = time.Second
)

// NewClient returns the DynamoDB client the stores are given on AWS, from cfg, with
// withConflictRetry.
func NewClient(cfg aws.Config) *dynamodb.Client {
	return dynamodb.NewFromConfig(cfg, withConflictRetry)
}

// withConflictRetry makes a DynamoDB client also retry a write DynamoDB refused because a
// transaction holds its item (TransactionConflictException), which a plain PutItem, UpdateItem or
// DeleteItem gets and the SDK's standard retryer does not retry. DynamoDB Local runs one request
// at a time and never answers it.
func withConflictRetry(o *dynamodb.Options) {
	o.Retryer = awsretry.AddWithErrorCodes(o.Retryer, (&types.TransactionConflictException{}).ErrorCode())
}

// retry calls op until it reports that nothing is left to redo (again false), at most
// retryAttempts times, and returns op's last error. When it gives up, or ctx ends while it
// waits, the error says so and still wraps op's last error.
func retry(ctx context.Context, op func() (again bool, err error)) error {
	for attempt := 0; ; attempt++ {
		again, err := op()
		if !again {
			return err
		}
		if attempt+1 >= retryAttempts {
			return fmt.Errorf("after %d attempts: %w", retryAttempts, err)
		}
		t := time.NewTimer(retryWait(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// retryWait is the wait after call attempt (from 0): half of retryBase doubled attempt times
// (at most retryMaxWait), plus a random part of up to the other half.
func retryWait(attempt int) time.Duration {
	d := retryMaxWait
	if attempt < 30 {
		d = min(retryBase<<attempt, retryMaxWait)
	}
	return d/2 + rand.N(d/2+1)
}

// transact runs items as one transaction, retried (see retry) while it is cancelled only by
// conflicts with concurrent writes, as concurrent purges and writers of one device's counter
// cause.
func transact(ctx context.Context, db API, items ...types.TransactWriteItem) error {
	if len(items) > maxTransactItems {
		return fmt.Errorf("transaction of %d items: at most %d", len(items), maxTransactItems)
	}
	in := &dynamodb.TransactWriteItemsInput{TransactItems: items}
	return retry(ctx, func() (bool, error) {
		_, err := db.TransactWriteItems(ctx, in)
		return err != nil && onlyConflict(err), err
	})
}

// batchWrite writes requests to table, maxBatchWriteItems a call, retrying unprocessed ones;
// a larger set goes up to four calls at once.
func batchWrite(ctx context.Context, db API, table string, writes []types.WriteRequest) error {
	if len(writes) > maxBatchWriteItems {
		return batchWriteParallel(ctx, db, table, writes, 4)
	}
	if len(writes) == 0 {
		return nil
	}
	req := map[string][]types.WriteRequest{table: writes}
	err := retry(ctx, func() (bool, error) {
		out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
		if err != nil {
			return false, err
		}
		req = out.UnprocessedItems
		if n := len(req[table]); n > 0 {
			return true, fmt.Errorf("%d items unprocessed", n)
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("batch write: %w", err)
	}
	return nil
}

// batchWriteParallel writes reqs maxBatchWriteItems a call from `workers` goroutines, retrying
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
	for i := 0; i < len(reqs); i += maxBatchWriteItems {
		batches <- reqs[i:min(i+maxBatchWriteItems, len(reqs))]
	}
	close(batches)
	wg.Wait()
	return first
}

// batchGet reads the items of keys (at most maxBatchGetKeys, no duplicates) from table with
// BatchGetItem, strongly consistent and projected when proj is set, retrying unprocessed keys.
func batchGet(ctx context.Context, db API, table string, keys []map[string]types.AttributeValue, proj *expression.Expression) ([]map[string]types.AttributeValue, error) {
	return batchGetWith(ctx, db, table, keys, proj, true)
}

// batchGetWith is batchGet, strongly consistent or (half the read units) not.
func batchGetWith(ctx context.Context, db API, table string, keys []map[string]types.AttributeValue, proj *expression.Expression, consistent bool) ([]map[string]types.AttributeValue, error) {
	if len(keys) > maxBatchGetKeys {
		return nil, fmt.Errorf("batch get of %d keys: at most %d", len(keys), maxBatchGetKeys)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	ka := types.KeysAndAttributes{Keys: keys, ConsistentRead: aws.Bool(consistent)}
	if proj != nil {
		ka.ProjectionExpression, ka.ExpressionAttributeNames = proj.Projection(), proj.Names()
	}
	req := map[string]types.KeysAndAttributes{table: ka}
	var out []map[string]types.AttributeValue
	err := retry(ctx, func() (bool, error) {
		res, err := db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return false, err
		}
		out = append(out, res.Responses[table]...)
		req = res.UnprocessedKeys
		if n := len(req[table].Keys); n > 0 {
			return true, fmt.Errorf("%d keys unprocessed", n)
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("batch get: %w", err)
	}
	return out, nil
}

// isConditionFailed reports whether a single-item write was refused by its condition.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// conditionFailedItem reports whether a single-item write was refused by its condition and
// returns the item as the condition saw it (asked for with
// ReturnValuesOnConditionCheckFailure ALL_OLD): nil when there was none.
func conditionFailedItem(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, false
	}
	return ccf.Item, true
}

// onlyConditionFailed reports whether a transaction was cancelled solely by condition checks.
func onlyConditionFailed(err error) bool {
	return cancelledOnlyBy(err, "ConditionalCheckFailed")
}

// onlyConflict reports whether a transaction was cancelled by conflicts with concurrent writes
// or throttling (and maybe conditions that only failed because of them), not by a definite
// condition failure: trying again may succeed.
func onlyConflict(err error) bool {
	var tip *types.TransactionInProgressException
	if errors.As(err, &tip) {
		return true
	}
	return cancelledOnlyBy(err, "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded")
}

// cancelledOnlyBy reports whether err is a cancelled transaction whose items failed only with
// the given cancellation codes (at least one of them).
func cancelledOnlyBy(err error, codes ...string) bool {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return false
	}
	found := false
	for _, r := range tce.CancellationReasons {
		code := aws.ToString(r.Code)
		switch {
		case code == "" || code == "None":
		case slices.Contains(codes, code):
			found = true
		default:
			return false
		}
	}
	return found
}

// failedConditionIndex returns the position of the first item of a cancelled transaction whose
// condition failed, or -1.
func failedConditionIndex(err error) int {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return -1
	}
	for i, r := range tce.CancellationReasons {
		if aws.ToString(r.Code) == "ConditionalCheckFailed" {
			return i
		}
	}
	return -1
}

// itemKey is the key of an item: every NetAuto table is keyed by the strings pk and sk.
func itemKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		resources.AttrPK: &types.AttributeValueMemberS{Value: pk},
		resources.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// itemExists and itemAbsent are the conditions that the item written exists, or does not yet.
func itemExists() expression.ConditionBuilder {
	return expression.AttributeExists(expression.Name(resources.AttrPK))
}

func itemAbsent() expression.ConditionBuilder {
	return expression.AttributeNotExists(expression.Name(resources.AttrPK))
}

// buildCondition builds a lone condition expression.
func buildCondition(cond expression.ConditionBuilder) (expression.Expression, error) {
	expr, err := expression.NewBuilder().WithCondition(cond).Build()
	if err != nil {
		return expr, fmt.Errorf("build condition: %w", err)
	}
	return expr, nil
}

// timeLayout formats times in sort keys: fixed width and UTC, so they sort lexically in time
// order.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// expiry is t as a TTL attribute (epoch seconds); 0, which is left out, for the zero time.
func expiry(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
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
	if len(cursor) > maxCursorLen {
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
	for k := range m {
		if !slices.Contains(allowed, k) {
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
	return newestFirstOn[T](ctx, db, table, index, resources.AttrGSI1PK, resources.AttrGSI1SK, partition, pkPrefix, metaSK, cursor, limit, badCursor, what)
}

// newestFirstOn is newestFirst on the index whose keys are gsiPK and gsiSK.
func newestFirstOn[T any](ctx context.Context, db API, table, index, gsiPK, gsiSK, partition, pkPrefix, metaSK, cursor string, limit int, badCursor error, what string) ([]T, string, error) {
	start, ok := decodeCursor(cursor, resources.AttrPK, resources.AttrSK, gsiPK, gsiSK)
	if !ok || (start != nil && !isGSIPosition(start, gsiPK, gsiSK, pkPrefix, metaSK, partition)) {
		return nil, "", badCursor
	}
	kc := expression.Key(gsiPK).Equal(expression.Value(partition))
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

// isGSIPosition reports whether key is a position in partition partition of the index keyed by
// pkAttr and skAttr: exactly the table's and the index's key attributes, with the layout's values
// (a forged or foreign cursor would make DynamoDB fail).
func isGSIPosition(key map[string]types.AttributeValue, pkAttr, skAttr, pkPrefix, sk, partition string) bool {
	str := func(name string) string {
		v, _ := key[name].(*types.AttributeValueMemberS)
		if v == nil {
			return ""
		}
		return v.Value
	}
	return len(key) == 4 && strings.HasPrefix(str(resources.AttrPK), pkPrefix) && len(str(resources.AttrPK)) > len(pkPrefix) &&
		str(resources.AttrSK) == sk && str(pkAttr) == partition && str(skAttr) != ""
}

// errVersionGone and errVersionStale are what putIfVersion and deleteIfVersion report when the
// item is missing or holds another version; stores translate them into their domain's errors.
var (
	errVersionGone  = errors.New("item not found")
	errVersionStale = errors.New("item has another version")
)

// putIfVersion replaces item (marshalled) if the stored one exists with version prevVersion.
func putIfVersion(ctx context.Context, db API, table string, item map[string]types.AttributeValue, prevVersion int64) error {
	cond, err := buildCondition(itemExists().And(expression.Name("version").Equal(expression.Value(prevVersion))))
	if err != nil {
		return err
	}
	_, err = db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(table), Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return versionOutcome(err)
}

// deleteIfVersion deletes the item at key if its stored version is version.
func deleteIfVersion(ctx context.Context, db API, table string, key map[string]types.AttributeValue, version int64) error {
	cond, err := buildCondition(expression.Name("version").Equal(expression.Value(version)))
	if err != nil {
		return err
	}
	_, err = db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(table), Key: key,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	return versionOutcome(err)
}

// versioned names a versioned write's outcome in a store's own errors: notFound for a missing
// item, conflict for another version, other failures wrapped with what was being done.
func versioned(err, notFound, conflict error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errVersionGone):
		return notFound
	case errors.Is(err, errVersionStale):
		return conflict
	}
	return fmt.Errorf("%s: %w", what, err)
}

// getItem reads the item at key, strongly consistent, into a T; found is false when there is none.
func getItem[T any](ctx context.Context, db API, table string, key map[string]types.AttributeValue, what string) (it T, found bool, err error) {
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return it, false, fmt.Errorf("get %s: %w", what, err)
	}
	if len(out.Item) == 0 {
		return it, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return it, false, fmt.Errorf("unmarshal %s: %w", what, err)
	}
	return it, true, nil
}

func versionOutcome(err error) error {
	if old, ok := conditionFailedItem(err); ok {
		if old == nil {
			return errVersionGone
		}
		return errVersionStale
	}
	return err
}
