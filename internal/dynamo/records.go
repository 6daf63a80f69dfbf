package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/netauto/netauto/internal/resources"
)

// records keeps one kind of versioned record (credential profiles, jump hosts, saved jobs,
// webhooks) in one partition of a table, keyed by id: the conditional create, the versioned
// replace and delete, the consistent read and the listing of the partition, and the errors the
// kind answers them with. Rec is the domain value, Item its dynamodbav struct.
type records[Rec, Item any] struct {
	db    API
	table string
	// pk is the partition holding every record of the kind; noun names one in errors.
	pk, noun string
	// toItem and fromItem convert between the domain value and the item; id is the record's id.
	toItem   func(Rec) Item
	fromItem func(Item) Rec
	id       func(Rec) string
	// The kind's errors for an id that is taken, an id that is not there, and a version that
	// moved on.
	exists, notFound, conflict error
}

// create stores a new record; exists when its id is taken.
func (r records[Rec, Item]) create(ctx context.Context, rec Rec) error {
	return putNew(ctx, r.db, r.table, r.toItem(rec), r.exists, r.noun+" "+r.id(rec))
}

// get reads one record consistently; notFound when there is none.
func (r records[Rec, Item]) get(ctx context.Context, id string) (Rec, error) {
	it, found, err := getItem[Item](ctx, r.db, r.table, itemKey(r.pk, id), r.noun+" "+id)
	if err != nil || !found {
		var zero Rec
		if err == nil {
			err = r.notFound
		}
		return zero, err
	}
	return r.fromItem(it), nil
}

// update replaces a record if its stored version is prevVersion.
func (r records[Rec, Item]) update(ctx context.Context, rec Rec, prevVersion int64) error {
	id := r.id(rec)
	item, err := attributevalue.MarshalMap(r.toItem(rec))
	if err != nil {
		return fmt.Errorf("marshal %s %s: %w", r.noun, id, err)
	}
	return versioned(putIfVersion(ctx, r.db, r.table, item, prevVersion), r.notFound, r.conflict, "update "+r.noun+" "+id)
}

// delete removes a record if its stored version is version.
func (r records[Rec, Item]) delete(ctx context.Context, id string, version int64) error {
	return versioned(deleteIfVersion(ctx, r.db, r.table, itemKey(r.pk, id), version), r.notFound, r.conflict, "delete "+r.noun+" "+id)
}

// partitionQuery is the consistent Query of every record of the kind, by id.
func (r records[Rec, Item]) partitionQuery() (*dynamodb.QueryInput, error) {
	expr, err := expression.NewBuilder().WithKeyCondition(expression.Key(resources.AttrPK).Equal(expression.Value(r.pk))).Build()
	if err != nil {
		return nil, fmt.Errorf("build key condition: %w", err)
	}
	return &dynamodb.QueryInput{
		TableName: aws.String(r.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(), ConsistentRead: aws.Bool(true),
	}, nil
}

// list returns every record of the kind by id: the partition's Query, all its pages.
func (r records[Rec, Item]) list(ctx context.Context) ([]Rec, error) {
	in, err := r.partitionQuery()
	if err != nil {
		return nil, err
	}
	items, err := queryAll[Item](ctx, r.db, in, r.noun+"s")
	if err != nil {
		return nil, err
	}
	out := make([]Rec, len(items))
	for i, it := range items {
		out[i] = r.fromItem(it)
	}
	return out, nil
}
