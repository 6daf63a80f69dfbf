// Package bulk runs one command on many devices: it validates and splits a bulk request into
// batches of at most 50 devices (Enqueuer), and runs one batch on its devices, exactly once in
// effect under at-least-once delivery (Executor). It imports no AWS SDK and no Lambda events:
// the job store, the queue, the SSH engine and the progress publisher are small interfaces.
package bulk

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
)

// Limits of a bulk request.
const (
	MaxCommandLen = 4096
	MaxDevices    = 20000
	MaxBatchSize  = 50
	// MaxTimeout is the executor's invocation budget: its five minutes
	// (resources.ExecutorTimeoutSeconds) less the deadline margin it keeps to store results. A
	// device with a timeout over LongRunStart starts only early in an invocation, and a run the
	// invocation's end cuts short ends timed_out, reason invocation_deadline.
	MaxTimeout = 295 * time.Second
	// LongRunStart is the most time a device needs left in an invocation to be started there:
	// a longer timeout is cut by the invocation's end instead of waiting for a fresh one.
	LongRunStart    = 240 * time.Second
	DefaultTimeout  = 60 * time.Second
	MaxRequestedBy  = 256
	maxErrorsMaxLen = 16
)

// JobStatus is a bulk job's state.
type JobStatus string

// Job statuses. A job is done when every device is terminal.
const (
	JobQueued    JobStatus = "queued"
	JobRunning   JobStatus = "running"
	JobCompleted JobStatus = "completed"
	JobCancelled JobStatus = "cancelled"
	// JobStopped means max_errors stopped the job; its remaining devices were cancelled.
	JobStopped JobStatus = "stopped"
	// JobFailed means the job could not be enqueued; its unsent devices were cancelled.
	JobFailed JobStatus = "failed"
)

// Terminal reports whether the job has ended (TerminalJobStatuses).
func (s JobStatus) Terminal() bool {
	return slices.Contains(TerminalJobStatuses(), s)
}

// Options tune a job.
type Options struct {
	// TimeoutS bounds each device's run in seconds (default 60, at most 900).
	TimeoutS int `json:"timeout_s,omitempty"`
	// MaxConcurrency bounds how many devices run at once across the job (0: no bound beyond
	// the executors' own).
	MaxConcurrency int `json:"max_concurrency,omitempty"`
	// MaxErrors stops the job when more devices than this fail: a count ("10") or a percentage
	// of the job's devices ("5%"). Empty: never stop.
	MaxErrors string `json:"max_errors,omitempty"`
	// StopOnError ends a device's sequence at its first failing command (a platform error
	// marker, a non-zero exit status); later commands are not sent.
	StopOnError bool `json:"stop_on_error,omitempty"`
}

// Timeout returns the per-device timeout.
func (o Options) Timeout() time.Duration {
	if o.TimeoutS <= 0 {
		return DefaultTimeout
	}
	return time.Duration(o.TimeoutS) * time.Second
}

// ErrorLimit returns how many failed devices a job of n devices tolerates; -1 means no limit.
func (o Options) ErrorLimit(n int) int {
	s := strings.TrimSpace(o.MaxErrors)
	if s == "" {
		return -1
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, _ := strconv.ParseFloat(p, 64)
		return int(math.Floor(f / 100 * float64(n)))
	}
	v, _ := strconv.Atoi(s)
	return v
}

// Validate checks the options, naming the field of each rule broken.
func (o Options) Validate() error {
	if o.TimeoutS < 0 || time.Duration(o.TimeoutS)*time.Second > MaxTimeout {
		return fieldErr("options.timeout_s", "must be from 1 to %d seconds (the executor's invocation budget)", int(MaxTimeout/time.Second))
	}
	if o.MaxConcurrency < 0 || o.MaxConcurrency > MaxDevices {
		return fieldErr("options.max_concurrency", "must be from 1 to %d", MaxDevices)
	}
	if s := strings.TrimSpace(o.MaxErrors); s != "" {
		if len(s) > maxErrorsMaxLen || !validMaxErrors(s) {
			return fieldErr("options.max_errors", "must be a whole number of devices (\"10\") or a percentage (\"5%%\")")
		}
	}
	return nil
}

