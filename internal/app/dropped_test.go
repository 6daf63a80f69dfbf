package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

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
	"github.com/netauto/netauto/internal/secrets"
)

// failingDelete is the secret store of saved jobs' answers with deletes that fail (a throttled
// or unreachable Secrets Manager).
type failingDelete struct{ bulk.AnswerStore }

func (failingDelete) DeleteAnswers(context.Context, string) error {
	return errors.New("secrets manager: throttled")
}

// TestDroppedSavedJobAnswersAreSwept: when deleting a saved job's replaced answers fails, and
// again when deleting its last answers with the saved job fails, both keys stay listed in the
// jobs table and the secrets stay in the store; the watchdog function's next sweep deletes
// them and empties the list.
func TestDroppedSavedJobAnswersAreSwept(t *testing.T) {
	e := newBulkEnv(t, devicesim.Spec{Count: 1, Seed: 47})
	ctx := context.Background()
	e.st.Setenv(t)
	t.Setenv(config.EnvSecrets, "file:"+e.secrets)
	sec, err := secrets.NewFileStore(e.secrets)
	require.NoError(t, err)
	answers, err := secrets.NewSavedJobAnswers(sec)
	require.NoError(t, err)
	store, err := dynamo.NewSavedJobStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.SavedJobsTable])
	require.NoError(t, err)
	reg, err := savedjob.New(store, failingDelete{answers}, e.inv)
	require.NoError(t, err)
	reg.Dropped = e.jobs
	owner := auth.Identity{Subject: "a", Email: "admin@example.com", Role: auth.Admin}
	name := "copy"
	sj, err := reg.Create(ctx, savedjob.Input{Name: &name, Selector: &savedjob.Selector{DeviceIDs: e.ids}, Commands: []bulk.Command{
		{Command: "copy scp: flash:", Prompts: []bulk.Prompt{{Expect: "Password:", Answer: "dropped-s3cret", Secret: true}}}}}, owner)
	require.NoError(t, err)
	file := func(key string) string {
		return filepath.Join(e.secrets, "saved-jobs__"+sj.ID+"__"+key+"__answers.json")
	}
	require.FileExists(t, file("v1"))

	sj, err = reg.Update(ctx, sj.ID, savedjob.Input{Commands: []bulk.Command{
		{Command: "copy scp: flash:", Prompts: []bulk.Prompt{{Expect: "Password:", Answer: "newer-s3cret", Secret: true}}}}}, 0, owner)
	require.NoError(t, err, "a failed delete of the old answers is not the change's error")
	_, err = reg.Delete(ctx, sj.ID, 0, owner)
	require.NoError(t, err)
	listed, next, err := e.jobs.Dropped(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, next)
	assert.ElementsMatch(t, []string{sj.ID + "/v1", sj.ID + "/v2"}, listed, "both failed deletes are listed")
	require.FileExists(t, file("v1"), "the delete failed")
	require.FileExists(t, file("v2"), "the delete failed")

	cfg, err := config.Load(config.Watchdog, os.Getenv)
	require.NoError(t, err)
	handler, _, err := app.NewWatchdog(ctx, cfg, app.WatchdogOptions{Logger: e.exec.Logger})
	require.NoError(t, err)
	rep, err := handler(ctx, events.EventBridgeEvent{})
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{AnswersDropped: 2}, rep)
	assert.NoFileExists(t, file("v1"))
	assert.NoFileExists(t, file("v2"))
	listed, _, err = e.jobs.Dropped(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, listed, "the list is empty once they are deleted")

	rep, err = handler(ctx, events.EventBridgeEvent{})
	require.NoError(t, err)
	assert.Equal(t, bulk.SweepReport{}, rep, "nothing left to sweep")
}
