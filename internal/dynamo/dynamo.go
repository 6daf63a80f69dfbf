// Package dynamo holds NetAuto's DynamoDB adapters. Each store implements a small interface owned
// by a domain package and decides nothing the domain should: it reads and writes items.
//
// Files: mechanics.go holds what every store shares (DynamoDB's limits, the one retry policy,
// transactions, batch requests, condition failures, keys, page cursors); runs_table.go is the
// runs table's layout and byte ledger, which the run store and the retention store share; each
// store has its own file (devices.go, runs.go, retention.go, connections.go, jobs.go) and its own
// test against DynamoDB Local (harness_test.go gives each test its own table).
//
// One way to build attribute values: items are Go structs marshalled with attributevalue, keys
// come from itemKey, and condition, update, key-condition and projection expressions are built
// with the expression package, whose values are marshalled the same way. The expression
// builder reads a dot in a name as a path separator, so a name that is data (a device ID used as
// a map key, a tag key) goes in through expression.NameNoDotSplit, appended to its map's name.
package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
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
