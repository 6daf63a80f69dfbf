// Package apiwire holds the request and response bodies of NetAuto's HTTPS API, as they travel:
// one Go type per body or schema of internal/api/openapi.yaml, field for field. The API converts
// between these and the domain types at its edge; the command-line client and the device
// simulator speak them directly. A test holds every type to the OpenAPI document: field names,
// required fields (no omitempty) against optional ones (omitempty or omitzero), and basic types.
//
// The package imports no other NetAuto package, so a client links none of the server's code.
// Enumerations (platform, auth method, statuses) are plain strings here; the domain packages own
// their values and rules.
package apiwire

import "time"

// Health is the body of GET /v1/health. Its fields are in the order the API has always sent them.
type Health struct {
	// Deployment says where the function runs and which backing services it uses (null when the
	// deployment gives none).
	Deployment map[string]any `json:"deployment"`
	Status     string         `json:"status"`
	Version    string         `json:"version"`
}

// Error is the error of every error answer; Field names what is wrong and Details lists every
// rejected field when there are several. A refusal by the command policy (code command_denied)
// names the refusing Rule and the refused Devices.
type Error struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Field   string       `json:"field,omitempty"`
	Details []FieldError `json:"details,omitempty"`
	Rule    string       `json:"rule,omitempty"`
	Devices []string     `json:"devices,omitempty"`
}

// ErrorBody is the body of every error answer: {"error": {...}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// UnknownDevicesBody is the 422 answer of POST /v1/runs and POST /v1/bulk when some device ids
// are not in the inventory.
type UnknownDevicesBody struct {
	Error      Error    `json:"error"`
	UnknownIDs []string `json:"unknown_ids"`
}