// Request is a bulk request as the API receives it.
type Request struct {
	// Command is one command; Commands a sequence of them (exactly one of the two is given).
	// Normalize sets Command to the sequence's Summary.
	Command     string    `json:"command"`
	Commands    []Command `json:"commands,omitempty"`
	DeviceIDs   []string  `json:"device_ids"`
	RequestedBy string    `json:"requested_by,omitempty"`
	Options     Options   `json:"options"`
	// SavedJobID names the saved job this job starts, RerunOf the job it runs again; the job
	// records them.
	SavedJobID string `json:"-"`
	RerunOf    string `json:"-"`
	// Devices, when set, are the devices the caller read just before (the API's policy check
	// reads every device): the enqueue takes them instead of reading the devices again, and a
	// device missing from them is unknown.
	Devices map[string]device.Device `json:"-"`
}

// Grants are the roles a job's requester held when it was accepted, everywhere and on single
// sites: the executor checks the command against the policy with them before each device.
type Grants struct {
	Role  auth.Role            `json:"role,omitempty" dynamodbav:"role,omitempty"`
	Sites map[string]auth.Role `json:"sites,omitempty" dynamodbav:"sites,omitempty"`
}

// GrantsOf returns the roles id holds.
func GrantsOf(id auth.Identity) Grants { return Grants{Role: id.Role, Sites: id.Sites} }

// RoleOn is the role the requester held on site. A job that recorded no grants (accepted before
// jobs kept them) counts as an operator's: the least role that may run commands.
func (g Grants) RoleOn(site string) auth.Role {
	if g.Role == "" && len(g.Sites) == 0 {
		return auth.Operator
	}
	return auth.Identity{Role: g.Role, Sites: g.Sites}.RoleOn(site)
}

// ValidationError is a rejected request: the field and the rule.
type ValidationError = device.ValidationError

// FieldError is one rejected field.
type FieldError = device.FieldError

