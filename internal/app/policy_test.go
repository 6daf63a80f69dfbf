package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/policy"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// TestExecutorEnforcesPolicyChangedAfterAccept: a job accepted under the defaults, whose command
// an admin then forbids, runs nowhere: the executor reads the policy for each batch, every run
// ends failed with reason command_denied, and no device sees even a connection. The same command
// for an admin's job still runs.
func TestExecutorEnforcesPolicyChangedAfterAccept(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 12, Seed: 11})
	store, err := dynamo.NewPolicyStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	e.exec.Policy = store
	ctx := context.Background()

	opJob, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 10}},
		auth.Identity{Subject: "op", Role: auth.Operator})
	require.NoError(t, err, "the defaults let an operator run show version")
	_, err = store.PutPolicy(ctx, policy.Policy{Rules: []policy.Rule{
		{ID: "admin-any", Effect: policy.Allow, Roles: []string{"admin"}, Pattern: "**"},
		{ID: "freeze", Effect: policy.Deny, Pattern: "**", Reason: "change freeze"},
	}}, 0)
	require.NoError(t, err)
	adminJob, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids[:2], Options: bulk.Options{TimeoutS: 10}},
		auth.Identity{Subject: "admin", Role: auth.Admin})
	require.NoError(t, err)

	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], e.exec.Logger, nil), 2)
	j := e.waitJob(t, opJob.JobID, 60*time.Second)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	assert.Equal(t, len(e.ids), j.Counts[run.Failed], "counts %v", j.Counts)
	for id, st := range e.allDevices(t, opJob.JobID) {
		assert.Equal(t, run.Failed, st.Status, "device %s", id)
		assert.Equal(t, bulk.ReasonCommandDenied, st.Reason, "device %s", id)
		r, err := e.runs.Get(ctx, bulk.RunID(opJob.JobID, id))
		require.NoError(t, err, "run of %s", id)
		assert.Equal(t, policy.Code, r.Reason)
		assert.Contains(t, r.Message, "rule freeze")
		assert.Zero(t, r.Bytes, "device %s sent output", id)
	}
	aj := e.waitJob(t, adminJob.JobID, 60*time.Second)
	assert.Equal(t, 2, aj.Counts[run.Succeeded], "the admin's job: counts %v", aj.Counts)
	for _, id := range e.ids[2:] {
		assert.Zero(t, e.fleet.Sessions(id), "device %s was connected to", id)
	}
}
