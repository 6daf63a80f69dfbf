package bulk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/drift"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/policy"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// Change is one device's state transition within a batch.
type Change struct {
	DeviceID   string
	From       run.Status
	To         run.Status
	RunID      string
	Reason     string
	DurationMS int64
	// OutputDigest is the finished run's output digest (run.OutputDigest).
	OutputDigest string
	// Commands are the finished run's per-command results (run.Run.Commands), without their
	// command text, which the job holds, or their output offsets.
	Commands []run.CommandResult
	// Changed is the finished run's drift flag (run.Run.Changed).
	Changed *bool
	// Seq numbers the change's event (progressseq.go); the recording side sets it.
	Seq int64
}

// ErrStateChanged means a device's stored state was not the one a Change starts from: someone
// else (a duplicate delivery) moved it. The caller reloads and retries. Like the batch and run
// lease signals it has no fault kind: it is handled where it arises, and one that reached a
// caller would be answered and logged as the internal error it then is.
var ErrStateChanged = errors.New("device state changed concurrently")

// ErrBatchLeased means another invocation holds the batch (a duplicate delivery of its
// message); Claim.HeldUntil says until when. A signal without a fault kind, like
// ErrStateChanged.
var ErrBatchLeased = errors.New("batch is held by another invocation")

// Claim is a batch lease taken by one invocation.
type Claim struct {
	// States is the stored state of each device of the batch.
	States map[string]DeviceState
	// First is set when no invocation ever held the batch before: none of its runs can exist
	// yet, so they are created without reading or conditions.
	First bool
	// HeldUntil is when another holder's lease ends (with ErrBatchLeased).
	HeldUntil time.Time
}

// ExecStore is what the executor needs of the job store.
type ExecStore interface {
	JobStore
	// ClaimBatch takes the batch's lease for holder until until, unless another holder's lease
	// is still running (ErrBatchLeased). One invocation at a time runs a batch's devices.
	ClaimBatch(ctx context.Context, jobID string, batch int, holder string, until time.Time) (Claim, error)
	// ReleaseBatch ends holder's lease early, so a continuation can claim the batch at once.
	ReleaseBatch(ctx context.Context, jobID string, batch int, holder string) error
	// MarkRunning moves a queued job to running.
	MarkRunning(ctx context.Context, jobID string) error
	// ClaimPendingBatch takes the next never-sent batch, if any, so exactly one caller sends it.
	ClaimPendingBatch(ctx context.Context, jobID string) (int, []string, bool, error)
}

// listRunsFrom is the fewest devices a batch lists its runs for (RunStore.ListRuns): a list and
// its index entry cost about two write units, which two runs' own index entries would cost too.
const listRunsFrom = 3

// RunStore is what the executor needs of the run store.
type RunStore interface {
	run.Store
	// StartNew records a run the caller knows does not exist yet (it holds its batch's first
	// lease), without the reads and conditions Start needs to find an earlier attempt.
	StartNew(ctx context.Context, r run.Run) (run.Run, error)
	// FinishNew stores, finished, a run that was never written and that the caller holds its
	// batch's first lease for: a plain write without the conditions Finish needs. A crash may
	// leave its byte accounting half written, which Reconcile repairs.
	FinishNew(ctx context.Context, r run.Run, data []byte) error
	// Reconcile makes the byte accounting of a run agree with the stored run (see FinishNew).
	Reconcile(ctx context.Context, deviceID, runID string) error
	// Abandon marks a non-terminal run failed with reason; terminal runs are left alone.
	Abandon(ctx context.Context, id, reason string) error
	// Previous returns the newest succeeded run of r's command on r's device created before r
	// that ran the same commands (run.SameCommands); run.ErrNotFound when there is none.
	Previous(ctx context.Context, r run.Run) (run.Run, error)
	// PreviousIn returns r's device's run in job when it succeeded running r's commands: r's
	// previous run when job is the newest job before r's that ran them (Job.PreviousJob); false
	// when it is not there (the caller then asks Previous). Lookups that arrive together share
	// one read.
	PreviousIn(ctx context.Context, job string, r run.Run) (run.Run, bool, error)
	// ListRuns lists, for the purges, the runs of batch of job on devices (RunID) that the
	// batch's first invocation is about to write, created at or after at, until a while after
	// expires (zero: until deleted). Runs written after it carry run.Listed: the store lists none
	// of them by itself.
	ListRuns(ctx context.Context, job string, batch int, devices []string, at, expires time.Time) error
	// RecordDigests keeps the filtered digests (by device) of batch's runs in job that succeeded
	// running r's commands, until expires (zero: until deleted), beside those kept before.
	RecordDigests(ctx context.Context, job string, batch int, r run.Run, digests map[string]string, expires time.Time) error
	// DigestsIn returns the digests RecordDigests kept for batch of job when its runs ran r's
	// commands; empty otherwise. One read for the whole batch.
	DigestsIn(ctx context.Context, job string, batch int, r run.Run) (map[string]string, error)
}

// NoiseSource reads the noise filters admins added per platform; *dynamo.FilterStore
// implements it.
type NoiseSource interface {
	CustomFilters(ctx context.Context) (map[string][]platform.NoiseFilter, error)
}

// Reasons of devices failed because their batch's message was not delivered.
const (
	// ReasonDeliveryFailed: the batch's message exhausted its receives and reached the
	// dead-letter queue.
	ReasonDeliveryFailed = "delivery_failed"
	// ReasonDeliveryLost: the batch's message vanished (a purged queue, a dead-letter consumer
	// that failed) and the watchdog's re-send brought no progress either.
	ReasonDeliveryLost = "delivery_lost"
)

// RunAbandoner ends the runs of devices whose batch will never run them.
type RunAbandoner interface {
	// Abandon marks a non-terminal run failed with reason; terminal runs are left alone.
	Abandon(ctx context.Context, id, reason string) error
	// Reconcile makes the byte accounting of a run agree with the stored run.
	Reconcile(ctx context.Context, deviceID, runID string) error
}

// DeadLetter makes every unfinished device of a batch that exhausted its deliveries terminal
// (failed, reason delivery_failed), with its run, so the job still ends.
func (x *Executor) DeadLetter(ctx context.Context, m Message) error {
	if m.JobID == "" {
		return errors.New("dead letter without job_id")
	}
	job, err := x.Jobs.JobControl(ctx, m.JobID)
	if errors.Is(err, ErrJobNotFound) {
		return nil // expired or never stored: nothing to end
	}
	if err != nil {
		return fmt.Errorf("get job %s: %w", m.JobID, err)
	}
	failed, err := x.failBatch(ctx, x.Runs, job, m.Batch, ReasonDeliveryFailed)
	if err != nil {
		return err
	}
	x.logger().Warn("batch dead-lettered; its unfinished devices failed", "job_id", m.JobID, "batch", m.Batch,
		"devices", failed, "reason", ReasonDeliveryFailed)
	return nil
}

// failBatch ends a batch whose message will never be run: its unfinished devices and their runs
// fail with reason (machine.endBatch), and the job's next never-sent batch, if any, is sent. It
// returns how many devices it failed. The dead-letter consumer and the watchdog share it.
func (x *Executor) failBatch(ctx context.Context, runs RunAbandoner, job Job, batch int, reason string) (int, error) {
	failed, err := x.machine().endBatch(ctx, job, batch, ending{to: run.Failed, reason: reason, runs: runs})
	if err != nil {
		return failed, err
	}
	// A job that sends its batches one after another (max_concurrency) would otherwise wait
	// forever for this batch to send the next.
	if job, err := x.viewedJob(ctx, job.ID); err == nil && !job.Status.Terminal() {
		if err := x.sendNext(ctx, job.ID, &jobView{x: x, job: job, at: x.now()}); err != nil {
			x.logger().Error("send next pending batch", "job_id", job.ID, "err", err)
		}
	}
	return failed, nil
}

// machine is the state machine over the executor's job store, publishing as the executor does.
func (x *Executor) machine() machine {
	return machine{jobs: x.Jobs, publish: x.publish, now: x.now, logger: x.logger(), answers: x.Answers, notices: x.Notices}
}

