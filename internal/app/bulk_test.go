package app_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// expectation is how a device with a fault ends a "show version" job.
type expectation struct {
	status    run.Status
	reason    string
	truncated bool
}

var faultOutcome = map[devicesim.Fault]expectation{
	devicesim.FaultNone:                {status: run.Succeeded},
	devicesim.FaultRefuse:              {status: run.Unreachable, reason: "connection_refused"},
	devicesim.FaultWrongCredentials:    {status: run.AuthFailed, reason: "auth_rejected"},
	devicesim.FaultChangedHostKey:      {status: run.HostKeyMismatch, reason: "host_key_changed"},
	devicesim.FaultHangBeforeBanner:    {status: run.TimedOut, reason: "banner_timeout"},
	devicesim.FaultHangMidOutput:       {status: run.TimedOut, reason: "idle_timeout"},
	devicesim.FaultSlowDrip:            {status: run.TimedOut},
	devicesim.FaultEndlessOutput:       {status: run.Failed, reason: "output_cap", truncated: true},
	devicesim.FaultDisconnectMidOutput: {status: run.Failed, reason: "disconnected"},
	devicesim.FaultPagingIgnored:       {status: run.Succeeded},
}

// reference runs the command on a device directly with the engine, for the exact expected output.
func reference(t *testing.T, d devicesim.InventoryDevice, command string) (sshexec.Result, []byte) {
	t.Helper()
	engine, err := sshexec.New(engineOptions)
	require.NoError(t, err)
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res := engine.Run(ctx, sshexec.Target{Host: d.Host, Port: d.Port, Platform: d.Platform, Username: d.Username,
		AuthMethod: sshexec.AuthMethod(d.AuthMethod), Password: d.Password, HostKey: d.HostKey}, command, &buf)
	return res, buf.Bytes()
}

func TestBulkMixedFleetWithFaults(t *testing.T) {
	t.Parallel()
	platforms := []string{"cisco_iosxe", "cisco_ios", "cisco_nxos", "cisco_iosxr", "arista_eos", "juniper_junos", "generic"}
	faults := []devicesim.Fault{devicesim.FaultRefuse, devicesim.FaultWrongCredentials, devicesim.FaultChangedHostKey,
		devicesim.FaultHangBeforeBanner, devicesim.FaultHangMidOutput, devicesim.FaultSlowDrip, devicesim.FaultEndlessOutput,
		devicesim.FaultDisconnectMidOutput, devicesim.FaultPagingIgnored}
	var specs []devicesim.DeviceSpec
	for i := range 200 {
		ds := devicesim.DeviceSpec{Platform: platforms[i%len(platforms)], Version: i % 2}
		if i%4 == 0 {
			ds.Fault = faults[(i/4)%len(faults)]
		}
		specs = append(specs, ds)
	}
	e := newBulkEnv(t, devicesim.Spec{Devices: specs, Seed: 7, DripInterval: 500 * time.Millisecond})
	e.exec.Concurrency = 25
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)

	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 12}}, auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	require.Equal(t, 200, acc.DeviceCount, "accepted %+v: devices", acc)
	require.Equal(t, 4, acc.Batches, "accepted %+v: batches", acc)
	j := e.waitJob(t, acc.JobID, 90*time.Second)
	assert.Equal(t, bulk.JobCompleted, j.Status, "job %s's status", j.ID)
	states := e.allDevices(t, acc.JobID)
	require.Len(t, states, 200, "devices in job %s", j.ID)

	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for id, d := range e.devs {
		want := faultOutcome[d.Fault]
		st := states[id]
		if !assert.Equal(t, want.status, st.Status, "device %s (%s, fault %q): status (reason %q)", id, d.Platform, d.Fault, st.Reason) {
			continue
		}
		if want.reason != "" && !assert.Equal(t, want.reason, st.Reason, "device %s (%s, fault %q): reason", id, d.Platform, d.Fault) {
			continue
		}
		r, err := e.runs.Get(context.Background(), st.RunID)
		require.NoError(t, err, "run of %s", id)
		assert.Equal(t, want.truncated, r.Truncated, "device %s: truncated", id)
		assert.Equal(t, "tester@example.com", r.RequestedBy, "device %s: requested_by", id)
		assert.Equal(t, 1, r.Attempt, "device %s: attempt", id)
		if want.truncated {
			assert.EqualValues(t, engineOptions.MaxOutputBytes, r.Bytes, "device %s: a truncated run stores the cap", id)
		}
		if want.status != run.Succeeded {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(id string, d devicesim.InventoryDevice, st bulk.DeviceState, r run.Run) {
			defer wg.Done()
			defer func() { <-sem }()
			res, ref := reference(t, d, "show version")
			got := e.output(t, bulk.RunID(acc.JobID, id))
			mu.Lock()
			defer mu.Unlock()
			if !assert.Equal(t, sshexec.StatusSucceeded, res.Status, "device %s: reference run", id) {
				return
			}
			if !assert.NotEmpty(t, got, "device %s: stored output", id) ||
				!assert.True(t, bytes.Equal(got, ref), "device %s: stored output (%d bytes) differs from the device's (%d bytes)", id, len(got), len(ref)) {
				return
			}
			want := run.OutputDigest(ref)
			assert.Equal(t, want, st.OutputDigest, "device %s: output digest in the job", id)
			assert.Equal(t, want, r.OutputDigest, "device %s: output digest on the run", id)
		}(id, d, st, r)
	}
	wg.Wait()
	e.checkAccounting(t, j, states)
}

