package bulk_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

// fakeRuns answers Get from the runs it holds; after, when set, is stored once the first Get
// has answered (a run written between two reads).
type fakeRuns struct {
	runs  map[string]run.Run
	after *run.Run
	err   error
	gets  int
}

func (f *fakeRuns) Get(_ context.Context, id string) (run.Run, error) {
	f.gets++
	if f.err != nil {
		return run.Run{}, f.err
	}
	r, ok := f.runs[id]
	if f.after != nil && f.gets == 1 {
		defer func() { f.runs[f.after.ID] = *f.after }()
	}
	if !ok {
		return run.Run{}, run.ErrNotFound
	}
	return r, nil
}

// fakeJobDevices holds one job and its devices' states.
type fakeJobDevices struct {
	job    bulk.Job
	states map[string]bulk.DeviceState
	err    error
	calls  int
}

func (f *fakeJobDevices) JobDevice(_ context.Context, jobID, deviceID string) (bulk.Job, bulk.DeviceState, error) {
	f.calls++
	if f.err != nil {
		return bulk.Job{}, bulk.DeviceState{}, f.err
	}
	if jobID != f.job.ID {
		return bulk.Job{}, bulk.DeviceState{}, bulk.ErrJobNotFound
	}
	st, ok := f.states[deviceID]
	if !ok {
		return bulk.Job{}, bulk.DeviceState{}, bulk.ErrDeviceNotInJob
	}
	return f.job, st, nil
}

func TestSplitRunID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, id, job, dev string
		ok                 bool
	}{
		{name: "plain", id: "j1.r1", job: "j1", dev: "r1", ok: true},
		{name: "device with dots", id: "j1.core.sw-1.example", job: "j1", dev: "core.sw-1.example", ok: true},
		{name: "no dot", id: "j1"},
		{name: "no device", id: "j1."},
		{name: "no job", id: ".r1"},
		{name: "empty", id: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, dev, ok := bulk.SplitRunID(tc.id)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.job, job)
			assert.Equal(t, tc.dev, dev)
		})
	}
	// Job ids never hold a dot, so splitting a run id gives back its job and device.
	id := bulk.NewID(time.Now())
	job, dev, ok := bulk.SplitRunID(bulk.RunID(id, "a.b"))
	require.True(t, ok)
	assert.Equal(t, id, job)
	assert.Equal(t, "a.b", dev)
}

func TestGetRun(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	job := bulk.Job{ID: "j1", Command: "show clock", RequestedBy: "ops@example.com", CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	stored := run.Run{ID: "j1.r1", DeviceID: "r1", JobID: "j1", Command: "show clock", Status: run.Succeeded, Bytes: 42, Attempt: 1}
	states := map[string]bulk.DeviceState{
		"r1":      {DeviceID: "r1", Status: run.Succeeded, DurationMS: 90},
		"r2":      {DeviceID: "r2", Status: run.Queued},
		"core.r3": {DeviceID: "core.r3", Status: run.Queued},
		"r4":      {DeviceID: "r4", Status: run.Running},
		"r5":      {DeviceID: "r5", Status: run.Cancelled, Reason: "cancelled"},
	}
	pending := func(dev string, st run.Status, reason string) run.Run {
		return run.Run{ID: "j1." + dev, DeviceID: dev, JobID: "j1", Command: "show clock", RequestedBy: "ops@example.com",
			Status: st, Reason: reason, CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
	}
	storeErr := errors.New("throttled")
	for _, tc := range []struct {
		name       string
		id         string
		runs       map[string]run.Run
		after      *run.Run
		runsErr    error
		jobsErr    error
		want       run.Run
		wantStored bool
		wantErr    error
		wantJobs   int
	}{
		{name: "stored run", id: "j1.r1", runs: map[string]run.Run{"j1.r1": stored}, want: stored, wantStored: true},
		{name: "queued device", id: "j1.r2", want: pending("r2", run.Queued, ""), wantJobs: 1},
		{name: "queued device with dots", id: "j1.core.r3", want: pending("core.r3", run.Queued, ""), wantJobs: 1},
		{name: "running device not written yet", id: "j1.r4", want: pending("r4", run.Running, ""), wantJobs: 1},
		{name: "device cancelled before it ran", id: "j1.r5", want: pending("r5", run.Cancelled, "cancelled"), wantJobs: 1},
		{
			name: "run stored between the reads", id: "j1.r4",
			after: &run.Run{ID: "j1.r4", DeviceID: "r4", JobID: "j1", Status: run.Running, Attempt: 1},
			want:  run.Run{ID: "j1.r4", DeviceID: "r4", JobID: "j1", Status: run.Running, Attempt: 1}, wantStored: true, wantJobs: 1,
		},
		{name: "unknown job", id: "j2.r2", wantErr: run.ErrNotFound, wantJobs: 1},
		{name: "device not in job", id: "j1.r9", wantErr: run.ErrNotFound, wantJobs: 1},
		{name: "not a run id", id: "j1", wantErr: run.ErrNotFound},
		{name: "runs store error", id: "j1.r2", runsErr: storeErr, wantErr: storeErr},
		{name: "jobs store error", id: "j1.r2", jobsErr: storeErr, wantErr: storeErr, wantJobs: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runs := &fakeRuns{runs: map[string]run.Run{}, after: tc.after, err: tc.runsErr}
			for k, v := range tc.runs {
				runs.runs[k] = v
			}
			jobs := &fakeJobDevices{job: job, states: states, err: tc.jobsErr}
			got, gotStored, err := bulk.GetRun(context.Background(), runs, jobs, tc.id)
			assert.Equal(t, tc.wantJobs, jobs.calls, "job reads")
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantStored, gotStored)
		})
	}
}