// DeviceSource resolves devices and their credentials.
type DeviceSource interface {
	// GetMany returns the devices among ids that exist.
	GetMany(ctx context.Context, ids []string) (map[string]device.Device, error)
	CredentialFor(ctx context.Context, d device.Device) (device.Credential, error)
	// Current returns device id as stored now (strongly consistent); device.ErrNotFound when it
	// is gone.
	Current(ctx context.Context, id string) (device.Device, error)
	// PinHostKey pins key as the host key of device id unless one is pinned already, and
	// returns the pinned key afterwards (a conditional write: one of concurrent pins wins, and
	// only it gets won set, even when the others offered the same key).
	PinHostKey(ctx context.Context, id, key string) (pinned string, won bool, err error)
	// RecordPendingHostKey records key as the host key device id offered instead of its
	// pinned one, for an admin to accept.
	RecordPendingHostKey(ctx context.Context, id, key string) error
}

// batchDevices is one batch's devices, read in one call, the credentials of shared profiles,
// read once per batch, and the command policy in force when the batch started with the roles
// the job's requester held.
type batchDevices struct {
	src     DeviceSource
	devices map[string]device.Device
	// snapshot is set when devices are the ones the batch's message carries.
	snapshot bool
	policy   *policy.Set
	grants   Grants
	// noises are the batch's noise filters, read once per batch like the policy.
	noises *drift.Noises
	// first is set when this invocation holds the batch's first lease: no run exists yet.
	first bool
	// listed is set when the batch's runs were listed for the purges (RunStore.ListRuns).
	listed bool
	// cmds are the batch's commands with their secret answers; answersErr, when set, is why
	// they could not be read (its devices fail, reason answers_unavailable).
	cmds       []Command
	answersErr error
	mu         sync.Mutex
	shared     map[string]device.Credential
	// hops are the batch's jump hosts, read once each; tunnels carries the connections through
	// them, the process's shared set (nil when no device of the batch has a chain or the engine
	// cannot share).
	hops    *hops
	tunnels *sshexec.Tunnels
	// releaseTunnels lets go of tunnels (safe to call more than once).
	releaseTunnels func()
	// mismatched are the jump host keys refused in this batch, recorded once each.
	mismatched map[string]bool
	// prevDigests are the filtered digests of this batch's runs in the job before that ran
	// its commands (Message.PreviousJob), by device; digests those of the runs that succeeded
	// here, kept for the next job.
	prevDigests map[string]string
	digests     map[string]string
	// outcomes are the batch's device outcomes by status, emitted as metrics once it ends.
	outcomes map[run.Status]*outcomes
}

// SnapshotMaxAge is how long after the enqueue read them a batch runs on the devices its
// message carries (Message.Devices); a batch that starts later reads them again. An edit in that
// time applies from the next job, as it would had the batch already started.
const SnapshotMaxAge = time.Minute

// devicesOf returns the devices among m's that exist: the message's own while they are fresh
// (SnapshotMaxAge, snapshot set), else read.
func (x *Executor) devicesOf(ctx context.Context, m Message) (devs map[string]device.Device, snapshot bool, err error) {
	if age := x.now().Sub(m.DevicesAt); len(m.Devices) == len(m.DeviceIDs) && age < SnapshotMaxAge && age > -SnapshotMaxAge {
		devs := make(map[string]device.Device, len(m.Devices))
		for i, d := range m.Devices {
			if d.ID != m.DeviceIDs[i] {
				devs = nil // not the batch's devices: read them
				break
			}
			devs[d.ID] = d
		}
		if devs != nil {
			return devs, true, nil
		}
	}
	devs, err = x.Devices.GetMany(ctx, m.DeviceIDs)
	return devs, false, err
}

// outcomes are a batch's device outcomes of one status, for its metrics.
type outcomes struct {
	durations, bytes []float64
}

// noteOutcome notes a device's outcome for the batch's metrics.
func (b *batchDevices) noteOutcome(st run.Status, durationMS, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.outcomes == nil {
		b.outcomes = map[run.Status]*outcomes{}
	}
	o := b.outcomes[st]
	if o == nil {
		o = &outcomes{}
		b.outcomes[st] = o
	}
	o.durations = append(o.durations, float64(durationMS))
	o.bytes = append(o.bytes, float64(bytes))
}

// keepDigest notes the filtered digest of device id's succeeded run.
func (b *batchDevices) keepDigest(id, digest string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.digests == nil {
		b.digests = map[string]string{}
	}
	b.digests[id] = digest
}

// firstMismatch reports whether key, offered by jump host id, is refused for the first time in
// this batch: every device behind the hop is refused with it, and it is recorded once.
func (b *batchDevices) firstMismatch(id, key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mismatched == nil {
		b.mismatched = map[string]bool{}
	}
	k := id + " " + key
	if b.mismatched[k] {
		return false
	}
	b.mismatched[k] = true
	return true
}

func (b *batchDevices) credential(ctx context.Context, d device.Device) (device.Credential, error) {
	if d.OwnSecret() {
		// A device's own enable secret makes its credential its own, shared with no other.
		return b.src.CredentialFor(ctx, d)
	}
	// A profile decides by a device's site and tags whether the device may use it, so a
	// credential read for one device is reused only by devices with the same site and tags.
	key := profileKey(d)
	b.mu.Lock()
	c, ok := b.shared[key]
	b.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := b.src.CredentialFor(ctx, d)
	if err != nil {
		return c, err
	}
	b.mu.Lock()
	b.shared[key] = c
	b.mu.Unlock()
	return c, nil
}

// CredentialCache is a DeviceSource whose credentials may come from a cache (device.Inventory
// over a secrets.Cache): a batch's are read ahead together, and a device that refuses a kept
// credential has its credential read again.
type CredentialCache interface {
	// PrefetchCredentials reads ahead the credentials of ds in as few calls as the store allows.
	PrefetchCredentials(ctx context.Context, ds []device.Device) error
	// RefreshCredential reads d's credential again, not from the cache; refreshed is false when
	// nothing was cached (the credential read before was the stored one).
	RefreshCredential(ctx context.Context, d device.Device) (c device.Credential, refreshed bool, err error)
}

// prefetchCredentials reads the batch's credentials ahead when the source caches them; a failure
// only costs each device its own read.
func (b *batchDevices) prefetchCredentials(ctx context.Context, log *slog.Logger) {
	cc, ok := b.src.(CredentialCache)
	if !ok {
		return
	}
	ds := make([]device.Device, 0, len(b.devices))
	for _, d := range b.devices {
		ds = append(ds, d)
	}
	if err := cc.PrefetchCredentials(ctx, ds); err != nil {
		log.Warn("prefetch credentials", "err", err)
	}
}

var (
	errDeviceGone          = errors.New("device deleted")
	errCredentialElsewhere = errors.New("credential stored for another address")
)

// credentialFor returns d's credential and the device it goes to. The device may have been read
// before a change (carried in the batch's message, or read eventually consistent): it is read
// again, strongly, when its own credential was stored for another address than d's, when that
// credential names no address and d came with the message (a credential stored before
// addresses were kept), or when its credential is gone (errDeviceGone if the device is too). A
// device's own credential is never sent to an address it was not stored for
// (errCredentialElsewhere).
func (x *Executor) credentialFor(ctx context.Context, bd *batchDevices, d device.Device) (device.Device, device.Credential, error) {
	cred, err := bd.credential(ctx, d)
	switch {
	case errors.Is(err, device.ErrNotFound):
	case err != nil:
		return d, device.Credential{}, err
	case d.OwnSecret() && cred.ForOther(d):
	case d.OwnSecret() && cred.For == "" && bd.snapshot:
	default:
		return d, cred, nil
	}
	cur, cerr := bd.src.Current(ctx, d.ID)
	if errors.Is(cerr, device.ErrNotFound) {
		return d, device.Credential{}, errDeviceGone
	}
	if cerr != nil {
		return d, device.Credential{}, fmt.Errorf("read device %s again: %w", d.ID, cerr)
	}
	if cred, err = bd.credential(ctx, cur); err != nil {
		return cur, device.Credential{}, err
	}
	if cur.OwnSecret() && cred.ForOther(cur) {
		return cur, device.Credential{}, errCredentialElsewhere
	}
	return cur, cred, nil
}

// refreshCredential returns d's credential read again when it may have come from a cache and
// differs from used; the batch's devices sharing a profile credential get it too. A device's own
// credential stored since for another address is not returned.
func (b *batchDevices) refreshCredential(ctx context.Context, log *slog.Logger, d device.Device, used device.Credential) (device.Credential, bool) {
	cc, ok := b.src.(CredentialCache)
	if !ok {
		return device.Credential{}, false
	}
	c, refreshed, err := cc.RefreshCredential(ctx, d)
	if err != nil {
		log.Warn("read credential again after an auth failure", "err", err)
		return device.Credential{}, false
	}
	if !refreshed || c == used || c.ForOther(d) {
		return device.Credential{}, false
	}
	if !d.OwnSecret() {
		b.mu.Lock()
		b.shared[profileKey(d)] = c
		b.mu.Unlock()
	}
	return c, true
}