// TestBulkDuplicateDeliveryRunsEachDeviceOnce delivers one batch three times, two of them at the
// same moment, as SQS's at-least-once delivery may: every device runs once.
func TestBulkDuplicateDeliveryRunsEachDeviceOnce(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 20, Seed: 4, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultSlowDrip, Count: 20}}, DripInterval: 20 * time.Millisecond})
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 10}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	job, err := e.jobs.GetJob(ctx, acc.JobID)
	require.NoError(t, err)
	m := bulk.MessageFor(job, 0, e.ids)
	var wg sync.WaitGroup
	outcomes := make([]bulk.Outcome, 2)
	for i := range outcomes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := e.exec.Handle(ctx, m)
			assert.NoError(t, err, "delivery %d", i)
			outcomes[i] = out
		}()
	}
	wg.Wait()
	assert.Equal(t, 20, outcomes[0].Ran+outcomes[1].Ran, "two deliveries at once: outcomes %+v: devices run between them", outcomes)
	assert.False(t, outcomes[0].Retry, "two deliveries at once: outcomes %+v: the first asks for a retry", outcomes)
	assert.False(t, outcomes[1].Retry, "two deliveries at once: outcomes %+v: the second asks for a retry", outcomes)
	// The queued original is the third delivery: it finds every device done.
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 2)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s ended with %v", j.ID, j.Counts)
	require.Equal(t, 20, j.Counts[run.Succeeded], "job %s: succeeded devices (counts %v)", j.ID, j.Counts)
	e.checkAccounting(t, j, e.allDevices(t, acc.JobID))
	for _, id := range e.ids {
		assert.Equal(t, 1, e.fleet.Sessions(id), "times device %s ran the command", id)
		r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, id))
		if assert.NoError(t, err, "run of %s", id) {
			assert.Equal(t, 1, r.Attempt, "run of %s: attempt", id)
		}
	}
}

