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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
			require.NoError(t, err, "describe table %s", name)
			keys := map[string]string{}
			for _, k := range out.Table.KeySchema {
				keys[string(k.KeyType)] = aws.ToString(k.AttributeName)
			}
			assert.Equal(t, def.PartitionKey.Name, keys["HASH"], "HASH key of %s", name)
			assert.Equal(t, def.SortKey.Name, keys["RANGE"], "RANGE key of %s", name)
			var idx []string
			for _, g := range out.Table.GlobalSecondaryIndexes {
				idx = append(idx, aws.ToString(g.IndexName))
			}
			assert.Len(t, idx, len(def.Indexes), "indexes of %s", name)
			ttl, err := ddb.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
			require.NoError(t, err, "describe TTL of %s", name)
			assert.Equal(t, def.TTLAttribute, aws.ToString(ttl.TimeToLiveDescription.AttributeName), "TTL attribute of %s", name)
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
	require.NoError(t, err, "get attributes of the bulk queue")
	assert.Equal(t, strconv.Itoa(def.VisibilityTimeoutSeconds), attrs.Attributes["VisibilityTimeout"], "VisibilityTimeout")
	var policy struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     any    `json:"maxReceiveCount"`
	}
	require.NoError(t, json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &policy), "redrive policy %q", attrs.Attributes["RedrivePolicy"])
	assert.Equal(t, env.Names.QueueARNs[resources.BulkDLQ], policy.DeadLetterTargetArn, "redrive target")

	_, err = client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(bulk), MessageBody: aws.String(`{"batch":1}`)})
	require.NoError(t, err, "send")
	// Receive without deleting, making the message visible again at once, until SQS moves it.
	for i := 1; i <= def.MaxReceiveCount; i++ {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(bulk), WaitTimeSeconds: 1,
		})
		require.NoError(t, err, "receive %d", i)
		require.Len(t, out.Messages, 1, "messages of receive %d", i)
		_, err = client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
			QueueUrl: aws.String(bulk), ReceiptHandle: out.Messages[0].ReceiptHandle, VisibilityTimeout: 0,
		})
		require.NoError(t, err, "release %d", i)
	}
	out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(bulk), WaitTimeSeconds: 0})
	require.NoError(t, err, "receive after max")
	require.Empty(t, out.Messages, "messages still on the bulk queue after %d receives", def.MaxReceiveCount)
	dead, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq), WaitTimeSeconds: 2})
	require.NoError(t, err, "receive DLQ")
	require.Len(t, dead.Messages, 1, "messages on the DLQ")
	require.Equal(t, `{"batch":1}`, aws.ToString(dead.Messages[0].Body), "body of the message on the DLQ")
}
