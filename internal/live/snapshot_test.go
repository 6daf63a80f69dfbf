package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

func TestMain(m *testing.M) { stacktest.Main(m) }

// TestSnapshotLinear subscribes to a 5,000-device job (100 batches) on the real job store and
// counts the items DynamoDB returns: every batch once, plus the job and one look-ahead batch per
// page of devices — not every remaining batch again for each page.
func TestSnapshotLinear(t *testing.T) {
	ctx := context.Background()
	st := stacktest.New(t)
	counter := stacktest.NewReadCounter(stack.DynamoDBClient(st.Endpoints.DynamoDB))
	jobs, err := dynamo.NewJobStore(counter, st.Names.Tables[resources.JobsTable])
	require.NoError(t, err)
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%05d", i)
	}
	batches := bulk.Split(ids, bulk.MaxBatchSize)
	j := bulk.Job{ID: bulk.NewID(time.Now()), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: len(ids),
		Batches: len(batches), Status: bulk.JobQueued, CreatedAt: time.Now().UTC(), Counts: map[run.Status]int{run.Queued: len(ids)}}
	require.NoError(t, jobs.CreateJob(ctx, j, batches, len(batches)))

	before := counter.Items()
	parts, err := (&live.Server{Jobs: jobs}).Snapshot(ctx, j.ID)
	require.NoError(t, err)
	reads := counter.Items() - before

	var got []string
	for _, p := range parts {
		var part live.SnapshotPart
		require.NoError(t, json.Unmarshal(p, &part))
		for _, d := range part.Devices {
			got = append(got, d.DeviceID)
		}
	}
	assert.Equal(t, ids, got, "the snapshot holds every device once, in order")
	pages := int64(len(ids)+999) / 1000
	// The job's META, its set of done batches and its 8 count shards (its exact counts), each
	// page's batches and one batch past the page, two items each (a slim batch's states and its
	// device ids), and the META and the done set once more per page (Devices).
	assert.LessOrEqual(t, reads, 2*int64(len(batches))+4*pages+10, "items read for a snapshot of %d devices in %d batches", len(ids), len(batches))
}