func TestBulkCancelMidJob(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 60, Seed: 3, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultSlowDrip, Count: 60}}, DripInterval: 30 * time.Millisecond})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids,
		Options: bulk.Options{TimeoutS: 10, MaxConcurrency: 5}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	// Cancel once some devices have finished.
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := e.jobs.GetJob(context.Background(), acc.JobID)
		require.NoError(t, err)
		if j.Counts[run.Succeeded] >= 5 {
			break
		}
		require.False(t, time.Now().After(deadline) || j.Status.Terminal(), "job did not progress: %+v", j)
		time.Sleep(20 * time.Millisecond)
	}
	_, err = e.enq.Cancel(context.Background(), acc.JobID)
	require.NoError(t, err, "cancel job %s", acc.JobID)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	assert.Equal(t, bulk.JobCancelled, j.Status, "job %s's status", j.ID)
	states := e.allDevices(t, acc.JobID)
	assert.GreaterOrEqual(t, j.Counts[run.Cancelled], 30, "counts %v: want most devices cancelled", j.Counts)
	assert.GreaterOrEqual(t, j.Counts[run.Succeeded], 5, "counts %v: want the finished devices kept", j.Counts)
	e.checkAccounting(t, j, states)
	_, err = e.enq.Cancel(context.Background(), acc.JobID)
	assert.ErrorIs(t, err, bulk.ErrJobFinished, "cancel of a finished job")
}

func TestBulkMaxErrorsStopsTheJob(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 80, Seed: 5, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 40}}})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids,
		Options: bulk.Options{TimeoutS: 5, MaxConcurrency: 2, MaxErrors: "3"}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	assert.Equal(t, bulk.JobStopped, j.Status, "job %s's status", j.ID)
	failures := j.Counts[run.Unreachable]
	assert.Greater(t, failures, 3, "failed devices: want more than max_errors (3)")
	assert.Less(t, failures, 40, "failed devices: want the job stopped well before all 40")
	assert.NotZero(t, j.Counts[run.Cancelled], "no device was cancelled: %v", j.Counts)
	states := e.allDevices(t, acc.JobID)
	for id, st := range states {
		if st.Status == run.Cancelled {
			assert.Equal(t, "max_errors", st.Reason, "device %s's cancel reason", id)
		}
	}
	e.checkAccounting(t, j, states)
}

func TestBulkDeadLetteredBatchFailsItsDevices(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 6, Seed: 9})
	ctx := context.Background()
	real := app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil)
	// An executor that dies on every delivery of the batch (a poison batch): SQS counts the
	// receives and moves the message to the dead-letter queue, whose consumer fails the devices.
	crashes := 0
	var mu sync.Mutex
	handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		for _, r := range ev.Records {
			if !strings.HasSuffix(r.EventSourceARN, "bulk-dlq") {
				mu.Lock()
				crashes++
				mu.Unlock()
				panic("poison batch")
			}
		}
		return real(ctx, ev)
	}
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	e.startWorkers(t, handler, 4)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	states := e.allDevices(t, acc.JobID)
	for id, st := range states {
		assert.Equal(t, run.Failed, st.Status, "device %s's status", id)
		assert.Equal(t, "delivery_failed", st.Reason, "device %s's reason", id)
	}
	assert.Equal(t, 6, j.Counts[run.Failed], "job %s: failed devices (counts %v)", j.ID, j.Counts)
	assert.Equal(t, bulk.JobCompleted, j.Status, "job %s's status", j.ID)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 5, crashes, "deliveries of the batch before the dead-letter queue (maxReceiveCount)")
}

// failingQueue sends the first n messages and refuses the rest.
type failingQueue struct {
	real bulk.Queue
	n    int
}

func (q failingQueue) SendAll(ctx context.Context, msgs []bulk.Message) ([]int, error) {
	var failed []int
	if len(msgs) > q.n {
		if _, err := q.real.SendAll(ctx, msgs[:q.n]); err != nil {
			return nil, err
		}
		for i := q.n; i < len(msgs); i++ {
			failed = append(failed, i)
		}
	}
	return failed, nil
}

