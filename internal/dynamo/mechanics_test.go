package dynamo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/resources"
)

func cancelled(codes ...string) error {
	reasons := make([]types.CancellationReason, len(codes))
	for i, c := range codes {
		reasons[i] = types.CancellationReason{Code: aws.String(c)}
	}
	return fmt.Errorf("wrapped: %w", &types.TransactionCanceledException{CancellationReasons: reasons})
}

func TestCancellationReasons(t *testing.T) {
	tests := []struct {
		name            string
		err             error
		conditionFailed bool
		conflict        bool
		failedAt        int
	}{
		{"nil", nil, false, false, -1},
		{"another error", errors.New("boom"), false, false, -1},
		{"one condition", cancelled("None", "ConditionalCheckFailed"), true, false, 1},
		{"two conditions", cancelled("ConditionalCheckFailed", "ConditionalCheckFailed"), true, false, 0},
		{"conflict", cancelled("TransactionConflict", "None"), false, true, -1},
		{"throttled", cancelled("ThrottlingError"), false, true, -1},
		{"conflict and condition", cancelled("TransactionConflict", "ConditionalCheckFailed"), false, false, 1},
		{"validation", cancelled("ValidationError"), false, false, -1},
		{"no reasons", cancelled(), false, false, -1},
		{"in progress", &types.TransactionInProgressException{}, false, true, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.conditionFailed, onlyConditionFailed(tt.err), "onlyConditionFailed")
			assert.Equal(t, tt.conflict, onlyConflict(tt.err), "onlyConflict")
			assert.Equal(t, tt.failedAt, failedConditionIndex(tt.err), "failedConditionIndex")
		})
	}
}

func TestConditionFailedItem(t *testing.T) {
	old := itemKey("DEV#a", "DEV")
	tests := []struct {
		name   string
		err    error
		item   map[string]types.AttributeValue
		failed bool
	}{
		{"with the old item", fmt.Errorf("put: %w", &types.ConditionalCheckFailedException{Item: old}), old, true},
		{"no item", &types.ConditionalCheckFailedException{}, nil, true},
		{"another error", errors.New("boom"), nil, false},
		{"nil", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			item, failed := conditionFailedItem(tt.err)
			assert.Equal(t, tt.failed, failed, "failed")
			assert.Equal(t, tt.failed, isConditionFailed(tt.err), "isConditionFailed")
			assert.Equal(t, tt.item, item, "item")
		})
	}
}

func TestRetry(t *testing.T) {
	t.Run("stops when nothing is left", func(t *testing.T) {
		calls := 0
		err := retry(context.Background(), func() (bool, error) {
			calls++
			return calls < 3, errors.New("left over")
		})
		require.Error(t, err, "the last call's error")
		assert.Equal(t, 3, calls, "calls")
		assert.NotContains(t, err.Error(), "attempts", "not given up")
	})
	t.Run("returns a final error unwrapped", func(t *testing.T) {
		final := errors.New("final")
		assert.Same(t, final, retry(context.Background(), func() (bool, error) { return false, final }))
	})
	t.Run("gives up after retryAttempts", func(t *testing.T) {
		calls := 0
		left := &types.TransactionInProgressException{}
		err := retry(context.Background(), func() (bool, error) {
			calls++
			return true, left
		})
		assert.Equal(t, retryAttempts, calls, "calls")
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprintf("after %d attempts", retryAttempts))
		assert.ErrorIs(t, err, left, "the last error is still wrapped")
	})
	t.Run("a cancelled context ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := retry(ctx, func() (bool, error) {
			calls++
			cancel()
			return true, errors.New("left over")
		})
		assert.Equal(t, 1, calls, "calls")
		assert.ErrorIs(t, err, context.Canceled)
		assert.ErrorContains(t, err, "left over")
	})
}

