package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/netauto/netauto/internal/resources"
)

// Names are the physical names of one provisioned set of resources.
type Names struct {
	// Tables maps a table's logical ID to its physical name.
	Tables map[string]string
	// Queues maps a queue's logical ID to its URL.
	Queues map[string]string
	// QueueARNs maps a queue's logical ID to its ARN.
	QueueARNs map[string]string
}

// Env returns each resource's environment variable (as the functions read them) and value.
func (n Names) Env() map[string]string {
	env := map[string]string{}
	for _, t := range resources.Tables() {
		env[t.EnvVar] = n.Tables[t.LogicalID]
	}
	for _, q := range resources.Queues() {
		env[q.EnvVar] = n.Queues[q.LogicalID]
	}
	return env
}

// Provision creates every table (with its TTL setting) and every queue (with its redrive policy)
// of internal/resources, each named prefix+suffix, and waits until the tables are active. It is
// idempotent: on a database kept from an earlier run the tables are checked and kept, with any
// index added since then created.
func Provision(ctx context.Context, ep Endpoints, prefix string) (Names, error) {
	names := Names{Tables: map[string]string{}, Queues: map[string]string{}, QueueARNs: map[string]string{}}
	ddb := DynamoDBClient(ep.DynamoDB)
	for _, t := range resources.Tables() {
		name := prefix + t.Suffix
		if err := createTable(ctx, ddb, t, name); err != nil {
			return names, err
		}
		names.Tables[t.LogicalID] = name
	}
	q := SQSClient(ep.SQS)
	for _, def := range resources.Queues() {
		url, arn, err := createQueue(ctx, q, def, prefix+def.Suffix, names.QueueARNs)
		if err != nil {
			return names, err
		}
		names.Queues[def.LogicalID] = url
		names.QueueARNs[def.LogicalID] = arn
	}
	return names, nil
}

// CreateTableInput translates a table definition into the API request that creates it on the
// local stack.
func CreateTableInput(t resources.Table, name string) *dynamodb.CreateTableInput {
	attrs := map[string]ddbtypes.ScalarAttributeType{}
	keySchema := func(pk, sk resources.Attribute) []ddbtypes.KeySchemaElement {
		ks := []ddbtypes.KeySchemaElement{{AttributeName: aws.String(pk.Name), KeyType: ddbtypes.KeyTypeHash}}
		attrs[pk.Name] = ddbtypes.ScalarAttributeType(pk.Type)
		if sk.Name != "" {
			ks = append(ks, ddbtypes.KeySchemaElement{AttributeName: aws.String(sk.Name), KeyType: ddbtypes.KeyTypeRange})
			attrs[sk.Name] = ddbtypes.ScalarAttributeType(sk.Type)
		}
		return ks
	}
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema:   keySchema(t.PartitionKey, t.SortKey),
	}
	for _, idx := range t.Indexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ddbtypes.GlobalSecondaryIndex{
			IndexName:  aws.String(idx.Name),
			KeySchema:  keySchema(idx.PartitionKey, idx.SortKey),
			Projection: &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionType(idx.Projection()), NonKeyAttributes: idx.Include},
		})
	}
	// No stream, even for a table that has one in AWS (Table.Stream, checked against the template
	// by templatecheck): nothing reads a stream locally, since DynamoDB Local never deletes by TTL
	// and TTL deletions are all the stream consumer acts on, while DynamoDB Local keeps every
	// stream record and slows down as they pile up (docs/performance.md has the measurement).
	for n, typ := range attrs {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(n), AttributeType: typ,
		})
	}
	return in
}

// createTable creates the table, or brings an existing one (a database kept across restarts) up
// to its definition: the key schema must match, missing indexes are added, TTL is enabled.
func createTable(ctx context.Context, ddb *dynamodb.Client, t resources.Table, name string) error {
	in := CreateTableInput(t, name)
	_, err := ddb.CreateTable(ctx, in)
	var inUse *ddbtypes.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		if err := upgradeTable(ctx, ddb, in); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("create table %s: %w", name, err)
	default:
		if err := waitActive(ctx, ddb, name); err != nil {
			return err
		}
	}
	if t.TTLAttribute != "" {
		cur, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("describe TTL of %s: %w", name, err)
		}
		if d := cur.TimeToLiveDescription; d != nil && d.TimeToLiveStatus == ddbtypes.TimeToLiveStatusEnabled && aws.ToString(d.AttributeName) == t.TTLAttribute {
			return nil
		}
		_, err = ddb.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(name),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
				AttributeName: aws.String(t.TTLAttribute), Enabled: aws.Bool(true),
			},
		})
		if err != nil {
			return fmt.Errorf("enable TTL on %s: %w", name, err)
		}
	}
	return nil
}