func TestEnqueueFailureLeavesNoGhostJob(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 120, Seed: 11})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)
	e.enq.Queue = failingQueue{real: e.enq.Queue, n: 1}
	_, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.Error(t, err, "enqueue with a failing queue succeeded")
	// The job exists (its id is in the error path's records) and must end.
	items, err := jobIDs(e)
	require.NoError(t, err, "list jobs")
	require.Len(t, items, 1, "jobs")
	j := e.waitJob(t, items[0], 60*time.Second)
	assert.Equal(t, bulk.JobFailed, j.Status, "job %s's status", j.ID)
	assert.NotEmpty(t, j.Error, "job %s failed without an error", j.ID)
	states := e.allDevices(t, j.ID)
	for id, st := range states {
		// The one batch that went out may have run before the job was marked failed
		// (harmless); every device of the batches that did not go out is cancelled.
		if st.Batch == 0 && (st.Status == run.Succeeded || st.Status == run.Cancelled) {
			continue
		}
		assert.Equal(t, run.Cancelled, st.Status, "device %s (batch %d): status", id, st.Batch)
		assert.Equal(t, "enqueue_failed", st.Reason, "device %s (batch %d): reason", id, st.Batch)
	}
	e.checkAccounting(t, j, states)
}

// ---- the executor killed mid-batch ----

const childEnv = "NET_AUTO_TEST_CHILD_EXECUTOR"

// runChildExecutor is the body of the executor process the kill test starts (and kills): the
// real executor wiring (app.NewExecutor, configured from the environment) behind an event source
// mapping on the bulk queue.
func runChildExecutor() int {
	cfg, err := config.Load(config.Executor, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx := context.Background()
	// A short function timeout (10 s) and lease (12 s) so a killed executor's batch comes back
	// fast; each device takes well under a second.
	opts := app.ExecutorOptions{Engine: engineOptions, Lease: 12 * time.Second, Concurrency: 10, DeadlineMargin: 500 * time.Millisecond}
	handler, _, err := app.NewExecutor(ctx, cfg, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ep := stack.Endpoints{DynamoDB: os.Getenv("AWS_ENDPOINT_URL_DYNAMODB"), SQS: os.Getenv("AWS_ENDPOINT_URL_SQS")}
	return runMapping(ctx, ep, cfg, handler)
}

// TestBulkSurvivesExecutorKilledThreeTimes runs alone (not in parallel): its executor process has
// a short function timeout so that killed batches come back quickly.
func TestBulkSurvivesExecutorKilledThreeTimes(t *testing.T) {
	e := newBulkEnv(t, devicesim.Spec{Count: 100, Seed: 13, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultSlowDrip, Count: 100}}, DripInterval: 5 * time.Millisecond})
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 8}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	env := append(os.Environ(), childEnv+"=1", config.EnvSecrets+"=file:"+e.secrets)
	for k, v := range e.st.Endpoints.Env() {
		env = append(env, k+"="+v)
	}
	for k, v := range e.st.Names.Env() {
		env = append(env, k+"="+v)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	done := func() int {
		j, err := e.jobs.GetJob(context.Background(), acc.JobID)
		require.NoError(t, err)
		return j.Counts[run.Succeeded]
	}
	for kill := 1; kill <= 3; kill++ {
		before := done()
		cmd := start()
		deadline := time.Now().Add(60 * time.Second)
		for done() < before+5 {
			require.False(t, time.Now().After(deadline), "kill %d: executor made no progress", kill)
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Kill() // SIGKILL mid-batch: no cleanup, no last write
		t.Logf("kill %d after %d devices succeeded", kill, done())
	}
	start()
	j := e.waitJob(t, acc.JobID, 120*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s ended with %v", j.ID, j.Counts)
	require.Equal(t, 100, j.Counts[run.Succeeded], "job %s: succeeded devices (counts %v)", j.ID, j.Counts)
	states := e.allDevices(t, acc.JobID)
	e.checkAccounting(t, j, states)
	reran := 0
	for id, d := range e.devs {
		r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, id))
		require.NoError(t, err)
		if r.Attempt > 1 {
			reran++
		}
		_, ref := reference(t, d, "show version")
		got := e.output(t, r.ID)
		assert.True(t, bytes.Equal(got, ref), "device %s: stored output (%d bytes) differs from the device's (%d bytes)", id, len(got), len(ref))
	}
	// Only devices in flight at a kill run again: at most 10 per batch per kill.
	assert.LessOrEqual(t, reran, 3*2*10, "devices that ran more than once, want at most the ones in flight at the kills")
	t.Logf("%d of 100 devices were re-run after a kill", reran)
}