func TestRetryWait(t *testing.T) {
	for attempt := range retryAttempts + 40 {
		full := retryMaxWait
		if attempt < 30 {
			full = min(retryBase<<attempt, retryMaxWait)
		}
		for range 20 {
			w := retryWait(attempt)
			require.GreaterOrEqualf(t, w, full/2, "wait after attempt %d", attempt)
			require.LessOrEqualf(t, w, full, "wait after attempt %d", attempt)
		}
	}
	assert.Equal(t, retryMaxWait, min(retryBase<<(retryAttempts-1), retryMaxWait), "the last waits reach the cap")
}

func TestCursor(t *testing.T) {
	key := map[string]types.AttributeValue{
		resources.AttrPK: &types.AttributeValueMemberS{Value: "RUN#r1"}, resources.AttrSK: &types.AttributeValueMemberS{Value: "META"},
		resources.AttrGSI1PK: &types.AttributeValueMemberS{Value: "DEV#d1"}, resources.AttrGSI1SK: &types.AttributeValueMemberS{Value: "2026-01-01T00:00:00.000000000Z#r1"},
	}
	c, err := encodeCursor(key)
	require.NoError(t, err)
	got, ok := decodeCursor(c, resources.AttrPK, resources.AttrSK, resources.AttrGSI1PK, resources.AttrGSI1SK)
	require.True(t, ok, "decode what was encoded")
	assert.Equal(t, key, got)
	assert.True(t, isGSIPosition(got, resources.AttrGSI1PK, resources.AttrGSI1SK, "RUN#", "META", "DEV#d1"), "a position in the device's partition")

	empty, err := encodeCursor(nil)
	require.NoError(t, err)
	assert.Empty(t, empty, "no more pages")

	bad := []struct {
		name    string
		cursor  string
		allowed []string
	}{
		{"not base64", "!!!", []string{resources.AttrPK}},
		{"not JSON", "bm90IGpzb24", []string{resources.AttrPK}},
		{"empty object", "e30", []string{resources.AttrPK}},
		{"foreign attribute", c, []string{resources.AttrPK, resources.AttrSK}},
		{"too long", strings.Repeat("A", maxCursorLen+1), []string{resources.AttrPK}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, ok := decodeCursor(tt.cursor, tt.allowed...)
			assert.False(t, ok)
		})
	}
	t.Run("position in another partition", func(t *testing.T) {
		assert.False(t, isGSIPosition(got, resources.AttrGSI1PK, resources.AttrGSI1SK, "RUN#", "META", "DEV#d2"))
		assert.False(t, isGSIPosition(got, resources.AttrGSI1PK, resources.AttrGSI1SK, "JOB#", "META", "DEV#d1"))
		assert.False(t, isGSIPosition(itemKey("RUN#r1", "META"), resources.AttrGSI1PK, resources.AttrGSI1SK, "RUN#", "META", "DEV#d1"), "a table key only")
	})
}