// useCredential sets the target's login and secrets from c (its login, else the device's user).
func useCredential(t *sshexec.Target, d device.Device, c device.Credential) {
	t.Username = d.Username
	if c.Login != "" {
		t.Username = c.Login
	}
	t.Password, t.PrivateKeyPEM, t.Passphrase, t.EnableSecret = c.Password, []byte(c.PrivateKey), c.Passphrase, c.EnableSecret
}

// runEngine runs the batch's command or sequence on target; false when the engine cannot run a
// sequence.
func (x *Executor) runEngine(ctx context.Context, target sshexec.Target, m Message, bd *batchDevices, sink *run.ChunkWriter) (sshexec.Result, bool) {
	if se, ok := x.Engine.(SequenceEngine); ok {
		return se.RunSequence(ctx, target, engineSequence(bd.cmds, m.Options.StopOnError), sink), true
	}
	if m.Commands == nil {
		return x.Engine.Run(ctx, target, m.Command, sink), true
	}
	return sshexec.Result{}, false
}

// profileKey is what a profile's credential is shared by within a batch: the profile, the
// device's site and its tags.
func profileKey(d device.Device) string {
	keys := make([]string, 0, len(d.Tags))
	for k := range d.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(strconv.Quote(d.CredentialProfile))
	b.WriteString(strconv.Quote(d.Site))
	for _, k := range keys {
		b.WriteString(strconv.Quote(k))
		b.WriteString(strconv.Quote(d.Tags[k]))
	}
	return b.String()
}

// PolicySource reads the stored command policy (policy.ErrNotStored when none is stored: the
// defaults apply); *dynamo.PolicyStore implements it.
type PolicySource interface {
	GetPolicy(ctx context.Context) (policy.Policy, error)
}

// ReasonCommandDenied is the reason of a run the command policy refused before it started.
const ReasonCommandDenied = policy.Code

// Engine runs one command on one device.
type Engine interface {
	Run(ctx context.Context, t sshexec.Target, command string, sink sshexec.Sink) sshexec.Result
}

// SequenceEngine runs a sequence of commands on one device, telling the sink where each command's
// output starts; an Engine that implements it runs every device's commands with it.
type SequenceEngine interface {
	RunSequence(ctx context.Context, t sshexec.Target, seq sshexec.Sequence, sink sshexec.SequenceSink) sshexec.Result
}

// Executor runs batches.
type Executor struct {
	Jobs      ExecStore
	Runs      RunStore
	Devices   DeviceSource
	Engine    Engine
	Queue     Queue
	Publisher Publisher
	Logger    *slog.Logger
	// Policy is the command policy, read once per batch and checked before each device: a
	// refusal ends the device's run failed with reason command_denied and sends nothing. Nil
	// checks against the built-in defaults.
	Policy PolicySource
	// Answers holds the secret prompt answers of jobs (read once per batch that needs them,
	// removed when a job ends). Without it a device whose sequence has a secret prompt fails,
	// reason answers_unavailable.
	Answers AnswerStore
	// Noise reads the admins' noise filters once per batch (optional: without it the
	// platforms' built-in filters alone decide which lines a run's filtered digest leaves out).
	Noise NoiseSource
	// JumpHosts resolves the jump host chains of devices (optional: without it a device with a
	// chain ends unreachable, jump_host_failed).
	JumpHosts JumpHostSource
	// JumpMaxChannels bounds the device connections a batch runs at once through one jump host
	// (default sshexec's). When the Engine is a TunnelMaker the process's batches share their hop
	// connections, bounded by JumpMaxChannels for each batch that may run at once (MaxBatches,
	// one when unbounded).
	JumpMaxChannels int
	// Metrics receives one EMF line per batch and device status, and per finished job (optional).
	Metrics *metrics.Emitter
	// Audit receives the executor's audit entries (optional): a job's start and finish and
	// every refusal before a device runs (a denied command, a host key that does not match) —
	// not one entry per device run, whose record is the run itself: a 100,000-device job writes
	// a handful of entries, not 100,000.
	Audit audit.Recorder
	// Notices sends a job's events when it ends and a host key's when it does not match
	// (optional).
	Notices *Notices
	// Concurrency bounds devices run at once per batch (default 50).
	Concurrency int
	// BatchLease is how long an invocation holds its batch: longer than the function timeout,
	// so a live invocation's batch is never taken over (0: a minute past the deadline).
	BatchLease time.Duration
	// RunTTL sets runs' expiry (0: never).
	RunTTL time.Duration
	// DeadlineMargin is kept free before the invocation's deadline: a device is not started
	// unless its timeout fits before deadline-margin (default 5 s), and a run still going then
	// ends timed_out, reason invocation_deadline.
	DeadlineMargin time.Duration
	// LongRunStart is the most time left in the invocation a device needs to be started
	// (default LongRunStart): a device whose timeout is longer starts with this much left.
	LongRunStart time.Duration
	// FlushInterval groups state changes into one write (default 20 ms).
	FlushInterval time.Duration
	// JobRefresh is how stale the executor's view of the job (cancel, failures) may be
	// (default 250 ms).
	JobRefresh time.Duration
	// StartDelay is how long a run of a batch's first delivery may last before its running
	// record is written (default DefaultStartDelay); a shorter run is written once, finished.
	StartDelay time.Duration
	// MaxBatches bounds the batches whose SSH sessions run at once in this process (0: no
	// bound). A batch gives its slot up when all but the last tenth of its sessions have ended
	// (sessionTail), so the next batch's sessions run beside its slowest devices and while its
	// results are still being stored. A Lambda instance runs one invocation, so one
	// batch, at a time; the local event source runs its invocations in one process, which sets
	// this to the cores it can give them.
	MaxBatches int
	// UnstoredPerSlot bounds, with MaxBatches, the devices per batch slot that started and are
	// not yet stored (default unstoredPerSlot).
	UnstoredPerSlot int
	Now             func() time.Time

	batchesOnce sync.Once
	batches     chan struct{}
	// unstored holds a token per device started and not yet stored, when MaxBatches is set
	// (unstoredPerSlot per slot).
	unstored chan struct{}
	// inLine holds the batches (2×MaxBatches) that wait for a slot with their jump host
	// connections opening.
	inLine chan struct{}
	// jobChains remembers the jump host chains of each job's last batch, for warm.
	jobChains jobChains
	// parked holds what batches handed on for want of a slot had warmed, for their continuations.
	parked parkedWarm
	// stacks runs devices and their previous-run lookups on goroutines whose stacks have grown.
	stacks warmGoroutines
	// share is the jump host connections the process's batches share.
	share tunnelShare
	// function names the Lambda function in metrics when it is not the executor (the watchdog).
	function string
	// actor names the function in audit entries when it is not the executor (the watchdog).
	actor string
}

// batchSlots returns the process's MaxBatches batch slots and the places in line of the batches
// that open their jump host connections while they wait for one (nil, nil: no bound).
func (x *Executor) batchSlots() (run, line chan struct{}) {
	x.batchesOnce.Do(func() {
		if x.MaxBatches > 0 {
			x.batches = make(chan struct{}, x.MaxBatches)
			x.inLine = make(chan struct{}, 2*x.MaxBatches)
			x.unstored = make(chan struct{}, cmp.Or(x.UnstoredPerSlot, unstoredPerSlot)*x.MaxBatches)
		}
	})
	return x.batches, x.inLine
}

// unstoredPerSlot bounds, per batch slot, the devices of a process that started and are not yet
// stored (with MaxBatches set: locally). The batch slot frees as sessions end, so that the next
// batch's sessions run while results are stored; where the stores answer slower than sessions
// end (one DynamoDB Local for every invocation on two cores), results would queue without bound
// and reach browsers seconds after their devices finished. One batch's worth keeps the queue
// short now that a batch starts without reading its devices (Message.Devices): two batches'
// worth, enough while that read held each batch back, doubled the time from a device's end to
// its browser (measured: docs/performance.md).
const unstoredPerSlot = MaxBatchSize

