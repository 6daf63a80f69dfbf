package dynamo

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/bulktest"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// newJobStore returns a job store over a jobs table of its own on DynamoDB Local (newTable).
func newJobStore(t *testing.T) *JobStore {
	t.Helper()
	db, name := newTable(t, resources.JobsTable)
	s, err := NewJobStore(db, name)
	require.NoError(t, err)
	return s
}

func TestJobStoreContract(t *testing.T) {
	bulktest.JobStoreContract(t, newJobStore(t))
}

func createJob(t *testing.T, s *JobStore, batches [][]string, created time.Time) bulk.Job {
	t.Helper()
	n := 0
	for _, ids := range batches {
		n += len(ids)
	}
	j := bulk.Job{ID: bulk.NewID(created), Command: "show clock", RequestedBy: "op@example.com", DeviceCount: n, Batches: len(batches),
		Status: bulk.JobQueued, CreatedAt: created, Counts: map[run.Status]int{run.Queued: n}}
	require.NoError(t, s.CreateJob(context.Background(), j, batches, len(batches)), "create job %s", j.ID)
	return j
}

func TestJobStoreEvents(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	j := createJob(t, s, [][]string{{"a", "b", "c"}}, time.Now().UTC())
	// Three groups of events, logged as the state machine logs them: each group in one item.
	var logged []bulk.Event
	for _, group := range [][]bulk.Change{
		{{DeviceID: "a", From: run.Queued, To: run.Running}, {DeviceID: "b", From: run.Queued, To: run.Running}},
		{{DeviceID: "a", From: run.Running, To: run.Succeeded}, {DeviceID: "b", From: run.Running, To: run.Failed, Reason: "exit_status"}},
		{{DeviceID: "c", From: run.Queued, To: run.Cancelled, Reason: "cancelled"}},
	} {
		events, err := s.Record(ctx, j.ID, 0, group)
		require.NoError(t, err)
		require.NoError(t, s.LogEvents(ctx, j.ID, events, time.Now().Add(time.Hour)))
		logged = append(logged, events...)
	}
	tests := []struct {
		name  string
		since int64
		limit int
		want  []bulk.Event
	}{
		{name: "all", since: 0, limit: 100, want: logged},
		{name: "after the first", since: logged[0].Seq, limit: 100, want: logged[1:]},
		{name: "mid-group, limited", since: logged[2].Seq, limit: 1, want: logged[3:4]},
		{name: "none after the last", since: logged[4].Seq, limit: 100, want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := s.Events(ctx, j.ID, tc.since, tc.limit)
			require.NoError(t, err)
			var got []bulk.Event
			for _, r := range raw {
				var e bulk.Event
				require.NoError(t, json.Unmarshal(r, &e))
				got = append(got, e)
			}
			require.Len(t, got, len(tc.want))
			for i := range got {
				assert.Equal(t, tc.want[i].Seq, got[i].Seq, "event %d seq", i)
				assert.Equal(t, tc.want[i].DeviceID, got[i].DeviceID, "event %d device", i)
				assert.Equal(t, tc.want[i].Status, got[i].Status, "event %d status", i)
				assert.Equal(t, tc.want[i].Reason, got[i].Reason, "event %d reason", i)
			}
		})
	}
}

func TestJobStoreJobDevice(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	ids := make([]string, 7)
	for i := range ids {
		ids[i] = "sw-" + string(rune('a'+i)) + ".core.example"
	}
	split := createJob(t, s, bulk.Split(ids, 3), time.Now().UTC())
	single := createJob(t, s, [][]string{{"r1"}}, time.Now().UTC())
	uneven := createJob(t, s, [][]string{{"x"}, {"y", "z"}}, time.Now().UTC()) // no locator: the batches are read
	tests := []struct {
		name      string
		job       bulk.Job
		device    string
		wantBatch int
		wantErr   error
	}{
		{name: "first batch, by the locator", job: split, device: ids[1], wantBatch: 0},
		{name: "last batch, by the locator", job: split, device: ids[6], wantBatch: 2},
		{name: "one-batch job", job: single, device: "r1", wantBatch: 0},
		{name: "job without a locator", job: uneven, device: "z", wantBatch: 1},
		{name: "device not in the job", job: split, device: "r1", wantErr: bulk.ErrDeviceNotInJob},
		{name: "unknown job", job: bulk.Job{ID: bulk.NewID(time.Now())}, device: "r1", wantErr: bulk.ErrJobNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, st, err := s.JobDevice(ctx, tc.job.ID, tc.device)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.job.ID, j.ID, "job")
			assert.Equal(t, bulk.DeviceState{DeviceID: tc.device, Status: run.Queued, RunID: bulk.RunID(tc.job.ID, tc.device), Batch: tc.wantBatch}, st)
		})
	}
}

func TestJobStoreListJobs(t *testing.T) {
	ctx := context.Background()
	s := newJobStore(t)
	base := time.Now().UTC().Add(-time.Hour)
	var want []string
	for i := range 5 {
		j := createJob(t, s, [][]string{{"r1"}}, base.Add(time.Duration(i)*time.Minute))
		want = append([]string{j.ID}, want...) // newest first
	}
	var got []string
	cursor := ""
	for range 10 {
		page, next, err := s.ListJobs(ctx, cursor, 2)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page), 2, "page size")
		for _, j := range page {
			got = append(got, j.ID)
			assert.Equal(t, bulk.JobQueued, j.Status, "job %s", j.ID)
			assert.Equal(t, 1, j.DeviceCount, "job %s", j.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, want, got, "jobs newest first")
	_, _, err := s.ListJobs(ctx, "not-a-cursor", 2)
	require.ErrorIs(t, err, fault.ErrBadCursor)
}
