package apiwire

import "time"

// Selector chooses a saved job's devices when it starts; its terms combine with AND and at least
// one is given.
type Selector struct {
	DeviceIDs []string          `json:"device_ids,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	Site      string            `json:"site,omitempty"`
	Platform  string            `json:"platform,omitempty"`
}

// SavedJob is a saved job as the API returns it: its commands without secret answers.
type SavedJob struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Command  string        `json:"command"`
	Commands []CommandItem `json:"commands,omitempty"`
	Options  BulkOptions   `json:"options"`
	Selector Selector      `json:"selector"`
	// Owner is who saved it: its jobs run as their requester, with OwnerRoles, the roles they
	// held when they last saved it.
	Owner      string      `json:"owner"`
	OwnerRoles []RoleGrant `json:"owner_roles"`
	// Sites are the sites a caller needs a role on to see it (none: everywhere).
	Sites []string `json:"sites,omitempty"`
	// Schedule is its cron schedule, if it has one; NextRuns its next 5 due times while enabled.
	Schedule  *Schedule   `json:"schedule,omitempty"`
	NextRuns  []time.Time `json:"next_runs,omitempty"`
	Version   int64       `json:"version"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// SavedJobInput is the body of POST /v1/saved-jobs: exactly one of command and commands, as
// POST /v1/bulk takes them.
type SavedJobInput struct {
	Name     string        `json:"name"`
	Command  string        `json:"command,omitempty"`
	Commands []CommandItem `json:"commands,omitempty"`
	Options  BulkOptions   `json:"options,omitzero"`
	Selector *Selector     `json:"selector"`
	Schedule *Schedule     `json:"schedule,omitempty"`
}

// Schedule runs a saved job on a 5-field cron or @daily/@hourly in an IANA time zone (default
// UTC) while enabled. PausedReason (read-only) says why the system paused it.
type Schedule struct {
	Cron         string `json:"cron"`
	TimeZone     string `json:"time_zone,omitempty"`
	Enabled      bool   `json:"enabled"`
	PausedReason string `json:"paused_reason,omitempty"`
}

// SavedJobPatch is the body of PATCH /v1/saved-jobs/{id}: fields left out stay; command or
// commands replace the sequence whole (secret answers given again); selector replaces the whole
// selector.
type SavedJobPatch struct {
	Name     *string       `json:"name,omitempty"`
	Command  *string       `json:"command,omitempty"`
	Commands []CommandItem `json:"commands,omitempty"`
	Options  *BulkOptions  `json:"options,omitempty"`
	Selector *Selector     `json:"selector,omitempty"`
	Schedule *Schedule     `json:"schedule,omitempty"`
	Version  *int64        `json:"version,omitempty"`
}

// SavedJobList is the body of GET /v1/saved-jobs.
type SavedJobList struct {
	Items []SavedJob `json:"items"`
	Next  string     `json:"next,omitempty"`
}

// RerunRequest is the body of POST /v1/bulk/{job_id}/rerun: the statuses whose devices run again.
type RerunRequest struct {
	Statuses []string `json:"statuses"`
}
