package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/cognito"
	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
)

const testPool = "eu-west-1_Local1"

// startIdP serves the Cognito stand-in and points the SDK's Cognito client at it, one attempt per
// call (the SDK's retries would only slow the provider-down case).
func startIdP(t *testing.T) *cognito.Server {
	t.Helper()
	idp := cognito.New(testPool)
	hs := httptest.NewServer(idp)
	t.Cleanup(hs.Close)
	t.Setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", hs.URL)
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv(config.EnvUserPoolID, testPool)
	return idp
}

// TestSchedulerAsksTheIdentityProvider runs the scheduler function as deployed with the user pool
// configured: while the provider is down nothing is paused, claimed or moved on; once it answers,
// the due time starts for the owner it still allows, and the schedules of a disabled, a demoted
// and a deleted owner are paused with their reasons, visible on the saved job.
func TestSchedulerAsksTheIdentityProvider(t *testing.T) {
	e := newBulkEnv(t, devicesim.Spec{Count: 2, Seed: 41})
	ctx := context.Background()
	idp := startIdP(t)
	cfg := e.schedulerConfig(t)
	require.Equal(t, testPool, cfg.UserPoolID)

	store, err := dynamo.NewSavedJobStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.SavedJobsTable])
	require.NoError(t, err)
	reg, err := savedjob.New(store, nil, e.inv)
	require.NoError(t, err)
	base := time.Now().UTC().Truncate(time.Hour)
	reg.Now = func() time.Time { return base.Add(time.Minute) }
	owners := map[string]string{} // saved job id → what happens to its owner
	for i, who := range []string{"stays", "disabled", "demoted", "deleted"} {
		email := who + "@example.com"
		idp.Put(cognito.User{Username: "u-" + who, Email: email, Enabled: true, Groups: []string{"operator"}})
		name, cmd := "job of "+who, "show version"
		sj, err := reg.Create(ctx, savedjob.Input{Name: &name, Command: &cmd, Selector: &savedjob.Selector{DeviceIDs: e.ids[i%2 : i%2+1]},
			Schedule: &savedjob.Schedule{Cron: "*/5 * * * *", Enabled: true}}, auth.Identity{Subject: "u-" + who, Email: email, Role: auth.Operator})
		require.NoError(t, err)
		owners[sj.ID] = who
	}
	idp.SetEnabled("disabled@example.com", false)
	idp.SetGroups("demoted@example.com", "viewer", "operator:elsewhere")
	idp.Delete("deleted@example.com")

	clock := base.Add(5*time.Minute + 10*time.Second)
	handler, _, err := app.NewScheduler(ctx, cfg, app.SchedulerOptions{Logger: e.exec.Logger, Now: func() time.Time { return clock }})
	require.NoError(t, err)

	idp.SetDown(true)
	rep, err := handler(ctx, events.EventBridgeEvent{})
	require.NoError(t, err)
	assert.Equal(t, savedjob.TickReport{Due: 4, Retried: 4}, rep, "the provider is down: nothing is decided")
	for id := range owners {
		got, err := store.Get(ctx, id)
		require.NoError(t, err)
		assert.True(t, got.Schedule.Enabled, owners[id])
		assert.Empty(t, got.Schedule.PausedReason, owners[id])
		assert.Equal(t, base.Add(5*time.Minute), got.NextDue, "%s: the due time waits for the next fire", owners[id])
	}
	assert.Empty(t, takeMessages(t, e), "no job started")

	idp.SetDown(false)
	clock = base.Add(6*time.Minute + 10*time.Second) // the next fire, within the late grace
	rep, err = handler(ctx, events.EventBridgeEvent{})
	require.NoError(t, err)
	assert.Equal(t, savedjob.TickReport{Due: 4, Started: 1, Paused: 3}, rep)
	want := map[string]string{"stays": "", "disabled": savedjob.ReasonOwnerDisabled, "demoted": savedjob.ReasonOwnerDemoted, "deleted": savedjob.ReasonOwnerDeleted}
	for id, who := range owners {
		got, err := store.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want[who], got.Schedule.PausedReason, who)
		assert.Equal(t, who == "stays", got.Schedule.Enabled, who)
	}
	msgs := takeMessages(t, e)
	require.Len(t, msgs, 1, "one job: the owner who still may")
	j, err := e.jobs.GetJob(ctx, msgs[0].JobID)
	require.NoError(t, err)
	assert.Equal(t, "stays@example.com", j.RequestedBy)
}

// TestRunNowAsksTheIdentityProvider: POST /v1/saved-jobs/{id}/run asks the provider about the
// owner, also when an admin starts it: a disabled owner's saved job is refused 403 with the reason
// as the code, and a provider that cannot be asked is 503, nothing started either way.
func TestRunNowAsksTheIdentityProvider(t *testing.T) {
	e := newBulkEnv(t, devicesim.Spec{Count: 1, Seed: 43})
	e.st.Setenv(t)
	idp := startIdP(t)
	awsCfg, err := app.AWSConfig(context.Background())
	require.NoError(t, err)
	c := e.serveAPIWith(t, testPool, awsCfg)
	idp.Put(cognito.User{Username: "operator-user", Email: "operator@example.com", Enabled: true, Groups: []string{"operator"}})

	var sj apiwire.SavedJob
	require.Equal(t, http.StatusCreated, c.do(auth.Operator, http.MethodPost, "/v1/saved-jobs", map[string]any{
		"name": "now", "command": "show version", "options": jobOptions, "selector": map[string]any{"device_ids": e.ids}}, &sj))
	run := "/v1/saved-jobs/" + sj.ID + "/run"
	var acc apiwire.BulkAccepted
	require.Equal(t, http.StatusAccepted, c.do(auth.Operator, http.MethodPost, run, nil, &acc), "an enabled owner starts it")
	require.Len(t, takeMessages(t, e), 1)

	idp.SetEnabled("operator@example.com", false)
	for _, role := range []auth.Role{auth.Operator, auth.Admin} {
		status, eb := c.refusal(role, run)
		require.Equal(t, http.StatusForbidden, status, role)
		assert.Equal(t, savedjob.ReasonOwnerDisabled, eb.Code, role)
		assert.Contains(t, eb.Message, "operator@example.com is disabled", role)
	}
	idp.SetDown(true)
	status, eb := c.refusal(auth.Operator, run)
	require.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "unavailable", eb.Code)
	assert.Empty(t, takeMessages(t, e), "nothing started")
}

// refusal POSTs to path as role and returns the status and the error body.
func (c *apiClient) refusal(role auth.Role, path string) (int, api.Error) {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, nil)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.tokens[role])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	var eb struct{ Error api.Error }
	require.NoError(c.t, json.NewDecoder(resp.Body).Decode(&eb))
	return resp.StatusCode, eb.Error
}
