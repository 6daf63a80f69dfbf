package cli

import "time"

// Device is a device as the API returns it.
type Device struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Host              string            `json:"host"`
	Port              int               `json:"port"`
	Platform          string            `json:"platform"`
	Username          string            `json:"username"`
	AuthMethod        string            `json:"auth_method"`
	Tags              map[string]string `json:"tags"`
	Site              string            `json:"site"`
	HostKey           string            `json:"host_key,omitempty"`
	TrustOnFirstUse   bool              `json:"trust_on_first_use"`
	LegacyAlgorithms  bool              `json:"legacy_algorithms"`
	CredentialProfile string            `json:"credential_profile,omitempty"`
	HasCredential     bool              `json:"has_credential"`
	Version           int64             `json:"version"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
}

// DeviceInput is the body of POST /v1/devices.
type DeviceInput struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Host              string            `json:"host"`
	Port              int               `json:"port,omitempty"`
	Platform          string            `json:"platform,omitempty"`
	Username          string            `json:"username"`
	AuthMethod        string            `json:"auth_method,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Site              string            `json:"site,omitempty"`
	HostKey           string            `json:"host_key,omitempty"`
	TrustOnFirstUse   bool              `json:"trust_on_first_use,omitempty"`
	LegacyAlgorithms  bool              `json:"legacy_algorithms,omitempty"`
	CredentialProfile string            `json:"credential_profile,omitempty"`
	Password          string            `json:"password,omitempty"`
	PrivateKey        string            `json:"private_key,omitempty"`
	Passphrase        string            `json:"passphrase,omitempty"`
}

// RowResult is one row of an import.
type RowResult struct {
	Row    int          `json:"row"`
	ID     string       `json:"id,omitempty"`
	Status string       `json:"status"`
	Errors []FieldError `json:"errors,omitempty"`
}

// ImportResult is the answer to POST /v1/devices/import.
type ImportResult struct {
	Mode    string      `json:"mode"`
	Created int         `json:"created"`
	Failed  int         `json:"failed"`
	Rows    []RowResult `json:"rows"`
}

// Run is one command on one device.
type Run struct {
	ID          string     `json:"id"`
	DeviceID    string     `json:"device_id"`
	Command     string     `json:"command"`
	JobID       string     `json:"job_id,omitempty"`
	RequestedBy string     `json:"requested_by"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Message     string     `json:"message,omitempty"`
	ExitStatus  *int       `json:"exit_status,omitempty"`
	Bytes       int64      `json:"bytes"`
	Chunks      int        `json:"chunks"`
	Truncated   bool       `json:"truncated"`
	Attempt     int        `json:"attempt"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	Timings     struct {
		ConnectMS   int64 `json:"connect_ms,omitempty"`
		AuthMS      int64 `json:"auth_ms,omitempty"`
		FirstByteMS int64 `json:"first_byte_ms,omitempty"`
		TotalMS     int64 `json:"total_ms,omitempty"`
	} `json:"timings"`
}

// Options are a run's or a bulk job's options.
type Options struct {
	TimeoutS       int    `json:"timeout_s,omitempty"`
	MaxConcurrency int    `json:"max_concurrency,omitempty"`
	MaxErrors      string `json:"max_errors,omitempty"`
}

// JobSummary is one job of the job list.
type JobSummary struct {
	ID          string     `json:"job_id"`
	Command     string     `json:"command"`
	RequestedBy string     `json:"requested_by"`
	DeviceCount int        `json:"device_count"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

// Job is a bulk job's summary.
type Job struct {
	JobID           string         `json:"job_id"`
	Command         string         `json:"command"`
	RequestedBy     string         `json:"requested_by"`
	DeviceCount     int            `json:"device_count"`
	Batches         int            `json:"batches"`
	Status          string         `json:"status"`
	Options         Options        `json:"options"`
	Counts          map[string]int `json:"counts"`
	Seq             int64          `json:"seq"`
	Error           string         `json:"error,omitempty"`
	CreatedAt       time.Time      `json:"created_at"`
	FinishedAt      *time.Time     `json:"finished_at,omitempty"`
	CancelRequested bool           `json:"cancel_requested"`
	StopStatus      string         `json:"stop_status,omitempty"`
	BatchesDone     int            `json:"batches_done"`
}

// JobDevice is one device's state in a job.
type JobDevice struct {
	DeviceID   string `json:"device_id"`
	Status     string `json:"status"`
	RunID      string `json:"run_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Seq        int64  `json:"seq"`
	Batch      int    `json:"batch"`
}

// ProgressEvent is one entry of a job's event log.
type ProgressEvent struct {
	Type     string         `json:"type"`
	JobID    string         `json:"job_id"`
	DeviceID string         `json:"device_id,omitempty"`
	Status   string         `json:"status"`
	Seq      int64          `json:"seq"`
	Counts   map[string]int `json:"counts"`
}

// runStatuses are the device statuses in display order.
var runStatuses = []string{"queued", "running", "succeeded", "failed", "timed_out", "unreachable", "auth_failed", "host_key_mismatch", "cancelled"}

// terminalRun reports whether a run or device status is final.
func terminalRun(s string) bool { return s != "" && s != "queued" && s != "running" }

// terminalJob reports whether a job status is final.
func terminalJob(s string) bool { return s != "" && s != "queued" && s != "running" }