// takeBatchSlot takes one of the process's MaxBatches slots for m, waiting for one until until
// (zero: as long as ctx lasts); a free slot is taken even when until has passed. It returns the
// slot's release, or false when none came free in time. A batch that has to wait, one of the
// next MaxBatches in line, opens its jump host connections meanwhile (warmed, nil when it has
// none): their handshakes overlap the sessions of the batches ahead instead of delaying its own.
func (x *Executor) takeBatchSlot(ctx context.Context, log *slog.Logger, m Message, until time.Time) (func(), *warmed, bool) {
	slots, line := x.batchSlots()
	if slots == nil {
		return func() {}, nil, true
	}
	if free, ok := takeSlot(ctx, slots, time.Time{}, false); ok {
		return free, x.parked.take(m.JobID, m.Batch), true
	}
	leave, ok := takeSlot(ctx, line, until, true)
	if !ok {
		return nil, nil, false
	}
	w := x.parked.take(m.JobID, m.Batch)
	if w == nil {
		w = x.warm(ctx, log, m)
	}
	free, ok := takeSlot(ctx, slots, until, true)
	leave()
	if !ok {
		// The batch is handed on: its continuation takes these connections over.
		x.parked.put(m.JobID, m.Batch, w)
		return nil, nil, false
	}
	return free, w, true
}

// takeUnstored takes a token for a device about to start, waiting while the process has
// unstoredPerSlot devices per slot started and not yet stored. It returns the token's release
// (safe to call once, a no-op without a bound), or false when ctx ended first.
func (x *Executor) takeUnstored(ctx context.Context) (func(), bool) {
	if x.unstored == nil {
		return func() {}, true
	}
	select {
	case x.unstored <- struct{}{}:
		return sync.OnceFunc(func() { <-x.unstored }), true
	case <-ctx.Done():
		return func() {}, false
	}
}

// takeSlot takes a token of slots, at once or, when wait is set, waiting for one until until
// (zero: as long as ctx lasts). It returns the token's release, or false when none came free.
func takeSlot(ctx context.Context, slots chan struct{}, until time.Time, wait bool) (func(), bool) {
	free := func() { <-slots }
	select {
	case slots <- struct{}{}:
		return free, true
	default:
	}
	if !wait {
		return nil, false
	}
	done := ctx
	if !until.IsZero() {
		var cancel context.CancelFunc
		done, cancel = context.WithDeadline(ctx, until)
		defer cancel()
	}
	select {
	case slots <- struct{}{}:
		return free, true
	case <-done.Done():
		return nil, false
	}
}

func (x *Executor) startDelay() time.Duration {
	if x.StartDelay > 0 {
		return x.StartDelay
	}
	return DefaultStartDelay
}

// Outcome says what became of a message.
type Outcome struct {
	// Retry is set when some devices were left for a redelivery (deadline, a run held by
	// another attempt, a store error).
	Retry bool
	// Ran counts devices this invocation ran.
	Ran int
	// Skipped counts devices already terminal.
	Skipped int
	// Continued counts devices handed to a new message of the same batch.
	Continued int
}

func (x *Executor) now() time.Time {
	if x.Now != nil {
		return x.Now()
	}
	return time.Now().UTC()
}

// audit records e in the audit trail, if there is one, as the executor's (or the watchdog's)
// entry unless e names another actor. A store failure is logged, never returned: the action it
// records has happened.
func (x *Executor) audit(ctx context.Context, e audit.Entry) {
	if x.Audit == nil {
		return
	}
	if e.Actor == "" {
		e.Actor, e.Role = cmp.Or(x.actor, audit.ActorExecutor), audit.RoleSystem
	}
	if e.Outcome == "" {
		e.Outcome = audit.OutcomeOK
	}
	if err := x.Audit.Record(context.WithoutCancel(ctx), e); err != nil {
		x.logger().ErrorContext(ctx, "audit record failed", "action", e.Action, "target", e.Target, "err", err)
	}
}

func (x *Executor) logger() *slog.Logger {
	if x.Logger != nil {
		return x.Logger
	}
	return slog.Default()
}