// startRecorder notes which runs the executor wrote as running before they finished, and any
// chunk stored before its run was.
type startRecorder struct {
	bulk.RunStore
	mu          sync.Mutex
	started     map[string]bool
	orphanChunk []string
}

func (s *startRecorder) StartNew(ctx context.Context, r run.Run) (run.Run, error) {
	s.mu.Lock()
	s.started[r.ID] = true
	s.mu.Unlock()
	return s.RunStore.StartNew(ctx, r)
}

func (s *startRecorder) AppendChunk(ctx context.Context, r run.Run, seq int, data []byte) error {
	s.mu.Lock()
	if !s.started[r.ID] {
		s.orphanChunk = append(s.orphanChunk, r.ID)
	}
	s.mu.Unlock()
	return s.RunStore.AppendChunk(ctx, r, seq, data)
}

// TestBulkRunWrittenWhenNeeded checks the lazy start of a batch's first delivery: a run that
// ends within the start delay is written once, finished; a longer one shows as running while it
// runs; a run's record is stored before its first chunk (the endless-output devices fill one).
func TestBulkRunWrittenWhenNeeded(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 12, Seed: 9, DripInterval: 300 * time.Millisecond,
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultSlowDrip, Count: 2}, {Fault: devicesim.FaultEndlessOutput, Count: 2}}})
	starts := &startRecorder{RunStore: e.runs, started: map[string]bool{}}
	e.exec.Runs = starts
	const delay = time.Second
	e.exec.StartDelay = delay
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 2)

	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	var slow string
	for id, d := range e.devs {
		if d.Fault == devicesim.FaultSlowDrip {
			slow = id
		}
	}
	// The slow device's run shows as running while it drips (polled until it does, or ends).
	seenRunning := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, slow))
		if err == nil && r.Status == run.Running {
			seenRunning = true
			break
		}
		if err == nil && r.Status.Terminal() {
			break
		}
	}
	assert.True(t, seenRunning, "the slow device's run never showed as running")
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	states := e.allDevices(t, acc.JobID)
	starts.mu.Lock()
	defer starts.mu.Unlock()
	short := 0
	for id, d := range e.devs {
		st := states[id]
		if d.Fault != devicesim.FaultSlowDrip {
			assert.Equal(t, faultOutcome[d.Fault].status, st.Status, "device %s (fault %q): status", id, d.Fault)
		}
		r, err := e.runs.Get(context.Background(), st.RunID)
		require.NoError(t, err, "run of %s", id)
		require.Equal(t, st.Status, r.Status, "device %s: the job's status (left) against the stored run's", id)
		require.Equal(t, 1, r.Attempt, "device %s: attempt", id)
		require.NotNil(t, r.StartedAt, "device %s: the run has no started_at", id)
		require.NotNil(t, r.FinishedAt, "device %s: the run has no finished_at", id)
		require.False(t, r.FinishedAt.Before(*r.StartedAt), "device %s: finished %v before it started %v", id, r.FinishedAt, r.StartedAt)
		took := r.FinishedAt.Sub(*r.StartedAt)
		switch {
		case d.Fault != devicesim.FaultNone && !starts.started[st.RunID]:
			assert.Fail(t, "a slow run never written as running", "device %s (fault %q, %v)", id, d.Fault, took)
		case d.Fault == devicesim.FaultNone && took < delay-200*time.Millisecond && starts.started[st.RunID]:
			assert.Fail(t, "a short run written as running", "device %s took only %v and stored no chunk", id, took)
		case d.Fault == devicesim.FaultNone && took < delay-200*time.Millisecond:
			short++
		}
	}
	assert.NotZero(t, short, "no run ended within the start delay: nothing showed a run written once")
	assert.Empty(t, starts.orphanChunk, "chunks stored before their run")
	e.checkAccounting(t, j, states)
}

