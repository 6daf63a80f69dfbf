package templatecheck_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/resources"
)

// TestScheduledFunctions holds the template entries of the functions on EventBridge rules to what
// the code assumes: the watchdog's rate is resources.WatchdogSchedule (the period it waits after
// a re-send), the scheduler's resources.SchedulerSchedule (its late grace counts on a tick a
// minute), and each logs to a log group of its own that outlives the stack.
func TestScheduledFunctions(t *testing.T) {
	tpl, err := templatecheck.ParseFile(filepath.Join(repoRoot(t), "template.yaml"))
	require.NoError(t, err)
	cases := []struct{ name, id, schedule string }{
		{"watchdog", "WatchdogFunction", resources.WatchdogSchedule},
		{"scheduler", "SchedulerFunction", resources.SchedulerSchedule},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fn, ok := tpl.Resources[tc.id]
			require.True(t, ok, "template.yaml has no %s", tc.id)
			events, _ := fn.Properties["Events"].(map[string]any)
			var schedules []any
			for _, ev := range events {
				e, _ := ev.(map[string]any)
				if e["Type"] == "Schedule" {
					props, _ := e["Properties"].(map[string]any)
					schedules = append(schedules, props["Schedule"])
				}
			}
			assert.Equal(t, []any{tc.schedule}, schedules, "the %s's EventBridge schedules", tc.name)

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
				if id == tc.id || r.Type != "AWS::Serverless::Function" {
					continue
				}
				other, _ := r.Properties["LoggingConfig"].(map[string]any)
				assert.NotEqual(t, logging["LogGroup"], other["LogGroup"], "%s shares the %s's log group", id, tc.name)
			}
		})
	}
}
