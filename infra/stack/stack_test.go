package stack_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/resources"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

func TestProvisionCreatesTablesFromDefinitions(t *testing.T) {
	t.Parallel()
	env := stacktest.New(t)
	ddb := stack.DynamoDBClient(env.Endpoints.DynamoDB)
	ctx := context.Background()
	for _, def := range resources.Tables() {
		t.Run(def.LogicalID, func(t *testing.T) {
			name := env.Names.Tables[def.LogicalID]
			out, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
			if err != nil {
				t.Fatalf("describe %s: %v", name, err)
			}
			keys := map[string]string{}
			for _, k := range out.Table.KeySchema {
				keys[string(k.KeyType)] = aws.ToString(k.AttributeName)
			}
			if keys["HASH"] != def.PartitionKey.Name || keys["RANGE"] != def.SortKey.Name {
				t.Errorf("key schema %v, want hash %s range %s", keys, def.PartitionKey.Name, def.SortKey.Name)
			}
			var idx []string
			for _, g := range out.Table.GlobalSecondaryIndexes {
				idx = append(idx, aws.ToString(g.IndexName))
			}
			if len(idx) != len(def.Indexes) {
				t.Errorf("indexes %v, want %d", idx, len(def.Indexes))
			}
			ttl, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
			if err != nil {
				t.Fatalf("describe TTL: %v", err)
			}
			if got := aws.ToString(ttl.TimeToLiveDescription.AttributeName); got != def.TTLAttribute {
				t.Errorf("TTL attribute %q, want %q", got, def.TTLAttribute)
			}
		})
	}
}

func TestBulkQueueRedrivesToDLQAfterMaxReceives(t *testing.T) {
	t.Parallel()
	env := stacktest.New(t)
	client := stack.SQSClient(env.Endpoints.SQS)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bulk := env.Names.Queues[resources.BulkQueue]
	dlq := env.Names.Queues[resources.BulkDLQ]
	def, _ := resources.QueueByID(resources.BulkQueue)

	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(bulk), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("get attributes: %v", err)
	}
	if got := attrs.Attributes["VisibilityTimeout"]; got != strconv.Itoa(def.VisibilityTimeoutSeconds) {
		t.Errorf("VisibilityTimeout = %s, want %d", got, def.VisibilityTimeoutSeconds)
	}
	var policy struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &policy); err != nil {
		t.Fatalf("redrive policy %q: %v", attrs.Attributes["RedrivePolicy"], err)
	}
	if policy.DeadLetterTargetArn != env.Names.QueueARNs[resources.BulkDLQ] {
		t.Errorf("redrive target %s, want %s", policy.DeadLetterTargetArn, env.Names.QueueARNs[resources.BulkDLQ])
	}

	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(bulk), MessageBody: aws.String(`{"batch":1}`)}); err != nil {
		t.Fatalf("send: %v", err)
	}
	// Receive without deleting, making the message visible again at once, until SQS moves it.
	for i := 1; i <= def.MaxReceiveCount; i++ {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(bulk), WaitTimeSeconds: 1,
		})
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		if len(out.Messages) != 1 {
			t.Fatalf("receive %d: got %d messages, want 1", i, len(out.Messages))
		}
		if _, err := client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(bulk), ReceiptHandle: out.Messages[0].ReceiptHandle, VisibilityTimeout: 0,
		}); err != nil {
			t.Fatalf("release %d: %v", i, err)
		}
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(bulk), WaitTimeSeconds: 0})
	if err != nil {
		t.Fatalf("receive after max: %v", err)
	}
	if len(out.Messages) != 0 {
		t.Fatalf("message still on the bulk queue after %d receives", def.MaxReceiveCount)
	}
	dead, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), WaitTimeSeconds: 2})
	if err != nil {
		t.Fatalf("receive DLQ: %v", err)
	}
	if len(dead.Messages) != 1 || aws.ToString(dead.Messages[0].Body) != `{"batch":1}` {
		t.Fatalf("DLQ holds %v, want the bulk message", dead.Messages)
	}
}
