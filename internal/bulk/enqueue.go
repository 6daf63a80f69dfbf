package bulk

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// Errors of job stores and the enqueuer.
var (
	// ErrJobNotFound means no job has the id (or it has expired).
	ErrJobNotFound = fault.New(fault.NotFound, "", "no job with this id")
	// ErrUnknownDevices is wrapped by an UnknownDevicesError.
	ErrUnknownDevices = fault.New(fault.Unresolved, "", "unknown devices")
	// ErrJobFinished means the job has already ended (a cancel of a finished job, say).
	ErrJobFinished = fault.New(fault.Finished, "", "the job has already finished")
	// ErrTooManyRunningJobs is the cause of the enqueuer's refusal of a job that would take its
	// requester over the caller's role's limit of unfinished jobs.
	ErrTooManyRunningJobs = fault.New(fault.OverLimit, "", "too many unfinished jobs")
)

// UnknownDevicesError lists the requested devices that are not in the inventory.
type UnknownDevicesError struct{ IDs []string }

// Error implements error.
func (e *UnknownDevicesError) Error() string {
	return fmt.Sprintf("%d unknown device ids", len(e.IDs))
}

// Unwrap makes errors.Is(err, ErrUnknownDevices) work.
func (e *UnknownDevicesError) Unwrap() error { return ErrUnknownDevices }

// Kind implements fault.Described: the request names devices that do not exist.
func (e *UnknownDevicesError) Kind() fault.Kind { return fault.Unresolved }

// Field implements fault.Described: the request's context names the field.
func (e *UnknownDevicesError) Field() string { return "" }

// Public implements fault.Described.
func (e *UnknownDevicesError) Public() string {
	return fmt.Sprintf("%d devices are not in the inventory", len(e.IDs))
}

// UnknownIDs returns the ids that are not in the inventory.
func (e *UnknownDevicesError) UnknownIDs() []string { return e.IDs }

// Inventory tells which devices exist and what they are.
type Inventory interface {
	// Lookup returns the devices among ids that exist (a change of the last second or so may
	// not show yet); unknown ids are absent.
	Lookup(ctx context.Context, ids []string) (map[string]device.Device, error)
}

// Queue sends batch messages. SendAll returns the indexes of the messages it could not send
// after its own retries (nil when all were sent).
type Queue interface {
	SendAll(ctx context.Context, msgs []Message) (failed []int, err error)
}

// JobStore keeps jobs, their batches and their devices' states. It offers primitives and decides
// nothing: which devices end, how and when a job ends, and the events that tell of it are the
// state machine's (state.go).
type JobStore interface {
	// SwapLastJob records jobID as the newest job that ran the commands key names
	// (CommandsKey), kept until expires (zero: for good), and returns the one it replaces: ""
	// when there was none, or when a newer job is recorded already (jobID is then left out).
	SwapLastJob(ctx context.Context, key, jobID string, expires time.Time) (string, error)
	// CreateJob stores a new job and its batches; batches from index sent on are pending (they
	// are sent later, as running batches finish, to honour max_concurrency). The job is listed
	// as unfinished until ForgetUnfinished.
	CreateJob(ctx context.Context, j Job, batches [][]string, sent int) error
	// GetJob returns a job's summary with its counts; ErrJobNotFound when there is none.
	GetJob(ctx context.Context, id string) (Job, error)
	// JobControl returns the job without reading its counts (its Counts are the ones it was
	// created with): status, stop request, options and batches done, in one small read.
	JobControl(ctx context.Context, id string) (Job, error)
	// RequestStop flags the job so executors start no more devices and records the status it
	// ends with (the first request's status wins) and, unless message is empty, message as the
	// job's error. It returns the job as flagged; ErrJobFinished if it has ended.
	RequestStop(ctx context.Context, jobID string, status JobStatus, message string) (Job, error)
	// PendingBatches lists the job's batches that were never sent, in order.
	PendingBatches(ctx context.Context, jobID string) ([]int, error)
	// Devices returns a page of the job's devices in batch order.
	Devices(ctx context.Context, jobID string, cursor string, limit int) ([]DeviceState, string, error)
	// BatchStates returns the stored state of each device of a batch (ErrJobNotFound when the
	// batch does not exist).
	BatchStates(ctx context.Context, jobID string, batch int) (map[string]DeviceState, error)
	// Record applies changes to one batch in one conditional write: every change's From must be
	// the device's stored state, else ErrStateChanged and nothing is applied. It moves the job's
	// counts with the changes and returns one progress event per change, numbered with the
	// change's Seq, which it stores as the device's. Catch-up reads those states (Events).
	Record(ctx context.Context, jobID string, batch int, changes []Change) ([]Event, error)
	// FinishBatch marks a batch done (counting it in the job's BatchesDone once, however often it
	// is called) and returns the job as it stands after, as JobControl reads it.
	FinishBatch(ctx context.Context, jobID string, batch int) (Job, error)
	// EndJob sets the job's final status and finish time and its job_done event's seq
	// (JobDoneSeq), unless the job has ended: ErrJobFinished. It returns the ended job.
	EndJob(ctx context.Context, jobID string, status JobStatus, at time.Time) (Job, error)
	// ForgetUnfinished drops the job from the list of unfinished jobs.
	ForgetUnfinished(ctx context.Context, jobID string) error
	// RunningJobs counts the unfinished jobs requested by requestedBy. It may stop counting once
	// it has reached atMost (0: count them all), so a count of atMost or more is a lower bound.
	RunningJobs(ctx context.Context, requestedBy string, atMost int) (int, error)
}