// FieldError is one rejected field of a request or an import row.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Device is a device as the API returns it; credentials are never returned, HasCredential says
// whether the device has its own.
type Device struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Host       string            `json:"host"`
	Port       int               `json:"port"`
	Platform   string            `json:"platform"`
	Username   string            `json:"username"`
	AuthMethod string            `json:"auth_method"`
	Tags       map[string]string `json:"tags"`
	Site       string            `json:"site"`
	HostKey    string            `json:"host_key,omitempty"`
	// HostKeyFingerprint is HostKey's SHA-256 fingerprint ("SHA256:...").
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
	// HostKeyLearnedAt is when the key was pinned on first use or accepted by an admin.
	HostKeyLearnedAt *time.Time `json:"host_key_learned_at,omitempty"`
	// PendingHostKey is a key the device offered instead of its pinned one, refused until an
	// admin accepts it.
	PendingHostKey    *PendingHostKey `json:"pending_host_key,omitempty"`
	TrustOnFirstUse   bool            `json:"trust_on_first_use"`
	LegacyAlgorithms  bool            `json:"legacy_algorithms"`
	CredentialProfile string          `json:"credential_profile,omitempty"`
	JumpHostIDs       []string        `json:"jump_host_ids,omitempty"`
	HasEnableSecret   bool            `json:"has_enable_secret"`
	HasCredential     bool            `json:"has_credential"`
	// ChargedBytes and StoredBytes are the device's output bytes (GET /v1/devices/{id} only):
	// its runs' exact outputs, which NET_AUTO_RUN_MAX_BYTES caps, and what its runs store
	// themselves (outputs stored once are shared and counted in the retention totals).
	ChargedBytes *int64    `json:"charged_bytes,omitempty"`
	StoredBytes  *int64    `json:"stored_bytes,omitempty"`
	Version      int64     `json:"version"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// PendingHostKey is a host key a device offered that was refused.
type PendingHostKey struct {
	Key         string    `json:"key"`
	Fingerprint string    `json:"fingerprint"`
	SeenAt      time.Time `json:"seen_at"`
}

// HostKeyAccept is the body of POST /v1/devices/{id}/host-key/accept: the fingerprint of the
// pending key to pin.
type HostKeyAccept struct {
	Fingerprint string `json:"fingerprint"`
}

// DeviceInput is the body of POST /v1/devices and one row of a JSON import: the device fields
// and the write-only credential. A zero Port is left out, which the API takes for the default.
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
	JumpHostIDs       []string          `json:"jump_host_ids,omitempty"`
	Password          string            `json:"password,omitempty"`
	PrivateKey        string            `json:"private_key,omitempty"`
	Passphrase        string            `json:"passphrase,omitempty"`
	EnableSecret      string            `json:"enable_secret,omitempty"`
}

// DevicePatch is the body of PATCH /v1/devices/{id}: nil fields stay as they are; Tags, when
// given, replaces the whole map; Version is the version read, for a 409 if it changed since.
type DevicePatch struct {
	Name              *string            `json:"name,omitempty"`
	Host              *string            `json:"host,omitempty"`
	Port              *int               `json:"port,omitempty"`
	Platform          *string            `json:"platform,omitempty"`
	Username          *string            `json:"username,omitempty"`
	AuthMethod        *string            `json:"auth_method,omitempty"`
	Tags              *map[string]string `json:"tags,omitempty"`
	Site              *string            `json:"site,omitempty"`
	HostKey           *string            `json:"host_key,omitempty"`
	TrustOnFirstUse   *bool              `json:"trust_on_first_use,omitempty"`
	LegacyAlgorithms  *bool              `json:"legacy_algorithms,omitempty"`
	CredentialProfile *string            `json:"credential_profile,omitempty"`
	JumpHostIDs       *[]string          `json:"jump_host_ids,omitempty"`
	Password          *string            `json:"password,omitempty"`
	PrivateKey        *string            `json:"private_key,omitempty"`
	Passphrase        *string            `json:"passphrase,omitempty"`
	EnableSecret      *string            `json:"enable_secret,omitempty"`
	Version           *int64             `json:"version,omitempty"`
}

// DeviceList is the body of GET /v1/devices: one page, and the cursor of the next (empty on the
// last).
type DeviceList struct {
	Items []Device `json:"items"`
	Next  string   `json:"next,omitempty"`
}

// RowResult is one row of an import: created, or why not.
type RowResult struct {
	Row    int          `json:"row"`
	ID     string       `json:"id,omitempty"`
	Status string       `json:"status"`
	Errors []FieldError `json:"errors,omitempty"`
}

// ImportResult is the answer of POST /v1/devices/import.
type ImportResult struct {
	Mode    string      `json:"mode"`
	Created int         `json:"created"`
	Failed  int         `json:"failed"`
	Rows    []RowResult `json:"rows"`
}

// ImportRejected is the answer of an import that wrote nothing (422, or 409 after a concurrent
// create): the error and the per-row results.
type ImportRejected struct {
	Error  Error        `json:"error"`
	Result ImportResult `json:"result"`
}

// DeviceBulkUpdate is the body of POST /v1/devices/bulk-update: what to set on every device named.
type DeviceBulkUpdate struct {
	DeviceIDs []string      `json:"device_ids"`
	Set       DeviceBulkSet `json:"set"`
}

// DeviceBulkSet is what a bulk update sets; absent fields stay as they are.
type DeviceBulkSet struct {
	// JumpHostIDs is the jump host chain every device gets, in order; [] clears it.
	JumpHostIDs *[]string `json:"jump_host_ids,omitempty"`
}

// DeviceBulkUpdated is the answer of POST /v1/devices/bulk-update: every device, as stored.
type DeviceBulkUpdated struct {
	Updated int      `json:"updated"`
	Items   []Device `json:"items"`
}

// DeviceBulkRejected is the 400 answer of POST /v1/devices/bulk-update; unknown_ids lists the
// device ids that do not exist or that the caller may not change, when those were the problem.
type DeviceBulkRejected struct {
	Error      Error    `json:"error"`
	UnknownIDs []string `json:"unknown_ids,omitempty"`
}

// LastRunsRequest is the body of POST /v1/devices/last-runs.
type LastRunsRequest struct {
	DeviceIDs []string `json:"device_ids"`
}

// LastRuns is the answer of POST /v1/devices/last-runs: each device's newest run by device id;
// devices without runs are absent.
type LastRuns struct {
	Items map[string]Run `json:"items"`
}

// Run is one command on one device.
type Run struct {
	ID          string `json:"id"`
	DeviceID    string `json:"device_id"`
	Command     string `json:"command"`
	JobID       string `json:"job_id,omitempty"`
	RequestedBy string `json:"requested_by"`
	Status      string `json:"status"`
	// Reason refines a failed status (command_error, exit_status, output_cap, ...).
	Reason       string `json:"reason,omitempty"`
	Message      string `json:"message,omitempty"`
	ExitStatus   *int   `json:"exit_status,omitempty"`
	Bytes        int64  `json:"bytes"`
	Chunks       int    `json:"chunks"`
	Truncated    bool   `json:"truncated"`
	OutputDigest string `json:"output_digest,omitempty"`
	// ContentSHA256 is the SHA-256 of the exact output bytes.
	ContentSHA256 string `json:"content_sha256,omitempty"`
	// FilteredDigest identifies the output's lines without the platform's noise lines.
	FilteredDigest string `json:"filtered_digest,omitempty"`
	// Changed says whether the output, noise left out, differs from PreviousRunID's: null for a
	// first run and for runs that did not succeed.
	Changed       *bool      `json:"changed"`
	PreviousRunID string     `json:"previous_run_id,omitempty"`
	Attempt       int        `json:"attempt"`
	CreatedAt     time.Time  `json:"created_at"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	Timings       Timings    `json:"timings"`
	// Commands has one entry per command started; Command is then a summary (the first
	// command, plus " (+N more)").
	Commands []RunCommand `json:"commands"`
}