// Handle runs one batch. It returns an error only for a message that can never succeed (bad
// body); a batch with devices left over returns Outcome.Retry so the queue redelivers it.
func (x *Executor) Handle(ctx context.Context, m Message) (Outcome, error) {
	if err := m.Validate(); err != nil {
		return Outcome{}, fmt.Errorf("invalid batch message: %w", err)
	}
	log := x.logger().With("job_id", m.JobID, "batch", m.Batch)
	job, err := x.viewedJob(ctx, m.JobID)
	jobReadAt := x.now()
	if errors.Is(err, ErrJobNotFound) {
		log.Warn("batch of an unknown job dropped")
		return Outcome{}, nil
	}
	if err != nil {
		return Outcome{Retry: true}, fmt.Errorf("get job: %w", err)
	}
	holder := NewID(x.now())
	claim, err := x.Jobs.ClaimBatch(ctx, m.JobID, m.Batch, holder, x.leaseUntil(ctx))
	switch {
	case errors.Is(err, ErrJobNotFound):
		log.Warn("batch of an unknown job dropped")
		return Outcome{}, nil
	case errors.Is(err, ErrBatchLeased):
		// Another invocation holds the batch: a duplicate delivery while it runs, or this very
		// message back after its holder died before the lease ran out. Which one cannot be told,
		// so look again once the lease ends; the devices the holder finished are then skipped.
		log.Info("batch held by another invocation; continuing when its lease ends", "held_until", claim.HeldUntil)
		return x.continueLater(ctx, log, m, Outcome{}, m.DeviceIDs, claim.HeldUntil)
	case err != nil:
		return Outcome{Retry: true}, fmt.Errorf("claim batch: %w", err)
	}
	release := sync.OnceFunc(func() {
		if err := x.Jobs.ReleaseBatch(context.WithoutCancel(ctx), m.JobID, m.Batch, holder); err != nil {
			log.Error("release batch", "err", err)
		}
	})
	defer release()
	if job.Status == JobQueued {
		if err := x.Jobs.MarkRunning(ctx, m.JobID); err != nil {
			return Outcome{Retry: true}, fmt.Errorf("mark job running: %w", err)
		}
	}
	if m.Batch == 0 && claim.First { // once per job: the first claim of its first batch
		x.audit(ctx, audit.Entry{Action: "job.start", Target: job.ID, Detail: map[string]string{
			"command": job.Command, "requested_by": job.RequestedBy, "devices": strconv.Itoa(job.DeviceCount),
		}})
	}
	timeout := m.Options.Timeout()
	margin := x.deadlineMargin()
	// A device starts when its timeout fits in what is left of the invocation; one whose timeout
	// is longer than LongRunStart starts when that much is left, and the invocation's end may
	// cut it short (invocation_deadline).
	startNeed := min(timeout, cmp.Or(x.LongRunStart, LongRunStart))
	// Wait for a batch slot only while this invocation could still run a device after it; past
	// that, hand the batch to a new message instead of failing this one (which SQS would only
	// show again after the visibility timeout).
	var until time.Time
	if dl, ok := ctx.Deadline(); ok {
		until = dl.Add(-(startNeed + margin))
	}
	freeSlot, warm, ok := x.takeBatchSlot(ctx, log, m, until)
	if !ok {
		release()
		log.Info("no batch slot free in time; handing the batch on")
		return x.continueLater(ctx, log, m, Outcome{}, m.DeviceIDs, time.Now().Add(time.Second))
	}
	freeSlot = sync.OnceFunc(freeSlot)
	defer freeSlot()
	defer warm.close() // unless the batch took its connections over
	devs, snapshot, err := x.devicesOf(ctx, m)
	if err != nil {
		return Outcome{Retry: true}, fmt.Errorf("get devices: %w", err)
	}
	_, set, err := policy.Current(ctx, x.Policy)
	if err != nil {
		return Outcome{Retry: true}, fmt.Errorf("read command policy: %w", err)
	}
	var custom map[string][]platform.NoiseFilter
	if x.Noise != nil {
		if custom, err = x.Noise.CustomFilters(ctx); err != nil {
			return Outcome{Retry: true}, fmt.Errorf("read noise filters: %w", err)
		}
	}
	bd := &batchDevices{src: x.Devices, devices: devs, snapshot: snapshot, shared: map[string]device.Credential{}, first: claim.First, policy: set, grants: job.Grants,
		hops: &hops{src: x.JumpHosts}, cmds: m.Sequence(), noises: drift.NewNoises(custom)}
	bd.prefetchCredentials(ctx, log)
	cmdsOf := withCommandTexts(run.Run{Command: m.Command}, m)
	// Before any of the batch's runs is created: its run list and digests expire no later.
	batchStart := x.now()
	var runsExpire time.Time
	if x.RunTTL > 0 {
		runsExpire = batchStart.Add(x.RunTTL)
	}
	if claim.First && len(m.DeviceIDs) >= listRunsFrom {
		// One list of the batch's runs, written before any of them, lists them all for the
		// purges; when it cannot be written, each run lists itself.
		if err := x.Runs.ListRuns(ctx, m.JobID, m.Batch, m.DeviceIDs, batchStart, runsExpire); err != nil {
			log.Warn("list the batch's runs; each run is listed by its day instead", "err", err)
		} else {
			bd.listed = true
		}
	}
	if m.PreviousJob != "" && m.PreviousJob != m.JobID {
		// The previous job's digests of the same batch: most devices of a repeated job ran there
		// in this batch, and are compared without a read of their own.
		digests, err := x.Runs.DigestsIn(ctx, m.PreviousJob, m.Batch, cmdsOf)
		if err != nil {
			log.Warn("read the previous job's digests; its runs are looked up one device at a time", "previous_job", m.PreviousJob, "err", err)
		}
		bd.prevDigests = digests
	}
	if m.SecretAnswers {
		if err := x.readAnswers(ctx, m, bd); err != nil {
			return Outcome{Retry: true}, err
		}
	}
	if x.batches != nil {
		x.jobChains.note(m.JobID, distinctChains(devs))
	}
	if tm, ok := x.Engine.(TunnelMaker); ok && anyChain(devs) {
		// The process's hop connections, held until the batch's last session ends: taken over
		// from what the batch warmed while it waited for its slot, or held now.
		if warm != nil {
			bd.hops, bd.tunnels, bd.releaseTunnels = warm.hops, warm.tunnels, warm.release
		} else {
			bd.tunnels, bd.releaseTunnels = x.share.acquire(tm, x.sharedChannels())
		}
		defer bd.releaseTunnels()
	} else {
		warm.close() // the chains changed while the batch waited
	}
	rec := newRecorder(x, m, claim.States, job.CreatedAt)
	view := &jobView{x: x, job: job, at: jobReadAt} // stale once the batch waited for its slot

	concurrency := x.Concurrency
	if concurrency <= 0 || concurrency > MaxBatchSize {
		concurrency = MaxBatchSize
	}
	if mc := m.Options.MaxConcurrency; mc > 0 && mc < concurrency {
		concurrency = mc
	}
	var (
		out   Outcome
		outMu sync.Mutex
		wg    sync.WaitGroup
		// tail frees the batch slot once the batch is in its last few sessions, and the
		// tunnels (then the slot, if still held) once every session has ended.
		tail = newSessionTail(concurrency, freeSlot, func() {
			if bd.releaseTunnels != nil {
				bd.releaseTunnels()
			}
			freeSlot()
		})
		sem       = make(chan struct{}, concurrency)
		later     []string  // devices left for a later invocation
		holdUntil time.Time // when the last of their runs' holds ends
		// notStarted are the devices the job's stop request keeps from starting, and
		// stopReason why; they end cancelled once the devices that started are stored.
		notStarted []string
		stopReason string
		short      bool // the invocation's time left was found too short for a device
	)
	leave := func(id string, until time.Time) {
		outMu.Lock()
		later = append(later, id)
		if until.After(holdUntil) {
			holdUntil = until
		}
		outMu.Unlock()
	}
	for _, id := range m.DeviceIDs {
		cur := rec.state(id)
		if cur.Terminal() {
			outMu.Lock()
			out.Skipped++
			outMu.Unlock()
			continue
		}
		sem <- struct{}{}
		stored, ok := x.takeUnstored(ctx)
		if !ok || ctx.Err() != nil {
			stored()
			<-sem
			leave(id, time.Time{}) // the invocation is ending: a later one will run this device
			continue
		}
		// A stopping job's devices not started are cancelled once the others are stored (below),
		// never handed on.
		if stop, reason := view.stopping(ctx); stop {
			stored()
			<-sem
			notStarted = append(notStarted, id)
			stopReason = reason
			continue
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < startNeed+margin {
			stored()
			<-sem
			if !short {
				// Logged once: a device timeout longer than the whole invocation would
				// otherwise fail every delivery without a word.
				log.Info("no time left in this invocation for a device's timeout; handing devices on",
					"time_left_ms", time.Until(dl).Milliseconds(), "device_timeout_ms", timeout.Milliseconds())
				short = true
			}
			leave(id, time.Time{}) // no time left to run this device: a later invocation will
			continue
		}
		wg.Add(1)
		tail.open()
		x.stacks.Go(func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer stored()
			res := x.device(ctx, log, m, id, rec, bd, sync.OnceFunc(tail.end))
			if res.later {
				leave(id, res.holdUntil)
			}
			outMu.Lock()
			if res.ran {
				out.Ran++
			}
			out.Retry = out.Retry || res.retry
			outMu.Unlock()
		})
	}
	// Every device has started: the batch slot is free once all but the last few of their
	// sessions have ended (the next batch's sessions start beside this batch's slowest
	// devices), and the tunnels once all have, while their runs are still being stored.
	tail.allStarted()
	wg.Wait()
	x.emitOutcomes(m, bd)
	if err := rec.close(ctx); err != nil {
		return Outcome{Retry: true, Ran: out.Ran}, fmt.Errorf("record progress: %w", err)
	}
	if len(bd.digests) > 0 {
		// After the progress: the batch's last results reach their subscribers first.
		if err := x.Runs.RecordDigests(ctx, m.JobID, m.Batch, cmdsOf, bd.digests, runsExpire); err != nil {
			log.Warn("keep the batch's digests; the next job looks its runs up one device at a time", "err", err)
		}
	}
	if len(notStarted) > 0 {
		// Still under the batch's lease, so no other invocation starts them meanwhile.
		end := ending{devices: notStarted, to: run.Cancelled, reason: stopReason}
		if _, err := x.machine().endDevices(ctx, view.current(), m.Batch, end); err != nil {
			return Outcome{Retry: true, Ran: out.Ran}, err
		}
	}
	release() // before any continuation is sent, so it can claim the batch at once
	if out.Retry {
		return out, nil
	}
	if len(later) > 0 {
		return x.continueLater(ctx, log, m, out, later, holdUntil)
	}
	if err := x.machine().finishBatch(ctx, m.JobID, m.Batch); err != nil {
		return Outcome{Retry: true, Ran: out.Ran}, err
	}
	if err := x.sendNext(ctx, m.JobID, view); err != nil {
		log.Error("send next pending batch", "err", err)
	}
	return out, nil
}

func (x *Executor) deadlineMargin() time.Duration {
	if x.DeadlineMargin > 0 {
		return x.DeadlineMargin
	}
	return 5 * time.Second
}

// readAnswers puts the job's secret answers into the batch's commands. Answers that are gone or
// do not fit the sequence fail the batch's devices (bd.answersErr); a store error is returned so
// the message is redelivered.
func (x *Executor) readAnswers(ctx context.Context, m Message, bd *batchDevices) error {
	if x.Answers == nil {
		bd.answersErr = errors.New("this executor has no answer store")
		return nil
	}
	answers, err := x.Answers.GetAnswers(ctx, m.JobID)
	if errors.Is(err, ErrAnswersGone) {
		bd.answersErr = err
		return nil
	}
	if err != nil {
		return fmt.Errorf("read secret answers of job %s: %w", m.JobID, err)
	}
	cmds, err := WithAnswers(m.Commands, answers)
	if err != nil {
		bd.answersErr = err
		return nil
	}
	bd.cmds = cmds
	return nil
}

// leaseUntil is when this invocation's batch lease ends: BatchLease from now, or else a minute
// after the invocation's deadline, when the Lambda runtime has certainly stopped it.
func (x *Executor) leaseUntil(ctx context.Context) time.Time {
	if x.BatchLease > 0 {
		return time.Now().Add(x.BatchLease)
	}
	if dl, ok := ctx.Deadline(); ok {
		return dl.Add(time.Minute)
	}
	return time.Now().Add(6 * time.Minute) // the five-minute function timeout plus a minute
}

// DelayedQueue sends a message that becomes visible after a delay (SQS DelaySeconds).
type DelayedQueue interface {
	SendDelayed(ctx context.Context, m Message, delay time.Duration) error
}

