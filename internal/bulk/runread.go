package bulk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// ErrDeviceNotInJob means the job exists but does not include the device.
var ErrDeviceNotInJob = fault.New(fault.NotFound, "", "the job does not include this device")

// RunGetter reads stored runs; run.ErrNotFound when there is none.
type RunGetter interface {
	Get(ctx context.Context, id string) (run.Run, error)
}

// JobDeviceReader reads one device's place in a job: the job and the device's state in its
// batch. It answers ErrJobNotFound for an unknown (or expired) job and ErrDeviceNotInJob for a
// device the job does not include.
type JobDeviceReader interface {
	JobDevice(ctx context.Context, jobID, deviceID string) (Job, DeviceState, error)
}

// SplitRunID splits a run id (RunID) into its job and device. Job ids (NewID) never hold a dot
// and device ids may, so the job is everything before the first dot.
func SplitRunID(id string) (jobID, deviceID string, ok bool) {
	jobID, deviceID, ok = strings.Cut(id, ".")
	if !ok || jobID == "" || deviceID == "" {
		return "", "", false
	}
	return jobID, deviceID, true
}

// PendingRun is the run of a job's device that has no stored run: what its batch says about it
// (queued until an executor takes it, running until the run is first written, or ended without a
// run, e.g. cancelled before it started), with the job's command, requester and creation time.
func PendingRun(j Job, st DeviceState) run.Run {
	r := run.Run{
		ID: RunID(j.ID, st.DeviceID), DeviceID: st.DeviceID, JobID: j.ID, Command: j.Command,
		RequestedBy: j.RequestedBy, Status: st.Status, Reason: st.Reason, OutputDigest: st.OutputDigest, Changed: st.Changed,
		CreatedAt: j.CreatedAt, ExpiresAt: j.ExpiresAt,
	}
	if r.Status == "" {
		r.Status = run.Queued
	}
	if st.Status.Terminal() {
		r.Timings.TotalMS = st.DurationMS
	}
	return r
}

// GetRun returns the run id names as clients see it from the moment the id is handed out: the
// stored run, or, while none is stored, the PendingRun of its job's device. stored reports which
// (a pending run has no output to read). run.ErrNotFound when there is neither a stored run nor
// a job holding the device.
func GetRun(ctx context.Context, runs RunGetter, jobs JobDeviceReader, id string) (r run.Run, stored bool, err error) {
	r, err = runs.Get(ctx, id)
	if err == nil {
		return r, true, nil
	}
	if !errors.Is(err, run.ErrNotFound) {
		return run.Run{}, false, err
	}
	jobID, deviceID, ok := SplitRunID(id)
	if !ok {
		return run.Run{}, false, run.ErrNotFound
	}
	j, st, err := jobs.JobDevice(ctx, jobID, deviceID)
	if errors.Is(err, ErrJobNotFound) || errors.Is(err, ErrDeviceNotInJob) {
		return run.Run{}, false, run.ErrNotFound
	}
	if err != nil {
		return run.Run{}, false, fmt.Errorf("device %s of job %s: %w", deviceID, jobID, err)
	}
	if st.Status != run.Queued {
		// The device has started: its run may have been stored since the first read (a finished
		// run is stored before its batch records the end).
		r, err = runs.Get(ctx, id)
		if err == nil {
			return r, true, nil
		}
		if !errors.Is(err, run.ErrNotFound) {
			return run.Run{}, false, err
		}
	}
	return PendingRun(j, st), false, nil
}