// Timings are a run's phases in milliseconds.
type Timings struct {
	ConnectMS   int64 `json:"connect_ms"`
	AuthMS      int64 `json:"auth_ms"`
	FirstByteMS int64 `json:"first_byte_ms"`
	TotalMS     int64 `json:"total_ms"`
}

// RunList is the body of GET /v1/devices/{id}/runs: one page, newest first.
type RunList struct {
	Items []Run  `json:"items"`
	Next  string `json:"next,omitempty"`
}

// BulkOptions are a run's or a bulk job's options; zero fields take the defaults.
type BulkOptions struct {
	TimeoutS       int    `json:"timeout_s,omitempty"`
	MaxConcurrency int    `json:"max_concurrency,omitempty"`
	MaxErrors      string `json:"max_errors,omitempty"`
	StopOnError    bool   `json:"stop_on_error,omitempty"`
}

// RunRequest is the body of POST /v1/runs.
type RunRequest struct {
	DeviceID string `json:"device_id"`
	// Command is one command; Commands a sequence (exactly one of the two).
	Command     string        `json:"command,omitempty"`
	Commands    []CommandItem `json:"commands,omitempty"`
	RequestedBy string        `json:"requested_by,omitempty"`
	Options     BulkOptions   `json:"options,omitzero"`
}

// RunAccepted is the answer of POST /v1/runs.
type RunAccepted struct {
	RunID string `json:"run_id"`
	JobID string `json:"job_id"`
}

// BulkRequest is the body of POST /v1/bulk.
type BulkRequest struct {
	// Command is one command; Commands a sequence (exactly one of the two).
	Command     string        `json:"command,omitempty"`
	Commands    []CommandItem `json:"commands,omitempty"`
	DeviceIDs   []string      `json:"device_ids"`
	RequestedBy string        `json:"requested_by,omitempty"`
	Options     BulkOptions   `json:"options,omitzero"`
}

// BulkAccepted is the answer of POST /v1/bulk.
type BulkAccepted struct {
	JobID       string `json:"job_id"`
	DeviceCount int    `json:"device_count"`
	Batches     int    `json:"batches"`
}