func TestBatchWriteAndGet(t *testing.T) {
	db, table := newTable(t, resources.DevicesTable)
	ctx := context.Background()
	const n = maxBatchGetKeys + 7 // several write calls, several at once
	writes := make([]types.WriteRequest, n)
	keys := make([]map[string]types.AttributeValue, n)
	for i := range n {
		keys[i] = itemKey(fmt.Sprintf("X#%03d", i), "X")
		item := itemKey(fmt.Sprintf("X#%03d", i), "X")
		item["n"] = &types.AttributeValueMemberN{Value: fmt.Sprint(i)}
		writes[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
	}
	require.NoError(t, batchWrite(ctx, db, table, writes))
	got, err := batchGet(ctx, db, table, keys[:maxBatchGetKeys], nil)
	require.NoError(t, err)
	assert.Len(t, got, maxBatchGetKeys, "items read back")
	_, err = batchGet(ctx, db, table, keys[:maxBatchGetKeys+1], nil)
	assert.ErrorContains(t, err, "at most", "more keys than one call takes")
	assert.ErrorContains(t, transact(ctx, db, make([]types.TransactWriteItem, maxTransactItems+1)...), "at most", "more items than one transaction takes")
	assert.NoError(t, batchWrite(ctx, db, table, nil), "nothing to write")
}

// flakyAPI answers TransactWriteItems with the queued errors, then success, and
// BatchWriteItem by handing back the last item of each call as unprocessed while unprocessed
// is above zero.
type flakyAPI struct {
	API
	mu           sync.Mutex
	transactErrs []error
	transacts    int
	unprocessed  int
	batchCalls   int
	written      int
}

func (f *flakyAPI) TransactWriteItems(_ context.Context, _ *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	f.transacts++
	if len(f.transactErrs) > 0 {
		err := f.transactErrs[0]
		f.transactErrs = f.transactErrs[1:]
		return nil, err
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (f *flakyAPI) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batchCalls++
	out := &dynamodb.BatchWriteItemOutput{}
	for table, reqs := range in.RequestItems {
		if f.unprocessed > 0 && len(reqs) > 0 {
			f.unprocessed--
			out.UnprocessedItems = map[string][]types.WriteRequest{table: reqs[len(reqs)-1:]}
			reqs = reqs[:len(reqs)-1]
		}
		f.written += len(reqs)
	}
	return out, nil
}

func TestTransactRetries(t *testing.T) {
	conflict := cancelled("TransactionConflict")
	tests := []struct {
		name  string
		errs  []error
		calls int
		want  func(t *testing.T, err error)
	}{
		{"succeeds", nil, 1, func(t *testing.T, err error) { assert.NoError(t, err) }},
		{"conflicts, then succeeds", []error{conflict, &types.TransactionInProgressException{}, conflict}, 4,
			func(t *testing.T, err error) { assert.NoError(t, err) }},
		{"a condition fails: no retry", []error{cancelled("ConditionalCheckFailed")}, 1,
			func(t *testing.T, err error) {
				assert.True(t, onlyConditionFailed(err), "the condition failure comes back: %v", err)
			}},
		{"another error: no retry", []error{errors.New("boom")}, 1,
			func(t *testing.T, err error) { assert.EqualError(t, err, "boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyAPI{transactErrs: tt.errs}
			err := transact(context.Background(), f, types.TransactWriteItem{})
			tt.want(t, err)
			assert.Equal(t, tt.calls, f.transacts, "calls")
		})
	}
}

func TestBatchWriteRetriesUnprocessed(t *testing.T) {
	writes := make([]types.WriteRequest, 3*maxBatchWriteItems)
	f := &flakyAPI{unprocessed: 4}
	require.NoError(t, batchWrite(context.Background(), f, "t", writes))
	assert.Equal(t, len(writes), f.written, "every request written once")
	assert.Equal(t, 3+4, f.batchCalls, "one call per batch and one per unprocessed remainder")

	f = &flakyAPI{unprocessed: retryAttempts}
	err := batchWrite(context.Background(), f, "t", writes[:1])
	assert.ErrorContains(t, err, fmt.Sprintf("after %d attempts", retryAttempts), "gives up")
	assert.Equal(t, retryAttempts, f.batchCalls, "calls")
}

// TestConflictRetry: a write DynamoDB refuses because a transaction holds its item is sent
// again by a client with withConflictRetry, and is not by one without (the SDK's standard
// retryer); the server speaks DynamoDB's JSON protocol over HTTP.
func TestConflictRetry(t *testing.T) {
	tests := []struct {
		name  string
		opts  []func(*dynamodb.Options)
		calls int64
		ok    bool
	}{
		{name: "with the option", opts: []func(*dynamodb.Options){withConflictRetry}, calls: 2, ok: true},
		{name: "without it", calls: 1, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-amz-json-1.0")
				if calls.Add(1) == 1 {
					w.WriteHeader(http.StatusBadRequest)
					_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}`)
					return
				}
				_, _ = io.WriteString(w, `{}`)
			}))
			t.Cleanup(srv.Close)
			db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
				Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, tt.opts...)
			_, err := db.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String("t"),
				Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}, UpdateExpression: aws.String("SET n = :n"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":n": &types.AttributeValueMemberN{Value: "1"}}})
			if tt.ok {
				assert.NoError(t, err)
			} else {
				var conflict *types.TransactionConflictException
				assert.ErrorAs(t, err, &conflict)
			}
			assert.Equal(t, tt.calls, calls.Load(), "requests")
		})
	}
}
