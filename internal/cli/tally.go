package cli

import (
	"maps"

	"github.com/netauto/netauto/internal/apiwire"
)

// Progress event and message types (docs/websocket.md).
const (
	eventProgress = "bulk_progress"
	eventJobDone  = "job_done"
	msgSnapshot   = "snapshot"
	msgEvents     = "events"
)

// deviceState is what a watcher holds for one device: its status and the seq of the event (or
// snapshot entry) that set it.
type deviceState struct {
	status string
	seq    int64
}

// tally counts a job's devices by the rules of progress contract version 2 (docs/websocket.md,
// "Sequence numbers and counts"): a device's event applies only when its seq is above the one
// held for the device, so duplicates and late arrivals change nothing; the counts are the held
// devices by status, the job's other devices queued; job_done's counts are final.
type tally struct {
	total   int
	devices map[string]deviceState
	// final are the job's counts once it ended (job_done, or the job read as terminal).
	final map[string]int
}

func newTally(total int) *tally {
	return &tally{total: total, devices: map[string]deviceState{}}
}

// device applies a device's state if seq is above the one held for it and reports whether it did.
func (t *tally) device(id, status string, seq int64) bool {
	if id == "" || status == "" {
		return false
	}
	if held, ok := t.devices[id]; ok && seq <= held.seq {
		return false
	}
	t.devices[id] = deviceState{status: status, seq: seq}
	return true
}

// event applies a polled or pushed event and reports whether it changed anything: a
// bulk_progress event by the device rule, a job_done event always (the first time).
func (t *tally) event(ev apiwire.ProgressEvent) bool {
	switch ev.Type {
	case eventProgress:
		return t.device(ev.DeviceID, ev.Status, ev.Seq)
	case eventJobDone:
		if t.final != nil {
			return false
		}
		t.finish(ev.Counts)
		return true
	}
	return false
}

// finish records the job's final counts; nil keeps the devices' count.
func (t *tally) finish(counts map[string]int) {
	if counts != nil {
		t.final = maps.Clone(counts)
	}
}

// counts are the final counts once known, else the held devices by status with the rest of
// the job's devices queued.
func (t *tally) counts() map[string]int {
	if t.final != nil {
		return maps.Clone(t.final)
	}
	out := map[string]int{}
	for _, d := range t.devices {
		out[d.status]++
	}
	if q := t.total - len(t.devices); q > 0 {
		out["queued"] += q
	}
	return out
}

// wsMessage is a message of the WebSocket API (docs/websocket.md): a snapshot part, a bare
// event, or several events of one job.
type wsMessage struct {
	apiwire.ProgressEvent
	// Part and Parts number a snapshot's messages; only part 1 carries Job.
	Part    int                     `json:"part,omitempty"`
	Parts   int                     `json:"parts,omitempty"`
	Job     *apiwire.Job            `json:"job,omitempty"`
	Devices []apiwire.JobDevice     `json:"devices,omitempty"`
	Events  []apiwire.ProgressEvent `json:"events,omitempty"`
}

// message applies a pushed message about jobID and reports whether the job has ended: a
// job_done event, or a snapshot of a job that had already ended (none follows).
func (t *tally) message(m wsMessage, jobID string) bool {
	if m.JobID != "" && m.JobID != jobID {
		return false
	}
	switch m.Type {
	case msgSnapshot:
		if m.Job != nil && t.total == 0 {
			t.total = m.Job.DeviceCount
		}
		for _, d := range m.Devices {
			t.device(d.DeviceID, d.Status, d.Seq)
		}
		if m.Job != nil && terminalJob(m.Job.Status) {
			t.finish(m.Job.Counts) // exact as of the read, and the job can no longer change
			return true
		}
	case msgEvents:
		done := false
		for _, ev := range m.Events {
			t.event(ev)
			done = done || ev.Type == eventJobDone
		}
		return done
	case eventProgress, eventJobDone:
		t.event(m.ProgressEvent)
		return m.Type == eventJobDone
	}
	return false
}