// Job is a bulk job with its counts per device status.
type Job struct {
	JobID   string `json:"job_id"`
	Command string `json:"command"`
	// Commands is the job's sequence when it was given one (secret answers left out).
	Commands    []CommandItem  `json:"commands,omitempty"`
	RequestedBy string         `json:"requested_by"`
	DeviceCount int            `json:"device_count"`
	Batches     int            `json:"batches"`
	Status      string         `json:"status"`
	Options     BulkOptions    `json:"options"`
	Counts      map[string]int `json:"counts"`
	// Seq is the sequence number of the job's last progress event.
	Seq             int64      `json:"seq"`
	Error           string     `json:"error,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
	CancelRequested bool       `json:"cancel_requested"`
	StopStatus      string     `json:"stop_status,omitempty"`
	BatchesDone     int        `json:"batches_done"`
	// Sites are the sites of the job's devices ("" for devices without a site).
	Sites []string `json:"sites,omitempty"`
	// SavedJobID is the saved job that started it; RerunOf the job it ran again; Reruns the jobs
	// that ran it again, oldest first.
	SavedJobID string   `json:"saved_job_id,omitempty"`
	RerunOf    string   `json:"rerun_of,omitempty"`
	Reruns     []string `json:"reruns,omitempty"`
}

// JobSummary is one job of GET /v1/bulk.
type JobSummary struct {
	JobID       string     `json:"job_id"`
	Command     string     `json:"command"`
	RequestedBy string     `json:"requested_by"`
	DeviceCount int        `json:"device_count"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// Sites are the sites of the job's devices, as Job.Sites.
	Sites []string `json:"sites,omitempty"`
}

// JobList is the body of GET /v1/bulk: one page of jobs, newest first.
type JobList struct {
	Items []JobSummary `json:"items"`
	Next  string       `json:"next,omitempty"`
}

// JobDevice is one device's state in a job.
type JobDevice struct {
	DeviceID     string `json:"device_id"`
	Status       string `json:"status"`
	RunID        string `json:"run_id,omitempty"`
	Reason       string `json:"reason,omitempty"`
	DurationMS   int64  `json:"duration_ms,omitempty"`
	OutputDigest string `json:"output_digest,omitempty"`
	// Changed is the device's run's drift flag (Run.Changed).
	Changed *bool `json:"changed"`
	Seq     int64 `json:"seq"`
	Batch   int   `json:"batch"`
	// Commands are the device's per-command results once it finished (none until then, and none
	// when it ended before its first command).
	Commands []RunCommand `json:"commands,omitempty"`
}

// JobDeviceList is the body of GET /v1/bulk/{job_id}/devices: one page, in batch order.
type JobDeviceList struct {
	Items []JobDevice `json:"items"`
	Next  string      `json:"next,omitempty"`
}

