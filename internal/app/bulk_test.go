package app_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
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

	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 12}}, "tester@example.com", false)
	require.NoError(t, err)
	if acc.DeviceCount != 200 || acc.Batches != 4 {
		t.Fatalf("accepted %+v, want 200 devices in 4 batches", acc)
	}
	j := e.waitJob(t, acc.JobID, 90*time.Second)
	if j.Status != bulk.JobCompleted {
		t.Errorf("job ended %s, want completed", j.Status)
	}
	states := e.allDevices(t, acc.JobID)
	if len(states) != 200 {
		t.Fatalf("%d devices in the job, want 200", len(states))
	}

	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for id, d := range e.devs {
		want := faultOutcome[d.Fault]
		st := states[id]
		if st.Status != want.status || (want.reason != "" && st.Reason != want.reason) {
			t.Errorf("%s (%s, fault %q): %s/%s, want %s/%s", id, d.Platform, d.Fault, st.Status, st.Reason, want.status, want.reason)
			continue
		}
		r, err := e.runs.Get(context.Background(), st.RunID)
		require.NoError(t, err, "run of %s", id)
		if r.Truncated != want.truncated || r.RequestedBy != "tester@example.com" || r.Attempt != 1 {
			t.Errorf("%s: truncated %v (want %v), requested_by %q, attempt %d", id, r.Truncated, want.truncated, r.RequestedBy, r.Attempt)
		}
		if want.truncated && r.Bytes != engineOptions.MaxOutputBytes {
			t.Errorf("%s: truncated run stored %d bytes, want the cap %d", id, r.Bytes, engineOptions.MaxOutputBytes)
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
			if res.Status != sshexec.StatusSucceeded {
				t.Errorf("%s: reference run %s", id, res.Status)
			} else if !bytes.Equal(got, ref) || len(got) == 0 {
				t.Errorf("%s: stored output (%d bytes) differs from the device's (%d bytes)", id, len(got), len(ref))
			} else if want := run.OutputDigest(ref); st.OutputDigest != want || r.OutputDigest != want {
				t.Errorf("%s: output digest %q in the job and %q on the run, want %q", id, st.OutputDigest, r.OutputDigest, want)
			}
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
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 10}}, "op@example.com", false)
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
			if err != nil {
				t.Errorf("delivery %d: %v", i, err)
			}
			outcomes[i] = out
		}()
	}
	wg.Wait()
	if ran := outcomes[0].Ran + outcomes[1].Ran; ran != 20 || outcomes[0].Retry || outcomes[1].Retry {
		t.Errorf("two deliveries at once: outcomes %+v, want 20 devices run between them and no retry", outcomes)
	}
	// The queued original is the third delivery: it finds every device done.
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 2)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	if j.Status != bulk.JobCompleted || j.Counts[run.Succeeded] != 20 {
		t.Fatalf("job %s with %v, want completed with 20 succeeded", j.Status, j.Counts)
	}
	e.checkAccounting(t, j, e.allDevices(t, acc.JobID))
	for _, id := range e.ids {
		if n := e.fleet.Sessions(id); n != 1 {
			t.Errorf("%s ran the command %d times, want once", id, n)
		}
		if r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, id)); err != nil || r.Attempt != 1 {
			t.Errorf("run of %s: attempt %d, err %v; want attempt 1", id, r.Attempt, err)
		}
	}
}

