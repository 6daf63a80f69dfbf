package app_test

import (
	"context"
	"encoding/json"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
)

// TestSchedulerFunctionStartsDueSavedJob runs the scheduler function as deployed (configuration
// from the environment, the sample scheduled event) twice at once at a due time: one job starts,
// requested by the saved job's owner, on the selector's devices, linked to the saved job, and
// its batch is on the bulk queue.
func TestSchedulerFunctionStartsDueSavedJob(t *testing.T) {
	e := newBulkEnv(t, devicesim.Spec{Count: 3, Seed: 31})
	ctx := context.Background()
	cfg := e.schedulerConfig(t)

	store, err := dynamo.NewSavedJobStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.SavedJobsTable])
	require.NoError(t, err)
	reg, err := savedjob.New(store, nil, e.inv)
	require.NoError(t, err)
	base := time.Now().UTC().Truncate(time.Hour)
	reg.Now = func() time.Time { return base.Add(time.Minute) }
	owner := auth.Identity{Subject: "olga@example.com", Role: auth.Operator}
	name, cmd := "every five", "show version"
	sj, err := reg.Create(ctx, savedjob.Input{Name: &name, Command: &cmd, Selector: &savedjob.Selector{DeviceIDs: e.ids},
		Schedule: &savedjob.Schedule{Cron: "*/5 * * * *", Enabled: true}}, owner)
	require.NoError(t, err)
	require.Equal(t, base.Add(5*time.Minute), sj.NextDue)

	now := func() time.Time { return base.Add(5*time.Minute + 20*time.Second) }
	raw, err := os.ReadFile("../../events/schedule-scheduler.json")
	require.NoError(t, err)
	var ev events.EventBridgeEvent
	require.NoError(t, json.Unmarshal(raw, &ev))
	var reps [2]savedjob.TickReport
	var wg sync.WaitGroup
	for i := range reps {
		handler, _, err := app.NewScheduler(ctx, cfg, app.SchedulerOptions{Logger: e.exec.Logger, Now: now})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var herr error
			reps[i], herr = handler(ctx, ev)
			assert.NoError(t, herr)
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, reps[0].Started+reps[1].Started, "one job for the due time: %+v", reps)

	msgs := takeMessages(t, e)
	require.Len(t, msgs, 1, "one batch on the queue")
	j, err := e.jobs.GetJob(ctx, msgs[0].JobID)
	require.NoError(t, err)
	assert.Equal(t, owner.Name(), j.RequestedBy, "the owner is the requester")
	assert.Equal(t, sj.ID, j.SavedJobID)
	assert.Equal(t, len(e.ids), j.DeviceCount)
	assert.NotEqual(t, bulk.JobStatus(""), j.Status)

	got, err := store.Get(ctx, sj.ID)
	require.NoError(t, err)
	assert.Equal(t, base.Add(10*time.Minute), got.NextDue)
}

// schedulerConfig sets the environment the scheduler function reads on the test's stack and
// loads it as the function does.
func (e *bulkEnv) schedulerConfig(t *testing.T) config.Config {
	t.Helper()
	e.st.Setenv(t)
	t.Setenv(config.EnvSecrets, "file:"+e.secrets)
	cfg, err := config.Load(config.Scheduler, os.Getenv)
	require.NoError(t, err)
	return cfg
}
