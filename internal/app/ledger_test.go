package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// TestFinishNewHalfWrittenIsReconciled cuts FinishNew's two puts apart, as a crash between them
// would, and checks that Reconcile (what a redelivery or the dead-letter consumer calls) brings
// the device's bytes back to its stored output, and that it changes nothing on a whole finish.
func TestFinishNewHalfWrittenIsReconciled(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 1, Seed: 1})
	db := stack.DynamoDBClient(e.st.Endpoints.DynamoDB)
	table := e.st.Names.Tables[resources.RunsTable]
	del := func(t *testing.T, pk, sk string) {
		t.Helper()
		_, err := db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{
			resources.AttrPK: &types.AttributeValueMemberS{Value: pk}, resources.AttrSK: &types.AttributeValueMemberS{Value: sk},
		}})
		require.NoError(t, err, "delete %s %s", pk, sk)
	}
	output := []byte("Linux sim 6.1.0 x86_64\n")
	cases := []struct {
		name string
		// cut undoes one of the two puts of the finish of run id on device dev.
		cut  func(t *testing.T, dev, id string)
		want int64
	}{
		{name: "whole finish", cut: func(*testing.T, string, string) {}, want: int64(len(output))},
		{name: "run without its ledger item", cut: func(t *testing.T, dev, id string) { del(t, "DEVBYTES#"+dev, "TAIL#"+id) }, want: int64(len(output))},
		{name: "ledger item without its run", cut: func(t *testing.T, _, id string) { del(t, "RUN#"+id, "META") }, want: 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dev := "ledger-dev-" + string(rune('a'+i))
			now := time.Now().UTC()
			r := run.Run{ID: "ledgerjob." + dev, DeviceID: dev, Command: "uname -a", JobID: "ledgerjob", RequestedBy: "t@example.com",
				Status: run.Succeeded, Attempt: 1, CreatedAt: now, StartedAt: &now, FinishedAt: &now, Bytes: int64(len(output)), Chunks: 1}
			require.NoError(t, e.runs.FinishNew(ctx, r, output), "finish run %s", r.ID)
			tc.cut(t, dev, r.ID)
			for i := range 2 { // a second redelivery changes nothing more
				require.NoError(t, e.runs.Reconcile(ctx, dev, r.ID), "reconcile %d of device %s", i+1, dev)
				got, err := e.runs.DeviceBytes(ctx, dev)
				require.NoError(t, err, "device bytes of %s", dev)
				assert.Equal(t, tc.want, got, "device %s's bytes after reconcile %d", dev, i+1)
			}
		})
	}
}