// maxContinuationDelay is SQS's largest message delay.
const maxContinuationDelay = 15 * time.Minute

// continueLater hands the devices this invocation could not finish to a new message of the same
// batch, visible once the runs they wait for are free, and lets the current message go. Passing
// work on instead of failing the message keeps a long batch (slow devices, a small
// max_concurrency) from reaching the dead-letter queue's receive limit while it makes progress.
// An invocation that could do nothing at all still fails, so a batch that can never run ends in
// the dead-letter queue.
func (x *Executor) continueLater(ctx context.Context, log *slog.Logger, m Message, out Outcome, later []string, holdUntil time.Time) (Outcome, error) {
	dq, ok := x.Queue.(DelayedQueue)
	if !ok || (out.Ran == 0 && holdUntil.IsZero()) {
		out.Retry = true
		return out, nil
	}
	delay := min(max(time.Until(holdUntil), 0), maxContinuationDelay)
	next := m
	next.DeviceIDs = later
	next.Devices, next.DevicesAt = nil, time.Time{} // a continuation reads its devices
	if err := dq.SendDelayed(context.WithoutCancel(ctx), next, delay); err != nil {
		log.Error("send continuation", "devices", len(later), "err", err)
		out.Retry = true
		return out, nil
	}
	log.Info("batch continues in a new message", "devices", len(later), "delay_ms", delay.Milliseconds())
	out.Continued = len(later)
	return out, nil
}

// sendNext sends the job's next never-sent batch (jobs with max_concurrency send batches one
// after another). When the job is stopping, the never-sent batches are cancelled instead, so
// the job still ends.
func (x *Executor) sendNext(ctx context.Context, jobID string, view *jobView) error {
	if x.Queue == nil || view.current().Options.MaxConcurrency <= 0 {
		return nil // every batch of a job without max_concurrency was sent when it was accepted
	}
	if stop, _ := view.stopping(ctx); stop {
		pending, err := x.Jobs.PendingBatches(ctx, jobID)
		if err != nil || len(pending) == 0 {
			return err
		}
		j := view.current()
		return x.machine().endBatches(ctx, j, pending, ending{to: run.Cancelled, reason: StopReason(j.StopStatus)})
	}
	i, ids, ok, err := x.Jobs.ClaimPendingBatch(ctx, jobID)
	if err != nil || !ok {
		return err
	}
	failed, err := x.Queue.SendAll(ctx, []Message{MessageFor(view.current(), i, ids)})
	if err != nil || len(failed) > 0 {
		if err == nil {
			err = errors.New("queue refused the message")
		}
		return errors.Join(err, x.machine().abort(context.WithoutCancel(ctx), view.current(), []int{i}, JobFailed))
	}
	return nil
}

func (x *Executor) publish(ctx context.Context, events []Event) {
	for _, e := range events {
		if e.Type == EventJobDone {
			x.jobDone(ctx, e)
		}
	}
	if x.Publisher != nil && len(events) > 0 {
		x.Publisher.Publish(ctx, events)
	}
}

// jobDone logs and measures a finished job.
func (x *Executor) jobDone(ctx context.Context, e Event) {
	j, err := x.Jobs.GetJob(ctx, e.JobID)
	if err != nil {
		return
	}
	duration := e.At.Sub(j.CreatedAt).Milliseconds()
	args := []any{"job_id", j.ID, "status", j.Status, "devices", j.DeviceCount, "duration_ms", duration}
	ms := []metrics.Metric{
		{Name: "Jobs", Value: 1, Unit: metrics.Count},
		{Name: "JobDuration", Value: float64(duration), Unit: metrics.Milliseconds},
		{Name: "JobDevices", Value: float64(j.DeviceCount), Unit: metrics.Count},
	}
	for _, s := range run.Statuses() {
		if s.Terminal() {
			args = append(args, "count_"+string(s), j.Counts[s])
		}
	}
	x.logger().InfoContext(ctx, "job finished", args...)
	detail := map[string]string{"status": string(j.Status), "requested_by": j.RequestedBy, "devices": strconv.Itoa(j.DeviceCount)}
	for s, n := range j.Counts {
		detail["count_"+string(s)] = strconv.Itoa(n)
	}
	x.audit(ctx, audit.Entry{Action: "job.finish", Target: j.ID, Detail: detail})
	if x.Metrics != nil {
		props := map[string]any{"job_id": j.ID, "requested_by": j.RequestedBy}
		for s, n := range j.Counts {
			props["count_"+string(s)] = n
		}
		_ = x.Metrics.Emit(map[string]string{"Function": cmp.Or(x.function, "executor"), "JobStatus": string(j.Status)}, props, ms...)
	}
}

// deviceResult says what became of one device in this invocation.
type deviceResult struct {
	// ran is set when the device's command was run.
	ran bool
	// later is set when the device is left for a later invocation (the invocation is ending, or
	// another attempt holds its run until holdUntil).
	later     bool
	holdUntil time.Time
	// retry is set when a store failed: the message is redelivered.
	retry bool
}