// ProgressEvent is a job's progress event: a device's change (bulk_progress) or the job's end
// (job_done, the only one with Counts).
type ProgressEvent struct {
	Type         string         `json:"type"`
	JobID        string         `json:"job_id"`
	DeviceID     string         `json:"device_id,omitempty"`
	Status       string         `json:"status"`
	RunID        string         `json:"run_id,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	DurationMS   int64          `json:"duration_ms,omitempty"`
	OutputDigest string         `json:"output_digest,omitempty"`
	Changed      *bool          `json:"changed,omitempty"`
	Seq          int64          `json:"seq"`
	Counts       map[string]int `json:"counts,omitempty"`
	At           time.Time      `json:"at"`
}

// EventList is the body of GET /v1/bulk/{job_id}/events: the latest state of each device that
// moved since a sequence number (docs/websocket.md, "Catch-up after a reconnect"), a page of the
// job's batches at a time; Next, when set, is the cursor of the next page.
type EventList struct {
	Items []ProgressEvent `json:"items"`
	Next  string          `json:"next,omitempty"`
}

// RetentionSettings are the retention limits as configured.
type RetentionSettings struct {
	MaxDays  int    `json:"max_days"`
	MaxBytes int64  `json:"max_bytes"`
	Cron     string `json:"cron"`
	Schedule string `json:"schedule,omitempty"`
}

// RetentionStats are one pass of a purge (by age or by bytes).
type RetentionStats struct {
	Type             string     `json:"type"`
	RunsDeleted      int64      `json:"runs_deleted"`
	ChunksDeleted    int64      `json:"chunks_deleted"`
	BytesFreed       int64      `json:"bytes_freed"`
	RunsSkipped      int64      `json:"runs_skipped"`
	Complete         bool       `json:"complete"`
	Cutoff           *time.Time `json:"cutoff,omitempty"`
	PurgedThrough    string     `json:"purged_through,omitempty"`
	DevicesChecked   int64      `json:"devices_checked,omitempty"`
	DevicesOverCap   int64      `json:"devices_over_cap,omitempty"`
	DevicesStillOver int64      `json:"devices_still_over,omitempty"`
	DurationMS       int64      `json:"duration_ms"`
}

// RetentionReport is one purge's report.
type RetentionReport struct {
	Trigger      string            `json:"trigger"`
	StartedAt    time.Time         `json:"started_at"`
	FinishedAt   time.Time         `json:"finished_at"`
	Settings     RetentionSettings `json:"settings"`
	Age          *RetentionStats   `json:"age,omitempty"`
	Bytes        *RetentionStats   `json:"bytes,omitempty"`
	Complete     bool              `json:"complete"`
	Continuation string            `json:"continuation,omitempty"`
	Error        string            `json:"error,omitempty"`
}

// RetentionView is the body of GET /v1/retention; LastReport is null before the first purge.
type RetentionView struct {
	Settings   RetentionSettings `json:"settings"`
	LastReport *RetentionReport  `json:"last_report"`
	// ChargedBytes is the output bytes of every device's runs (exact outputs); StoredBytes what
	// is stored for them, each output stored once counted once. Both are as the retention purge
	// last folded them, exact as of TotalsAsOf (absent before the first purge). Absent on a
	// deployment that does not count them.
	ChargedBytes *int64     `json:"charged_bytes,omitempty"`
	StoredBytes  *int64     `json:"stored_bytes,omitempty"`
	TotalsAsOf   *time.Time `json:"totals_as_of,omitempty"`
}

// PolicyRule is one rule of the command policy (see docs/policy.md).
type PolicyRule struct {
	ID        string   `json:"id"`
	Effect    string   `json:"effect"`
	Roles     []string `json:"roles,omitempty"`
	Platforms []string `json:"platforms,omitempty"`
	Pattern   string   `json:"pattern"`
	Reason    string   `json:"reason,omitempty"`
}

// Policy is the answer of GET and PUT /v1/policy: the rules in force, in order. Version 0 with
// Default set is the built-in policy, never stored.
type Policy struct {
	Rules     []PolicyRule `json:"rules"`
	Version   int64        `json:"version"`
	Default   bool         `json:"default"`
	UpdatedAt *time.Time   `json:"updated_at,omitempty"`
	UpdatedBy string       `json:"updated_by,omitempty"`
}

// PolicyUpdate is the body of PUT /v1/policy: the whole rule list and the version it replaces
// (0 replaces the built-in defaults); the If-Match header may carry the version instead.
type PolicyUpdate struct {
	Rules   []PolicyRule `json:"rules"`
	Version *int64       `json:"version,omitempty"`
}

// PolicyCheckRequest is the body of POST /v1/policy/check.
type PolicyCheckRequest struct {
	// Command is one command; Commands a sequence, every item and prompt answer checked
	// (exactly one of the two).
	Command   string        `json:"command,omitempty"`
	Commands  []CommandItem `json:"commands,omitempty"`
	DeviceIDs []string      `json:"device_ids"`
}

// PolicyVerdict is the policy's decision for one device; Rule and Reason say why it is refused.
type PolicyVerdict struct {
	DeviceID string `json:"device_id"`
	Allowed  bool   `json:"allowed"`
	Rule     string `json:"rule,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// Field names the refused item of a sequence (commands[1], commands[1].prompts[0].answer).
	Field string `json:"field,omitempty"`
}

// PolicyCheck is the answer of POST /v1/policy/check: whether the caller may run the command
// on every device, and the decision for each.
type PolicyCheck struct {
	Allowed bool            `json:"allowed"`
	Version int64           `json:"version"`
	Devices []PolicyVerdict `json:"devices"`
}

// AuditEntry is one entry of the audit trail: who did what to which target, with what outcome.
type AuditEntry struct {
	ID        string            `json:"id"`
	Time      time.Time         `json:"time"`
	Actor     string            `json:"actor"`
	Role      string            `json:"role,omitempty"`
	Action    string            `json:"action"`
	Target    string            `json:"target,omitempty"`
	Outcome   string            `json:"outcome"`
	Reason    string            `json:"reason,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Source    string            `json:"source,omitempty"`
	Detail    map[string]string `json:"detail,omitempty"`
}

// AuditList is the body of GET /v1/audit: entries newest first and the next page's cursor.
type AuditList struct {
	Items []AuditEntry `json:"items"`
	Next  string       `json:"next,omitempty"`
}