func TestBulkCancelMidJob(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 60, Seed: 3, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultSlowDrip, Count: 60}}, DripInterval: 30 * time.Millisecond})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids,
		Options: bulk.Options{TimeoutS: 10, MaxConcurrency: 5}}, "op@example.com", false)
	require.NoError(t, err)
	// Cancel once some devices have finished.
	deadline := time.Now().Add(30 * time.Second)
	for {
		j, err := e.jobs.GetJob(context.Background(), acc.JobID)
		require.NoError(t, err)
		if j.Counts[run.Succeeded] >= 5 {
			break
		}
		if time.Now().After(deadline) || j.Status.Terminal() {
			t.Fatalf("job did not progress: %+v", j)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := e.enq.Cancel(context.Background(), acc.JobID); err != nil {
		t.Fatal(err)
	}
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	if j.Status != bulk.JobCancelled {
		t.Errorf("job ended %s, want cancelled", j.Status)
	}
	states := e.allDevices(t, acc.JobID)
	if j.Counts[run.Cancelled] < 30 || j.Counts[run.Succeeded] < 5 {
		t.Errorf("counts %v: want most devices cancelled and the finished ones kept", j.Counts)
	}
	e.checkAccounting(t, j, states)
	if _, err := e.enq.Cancel(context.Background(), acc.JobID); !errors.Is(err, bulk.ErrJobFinished) {
		t.Errorf("cancel of a finished job = %v, want ErrJobFinished", err)
	}
}

func TestBulkMaxErrorsStopsTheJob(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 80, Seed: 5, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 40}}})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids,
		Options: bulk.Options{TimeoutS: 5, MaxConcurrency: 2, MaxErrors: "3"}}, "op@example.com", false)
	require.NoError(t, err)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	if j.Status != bulk.JobStopped {
		t.Errorf("job ended %s, want stopped", j.Status)
	}
	failures := j.Counts[run.Unreachable]
	if failures <= 3 || failures >= 40 {
		t.Errorf("%d devices failed: want more than max_errors (3) and the job stopped well before all 40", failures)
	}
	if j.Counts[run.Cancelled] == 0 {
		t.Errorf("no device was cancelled: %v", j.Counts)
	}
	states := e.allDevices(t, acc.JobID)
	for id, st := range states {
		if st.Status == run.Cancelled && st.Reason != "max_errors" {
			t.Errorf("%s cancelled with reason %q, want max_errors", id, st.Reason)
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
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, "op@example.com", false)
	require.NoError(t, err)
	e.startWorkers(t, handler, 4)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	states := e.allDevices(t, acc.JobID)
	for id, st := range states {
		if st.Status != run.Failed || st.Reason != "delivery_failed" {
			t.Errorf("%s ended %s/%s, want failed/delivery_failed", id, st.Status, st.Reason)
		}
	}
	if j.Counts[run.Failed] != 6 || j.Status != bulk.JobCompleted {
		t.Errorf("job %s with counts %v, want completed with 6 failed", j.Status, j.Counts)
	}
	mu.Lock()
	defer mu.Unlock()
	if crashes != 5 {
		t.Errorf("the batch was delivered %d times before the dead-letter queue, want maxReceiveCount 5", crashes)
	}
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
	_, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, "op@example.com", false)
	if err == nil {
		t.Fatal("enqueue with a failing queue succeeded")
	}
	// The job exists (its id is in the error path's records) and must end.
	items, err := jobIDs(e)
	if err != nil || len(items) != 1 {
		t.Fatalf("jobs %v, %v: want exactly one", items, err)
	}
	j := e.waitJob(t, items[0], 60*time.Second)
	if j.Status != bulk.JobFailed || j.Error == "" {
		t.Errorf("job %s (%q), want failed with an error", j.Status, j.Error)
	}
	states := e.allDevices(t, j.ID)
	for id, st := range states {
		// The one batch that went out may have run before the job was marked failed
		// (harmless); every device of the batches that did not go out is cancelled.
		if st.Batch == 0 && (st.Status == run.Succeeded || st.Status == run.Cancelled) {
			continue
		}
		if st.Status != run.Cancelled || st.Reason != "enqueue_failed" {
			t.Errorf("%s (batch %d): %s/%s, want cancelled/enqueue_failed", id, st.Batch, st.Status, st.Reason)
		}
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
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 8}}, "op@example.com", false)
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
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: executor made no progress", kill)
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Kill() // SIGKILL mid-batch: no cleanup, no last write
		t.Logf("kill %d after %d devices succeeded", kill, done())
	}
	start()
	j := e.waitJob(t, acc.JobID, 120*time.Second)
	if j.Status != bulk.JobCompleted || j.Counts[run.Succeeded] != 100 {
		t.Fatalf("job %s with %v, want completed with 100 succeeded", j.Status, j.Counts)
	}
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
		if got := e.output(t, r.ID); !bytes.Equal(got, ref) {
			t.Errorf("%s: stored output (%d bytes) differs from the device's (%d bytes)", id, len(got), len(ref))
		}
	}
	// Only devices in flight at a kill run again: at most 10 per batch per kill.
	if reran > 3*2*10 {
		t.Errorf("%d devices ran more than once, want at most the ones in flight at the kills", reran)
	}
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

	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, "tester@example.com", false)
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
	if !seenRunning {
		t.Errorf("the slow device's run never showed as running")
	}
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	states := e.allDevices(t, acc.JobID)
	starts.mu.Lock()
	defer starts.mu.Unlock()
	short := 0
	for id, d := range e.devs {
		st := states[id]
		if want := faultOutcome[d.Fault]; d.Fault != devicesim.FaultSlowDrip && st.Status != want.status {
			t.Errorf("%s (fault %q): %s, want %s", id, d.Fault, st.Status, want.status)
		}
		r, err := e.runs.Get(context.Background(), st.RunID)
		require.NoError(t, err, "run of %s", id)
		if r.Status != st.Status || r.Attempt != 1 || r.StartedAt == nil || r.FinishedAt == nil || r.FinishedAt.Before(*r.StartedAt) {
			t.Fatalf("%s: stored run %s (job says %s) attempt %d started %v finished %v", id, r.Status, st.Status, r.Attempt, r.StartedAt, r.FinishedAt)
		}
		took := r.FinishedAt.Sub(*r.StartedAt)
		switch {
		case d.Fault != devicesim.FaultNone && !starts.started[st.RunID]:
			t.Errorf("%s (fault %q, %v): never written as running", id, d.Fault, took)
		case d.Fault == devicesim.FaultNone && took < delay-200*time.Millisecond && starts.started[st.RunID]:
			t.Errorf("%s: written as running though it took only %v and stored no chunk", id, took)
		case d.Fault == devicesim.FaultNone && took < delay-200*time.Millisecond:
			short++
		}
	}
	if short == 0 {
		t.Errorf("no run ended within the start delay: nothing showed a run written once")
	}
	if len(starts.orphanChunk) > 0 {
		t.Errorf("chunks stored before their run: %v", starts.orphanChunk)
	}
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
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}}, "tester@example.com", false)
	require.NoError(t, err)
	return spans, acc
}

