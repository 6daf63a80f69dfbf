package templatecheck_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/resources"
)

// TestWatchdogFunction holds the watchdog's template entry to what the code assumes: its rule's
// rate is resources.WatchdogSchedule (the period the watchdog waits after a re-send), and it logs
// to a log group of its own that outlives the stack.
func TestWatchdogFunction(t *testing.T) {
	tpl, err := templatecheck.ParseFile(filepath.Join(repoRoot(t), "template.yaml"))
	require.NoError(t, err)
	fn, ok := tpl.Resources["WatchdogFunction"]
	require.True(t, ok, "template.yaml has no WatchdogFunction")
	events, _ := fn.Properties["Events"].(map[string]any)
	var schedules []any
	for _, ev := range events {
		e, _ := ev.(map[string]any)
		if e["Type"] == "Schedule" {
			props, _ := e["Properties"].(map[string]any)
			schedules = append(schedules, props["Schedule"])
		}
	}
	assert.Equal(t, []any{resources.WatchdogSchedule}, schedules, "the watchdog's EventBridge schedules")

	logging, _ := fn.Properties["LoggingConfig"].(map[string]any)
	ref, _ := logging["LogGroup"].(map[string]any)
	group, _ := ref["Ref"].(string)
	require.NotEmpty(t, group, "LoggingConfig.LogGroup is not a !Ref")
	lg, ok := tpl.Resources[group]
	require.True(t, ok, "log group %s", group)
	assert.Equal(t, "AWS::Logs::LogGroup", lg.Type)
	assert.Equal(t, "Retain", lg.Raw["DeletionPolicy"])
	assert.Equal(t, "Retain", lg.Raw["UpdateReplacePolicy"])
	for id, r := range tpl.Resources {
		if id == "WatchdogFunction" || r.Type != "AWS::Serverless::Function" {
			continue
		}
		other, _ := r.Properties["LoggingConfig"].(map[string]any)
		assert.NotEqual(t, logging["LogGroup"], other["LogGroup"], "%s shares the watchdog's log group", id)
	}
}
