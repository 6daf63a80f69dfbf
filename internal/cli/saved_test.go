package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/cli"
)

// TestCLISavedJobs drives netauto saved and netauto job rerun against the real API, queue,
// executor and a simulated fleet with one unreachable device.
func TestCLISavedJobs(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 73, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_ios"}, {Platform: "cisco_ios", Fault: devicesim.FaultRefuse}, {Platform: "arista_eos"}}})
	inv := e.importFleet(t)
	var down string
	for _, d := range inv {
		if d.Fault == devicesim.FaultRefuse {
			down = d.ID
		}
	}

	r := e.run(t, cmd{args: []string{"saved", "create", "--name", "ios version", "--platform", "cisco_ios", "--timeout", "10s", "--json", "--", "show", "version"}})
	require.Equal(t, 0, r.code, "create: %s", r.stderr)
	var sj apiwire.SavedJob
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sj), "%s", r.stdout)
	assert.Equal(t, "show version", sj.Command)
	assert.Equal(t, apiwire.Selector{Platform: "cisco_ios"}, sj.Selector)

	r = e.run(t, cmd{args: []string{"saved", "list"}})
	require.Equal(t, 0, r.code, "list: %s", r.stderr)
	assert.Contains(t, r.stdout, sj.ID)
	assert.Contains(t, r.stdout, "platform=cisco_ios")

	r = e.run(t, cmd{args: []string{"saved", "update", sj.ID, "--name", "IOS version", "--tag", "sim_fault", "--platform", "cisco_ios"}})
	require.Equal(t, 0, r.code, "update: %s", r.stderr)
	assert.Contains(t, r.stdout, "IOS version")
	assert.Contains(t, r.stdout, "tag sim_fault AND platform=cisco_ios")
	r = e.run(t, cmd{args: []string{"saved", "update", sj.ID, "--platform", "cisco_ios"}})
	require.Equal(t, 0, r.code, "update back: %s", r.stderr)

	r = e.run(t, cmd{args: []string{"saved", "run", sj.ID}})
	assert.Equal(t, cli.ExitFailed, r.code, "the unreachable device fails the job: %s", r.stderr)
	assert.Contains(t, r.stdout, down)
	jobID := strings.Fields(strings.TrimPrefix(r.stderr[strings.Index(r.stderr, "job "):], "job "))[0]
	jobID = strings.TrimSuffix(jobID, ":")

	r = e.run(t, cmd{args: []string{"job", "show", jobID}})
	require.Equal(t, 0, r.code, "show: %s", r.stderr)
	assert.Contains(t, r.stdout, "saved_job:")

	r = e.run(t, cmd{args: []string{"job", "rerun", jobID}})
	assert.Equal(t, cli.ExitError, r.code, "no --status")
	r = e.run(t, cmd{args: []string{"job", "rerun", jobID, "--status", "timed_out"}})
	assert.Equal(t, cli.ExitError, r.code)
	assert.Contains(t, r.stderr, "no_devices")
	r = e.run(t, cmd{args: []string{"job", "rerun", jobID, "--status", "unreachable", "--json"}})
	assert.Equal(t, cli.ExitFailed, r.code, "the re-run fails again: %s", r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, "one device, then the job: %s", r.stdout)
	var d apiwire.JobDevice
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &d))
	assert.Equal(t, down, d.DeviceID, "exactly the unreachable device")
	var rerun apiwire.Job
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &rerun))
	assert.Equal(t, jobID, rerun.RerunOf)

	r = e.run(t, cmd{args: []string{"job", "show", jobID, "--json"}})
	require.Equal(t, 0, r.code)
	var old apiwire.Job
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &old))
	assert.Equal(t, []string{rerun.JobID}, old.Reruns)

	r = e.run(t, cmd{args: []string{"saved", "delete", sj.ID}})
	require.Equal(t, 0, r.code, "delete: %s", r.stderr)
	r = e.run(t, cmd{args: []string{"saved", "show", sj.ID}})
	assert.Equal(t, cli.ExitError, r.code)
	assert.Contains(t, r.stderr, "not_found")
}

// TestCLISavedJobSchedule sets, pauses and resumes a saved job's schedule with netauto saved
// update, against the real API.
func TestCLISavedJobSchedule(t *testing.T) {
	t.Parallel()
	e := newStack(t, devicesim.Spec{Seed: 74, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}}})
	r := e.run(t, cmd{args: []string{"saved", "create", "--name", "nightly", "--platform", "cisco_ios", "--cron", "30 2 * * *", "--time-zone", "Europe/Berlin", "--json", "--", "show", "version"}})
	require.Equal(t, 0, r.code, "create: %s", r.stderr)
	var sj apiwire.SavedJob
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &sj), "%s", r.stdout)
	require.NotNil(t, sj.Schedule)
	assert.Equal(t, apiwire.Schedule{Cron: "30 2 * * *", TimeZone: "Europe/Berlin", Enabled: true}, *sj.Schedule)
	assert.Len(t, sj.NextRuns, 5)

	cases := []struct {
		name    string
		args    []string
		code    int
		want    []string
		wantErr string
	}{
		{name: "pause", args: []string{"--pause"}, want: []string{"schedule:", "30 2 * * * Europe/Berlin (paused)"}},
		{name: "new cron keeps the zone and the pause", args: []string{"--cron", "@hourly"}, want: []string{"@hourly Europe/Berlin (paused)"}},
		{name: "enable shows the next runs", args: []string{"--enable", "--time-zone", "UTC"}, want: []string{"@hourly UTC (enabled)", "next_runs[4]:"}},
		{name: "unknown zone", args: []string{"--time-zone", "Mars/Olympus"}, code: cli.ExitError, wantErr: "schedule.time_zone"},
		{name: "enable and pause", args: []string{"--enable", "--pause"}, code: cli.ExitError, wantErr: "none of the others can be"},
	}
	for _, tc := range cases {
		r := e.run(t, cmd{args: append([]string{"saved", "update", sj.ID}, tc.args...)})
		require.Equal(t, tc.code, r.code, "%s: %s %s", tc.name, r.stdout, r.stderr)
		for _, w := range tc.want {
			assert.Contains(t, r.stdout, w, tc.name)
		}
		if tc.wantErr != "" {
			assert.Contains(t, r.stderr, tc.wantErr, tc.name)
		}
	}
	r = e.run(t, cmd{args: []string{"saved", "list"}})
	require.Equal(t, 0, r.code, "list: %s", r.stderr)
	assert.Contains(t, r.stdout, "@hourly UTC (enabled)")
}