// TestBulkMaxBatchesRunsOneBatchAtATime runs a 4-batch job with four invocations at once and
// MaxBatches 1 (what the local executor uses on two cores): no two batches' devices ever run at
// the same time, and the job completes.
func TestBulkMaxBatchesRunsOneBatchAtATime(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 160, Seed: 13})
	spans, acc := spannedJob(t, e, 4)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	if j.Status != bulk.JobCompleted || j.Counts[run.Succeeded] != 160 {
		t.Fatalf("job ended %s with %v, want completed with 160 succeeded", j.Status, j.Counts)
	}
	// Each batch's devices run within [first start, last end]; those windows must not overlap.
	windows := map[int][2]time.Time{}
	for id, st := range e.allDevices(t, acc.JobID) {
		d := e.devs[id]
		span, ok := spans.spans[net.JoinHostPort(d.Host, strconv.Itoa(d.Port))]
		if !ok {
			t.Fatalf("%s never ran", id)
		}
		w, seen := windows[st.Batch]
		if !seen || span[0].Before(w[0]) {
			w[0] = span[0]
		}
		if !seen || span[1].After(w[1]) {
			w[1] = span[1]
		}
		windows[st.Batch] = w
	}
	if len(windows) != 4 {
		t.Fatalf("%d batches ran, want 4", len(windows))
	}
	for a, wa := range windows {
		for b, wb := range windows {
			if a < b && wa[0].Before(wb[1]) && wb[0].Before(wa[1]) {
				t.Errorf("batches %d (%s–%s) and %d (%s–%s) ran at the same time", a, wa[0].Format("15:04:05.000"), wa[1].Format("15:04:05.000"),
					b, wb[0].Format("15:04:05.000"), wb[1].Format("15:04:05.000"))
			}
		}
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
// sessions end rather than when its runs are stored.
func TestBulkBatchSlotFreedWhenSessionsEnd(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Count: 100, Seed: 17})
	held := heldFinishes{RunStore: e.exec.Runs, release: make(chan struct{})}
	e.exec.Runs = held
	spans, acc := spannedJob(t, e, 2)
	if acc.Batches != 2 {
		t.Fatalf("%d batches, want 2", acc.Batches)
	}
	timeout := time.After(20 * time.Second)
	for ran := 0; ran < 100; ran++ {
		select {
		case <-spans.ended:
		case <-timeout:
			close(held.release)
			t.Fatalf("%d of 100 sessions ran while the first batch's finishes were held, want all", ran)
		}
	}
	close(held.release)
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	if j.Status != bulk.JobCompleted || j.Counts[run.Succeeded] != 100 {
		t.Fatalf("job ended %s with %v, want completed with 100 succeeded", j.Status, j.Counts)
	}
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
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 25}}, "tester@example.com", false)
	require.NoError(t, err)
	for deadline := time.Now().Add(30 * time.Second); q.delayed.Load() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiting batch was never handed on")
		}
	}
	close(gate.open)
	j := e.waitJob(t, acc.JobID, 90*time.Second)
	if j.Status != bulk.JobCompleted || j.Counts[run.Succeeded] != 100 {
		t.Fatalf("job ended %s with %v, want completed with 100 succeeded", j.Status, j.Counts)
	}
	states := e.allDevices(t, acc.JobID)
	for id, st := range states {
		r, err := e.runs.Get(context.Background(), st.RunID)
		if err != nil || r.Attempt != 1 || r.Status != run.Succeeded {
			t.Errorf("%s: run %+v, %v; want succeeded at the first attempt", id, r, err)
		}
	}
	e.checkAccounting(t, j, states)
}