// spanEngine notes when each device's run started and ended, and signals ended after each.
type spanEngine struct {
	next  bulk.Engine
	mu    sync.Mutex
	spans map[string][2]time.Time // host:port -> start, end
	ended chan struct{}           // one send per ended run (buffered for the whole fleet)
}

func (s *spanEngine) Run(ctx context.Context, tg sshexec.Target, command string, sink sshexec.Sink) sshexec.Result {
	start := time.Now()
	res := s.next.Run(ctx, tg, command, sink)
	s.mu.Lock()
	s.spans[net.JoinHostPort(tg.Host, strconv.Itoa(tg.Port))] = [2]time.Time{start, time.Now()}
	s.mu.Unlock()
	select {
	case s.ended <- struct{}{}:
	default: // more runs than the buffer holds: no test counts that far
	}
	return res
}

// spannedJob runs e's executor with MaxBatches 1 on the given number of invocations at once,
// noting each session's span, and enqueues a job over the whole fleet.
func spannedJob(t *testing.T, e *bulkEnv, invocations int) (*spanEngine, bulk.Accepted) {
	t.Helper()
	spans := &spanEngine{next: e.exec.Engine, spans: map[string][2]time.Time{}, ended: make(chan struct{}, 2*len(e.ids))}
	e.exec.Engine = spans
	e.exec.MaxBatches = 1
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), invocations)
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}}, auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	return spans, acc
}

// TestBulkMaxBatchesRunsOneBatchAtATime runs a 4-batch job with four invocations at once and
// MaxBatches 1 (what the local executor uses on two cores): a batch's devices start only once the
// batch before is in its tail, so when a batch's first device starts, at most a tenth of a batch's
// concurrency (5 of the default 50) of other batches' devices are still running.
func TestBulkMaxBatchesRunsOneBatchAtATime(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 160, Seed: 13})
	spans, acc := spannedJob(t, e, 4)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s ended with %v", j.ID, j.Counts)
	require.Equal(t, 160, j.Counts[run.Succeeded], "job %s: succeeded devices (counts %v)", j.ID, j.Counts)
	type running struct {
		batch      int
		start, end time.Time
	}
	var runs []running
	first := map[int]time.Time{} // each batch's first device start
	for id, st := range e.allDevices(t, acc.JobID) {
		d := e.devs[id]
		span, ok := spans.spans[net.JoinHostPort(d.Host, strconv.Itoa(d.Port))]
		require.True(t, ok, "device %s never ran", id)
		runs = append(runs, running{st.Batch, span[0], span[1]})
		if f, seen := first[st.Batch]; !seen || span[0].Before(f) {
			first[st.Batch] = span[0]
		}
	}
	require.Len(t, first, 4, "batches that ran")
	const tail = bulk.MaxBatchSize / 10 // the sessions a batch may still have open when the next starts
	for b, at := range first {
		open := 0
		for _, r := range runs {
			if r.batch != b && !r.start.After(at) && r.end.After(at) {
				open++
			}
		}
		assert.LessOrEqual(t, open, tail, "devices of other batches still running when batch %d started at %s", b, at.Format("15:04:05.000"))
	}
}

// heldFinishes holds every finish until release is closed.
type heldFinishes struct {
	bulk.RunStore
	release chan struct{}
}

func (h heldFinishes) Finish(ctx context.Context, r run.Run, data []byte) error {
	<-h.release
	return h.RunStore.Finish(ctx, r, data)
}

func (h heldFinishes) FinishNew(ctx context.Context, r run.Run, data []byte) error {
	<-h.release
	return h.RunStore.FinishNew(ctx, r, data)
}