// Publisher pushes progress events to subscribers; failures are its own to log and count: they
// never fail a run.
type Publisher interface {
	Publish(ctx context.Context, events []Event)
}

// Event is a progress message: a device's state change ("bulk_progress") or the end of a job
// ("job_done").
type Event struct {
	Type       string `json:"type"`
	JobID      string `json:"job_id"`
	DeviceID   string `json:"device_id,omitempty"`
	Status     string `json:"status"`
	RunID      string `json:"run_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	// OutputDigest is set on a finished device's event (run.OutputDigest).
	OutputDigest string `json:"output_digest,omitempty"`
	// Changed is set on a succeeded device's event when there was a previous run to compare
	// with (run.Run.Changed).
	Changed *bool              `json:"changed,omitempty"`
	Seq     int64              `json:"seq"`
	Counts  map[run.Status]int `json:"counts"`
	At      time.Time          `json:"at"`
}

// Event types.
const (
	EventProgress = "bulk_progress"
	EventJobDone  = "job_done"
)

// Enqueuer accepts bulk requests.
type Enqueuer struct {
	Inventory Inventory
	Jobs      JobStore
	Queue     Queue
	Publisher Publisher
	// BatchSize is the number of devices per message (1-50).
	BatchSize int
	// JobTTL is how long job records are kept (0: forever).
	JobTTL time.Duration
	// MaxRunning bounds the unfinished jobs of one requester by the caller's role: an admin
	// everywhere has the Admin entry, everyone else the Operator one. A role without an entry
	// (or with Max 0) has no limit.
	MaxRunning map[auth.Role]RunningLimit
	// Answers keeps the secret prompt answers of jobs until they end (nil: a job with a secret
	// answer is refused).
	Answers AnswerStore
	// Notices sends the events of the jobs a cancel or a failed enqueue ends (optional).
	Notices *Notices
	Now     func() time.Time
}

// RunningLimit is the most unfinished jobs one requester may have, and the setting that says so
// (named in a refusal, so the caller knows what an administrator would change).
type RunningLimit struct {
	Max     int
	Setting string
}

// Accepted is the answer to an accepted bulk request.
type Accepted struct {
	JobID       string `json:"job_id"`
	DeviceCount int    `json:"device_count"`
	Batches     int    `json:"batches"`
}

// Enqueue validates req, creates the job and sends its batches on behalf of by. The job is
// requested by by.Name() unless req.RequestedBy is given and by is an admin everywhere. by needs
// the operator role on every device's site: a device out of its scope is refused as unknown, as
// if it did not exist, so scope does not reveal what other sites hold.
func (e *Enqueuer) Enqueue(ctx context.Context, req Request, by auth.Identity) (Accepted, error) {
	ids, err := req.Normalize()
	if err != nil {
		return Accepted{}, err
	}
	requestedBy, mayOverride := by.Name(), by.Can(auth.Admin)
	if req.RequestedBy != "" && req.RequestedBy != requestedBy && !mayOverride {
		return Accepted{}, fieldErr("requested_by", "only an admin may run a job on someone else's behalf")
	}
	if req.RequestedBy == "" || !mayOverride {
		req.RequestedBy = requestedBy
	}
	devs := req.Devices
	if devs == nil {
		if devs, err = e.Inventory.Lookup(ctx, ids); err != nil {
			return Accepted{}, fmt.Errorf("check devices: %w", err)
		}
	}
	sites := make(map[string]string, len(ids))
	var unknown []string
	for _, id := range ids {
		d, ok := devs[id]
		if !ok || !by.CanOn(auth.Operator, d.Site) {
			unknown = append(unknown, id)
			continue
		}
		sites[id] = d.Site
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Accepted{}, &UnknownDevicesError{IDs: unknown}
	}
	if err := e.checkRunning(ctx, req.RequestedBy, by); err != nil {
		return Accepted{}, err
	}

	now := e.now()
	batches := Split(ids, e.BatchSize)
	sent := len(batches)
	if m := req.Options.MaxConcurrency; m > 0 {
		// Run at most m devices at once: m/batch-size batches in flight, each finishing batch
		// sends the next pending one.
		size := len(batches[0])
		sent = min(len(batches), max(1, m/size))
	}
	job := Job{
		ID: NewID(now), Command: req.Command, Commands: Redacted(req.Commands), RequestedBy: req.RequestedBy, DeviceCount: len(ids),
		Batches: len(batches), Status: JobQueued, Options: req.Options, CreatedAt: now,
		Counts: map[run.Status]int{run.Queued: len(ids)}, Sites: JobSites(sites), Grants: GrantsOf(by),
		SavedJobID: req.SavedJobID, RerunOf: req.RerunOf,
	}
	if e.JobTTL > 0 {
		job.ExpiresAt = now.Add(e.JobTTL)
	}
	if HasSecrets(req.Commands) {
		// Stored before the job exists, so every executor of it finds them; removed when it ends.
		if e.Answers == nil {
			return Accepted{}, fault.New(fault.Unavailable, "commands", "this deployment has no store for secret answers")
		}
		if err := e.Answers.PutAnswers(ctx, job.ID, SecretAnswers(req.Commands)); err != nil {
			return Accepted{}, fmt.Errorf("store secret answers of job %s: %w", job.ID, err)
		}
		job.SecretAnswers = true
	}
	// The job before this one that ran the same commands holds most devices' previous runs.
	// Knowing it is a saving, never a need: a failure leaves each device to look its own up.
	if prev, err := e.Jobs.SwapLastJob(ctx, CommandsKey(job.Command, job.Commands), job.ID, job.ExpiresAt); err != nil {
		slog.Default().WarnContext(ctx, "record the job's commands' last job; devices look their previous runs up one by one", "job_id", job.ID, "err", err)
	} else {
		job.PreviousJob = prev
	}
	if err := e.Jobs.CreateJob(ctx, job, batches, sent); err != nil {
		if job.SecretAnswers {
			if derr := e.Answers.DeleteAnswers(context.WithoutCancel(ctx), job.ID); derr != nil {
				slog.Default().ErrorContext(ctx, "delete secret answers of a job not created", "job_id", job.ID, "err", derr)
			}
		}
		return Accepted{}, fmt.Errorf("create job: %w", err)
	}
	msgs := make([]Message, sent)
	for i := range sent {
		msgs[i] = MessageFor(job, i, batches[i])
		if msgs[i].Devices = snapshotOf(devs, batches[i], msgs[i]); msgs[i].Devices != nil {
			msgs[i].DevicesAt = now
		}
	}
	failed, err := e.Queue.SendAll(ctx, msgs)
	if err != nil || len(failed) > 0 {
		// No ghost jobs: every batch that did not go out is cancelled now, and the job is marked
		// failed so executors cancel the devices of the batches that did. When the queue cannot
		// say which went out, all are cancelled: a cancelled device is never run.
		var unsent []int
		if err != nil {
			for i := range batches {
				unsent = append(unsent, i)
			}
		} else {
			unsent = append(unsent, failed...)
			for i := sent; i < len(batches); i++ {
				unsent = append(unsent, i)
			}
			err = fmt.Errorf("%d of %d batches could not be sent", len(failed), sent)
		}
		if aerr := e.machine().abort(context.WithoutCancel(ctx), job, unsent, JobFailed); aerr != nil {
			return Accepted{}, fmt.Errorf("enqueue job %s: %w (and marking it failed: %v)", job.ID, err, aerr)
		}
		return Accepted{}, fmt.Errorf("enqueue job %s: %w", job.ID, err)
	}
	return Accepted{JobID: job.ID, DeviceCount: len(ids), Batches: len(batches)}, nil
}

// MaxSnapshotBytes bounds the devices a batch message carries (Message.Devices), as JSON: a
// batch whose devices take more, or would take the message past maxMessageBytes, is sent
// without them and its executor reads them. The sender groups messages by SQS's 256 KiB as well
// as by ten.
const MaxSnapshotBytes = 96 << 10

// maxMessageBytes is SQS's classic bound on a message (1 MiB since 2025), less room for its
// envelope.
const maxMessageBytes = 256<<10 - 4<<10

// snapshotOf is the devices of ids from devs as batch message m carries them (without a pending
// host key, which the executor does not use); nil when they would make it too large.
func snapshotOf(devs map[string]device.Device, ids []string, m Message) []device.Device {
	out := make([]device.Device, 0, len(ids))
	for _, id := range ids {
		d := devs[id]
		d.PendingHostKey = nil
		out = append(out, d)
	}
	snap, err := json.Marshal(out)
	if err != nil || len(snap) > MaxSnapshotBytes {
		return nil
	}
	base, err := json.Marshal(m)
	if err != nil || len(base)+len(snap) > maxMessageBytes {
		return nil
	}
	return out
}

// checkRunning refuses a job that would give requestedBy more unfinished jobs than by's role
// allows. Count and create are not one transaction: requests accepted at the same moment may
// each see room for one more, so the limit can be exceeded by the number of simultaneous
// accepts.
func (e *Enqueuer) checkRunning(ctx context.Context, requestedBy string, by auth.Identity) error {
	role := auth.Operator
	if by.Can(auth.Admin) {
		role = auth.Admin
	}
	limit := e.MaxRunning[role]
	if limit.Max <= 0 {
		return nil
	}
	n, err := e.Jobs.RunningJobs(ctx, requestedBy, limit.Max)
	if err != nil {
		return fmt.Errorf("count running jobs of %s: %w", requestedBy, err)
	}
	if n < limit.Max {
		return nil
	}
	return fault.Wrap(ErrTooManyRunningJobs, fault.OverLimit, "", fmt.Sprintf(
		"%s already has %d unfinished jobs (runs included); the %s role's limit is %d (%s): wait for one to finish or cancel one",
		requestedBy, n, role, limit.Max, limit.Setting))
}

// JobSites is the sorted set of sites of a job's devices (sites maps each device to its site),
// with "" when a device has no site.
func JobSites(sites map[string]string) []string {
	set := make(map[string]bool, 4)
	for _, s := range sites {
		set[s] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// MessageFor builds the message of batch i of job j.
func MessageFor(j Job, i int, ids []string) Message {
	return Message{JobID: j.ID, Batch: i, DeviceIDs: ids, Command: j.Command, Commands: Redacted(j.Commands), SecretAnswers: j.SecretAnswers,
		RequestedBy: j.RequestedBy, Options: j.Options, PreviousJob: j.PreviousJob}
}

func (e *Enqueuer) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now().UTC()
}

// machine is the state machine over the enqueuer's job store, publishing to its publisher.
func (e *Enqueuer) machine() machine {
	return machine{jobs: e.Jobs, publish: e.publish, now: e.now, logger: slog.Default(), answers: e.Answers, notices: e.Notices}
}

func (e *Enqueuer) publish(ctx context.Context, events []Event) {
	if e.Publisher != nil && len(events) > 0 {
		e.Publisher.Publish(ctx, events)
	}
}

// Cancel asks a job to stop: running devices finish, devices not started become cancelled.
func (e *Enqueuer) Cancel(ctx context.Context, jobID string) (Job, error) {
	job, err := e.Jobs.RequestStop(ctx, jobID, JobCancelled, "")
	if err != nil {
		return Job{}, err
	}
	// Batches never sent (max_concurrency) will not be picked up by any executor: cancel now.
	pending, err := e.Jobs.PendingBatches(ctx, jobID)
	if err != nil {
		return Job{}, err
	}
	if err := e.machine().endBatches(ctx, job, pending, ending{to: run.Cancelled, reason: StopReason(JobCancelled)}); err != nil {
		return Job{}, err
	}
	return e.Jobs.GetJob(ctx, jobID)
}

// DefaultDevicesPage is how many devices a page of a job's devices holds when the caller names no
// limit; a page ends at a batch boundary, so it may hold fewer.
const DefaultDevicesPage = 500

// DevicesCursor is the cursor of the page of a job's devices that starts at batch.
func DevicesCursor(batch int) string { return strconv.Itoa(batch) }

// EventsCursor is the cursor of a catch-up page that starts at the device at index i of batch's
// devices.
func EventsCursor(batch, i int) string {
	if i == 0 {
		return DevicesCursor(batch)
	}
	return strconv.Itoa(batch) + "." + strconv.Itoa(i)
}

// ParseEventsCursor returns the batch and device index a catch-up cursor starts at, and
// fault.ErrBadCursor for any cursor EventsCursor did not make.
func ParseEventsCursor(cursor string) (batch, i int, err error) {
	b, d, found := strings.Cut(cursor, ".")
	if batch, err = ParseDevicesCursor(b); err != nil || !found {
		return batch, 0, err
	}
	if i, err = strconv.Atoi(d); err != nil || i <= 0 {
		return 0, 0, fault.ErrBadCursor
	}
	return batch, i, nil
}

// ParseDevicesCursor returns the batch a devices cursor starts at ("" is the first batch), and
// fault.ErrBadCursor for any cursor DevicesCursor did not make.
func ParseDevicesCursor(cursor string) (int, error) {
	if cursor == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(cursor)
	if err != nil || n < 0 {
		return 0, fault.ErrBadCursor
	}
	return n, nil
}