func waitActive(ctx context.Context, ddb *dynamodb.Client, name string) error {
	waiter := dynamodb.NewTableExistsWaiter(ddb, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond // DynamoDB Local creates tables at once
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 30*time.Second); err != nil {
		return fmt.Errorf("wait for table %s: %w", name, err)
	}
	return nil
}

// upgradeTable checks an existing table against want: a different key schema cannot be changed
// in place (the error says how to start afresh); an index want has and the table lacks is added.
// Indexes the table has beyond want are left alone.
func upgradeTable(ctx context.Context, ddb *dynamodb.Client, want *dynamodb.CreateTableInput) error {
	name := aws.ToString(want.TableName)
	if err := waitActive(ctx, ddb, name); err != nil {
		return err
	}
	out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: want.TableName})
	if err != nil {
		return fmt.Errorf("describe table %s: %w", name, err)
	}
	if !sameKeys(out.Table.KeySchema, want.KeySchema) {
		return fmt.Errorf("table %s exists with another key schema than its definition; "+
			"start with a fresh database (remove the local state folder, or make dev-reset): %w", name, ErrSchemaMismatch)
	}
	have := map[string]bool{}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		have[aws.ToString(g.IndexName)] = true
	}
	for _, g := range want.GlobalSecondaryIndexes {
		if have[aws.ToString(g.IndexName)] {
			continue
		}
		_, err := ddb.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            want.TableName,
			AttributeDefinitions: want.AttributeDefinitions,
			GlobalSecondaryIndexUpdates: []ddbtypes.GlobalSecondaryIndexUpdate{{Create: &ddbtypes.CreateGlobalSecondaryIndexAction{
				IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection,
			}}},
		})
		if err != nil {
			return fmt.Errorf("add index %s to table %s: %w", aws.ToString(g.IndexName), name, err)
		}
		if err := waitIndexActive(ctx, ddb, name, aws.ToString(g.IndexName)); err != nil {
			return err
		}
	}
	return nil
}

// ErrSchemaMismatch means a kept table's keys differ from its definition.
var ErrSchemaMismatch = errors.New("table schema mismatch")

func sameKeys(a, b []ddbtypes.KeySchemaElement) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if aws.ToString(a[i].AttributeName) != aws.ToString(b[i].AttributeName) || a[i].KeyType != b[i].KeyType {
			return false
		}
	}
	return true
}

// waitIndexActive waits until a newly added index is active (DynamoDB Local backfills it at once).
func waitIndexActive(ctx context.Context, ddb *dynamodb.Client, table, index string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for pause := 20 * time.Millisecond; ; pause = min(pause*2, time.Second) {
		out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return fmt.Errorf("wait for index %s of %s: %w", index, table, err)
		}
		for _, g := range out.Table.GlobalSecondaryIndexes {
			if aws.ToString(g.IndexName) == index && g.IndexStatus == ddbtypes.IndexStatusActive {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for index %s of %s: %w", index, table, ctx.Err())
		case <-time.After(pause):
		}
	}
}

func createQueue(ctx context.Context, client *sqs.Client, def resources.Queue, name string, arns map[string]string) (url, arn string, err error) {
	attrs := map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout):      strconv.Itoa(def.VisibilityTimeoutSeconds),
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(def.MessageRetentionSeconds),
	}
	if def.DeadLetter != "" {
		dlq, ok := arns[def.DeadLetter]
		if !ok {
			return "", "", fmt.Errorf("queue %s: dead-letter queue %s is not created yet", def.LogicalID, def.DeadLetter)
		}
		policy, _ := json.Marshal(map[string]string{
			"deadLetterTargetArn": dlq, "maxReceiveCount": strconv.Itoa(def.MaxReceiveCount),
		})
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("get ARN of queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}
