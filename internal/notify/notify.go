// Package notify defines the events NetAuto sends when something happens that people outside it
// want to know about: a job finished, a job's output changed on some devices, a device or jump host
// presented an SSH host key other than its pinned one. The same events go to EventBridge (source
// "netauto", one detail type each) and to webhooks; their detail is versioned JSON whose schemas
// are docs/events/*.schema.json. It imports no AWS SDK: delivery is a Publisher.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Source is the EventBridge source of every NetAuto event.
const Source = "netauto"

// Detail types, one per event.
const (
	DetailTypeJobFinished     = "Job Finished"
	DetailTypeOutputChanged   = "Output Changed"
	DetailTypeHostKeyMismatch = "Host Key Mismatch"
)

// DetailTypes are the detail types NetAuto sends, in a fixed order.
func DetailTypes() []string {
	return []string{DetailTypeJobFinished, DetailTypeOutputChanged, DetailTypeHostKeyMismatch}
}

// Version is the detail version every event carries; it grows only with a change a consumer
// could trip over (a field removed or its meaning changed), never with an added field.
const Version = 1

// MaxListed caps the devices an event lists (failed or changed); the rest are counted and the
// list is marked truncated, so an event stays far below EventBridge's 256 KB entry limit.
const MaxListed = 100

// Event is one event to send: its detail type, when it happened and its detail (one of
// JobFinished, OutputChanged, HostKeyMismatch).
type Event struct {
	DetailType string
	Time       time.Time
	Detail     any
}

// DetailJSON returns the event's detail as JSON.
func (e Event) DetailJSON() ([]byte, error) {
	b, err := json.Marshal(e.Detail)
	if err != nil {
		return nil, fmt.Errorf("marshal %s detail: %w", e.DetailType, err)
	}
	return b, nil
}

// Publisher sends events. Emitters treat it as best effort: a failure is logged and counted,
// never allowed to fail or stall a job.
type Publisher interface {
	Publish(ctx context.Context, events ...Event) error
}

// Nop is a Publisher that drops every event (publishing switched off).
type Nop struct{}

// Publish drops events.
func (Nop) Publish(context.Context, ...Event) error { return nil }

// Fanout is a Publisher that hands every event to each of its publishers in turn, all of them
// even when one fails, and returns their errors joined.
type Fanout []Publisher

// Publish sends events to every publisher of f.
func (f Fanout) Publish(ctx context.Context, events ...Event) error {
	var errs []error
	for _, p := range f {
		if p == nil {
			continue
		}
		if err := p.Publish(ctx, events...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// JobUIPath is the UI's page of a job, relative to the UI's origin.
func JobUIPath(jobID string) string { return "/?job=" + jobID }

// JobFinished is the detail of a "Job Finished" event: sent once per job when its last device
// reaches a terminal status (never once per device).
type JobFinished struct {
	Version int    `json:"version"`
	JobID   string `json:"job_id"`
	// Status is the job's terminal status (completed, stopped, cancelled, failed).
	Status      string `json:"status"`
	RequestedBy string `json:"requested_by"`
	SavedJobID  string `json:"saved_job_id,omitempty"`
	// Command is the job's command, or its sequence's summary ("first (+N more)").
	Command    string    `json:"command"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Counts are the job's devices by run status.
	Counts map[string]int `json:"counts"`
	// Failed are the devices that did not succeed, at most MaxListed of them.
	Failed          []FailedDevice `json:"failed"`
	FailedTruncated bool           `json:"failed_truncated"`
	UIPath          string         `json:"ui_path"`
}

// FailedDevice is a device of a job that did not succeed.
type FailedDevice struct {
	DeviceID string `json:"device_id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Reason   string `json:"reason"`
}

// OutputChanged is the detail of an "Output Changed" event: sent once per job that has at least
// one device whose output differs from its previous run of the same command.
type OutputChanged struct {
	Version      int    `json:"version"`
	JobID        string `json:"job_id"`
	Command      string `json:"command"`
	ChangedCount int    `json:"changed_count"`
	// Changed are the changed devices, at most MaxListed of them.
	Changed          []ChangedDevice `json:"changed"`
	ChangedTruncated bool            `json:"changed_truncated"`
	UIPath           string          `json:"ui_path"`
}

// ChangedDevice is a device whose output changed: its run and the run it was compared with.
type ChangedDevice struct {
	DeviceID      string `json:"device_id"`
	Name          string `json:"name"`
	RunID         string `json:"run_id"`
	PreviousRunID string `json:"previous_run_id"`
}

// Host key mismatch kinds: what presented the key.
const (
	KindDevice   = "device"
	KindJumpHost = "jump_host"
)

// HostKeyMismatch is the detail of a "Host Key Mismatch" event: a device or jump host presented
// an SSH host key other than its pinned one. Sent once per job and target.
type HostKeyMismatch struct {
	Version int `json:"version"`
	// Kind is KindDevice or KindJumpHost; ID and Name are that device's or jump host's.
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Name string `json:"name"`
	Host string `json:"host"`
	Port int    `json:"port"`
	// PresentedFingerprint and PinnedFingerprint are SHA256 fingerprints ("SHA256:...").
	PresentedFingerprint string    `json:"presented_fingerprint"`
	PinnedFingerprint    string    `json:"pinned_fingerprint"`
	JobID                string    `json:"job_id,omitempty"`
	RunID                string    `json:"run_id,omitempty"`
	SeenAt               time.Time `json:"seen_at"`
}

// NewJobFinished returns the event of a finished job, its version set, its times in UTC and its
// failed devices capped at MaxListed.
func NewJobFinished(d JobFinished) Event {
	d.Version = Version
	d.StartedAt, d.FinishedAt = d.StartedAt.UTC(), d.FinishedAt.UTC()
	if d.Counts == nil {
		d.Counts = map[string]int{}
	}
	d.Failed, d.FailedTruncated = capList(d.Failed, d.FailedTruncated)
	if d.UIPath == "" {
		d.UIPath = JobUIPath(d.JobID)
	}
	return Event{DetailType: DetailTypeJobFinished, Time: d.FinishedAt, Detail: d}
}

// NewOutputChanged returns the event of a job whose output changed on some devices, its version
// set and its changed devices capped at MaxListed (ChangedCount stays the full count; when zero
// it is the number of devices listed).
func NewOutputChanged(d OutputChanged, at time.Time) Event {
	d.Version = Version
	if d.ChangedCount == 0 {
		d.ChangedCount = len(d.Changed)
	}
	d.Changed, d.ChangedTruncated = capList(d.Changed, d.ChangedTruncated)
	if d.UIPath == "" {
		d.UIPath = JobUIPath(d.JobID)
	}
	return Event{DetailType: DetailTypeOutputChanged, Time: at.UTC(), Detail: d}
}

// NewHostKeyMismatch returns the event of a host key mismatch, its version set and its time in
// UTC.
func NewHostKeyMismatch(d HostKeyMismatch) Event {
	d.Version = Version
	d.SeenAt = d.SeenAt.UTC()
	return Event{DetailType: DetailTypeHostKeyMismatch, Time: d.SeenAt, Detail: d}
}

// capList keeps at most MaxListed items of list, never nil (the schemas want an array), and
// reports whether any were dropped.
func capList[T any](list []T, truncated bool) ([]T, bool) {
	if len(list) > MaxListed {
		return list[:MaxListed:MaxListed], true
	}
	if list == nil {
		list = []T{}
	}
	return list, truncated
}
