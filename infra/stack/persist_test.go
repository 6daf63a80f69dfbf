package stack_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/resources"
)

var prefixes atomic.Int64

// freshPrefix names a set of resources no other test uses on the shared stack.
func freshPrefix() string {
	return fmt.Sprintf("persist%d-%d-", time.Now().UnixNano(), prefixes.Add(1))
}

// tableWithIndexes returns a table definition that has global secondary indexes.
func tableWithIndexes(tb testing.TB) resources.Table {
	tb.Helper()
	for _, t := range resources.Tables() {
		if len(t.Indexes) > 0 {
			return t
		}
	}
	require.FailNow(tb, "no table definition has an index")
	return resources.Table{}
}

func TestProvisionOnAnExistingDatabase(t *testing.T) {
	t.Parallel()
	ep := stacktest.Endpoints(t)
	ddb := stack.DynamoDBClient(ep.DynamoDB)
	def := tableWithIndexes(t)
	tests := []struct {
		name string
		// before prepares the database the second Provision finds.
		before  func(t *testing.T, prefix string)
		wantErr error
	}{
		{
			name: "everything provisioned already is kept, items and all",
			before: func(t *testing.T, prefix string) {
				_, err := stack.Provision(context.Background(), ep, prefix)
				require.NoError(t, err)
			},
		},
		{
			name: "an index added to the definition since is created",
			before: func(t *testing.T, prefix string) {
				in := stack.CreateTableInput(def, prefix+def.Suffix)
				in.GlobalSecondaryIndexes = in.GlobalSecondaryIndexes[1:]
				// Only the attributes the remaining keys use may be defined.
				used := map[string]bool{}
				for _, k := range in.KeySchema {
					used[aws.ToString(k.AttributeName)] = true
				}
				for _, g := range in.GlobalSecondaryIndexes {
					for _, k := range g.KeySchema {
						used[aws.ToString(k.AttributeName)] = true
					}
				}
				defs := in.AttributeDefinitions[:0]
				for _, a := range in.AttributeDefinitions {
					if used[aws.ToString(a.AttributeName)] {
						defs = append(defs, a)
					}
				}
				in.AttributeDefinitions = defs
				_, err := ddb.CreateTable(context.Background(), in)
				require.NoError(t, err)
			},
		},
		{
			name: "a table with other keys is refused, not dropped",
			before: func(t *testing.T, prefix string) {
				_, err := ddb.CreateTable(context.Background(), &dynamodb.CreateTableInput{
					TableName: aws.String(prefix + def.Suffix), BillingMode: ddbtypes.BillingModePayPerRequest,
					KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("other"), KeyType: ddbtypes.KeyTypeHash}},
					AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("other"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
				})
				require.NoError(t, err)
			},
			wantErr: stack.ErrSchemaMismatch,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			prefix := freshPrefix()
			tc.before(t, prefix)
			table := prefix + def.Suffix
			key := map[string]ddbtypes.AttributeValue{def.PartitionKey.Name: &ddbtypes.AttributeValueMemberS{Value: "kept"}}
			if def.SortKey.Name != "" {
				key[def.SortKey.Name] = &ddbtypes.AttributeValueMemberS{Value: "kept"}
			}
			if tc.wantErr == nil {
				_, err := ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key})
				require.NoError(t, err)
			}

			names, err := stack.Provision(ctx, ep, prefix)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, table, names.Tables[def.LogicalID])
			out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
			require.NoError(t, err)
			var indexes []string
			for _, g := range out.Table.GlobalSecondaryIndexes {
				indexes = append(indexes, aws.ToString(g.IndexName))
			}
			for _, ix := range def.Indexes {
				assert.Contains(t, indexes, ix.Name)
			}
			got, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key})
			require.NoError(t, err)
			assert.NotEmpty(t, got.Item, "the item written before provisioning again is gone")
		})
	}
}

func TestDataDirKeepsTablesAcrossRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts DynamoDB Local twice")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	def := resources.Tables()[0]
	key := map[string]ddbtypes.AttributeValue{def.PartitionKey.Name: &ddbtypes.AttributeValueMemberS{Value: "kept"}}
	if def.SortKey.Name != "" {
		key[def.SortKey.Name] = &ddbtypes.AttributeValueMemberS{Value: "kept"}
	}
	for round := range 2 {
		st, err := stack.Start(ctx, stack.Options{DataDir: dir, Logger: logger})
		require.NoError(t, err)
		names, err := stack.Provision(ctx, st.Endpoints, "netauto-dev-")
		require.NoError(t, err, "round %d", round)
		ddb := stack.DynamoDBClient(st.Endpoints.DynamoDB)
		table := aws.String(names.Tables[def.LogicalID])
		got, err := ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: key})
		require.NoError(t, err)
		if round == 0 {
			assert.Empty(t, got.Item)
			_, err = ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: key})
			require.NoError(t, err)
		} else {
			assert.NotEmpty(t, got.Item, "the item did not survive the restart")
		}
		require.NoError(t, st.Close())
	}
}