// device runs one device. It calls sessionOver once the device's SSH session has ended (or when
// it returns without one).
func (x *Executor) device(ctx context.Context, log *slog.Logger, m Message, id string, rec *recorder, bd *batchDevices, sessionOver func()) (res deviceResult) {
	defer sessionOver()
	log = log.With("device_id", id)
	runID := RunID(m.JobID, id)
	from := rec.state(id)
	defer func() {
		if p := recover(); p != nil {
			// One device's bug never takes the others down: record it as failed.
			log.Error("device run panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			rec.add(Change{DeviceID: id, From: rec.state(id), To: run.Failed, RunID: runID, Reason: "internal_error"})
			res = deviceResult{ran: true}
		}
	}()
	now := x.now()
	r := run.Run{ID: runID, DeviceID: id, Command: m.Command, JobID: m.JobID, RequestedBy: m.RequestedBy, CreatedAt: now, Listed: bd.listed}
	if x.RunTTL > 0 {
		r.ExpiresAt = now.Add(x.RunTTL)
	}
	var (
		started run.Run
		lazy    *lazyStart
		err     error
	)
	if bd.first {
		// No run of the batch exists yet: the run is written when it is needed (lazyStart).
		started = r
		started.Status, started.Attempt, started.StartedAt = run.Running, 1, &now
		lazy = newLazyStart(ctx, x.Runs, started, x.startDelay(), func(err error) {
			log.Warn("write running run record; it is written when the run finishes", "err", err)
		})
		defer lazy.stop()
	} else {
		started, err = x.Runs.Start(ctx, r)
	}
	switch {
	case errors.Is(err, run.ErrFinished):
		// An earlier delivery ran it; make sure its output is counted (that delivery may have
		// died half way through storing it) and that the job knows how it ended.
		if err := x.Runs.Reconcile(ctx, id, runID); err != nil {
			log.Error("reconcile finished run", "err", err)
			return deviceResult{retry: true}
		}
		rec.add(Change{DeviceID: id, From: from, To: started.Status, RunID: runID, Reason: started.Reason, DurationMS: started.Timings.TotalMS, OutputDigest: started.OutputDigest,
			Commands: changeCommands(m, started.Commands), Changed: started.Changed})
		return deviceResult{}
	case errors.Is(err, run.ErrLeased):
		return deviceResult{later: true, holdUntil: started.LeaseUntil}
	case err != nil:
		log.Error("start run", "err", err)
		return deviceResult{retry: true}
	}
	rec.add(Change{DeviceID: id, From: from, To: run.Running, RunID: runID})

	var store RunStore = x.Runs
	if lazy != nil {
		store = lazyChunks{RunStore: x.Runs, l: lazy}
	}
	// The run to compare with is looked up while the device runs, off the device's path.
	previous := x.previous(context.WithoutCancel(ctx), withCommandTexts(started, m), m.PreviousJob, bd.prevDigests)
	final := x.execute(ctx, log, m, id, started, bd, store)
	sessionOver()
	finish := x.Runs.Finish
	if lazy != nil {
		written, ok := lazy.stop()
		started.LeaseUntil = written.LeaseUntil
		if !ok {
			started.LeaseUntil = time.Time{} // nothing stored: a later invocation need not wait
			finish = x.Runs.FinishNew        // and nothing to find: a plain write will do
		}
	}
	if ctx.Err() != nil {
		// The invocation is ending, not the device: the run stays under this attempt's lease
		// and a later invocation takes it over once that expires.
		return deviceResult{ran: true, later: true, holdUntil: started.LeaseUntil}
	}
	if final.retry {
		return deviceResult{ran: true, retry: true}
	}
	if final.run.Status == run.Succeeded {
		compare(log, &final.run, previous)
	}
	if err := finish(context.WithoutCancel(ctx), final.run, final.pending); err != nil {
		if errors.Is(err, run.ErrFinished) {
			return deviceResult{ran: true}
		}
		log.Error("finish run", "err", err)
		return deviceResult{ran: true, retry: true}
	}
	rec.add(Change{DeviceID: id, From: run.Running, To: final.run.Status, RunID: runID, Reason: final.run.Reason, DurationMS: final.run.Timings.TotalMS, OutputDigest: final.run.OutputDigest,
		Commands: changeCommands(m, final.run.Commands), Changed: final.run.Changed})
	if final.run.Status == run.Succeeded && final.run.FilteredDigest != "" {
		bd.keepDigest(id, final.run.FilteredDigest)
	}
	log.Info("device finished", "status", final.run.Status, "reason", final.run.Reason, "bytes", final.run.Bytes, "duration_ms", final.run.Timings.TotalMS)
	bd.noteOutcome(final.run.Status, final.run.Timings.TotalMS, final.run.Bytes)
	return deviceResult{ran: true}
}

// emitOutcomes writes the batch's device outcomes as metrics: one EMF line per status, each
// device a data point of DeviceDuration and OutputBytes (the device's own ids are in its "device
// finished" log line), where a line per device cost about as much again in logs.
func (x *Executor) emitOutcomes(m Message, bd *batchDevices) {
	if x.Metrics == nil {
		return
	}
	for _, st := range slices.Sorted(maps.Keys(bd.outcomes)) {
		o := bd.outcomes[st]
		for i := 0; i < len(o.durations); i += metrics.MaxValues {
			end := min(i+metrics.MaxValues, len(o.durations))
			_ = x.Metrics.Emit(map[string]string{"Function": "executor", "Status": string(st)},
				map[string]any{"job_id": m.JobID, "batch": m.Batch},
				metrics.Metric{Name: "DeviceRuns", Value: float64(end - i), Unit: metrics.Count},
				metrics.Metric{Name: "DeviceDuration", Values: o.durations[i:end], Unit: metrics.Milliseconds},
				metrics.Metric{Name: "OutputBytes", Values: o.bytes[i:end], Unit: metrics.Bytes})
		}
	}
}

// withCommandTexts is r carrying the texts of m's sequence as its Commands, before it has run
// them: a sequence's Command is only its summary, and Previous compares the commands
// (run.SameCommands).
func withCommandTexts(r run.Run, m Message) run.Run {
	if m.Commands == nil {
		return r
	}
	r.Commands = make([]run.CommandResult, len(m.Commands))
	for i, c := range m.Commands {
		r.Commands[i] = run.CommandResult{Command: c.Command}
	}
	return r
}

// previous starts looking up the previous succeeded run of r's command on r's device and returns
// a function that waits for the answer: its run in job, the newest job before r's that ran r's
// commands, when it succeeded there (in digests, that job's digests of r's batch, else read with
// the batch's other devices'), else by Previous.
func (x *Executor) previous(ctx context.Context, r run.Run, job string, digests map[string]string) func() (run.Run, error) {
	if d, ok := digests[r.DeviceID]; ok {
		prev := run.Run{ID: RunID(job, r.DeviceID), DeviceID: r.DeviceID, JobID: job, Command: r.Command, Status: run.Succeeded, FilteredDigest: d, Commands: r.Commands}
		return func() (run.Run, error) { return prev, nil }
	}
	type answer struct {
		r   run.Run
		err error
	}
	ch := make(chan answer, 1)
	x.stacks.Go(func() {
		if job != "" {
			p, ok, err := x.Runs.PreviousIn(ctx, job, r)
			if err == nil && ok {
				ch <- answer{p, nil}
				return
			}
		}
		p, err := x.Runs.Previous(ctx, r)
		ch <- answer{p, err}
	})
	return sync.OnceValues(func() (run.Run, error) {
		a := <-ch
		return a.r, a.err
	})
}

// compare sets a succeeded run's Changed and PreviousRunID against the previous succeeded run of
// its command on its device (previous's answer). A failure to read leaves them unset (the run is
// not failed for it).
func compare(log *slog.Logger, r *run.Run, previous func() (run.Run, error)) {
	prev, err := previous()
	switch {
	case errors.Is(err, run.ErrNotFound):
		return // a first run: changed stays null
	case err != nil:
		log.Warn("read the previous run to compare with; changed stays unset", "err", err)
		return
	}
	r.PreviousRunID = prev.ID
	if prev.FilteredDigest != "" && r.FilteredDigest != "" {
		changed := prev.FilteredDigest != r.FilteredDigest
		r.Changed = &changed
	}
}

type finished struct {
	run     run.Run
	pending []byte
	// retry is set when the run could not be attempted for a reason of ours (a store error).
	retry bool
}

// execute resolves the device and runs the command, streaming output into chunks.
func (x *Executor) execute(ctx context.Context, log *slog.Logger, m Message, id string, r run.Run, bd *batchDevices, store run.Store) finished {
	fail := func(status run.Status, reason, msg string) finished {
		end := x.now()
		r.Status, r.Reason, r.Message, r.FinishedAt = status, reason, msg, &end
		return finished{run: r}
	}
	deleted := func() finished {
		return fail(run.Failed, "device_deleted", "the device was deleted after the job was accepted")
	}
	d, ok := bd.devices[id]
	if !ok {
		return deleted()
	}
	if bd.answersErr != nil {
		log.Warn("secret answers unavailable", "err", bd.answersErr)
		return fail(run.Failed, ReasonAnswersUnavailable, "the job's secret prompt answers are no longer stored (the job ended or was purged): run the sequence again")
	}
	// The policy may have changed since the job was accepted: check every command and answer
	// again before anything, the credential included, is read or sent.
	refused := func(d device.Device) (finished, bool) {
		dec, field := CheckSequence(bd.policy, bd.cmds, m.Commands == nil, d.Platform, bd.grants.RoleOn(d.Site))
		if dec.Allowed {
			return finished{}, false
		}
		log.Warn("command refused by the policy", "rule", dec.Rule, "field", field)
		x.audit(ctx, audit.Entry{Action: "run.command_denied", Target: r.ID, Outcome: audit.OutcomeDenied, Reason: dec.Rule, Detail: map[string]string{"command": m.Command, "device_id": id, "job_id": m.JobID, "rule": dec.Rule, "field": field}})
		what := "this command"
		if field != "" {
			what = field
		}
		return fail(run.Failed, ReasonCommandDenied, fmt.Sprintf("the command policy refuses %s: %s (rule %s)", what, dec.Reason, dec.Rule)), true
	}
	if f, ok := refused(d); ok {
		return f
	}
	read := d
	d, cred, err := x.credentialFor(ctx, bd, d)
	if err == nil && (d.Site != read.Site || d.Platform != read.Platform) {
		// Read again: the device moved or changed platform since; the policy decides anew.
		if f, ok := refused(d); ok {
			return f
		}
	}
	if errors.Is(err, errDeviceGone) {
		return deleted()
	}
	if errors.Is(err, errCredentialElsewhere) {
		log.Warn("the device's credential is stored for another address than the device has")
		return fail(run.AuthFailed, "credential_unavailable", "the device's stored credential is for another host or port: give it a password, a key or a credential profile again")
	}
	if errors.Is(err, device.ErrNotFound) {
		return fail(run.AuthFailed, "credential_unavailable", "the device has no stored credential (a new host or port drops it): give it a password, a key or a credential profile")
	}
	if errors.Is(err, device.ErrCredentialNotAllowed) {
		return fail(run.Failed, "credential_not_allowed", "the device's credential profile no longer allows it (its allowed sites and tags changed)")
	}
	if err != nil {
		log.Error("get credential", "err", err)
		return finished{retry: true}
	}
	target := sshexec.Target{
		Host: d.Host, Port: d.Port, Platform: d.Platform,
		HostKey: d.HostKey, TrustOnFirstUse: d.TrustOnFirstUse, LegacyAlgorithms: d.LegacyAlgorithms,
	}
	useCredential(&target, d, cred)
	pin := &hostKeyPin{src: bd.src, deviceID: id}
	if d.TrustOnFirstUse && d.HostKey == "" {
		target.Pinner = pin
	}
	target.AuthMethod = engineAuth(d.AuthMethod)
	if len(d.JumpHostIDs) > 0 {
		hops, failed, err := bd.hops.chain(ctx, d.JumpHostIDs)
		if err != nil {
			log.Error("read jump hosts", "err", err)
			return finished{retry: true}
		}
		if failed != nil {
			return fail(hopFailed(failed))
		}
		target.JumpHosts, target.Tunnels = hops, bd.tunnels
	}
	rctx, cancel := context.WithTimeout(ctx, m.Options.Timeout())
	defer cancel()
	if dl, ok := ctx.Deadline(); ok {
		// The invocation's end, less the margin kept to store the result, ends the run
		// timed_out, reason invocation_deadline, rather than leaving it to a redelivery.
		var cancelDL context.CancelFunc
		rctx, cancelDL = context.WithDeadlineCause(rctx, dl.Add(-x.deadlineMargin()), sshexec.ErrInvocationDeadline)
		defer cancelDL()
	}
	// The engine enforces the output cap: past it the session is closed and Truncated set.
	sink := run.NewChunkWriter(ctx, store, r)
	noise, err := bd.noises.ForCommands(d.Platform, commandTexts(bd.cmds))
	if err != nil {
		log.Error("compile noise filters", "err", err)
		return finished{retry: true}
	}
	sink.FilterNoise(noise)
	res, ok := x.runEngine(rctx, target, m, bd, sink)
	if !ok {
		return fail(run.Failed, "sequence_unsupported", "this executor's engine cannot run command sequences")
	}
	if res.Status == sshexec.StatusAuthFailed {
		// A credential kept from an earlier read may have been rotated since: the one stored
		// now is tried once. An auth failure ends a run before any output, so the sink is empty.
		if fresh, ok := bd.refreshCredential(ctx, log, d, cred); ok {
			useCredential(&target, d, fresh)
			res, _ = x.runEngine(rctx, target, m, bd, sink)
		}
	}
	x.hostKeyOutcome(ctx, log, m, d, pin, res)
	x.hopOutcome(ctx, log, m, bd, id, res)
	end := x.now()
	r.Status = run.Status(res.Status)
	if res.Status == sshexec.StatusCancelled {
		r.Status = run.Cancelled
	}
	r.Reason, r.Message, r.ExitStatus = string(res.Reason), res.Message, res.ExitStatus
	r.Truncated = res.Truncated
	r.Bytes, r.Chunks, r.OutputDigest = sink.Bytes(), sink.Chunks(), sink.Digest()
	if m.Commands != nil {
		// A one-command run keeps no list: its one result is the run's own (run.Run.Results).
		r.Commands = commandResults(bd.cmds, res.Commands, sink)
	}
	r.ContentSHA256 = sink.ContentSHA256()
	r.NoiseLines, r.NoiseOK = sink.NoiseLines()
	if r.Status == run.Succeeded {
		r.FilteredDigest = sink.FilteredDigest()
	}
	r.FinishedAt = &end
	r.Timings = run.Timings{
		ConnectMS: res.Timings.Connect.Milliseconds(), AuthMS: res.Timings.Auth.Milliseconds(),
		FirstByteMS: res.Timings.FirstByte.Milliseconds(), TotalMS: res.Timings.Total.Milliseconds(),
	}
	return finished{run: r, pending: sink.Pending()}
}

// viewedJob reads the job as the executor's view of it needs it: its counts matter only to its
// error limit, so a job without one is read without them (JobStore.JobControl, one small read).
func (x *Executor) viewedJob(ctx context.Context, id string) (Job, error) {
	j, err := x.Jobs.JobControl(ctx, id)
	if err != nil || j.Options.ErrorLimit(j.DeviceCount) < 0 {
		return j, err
	}
	return x.Jobs.GetJob(ctx, id)
}

// jobView is the executor's cached view of its job: cancel requests and failures.
type jobView struct {
	x   *Executor
	mu  sync.Mutex
	job Job
	at  time.Time
}

func (v *jobView) current() Job {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.job
}

// stopping reports whether devices not yet started must be cancelled, and why.
func (v *jobView) stopping(ctx context.Context) (bool, string) {
	refresh := v.x.JobRefresh
	if refresh == 0 {
		refresh = 250 * time.Millisecond
	}
	v.mu.Lock()
	stale := v.x.now().Sub(v.at) >= refresh
	v.mu.Unlock()
	if stale {
		// The counts matter only to an error limit, which a job's options never change.
		read := v.x.Jobs.JobControl
		if v.job.Options.ErrorLimit(v.job.DeviceCount) >= 0 {
			read = v.x.Jobs.GetJob
		}
		if j, err := read(ctx, v.job.ID); err == nil {
			v.mu.Lock()
			v.job, v.at = j, v.x.now()
			v.mu.Unlock()
		}
	}
	v.mu.Lock()
	j := v.job
	v.mu.Unlock()
	if j.CancelRequested || j.Status.Terminal() {
		return true, StopReason(j.StopStatus)
	}
	if j.OverErrorLimit() {
		if _, err := v.x.Jobs.RequestStop(ctx, j.ID, JobStopped, ""); err != nil && !errors.Is(err, ErrJobFinished) {
			v.x.logger().Error("stop job at max_errors", "job_id", j.ID, "err", err)
		}
		v.mu.Lock()
		if !v.job.CancelRequested {
			v.job.CancelRequested, v.job.StopStatus = true, JobStopped
		}
		v.mu.Unlock()
		return true, "max_errors"
	}
	return false, ""
}

// commandResults are a run's per-command results: the engine's outcome of each command started,
// with where its output lies in the run's stored output (the sink's marks).
func commandResults(cmds []Command, results []sshexec.CommandResult, sink *run.ChunkWriter) []run.CommandResult {
	if len(results) == 0 {
		return nil
	}
	out := make([]run.CommandResult, len(results))
	for i, cr := range results {
		out[i] = run.CommandResult{Status: run.Status(cr.Status), Reason: string(cr.Reason), ExitStatus: cr.ExitStatus}
		if cr.Status == sshexec.StatusCancelled {
			out[i].Status = run.Cancelled
		}
		if i < len(cmds) {
			out[i].Command = cmds[i].Command
		}
		out[i].Offset, out[i].Bytes = sink.CommandSpan(i)
	}
	return out
}

// changeCommands are a run's per-command results as its job keeps them for the device: without
// the command text (the job has it) and the output offsets (the run has them). A one-command job
// keeps none (DeviceState.CommandResults): its batch items, rewritten at every progress record,
// stay as small as before.
func changeCommands(m Message, results []run.CommandResult) []run.CommandResult {
	if len(results) == 0 || m.Commands == nil {
		return nil
	}
	out := make([]run.CommandResult, len(results))
	for i, c := range results {
		out[i] = run.CommandResult{Status: c.Status, Reason: c.Reason, ExitStatus: c.ExitStatus, Bytes: c.Bytes}
	}
	return out
}

// sessionTail follows a batch's SSH sessions: it calls inTail once every device of the batch has
// started and no more than a tenth of the batch's concurrency (at least one) of its sessions is
// still open, and ended once none is. A batch ends when its slowest device does; freeing its slot
// in the tail keeps the process's MaxBatches slots from waiting on a few slow devices (far behind
// a jump host, answering late) while the next batch could already run. Both callbacks must be
// safe to call more than once.
type sessionTail struct {
	mu      sync.Mutex
	left    int // sessions still open
	started bool
	limit   int
	inTail  func()
	ended   func()
}

func newSessionTail(concurrency int, inTail, ended func()) *sessionTail {
	return &sessionTail{limit: max(1, concurrency/10), inTail: inTail, ended: ended}
}

// open counts a session that starts.
func (t *sessionTail) open() { t.update(1, false) }

// end counts a session that ended.
func (t *sessionTail) end() { t.update(-1, false) }

// allStarted says every session of the batch has been opened.
func (t *sessionTail) allStarted() { t.update(0, true) }

func (t *sessionTail) update(delta int, started bool) {
	t.mu.Lock()
	t.left += delta
	t.started = t.started || started
	inTail, ended := t.started && t.left <= t.limit, t.started && t.left == 0
	t.mu.Unlock()
	if inTail {
		t.inTail()
	}
	if ended {
		// The hop connections' release may wait on the network: off the last device's path.
		go t.ended()
	}
}
