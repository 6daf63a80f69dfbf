package app_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/drift"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// TestDriftChangedEndToEnd runs show running-config three nights on a simulated fleet whose
// configurations' noise lines change at every showing: the first night's runs have no previous
// run (changed null), the second's are unchanged, and on the third exactly the devices given a
// real change are changed, in the runs and in the job's device states; the filtered diff of one of
// them holds only the real change.
func TestDriftChangedEndToEnd(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 12, Seed: 9, ConfigNoise: true})
	filters, err := dynamo.NewFilterStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	e.exec.Noise = filters
	ctx := context.Background()
	const cmd = "show running-config"
	night := func() (string, map[string]run.Run) {
		t.Helper()
		acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: cmd, DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 10}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
		require.NoError(t, err, "enqueue")
		job, err := e.jobs.GetJob(ctx, acc.JobID)
		require.NoError(t, err)
		_, err = e.exec.Handle(ctx, bulk.MessageFor(job, 0, e.ids))
		require.NoError(t, err, "run the batch")
		runs := map[string]run.Run{}
		for _, id := range e.ids {
			r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, id))
			require.NoError(t, err, "run of %s", id)
			require.Equal(t, run.Succeeded, r.Status, "run of %s: %s %s", id, r.Reason, r.Message)
			require.Len(t, r.ContentSHA256, 64, "content hash of %s", id)
			require.Len(t, r.FilteredDigest, 32, "filtered digest of %s", id)
			runs[id] = r
		}
		return acc.JobID, runs
	}

	_, first := night()
	for id, r := range first {
		assert.Nil(t, r.Changed, "first night: %s has nothing to compare with", id)
		assert.Empty(t, r.PreviousRunID, "first night: %s has no previous run", id)
	}
	_, second := night()
	for id, r := range second {
		require.NotNil(t, r.Changed, "second night: %s compared", id)
		assert.False(t, *r.Changed, "second night: only noise changed on %s", id)
		assert.Equal(t, first[id].ID, r.PreviousRunID, "second night: %s compared with the first", id)
		assert.NotEqual(t, first[id].ContentSHA256, r.ContentSHA256, "second night: %s's bytes did differ", id)
	}
	changedIDs := map[string]bool{e.ids[1]: true, e.ids[5]: true, e.ids[10]: true}
	for id := range changedIDs {
		require.True(t, e.fleet.SetConfigRevision(id, 1), "change %s", id)
	}
	jobID, third := night()
	for id, r := range third {
		require.NotNil(t, r.Changed, "third night: %s compared", id)
		assert.Equal(t, changedIDs[id], *r.Changed, "third night: changed of %s", id)
		assert.Equal(t, second[id].ID, r.PreviousRunID, "third night: %s compared with the second", id)
	}
	for id, st := range e.allDevices(t, jobID) {
		require.NotNil(t, st.Changed, "job device state of %s carries changed", id)
		assert.Equal(t, changedIDs[id], *st.Changed, "job device state of %s", id)
	}

	id := e.ids[5]
	noise, err := drift.NewNoises(nil).For(e.devs[id].Platform, cmd)
	require.NoError(t, err)
	hunks, err := drift.Diff(e.output(t, second[id].ID), e.output(t, third[id].ID), noise, noise, 0)
	require.NoError(t, err, "diff")
	require.Len(t, hunks, 1, "one change")
	var added []string
	for _, l := range hunks[0].Lines {
		require.Equal(t, drift.Add, l.Op, "only added lines: %+v", hunks[0].Lines)
		added = append(added, l.Text)
	}
	assert.Equal(t, []string{"!", "snmp-server location site-01 rack 1"}, added, "the real change, no noise")
}
