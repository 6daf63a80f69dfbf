package templatecheck_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/resources"
)

// TestSchedulerFunction holds the scheduler's template entry to what the code assumes: one rule
// at resources.SchedulerSchedule (the late grace counts on a tick a minute), a log group of its
// own, and no write to the saved jobs table beyond put and update (claims, next due times).
func TestSchedulerFunction(t *testing.T) {
	tpl, err := templatecheck.ParseFile(filepath.Join(repoRoot(t), "template.yaml"))
	require.NoError(t, err)
	fn, ok := tpl.Resources["SchedulerFunction"]
	require.True(t, ok, "template.yaml has no SchedulerFunction")
	events, _ := fn.Properties["Events"].(map[string]any)
	var schedules []any
	for _, ev := range events {
		e, _ := ev.(map[string]any)
		if e["Type"] == "Schedule" {
			props, _ := e["Properties"].(map[string]any)
			schedules = append(schedules, props["Schedule"])
		}
	}
	assert.Equal(t, []any{resources.SchedulerSchedule}, schedules, "the scheduler's EventBridge schedules")

	logging, _ := fn.Properties["LoggingConfig"].(map[string]any)
	ref, _ := logging["LogGroup"].(map[string]any)
	group, _ := ref["Ref"].(string)
	require.NotEmpty(t, group, "LoggingConfig.LogGroup is not a !Ref")
	lg, ok := tpl.Resources[group]
	require.True(t, ok, "log group %s", group)
	assert.Equal(t, "Retain", lg.Raw["DeletionPolicy"])
	for id, r := range tpl.Resources {
		if id == "SchedulerFunction" || r.Type != "AWS::Serverless::Function" {
			continue
		}
		other, _ := r.Properties["LoggingConfig"].(map[string]any)
		assert.NotEqual(t, logging["LogGroup"], other["LogGroup"], "%s shares the scheduler's log group", id)
	}

	policies, _ := fn.Properties["Policies"].([]any)
	for _, p := range policies {
		pm, _ := p.(map[string]any)
		for k := range pm {
			assert.NotContains(t, k, "CrudPolicy", "the scheduler gets named actions, not a CRUD policy template")
		}
	}
}
