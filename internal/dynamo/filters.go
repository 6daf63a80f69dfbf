package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/resources"
)

// filtersPK is the partition of the admins' noise filters in the devices table, one item per
// platform (sort key: the platform's name): like the policy, configuration the executor reads
// once per batch, in the table it already reads; the device scan skips it (not a device's key).
const filtersPK = "NOISE"

// FilterStore keeps the noise filters admins add per platform. It implements drift.FilterStore
// and bulk.NoiseSource.
type FilterStore struct {
	db    API
	table string
}

// NewFilterStore returns a store over the named devices table.
func NewFilterStore(db API, table string) (*FilterStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new filter store: client and table name are required")
	}
	return &FilterStore{db: db, table: table}, nil
}

type filtersItem struct {
	PK string `dynamodbav:"pk"`
	SK string `dynamodbav:"sk"`
	// Filters is the list as JSON: one string keeps the item small and its order exact.
	Filters string `dynamodbav:"filters"`
}

// CustomFilters returns every platform's admin filters, read strongly consistent so a change
// applies to the next batch.
func (s *FilterStore) CustomFilters(ctx context.Context) (map[string][]platform.NoiseFilter, error) {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(filtersPK))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return nil, fmt.Errorf("build query: %w", err)
	}
	items, err := queryAll[filtersItem](ctx, s.db, &dynamodb.QueryInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}, "noise filters")
	if err != nil {
		return nil, err
	}
	out := map[string][]platform.NoiseFilter{}
	for _, it := range items {
		var fs []platform.NoiseFilter
		if err := json.Unmarshal([]byte(it.Filters), &fs); err != nil {
			return nil, fmt.Errorf("decode noise filters of %s: %w", it.SK, err)
		}
		if len(fs) > 0 {
			out[it.SK] = fs
		}
	}
	return out, nil
}

// PutCustomFilters replaces one platform's admin filters; an empty list deletes its item.
func (s *FilterStore) PutCustomFilters(ctx context.Context, platformName string, fs []platform.NoiseFilter) error {
	if len(fs) == 0 {
		if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: itemKey(filtersPK, platformName)}); err != nil {
			return fmt.Errorf("delete noise filters of %s: %w", platformName, err)
		}
		return nil
	}
	js, err := json.Marshal(fs)
	if err != nil {
		return fmt.Errorf("encode noise filters: %w", err)
	}
	item, err := attributevalue.MarshalMap(filtersItem{PK: filtersPK, SK: platformName, Filters: string(js)})
	if err != nil {
		return fmt.Errorf("marshal noise filters: %w", err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("put noise filters of %s: %w", platformName, err)
	}
	return nil
}