// TestBulkBatchSlotFreedWhenSessionsEnd holds every run's finish, with MaxBatches 1 and two
// batches: the second batch's sessions still run, because a batch gives its slot up when its
// sessions end rather than when its runs are stored (the slot here allowing two batches' worth
// of devices not yet stored; one by default).
func TestBulkBatchSlotFreedWhenSessionsEnd(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 100, Seed: 17})
	e.exec.UnstoredPerSlot = 2 * bulk.MaxBatchSize
	held := heldFinishes{RunStore: e.exec.Runs, release: make(chan struct{})}
	e.exec.Runs = held
	spans, acc := spannedJob(t, e, 2)
	require.Equal(t, 2, acc.Batches, "batches of job %s", acc.JobID)
	timeout := time.After(20 * time.Second)
	for ran := 0; ran < 100; ran++ {
		select {
		case <-spans.ended:
		case <-timeout:
			close(held.release)
			require.FailNow(t, "not every session ran while the first batch's finishes were held", "%d of 100 ran", ran)
		}
	}
	close(held.release)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s ended with %v", j.ID, j.Counts)
	require.Equal(t, 100, j.Counts[run.Succeeded], "job %s: succeeded devices (counts %v)", j.ID, j.Counts)
}

// gateEngine holds every run until open is closed.
type gateEngine struct {
	next bulk.Engine
	open chan struct{}
}

func (g *gateEngine) Run(ctx context.Context, tg sshexec.Target, command string, sink sshexec.Sink) sshexec.Result {
	select {
	case <-g.open:
	case <-ctx.Done():
	}
	return g.next.Run(ctx, tg, command, sink)
}

// handOnQueue counts the continuations the executor sends.
type handOnQueue struct {
	*queue.Sender
	delayed atomic.Int64
}

func (q *handOnQueue) SendDelayed(ctx context.Context, m bulk.Message, delay time.Duration) error {
	q.delayed.Add(1)
	return q.Sender.SendDelayed(ctx, m, delay)
}

// TestBulkBatchWaitingForASlotIsHandedOn holds the one batch slot busy past the point where a
// waiting invocation could still run a device: that invocation hands its batch to a new message
// instead of failing it, and the job still completes with every device run once.
func TestBulkBatchWaitingForASlotIsHandedOn(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 100, Seed: 17})
	gate := &gateEngine{next: e.exec.Engine, open: make(chan struct{})}
	e.exec.Engine = gate
	e.exec.MaxBatches = 1
	sender, err := queue.NewSender(stack.SQSClient(e.st.Endpoints.SQS), e.st.Names.Queues[resources.BulkQueue])
	require.NoError(t, err)
	q := &handOnQueue{Sender: sender}
	e.exec.Queue = q
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 2)
	// The invocations last 30 s and a device may take 25 s (+1 s margin): a batch waits at most
	// 4 s for the slot.
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 25}}, auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	for deadline := time.Now().Add(30 * time.Second); q.delayed.Load() == 0; time.Sleep(50 * time.Millisecond) {
		require.False(t, time.Now().After(deadline), "the waiting batch was never handed on")
	}
	close(gate.open)
	j := e.waitJob(t, acc.JobID, 90*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s ended with %v", j.ID, j.Counts)
	require.Equal(t, 100, j.Counts[run.Succeeded], "job %s: succeeded devices (counts %v)", j.ID, j.Counts)
	states := e.allDevices(t, acc.JobID)
	for id, st := range states {
		r, err := e.runs.Get(context.Background(), st.RunID)
		if assert.NoError(t, err, "run of device %s", id) {
			assert.Equal(t, 1, r.Attempt, "device %s: run %+v: attempt", id, r)
			assert.Equal(t, run.Succeeded, r.Status, "device %s: run %+v: status", id, r)
		}
	}
	e.checkAccounting(t, j, states)
}