func fieldErr(field, format string, args ...any) error {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

// ValidateCommand checks a command line: one line (the SSH engine sends exactly one command and
// reads to the next prompt), no control characters, bounded.
func ValidateCommand(cmd string) error { return validateCommandAt("command", cmd) }

// validateCommandAt is ValidateCommand naming field.
func validateCommandAt(field, cmd string) error {
	switch {
	case strings.TrimSpace(cmd) == "":
		return fieldErr(field, "is required")
	case len(cmd) > MaxCommandLen:
		return fieldErr(field, "must be at most %d bytes", MaxCommandLen)
	case !utf8.ValidString(cmd):
		return fieldErr(field, "must be valid UTF-8")
	}
	for _, r := range cmd {
		if r == '\n' || r == '\r' {
			return fieldErr(field, "must be one line; send several commands as a commands list")
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fieldErr(field, "must not contain control characters (found U+%04X)", r)
		}
	}
	return nil
}

// Sequence is the request's commands: its Commands, or its one Command.
func (req Request) Sequence() []Command { return sequenceOf(req.Command, req.Commands) }

func sequenceOf(command string, cmds []Command) []Command {
	if cmds != nil {
		return cmds
	}
	return []Command{{Command: command}}
}

// Normalize validates req, trims the command, and de-duplicates device ids in their first-seen
// order. It returns the devices to run on.
func (req *Request) Normalize() ([]string, error) {
	if err := req.NormalizeCommands(); err != nil {
		return nil, err
	}
	return NormalizeDeviceIDs("device_ids", req.DeviceIDs, true)
}

// NormalizeCommands validates and trims what req runs and how: its command or commands, its
// options and requested_by. A saved job keeps exactly these, and its devices are chosen later.
func (req *Request) NormalizeCommands() error {
	if req.Commands != nil {
		if req.Command != "" {
			return fieldErr(commandsField, exactlyOneRule)
		}
		if err := normalizeCommands(req.Commands, false); err != nil {
			return err
		}
		req.Command = Summary(req.Commands)
	} else {
		req.Command = strings.TrimRight(strings.TrimLeft(req.Command, " \t"), " \t\n")
		if strings.TrimSpace(req.Command) == "" {
			return fieldErr(commandsField, exactlyOneRule)
		}
		if err := ValidateCommand(req.Command); err != nil {
			return err
		}
	}
	if err := req.Options.Validate(); err != nil {
		return err
	}
	if len(req.RequestedBy) > MaxRequestedBy || strings.ContainsFunc(req.RequestedBy, unicode.IsControl) {
		return fieldErr("requested_by", "must be at most %d characters without control characters", MaxRequestedBy)
	}
	return nil
}

// NormalizeDeviceIDs checks a list of device ids named field (at most MaxDevices, each a valid
// id; at least one when required) and returns them de-duplicated in their first-seen order.
func NormalizeDeviceIDs(field string, list []string, required bool) ([]string, error) {
	if len(list) == 0 && required {
		return nil, fieldErr(field, "must name at least one device")
	}
	if len(list) > MaxDevices {
		return nil, fieldErr(field, "must name at most %d devices", MaxDevices)
	}
	seen := make(map[string]bool, len(list))
	ids := make([]string, 0, len(list))
	for i, id := range list {
		if !device.ValidID(id) {
			return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "is not a valid device id")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func validMaxErrors(s string) bool {
	if p, ok := strings.CutSuffix(s, "%"); ok {
		f, err := strconv.ParseFloat(p, 64)
		return err == nil && f >= 0 && f <= 100 && !math.IsNaN(f)
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

// Split cuts ids into batches of at most size devices.
func Split(ids []string, size int) [][]string {
	if size <= 0 || size > MaxBatchSize {
		size = MaxBatchSize
	}
	var out [][]string
	for len(ids) > 0 {
		n := min(size, len(ids))
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// Job is a bulk job's summary.
type Job struct {
	ID string `json:"job_id"`
	// Command is the job's command, or its sequence's Summary.
	Command string `json:"command"`
	// Commands is the job's sequence when it was given one, secret answers removed.
	Commands []Command `json:"commands,omitempty"`
	// SecretAnswers says the job's secret answers are in the answer store until it ends.
	SecretAnswers bool               `json:"-"`
	RequestedBy   string             `json:"requested_by"`
	DeviceCount   int                `json:"device_count"`
	Batches       int                `json:"batches"`
	Status        JobStatus          `json:"status"`
	Options       Options            `json:"options"`
	Counts        map[run.Status]int `json:"counts"`
	// Seq is the sequence number of the job's latest progress event.
	Seq        int64      `json:"seq"`
	Error      string     `json:"error,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// CancelRequested is set by a cancel, by max_errors or by a failed enqueue; executors start
	// no more devices and the job ends with StopStatus once every device is terminal.
	CancelRequested bool      `json:"cancel_requested"`
	StopStatus      JobStatus `json:"stop_status,omitempty"`
	// BatchesDone counts batches whose devices are all terminal.
	BatchesDone int `json:"batches_done"`
	// ExpiresAt is when the job's records may be deleted (zero: never).
	ExpiresAt time.Time `json:"-"`
	// Sites are the sites of the job's devices, sorted, "" standing for devices without a site;
	// a caller sees the job only with its role on all of them (auth.Identity.CanOnAll). Jobs
	// accepted before jobs recorded their sites have none and need the role everywhere.
	Sites []string `json:"sites,omitempty"`
	// Grants are the requester's roles when the job was accepted.
	Grants Grants `json:"-"`
	// SavedJobID is the saved job that started this job; RerunOf the job it runs again on some
	// of its devices; Reruns the jobs that ran this one again, oldest first.
	SavedJobID string   `json:"saved_job_id,omitempty"`
	RerunOf    string   `json:"rerun_of,omitempty"`
	Reruns     []string `json:"reruns,omitempty"`
	// PreviousJob is the newest job accepted before this one that ran the same commands, when
	// the enqueue knew it: a device's previous run of them is its run in that job, when that run
	// succeeded (Executor.previous reads all of a batch's at once).
	PreviousJob string `json:"-"`
}

// JobSummary is a job as the job list shows it: what ran, by whom, on how many devices, and how
// it stands (the counts are in the job itself).
type JobSummary struct {
	ID          string     `json:"job_id"`
	Command     string     `json:"command"`
	RequestedBy string     `json:"requested_by"`
	DeviceCount int        `json:"device_count"`
	Status      JobStatus  `json:"status"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// Sites are the job's sites, as Job.Sites.
	Sites []string `json:"sites,omitempty"`
}

// DeviceState is one device's place in a job.
type DeviceState struct {
	DeviceID string     `json:"device_id"`
	Status   run.Status `json:"status"`
	RunID    string     `json:"run_id,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	// DurationMS is the run's duration once terminal.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// OutputDigest identifies the device's output up to whitespace (run.OutputDigest): devices
	// with equal digests printed the same thing.
	OutputDigest string `json:"output_digest,omitempty"`
	// Changed is the device's run's drift flag once it succeeded (run.Run.Changed).
	Changed *bool `json:"changed"`
	// Seq is the job event that last changed this device.
	Seq int64 `json:"seq"`
	// Batch is the index of the device's batch.
	Batch int `json:"batch"`
	// Commands are the device's per-command results once it finished (Change.Commands).
	Commands []run.CommandResult `json:"commands,omitempty"`
}

// CommandResults are the device's per-command results with the text of each command from job j.
// A one-command job keeps none: its device's one result is its own status and reason, once it has
// run its command (run.Started).
func (d DeviceState) CommandResults(j Job) []run.CommandResult {
	if len(d.Commands) == 0 {
		if j.Commands == nil && d.Status.Terminal() && run.Started(d.Status, d.Reason) {
			return []run.CommandResult{{Command: j.Command, Status: d.Status, Reason: d.Reason}}
		}
		return nil
	}
	seq := sequenceOf(j.Command, j.Commands)
	out := make([]run.CommandResult, len(d.Commands))
	for i, c := range d.Commands {
		out[i] = c
		if i < len(seq) {
			out[i].Command = seq[i].Command
		}
	}
	return out
}

// Message is one batch: the body of one SQS message.
type Message struct {
	JobID     string   `json:"job_id"`
	Batch     int      `json:"batch"`
	DeviceIDs []string `json:"device_ids"`
	Command   string   `json:"command"`
	// Commands is the job's sequence, secret answers removed (the executor reads them from the
	// answer store); empty for a one-command job.
	Commands []Command `json:"commands,omitempty"`
	// SecretAnswers says the answers of the secret prompts are in the answer store.
	SecretAnswers bool    `json:"secret_answers,omitempty"`
	RequestedBy   string  `json:"requested_by"`
	Options       Options `json:"options"`
	// PreviousJob is the job's Job.PreviousJob.
	PreviousJob string `json:"previous_job,omitempty"`
	// Devices are the batch's devices as the enqueue read them at DevicesAt, in DeviceIDs'
	// order: a batch that starts within SnapshotMaxAge of it runs on them instead of reading
	// them again. Empty when the enqueue left them out (MaxSnapshotBytes) or the message was
	// made later (a pending batch sent as another ends).
	Devices   []device.Device `json:"devices,omitempty"`
	DevicesAt time.Time       `json:"devices_at,omitzero"`
}

// Validate checks a message read off the queue.
func (m Message) Validate() error {
	switch {
	case m.JobID == "":
		return errors.New("message has no job_id")
	case len(m.DeviceIDs) == 0 || len(m.DeviceIDs) > MaxBatchSize:
		return fmt.Errorf("message has %d devices, want 1-%d", len(m.DeviceIDs), MaxBatchSize)
	case m.Batch < 0:
		return fmt.Errorf("message has batch %d", m.Batch)
	}
	if m.Commands != nil {
		if HasSecrets(m.Commands) && !m.SecretAnswers {
			// Run as it is, its secret prompts would be answered with an empty line.
			return errors.New("message has secret prompts but does not say their answers are stored")
		}
		return normalizeCommands(slices.Clone(m.Commands), true)
	}
	return ValidateCommand(m.Command)
}

// Sequence is the message's commands: its Commands, or its one Command.
func (m Message) Sequence() []Command { return sequenceOf(m.Command, m.Commands) }

// RunID is the deterministic run id of a device in a job, so a redelivered batch finds the run
// it created before.
func RunID(jobID, deviceID string) string { return jobID + "." + deviceID }

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a time-ordered, URL-safe random id (48-bit milliseconds + 80 random bits).
func NewID(now time.Time) string {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return idEncoding.EncodeToString(b[:])
}

// CommandsKey identifies what a job runs, for finding the job before it that ran the same
// (JobStore.SwapLastJob): the SHA-256, in hex, of its command texts in order.
func CommandsKey(command string, commands []Command) string {
	h := sha256.New()
	for _, c := range sequenceOf(command, commands) {
		h.Write([]byte(c.Command))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
