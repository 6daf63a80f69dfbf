package bulk_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/bulk/memstore"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/notify/notifytest"
	"github.com/netauto/netauto/internal/sshexec"
)

// eventSink is a notify.Publisher that keeps what it is given, or fails.
type eventSink struct {
	mu     sync.Mutex
	events []notify.Event
	err    error
	// hold, when set, is called (unlocked) before the first publish: the test interleaves
	// something there.
	hold func()
}

func (s *eventSink) Publish(_ context.Context, events ...notify.Event) error {
	s.mu.Lock()
	hold := s.hold
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		hold()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.events = append(s.events, events...)
	return nil
}

// of returns the events of one detail type, each held to its schema.
func (s *eventSink) of(t *testing.T, detailType string) []notify.Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []notify.Event
	for _, e := range s.events {
		notifytest.RequireValidEvent(t, e)
		if e.DetailType == detailType {
			out = append(out, e)
		}
	}
	return out
}

// flakyClaims fails its first fail claims, as a store that could not be written.
type flakyClaims struct {
	bulk.NoticeClaimer
	mu   sync.Mutex
	fail int
}

func (f *flakyClaims) ClaimNotice(ctx context.Context, jobID, name string, exp time.Time) (bool, error) {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		return false, errors.New("table unavailable")
	}
	f.mu.Unlock()
	return f.NoticeClaimer.ClaimNotice(ctx, jobID, name, exp)
}

// haltingJobs is a job store whose EndJob fails: the process ending the job stopped half way.
type haltingJobs struct{ *memstore.Jobs }

func (haltingJobs) EndJob(context.Context, string, bulk.JobStatus, time.Time) (bulk.Job, error) {
	return bulk.Job{}, errors.New("stopped before the job ended")
}

// withNotices gives e's enqueuer and executor notices into a sink, and returns the sink.
func withNotices(e *env) (*eventSink, *bulk.Notices) {
	sink := &eventSink{}
	n := &bulk.Notices{Publisher: sink, Claims: e.jobs, Runs: e.runs, Devices: e.devices, Logger: discardLogger()}
	e.exec.Notices, e.enq.Notices = n, n
	return sink, n
}

func (e *env) watchdog(t *testing.T, n *bulk.Notices) *bulk.Watchdog {
	t.Helper()
	w, err := bulk.NewWatchdog(&bulk.Watchdog{Jobs: e.jobs, Runs: e.runs, Queue: e.queue, Publisher: e.pub, Notices: n,
		StaleAfter: testStale, Period: testPeriod, Logger: discardLogger()})
	require.NoError(t, err)
	return w
}

func jobFinished(t *testing.T, e notify.Event) notify.JobFinished {
	t.Helper()
	d, ok := e.Detail.(notify.JobFinished)
	require.True(t, ok, "detail of %s is %T", e.DetailType, e.Detail)
	return d
}

// TestJobFinishedOncePerJob: a job's end sends one Job Finished with its counts and its failed
// devices (never one per device), and a redelivered batch or a watchdog sweep afterwards sends
// nothing more.
func TestJobFinishedOncePerJob(t *testing.T) {
	ids := deviceIDs("r", 7)
	e := newEnv(t, ids...)
	sink, n := withNotices(e)
	e.enq.BatchSize = 3
	e.engine.fail["r03"] = sshexec.StatusUnreachable
	e.engine.fail["r05"] = sshexec.StatusAuthFailed
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	msgs := e.queue.Take()
	for _, m := range msgs {
		e.handle(t, m.Message)
	}
	e.drain(t)
	j := e.job(t, acc.JobID)
	require.Equal(t, bulk.JobCompleted, j.Status)

	e.handle(t, msgs[0].Message) // SQS delivers the first batch again
	_, err := e.watchdog(t, n).Sweep(context.Background())
	require.NoError(t, err)

	got := sink.of(t, notify.DetailTypeJobFinished)
	require.Len(t, got, 1, "one Job Finished per job")
	d := jobFinished(t, got[0])
	assert.Equal(t, acc.JobID, d.JobID)
	assert.Equal(t, "completed", d.Status)
	assert.Equal(t, "op@example.com", d.RequestedBy)
	assert.Equal(t, "show version", d.Command)
	assert.Equal(t, map[string]int{"succeeded": 5, "unreachable": 1, "auth_failed": 1}, d.Counts)
	assert.Equal(t, []notify.FailedDevice{
		{DeviceID: "r03", Name: "r03", Status: "unreachable", Reason: string(sshexec.ReasonRefused)},
		{DeviceID: "r05", Name: "r05", Status: "auth_failed", Reason: string(sshexec.ReasonRefused)},
	}, d.Failed)
	assert.False(t, d.FailedTruncated)
	assert.Equal(t, "/?job="+acc.JobID, d.UIPath)
	assert.Equal(t, *j.FinishedAt, d.FinishedAt)
	assert.Empty(t, sink.of(t, notify.DetailTypeOutputChanged), "nothing changed: a first run has nothing to differ from")
}

// TestJobFinishedOnceWhenExecutorAndWatchdogRace: the last batch is done but its writer stopped
// before the job ended; a redelivery of that batch and a watchdog sweep then end the job at the
// same moment. Exactly one Job Finished goes out, every time.
func TestJobFinishedOnceWhenExecutorAndWatchdogRace(t *testing.T) {
	for i := range 20 {
		ids := deviceIDs("r", 2)
		e := newEnv(t, ids...)
		sink, n := withNotices(e)
		e.enq.BatchSize = 1
		acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
		msgs := e.queue.Take()
		require.Len(t, msgs, 2)
		e.handle(t, msgs[0].Message)
		// The second batch's devices finish and the batch is done, but the job is not ended.
		e.exec.Notices = nil
		e.exec.Jobs = haltingJobs{e.jobs}
		_, err := e.exec.Handle(context.Background(), msgs[1].Message)
		require.ErrorContains(t, err, "stopped before the job ended")
		require.False(t, e.job(t, acc.JobID).Status.Terminal(), "round %d: the job did not end", i)
		e.exec.Jobs, e.exec.Notices = e.jobs, n

		// The sweep sees the batch unchanged for longer than StaleAfter.
		w, err := bulk.NewWatchdog(&bulk.Watchdog{Jobs: e.jobs, Runs: e.runs, Queue: e.queue, Publisher: e.pub, Notices: n,
			StaleAfter: testStale, Period: testPeriod, Logger: discardLogger(), Now: func() time.Time { return time.Now().Add(3 * testStale) }})
		require.NoError(t, err)
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, err := e.exec.Handle(context.Background(), msgs[1].Message)
			assert.NoError(t, err)
		}()
		go func() {
			defer wg.Done()
			<-start
			_, err := w.Sweep(context.Background())
			assert.NoError(t, err)
		}()
		close(start)
		wg.Wait()
		require.Equal(t, bulk.JobCompleted, e.job(t, acc.JobID).Status, "round %d", i)
		require.Len(t, sink.of(t, notify.DetailTypeJobFinished), 1, "round %d: exactly one Job Finished", i)
	}
}

// TestJobFinishedOnceWhenTheWatchdogSweepsMidPublish: the watchdog sweeps while the executor
// that ended the job is still publishing (the job ended, still on the unfinished list): the
// sweep finds the claim taken and sends nothing.
func TestJobFinishedOnceWhenTheWatchdogSweepsMidPublish(t *testing.T) {
	ids := deviceIDs("r", 2)
	e := newEnv(t, ids...)
	sink, n := withNotices(e)
	w := e.watchdog(t, n)
	swept := 0
	sink.hold = func() {
		rep, err := w.Sweep(context.Background())
		assert.NoError(t, err)
		swept = rep.Forgotten
	}
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.drain(t)
	require.Equal(t, bulk.JobCompleted, e.job(t, acc.JobID).Status)
	assert.Equal(t, 1, swept, "the sweep found the ended job on the list")
	assert.Len(t, sink.of(t, notify.DetailTypeJobFinished), 1)
}

// TestJobFinishedSentByTheWatchdogWhenTheClaimFailed: the job's ender could not write the claim;
// the job stays on the unfinished list and the next sweep sends its events, once.
func TestJobFinishedSentByTheWatchdogWhenTheClaimFailed(t *testing.T) {
	ids := deviceIDs("r", 2)
	e := newEnv(t, ids...)
	sink, n := withNotices(e)
	n.Claims = &flakyClaims{NoticeClaimer: e.jobs, fail: 1}
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.drain(t)
	require.Equal(t, bulk.JobCompleted, e.job(t, acc.JobID).Status, "the job ends whatever its events do")
	assert.Empty(t, sink.of(t, notify.DetailTypeJobFinished))
	unfinished, _, err := e.jobs.UnfinishedJobs(context.Background(), "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{acc.JobID}, unfinished, "kept for the watchdog")

	w := e.watchdog(t, n)
	for range 2 {
		_, err := w.Sweep(context.Background())
		require.NoError(t, err)
	}
	assert.Len(t, sink.of(t, notify.DetailTypeJobFinished), 1)
	unfinished, _, err = e.jobs.UnfinishedJobs(context.Background(), "", 10)
	require.NoError(t, err)
	assert.Empty(t, unfinished)
}

// TestPublishFailureNeverFailsAJob: a bus that refuses everything leaves the job as it would be
// without events.
func TestPublishFailureNeverFailsAJob(t *testing.T) {
	ids := deviceIDs("r", 3)
	e := newEnv(t, ids...)
	sink, _ := withNotices(e)
	sink.err = errors.New("bus down")
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.drain(t)
	j := e.job(t, acc.JobID)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	e.checkAccounting(t, j)
	unfinished, _, err := e.jobs.UnfinishedJobs(context.Background(), "", 10)
	require.NoError(t, err)
	assert.Empty(t, unfinished, "the job is not kept for another try: the claim was taken")
}

// hangingBus is a publisher that never answers: it waits for its context to end.
type hangingBus struct{ calls atomic.Int32 }

func (h *hangingBus) Publish(ctx context.Context, _ ...notify.Event) error {
	h.calls.Add(1)
	<-ctx.Done()
	return ctx.Err()
}

// TestHangingBusNeverStallsAJob: a bus that never answers holds the job's end up for the
// publish timeout at most, and the job ends as without events.
func TestHangingBusNeverStallsAJob(t *testing.T) {
	ids := deviceIDs("r", 3)
	e := newEnv(t, ids...)
	_, n := withNotices(e)
	bus := &hangingBus{}
	n.Publisher, n.Timeout = bus, 50*time.Millisecond
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.drain(t)
	j := e.job(t, acc.JobID)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	e.checkAccounting(t, j)
	assert.EqualValues(t, 1, bus.calls.Load(), "the bus was asked once")
}

// TestCancelledJobFinished: a job a cancel ends before any batch ran sends its Job Finished from
// the API's enqueuer, with every device cancelled.
func TestCancelledJobFinished(t *testing.T) {
	ids := deviceIDs("c", 3)
	e := newEnv(t, ids...)
	sink, _ := withNotices(e)
	e.enq.BatchSize = 1
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show clock", DeviceIDs: ids, Options: bulk.Options{MaxConcurrency: 1}},
		auth.Identity{Subject: "op@example.com", Role: auth.Operator})
	require.NoError(t, err)
	_, err = e.enq.Cancel(context.Background(), acc.JobID)
	require.NoError(t, err)
	e.drain(t)
	got := sink.of(t, notify.DetailTypeJobFinished)
	require.Len(t, got, 1)
	d := jobFinished(t, got[0])
	assert.Equal(t, "cancelled", d.Status)
	assert.Equal(t, 3, d.Counts["cancelled"])
	assert.Len(t, d.Failed, 3, "cancelled devices are listed: they did not succeed")
}

// TestOutputChangedListsTheChangedDevices: a job whose devices' output differs from their
// previous run sends one Output Changed listing exactly those devices, with the runs compared.
func TestOutputChangedListsTheChangedDevices(t *testing.T) {
	ids := []string{"same", "real", "down", "also"}
	e := newEnv(t, ids...)
	sink, _ := withNotices(e)
	eng := &configEngine{configs: map[string]string{}, fail: map[string]bool{}}
	e.exec.Engine = eng
	night := func(bodies map[string]string) string {
		t.Helper()
		eng.mu.Lock()
		for id, b := range bodies {
			eng.configs[id] = b
		}
		eng.mu.Unlock()
		acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show running-config", DeviceIDs: ids},
			auth.Identity{Subject: "admin@example.com", Role: auth.Admin})
		require.NoError(t, err)
		e.drain(t)
		return acc.JobID
	}
	base := map[string]string{}
	for _, id := range ids {
		base[id] = "hostname " + id + "\r\ninterface Gi1\r\n shutdown\r\nend\r\n"
	}
	first := night(base)
	assert.Empty(t, sink.of(t, notify.DetailTypeOutputChanged), "a first run changes nothing")
	base["real"] = "hostname real\r\ninterface Gi1\r\n no shutdown\r\nend\r\n"
	base["also"] = "hostname also2\r\ninterface Gi1\r\n shutdown\r\nend\r\n"
	base["down"] = "hostname down2\r\n"
	eng.mu.Lock()
	eng.fail["down"] = true
	eng.mu.Unlock()
	second := night(base)

	got := sink.of(t, notify.DetailTypeOutputChanged)
	require.Len(t, got, 1, "one Output Changed per job")
	d, ok := got[0].Detail.(notify.OutputChanged)
	require.True(t, ok)
	assert.Equal(t, second, d.JobID)
	assert.Equal(t, 2, d.ChangedCount)
	assert.Equal(t, []notify.ChangedDevice{ // in the job's order
		{DeviceID: "real", Name: "real", RunID: bulk.RunID(second, "real"), PreviousRunID: bulk.RunID(first, "real")},
		{DeviceID: "also", Name: "also", RunID: bulk.RunID(second, "also"), PreviousRunID: bulk.RunID(first, "also")},
	}, d.Changed)
	assert.Len(t, sink.of(t, notify.DetailTypeJobFinished), 2, "one Job Finished for each night")
}

// TestHostKeyMismatchEvents: a device's refused key sends one Host Key Mismatch naming both
// fingerprints; a jump host refused in two batches of one job sends one, not one per device or
// batch.
func TestHostKeyMismatchEvents(t *testing.T) {
	pinned, offered := randomHostKey(t), randomHostKey(t)
	t.Run("device", func(t *testing.T) {
		e := newEnv(t)
		sink, _ := withNotices(e)
		e.devices.Put(device.Device{ID: "core-1", Name: "Core 1", Host: "core-1", Port: 2222, Platform: "cisco_ios", Username: "admin", HostKey: pinned},
			device.Credential{Password: "secret"})
		e.exec.Engine = keyEngine{offers: map[string]string{"core-1": offered}}
		acc := e.enqueue(t, []string{"core-1"}, bulk.Options{TimeoutS: 5})
		msgs := e.queue.Take()
		e.handle(t, msgs[0].Message)
		e.handle(t, msgs[0].Message) // redelivered: the device does not run again
		got := sink.of(t, notify.DetailTypeHostKeyMismatch)
		require.Len(t, got, 1)
		assert.Equal(t, notify.HostKeyMismatch{
			Version: 1, Kind: "device", ID: "core-1", Name: "Core 1", Host: "core-1", Port: 2222,
			PresentedFingerprint: device.HostKeyFingerprint(offered), PinnedFingerprint: device.HostKeyFingerprint(pinned),
			JobID: acc.JobID, RunID: bulk.RunID(acc.JobID, "core-1"), SeenAt: got[0].Time,
		}, got[0].Detail)
	})
	t.Run("jump host", func(t *testing.T) {
		e := newEnv(t)
		sink, _ := withNotices(e)
		src := &jumpSource{
			hosts: map[string]jumphost.JumpHost{"bastion": {ID: "bastion", Host: "192.0.2.1", Port: 22, Username: "jump", AuthMethod: device.AuthPassword, HostKey: pinned, HasCredential: true}},
			creds: map[string]device.Credential{"bastion": {Password: hopPassword}}, gets: map[string]int{}, pending: map[string][]string{},
		}
		ids := deviceIDs("b", 4)
		for _, id := range ids {
			e.devices.Put(device.Device{ID: id, Name: id, Host: id, Port: 22, Platform: "cisco_ios", Username: "admin", JumpHostIDs: []string{"bastion"}}, device.Credential{Password: "secret"})
		}
		e.exec.Engine = &chainEngine{chains: map[string][]sshexec.Hop{}, refuse: "bastion", offers: offered}
		e.exec.JumpHosts = src
		e.enq.BatchSize = 2
		acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
		e.drain(t)
		got := sink.of(t, notify.DetailTypeHostKeyMismatch)
		require.Len(t, got, 1, "one per job and jump host, across its batches")
		d, ok := got[0].Detail.(notify.HostKeyMismatch)
		require.True(t, ok)
		assert.Equal(t, "jump_host", d.Kind)
		assert.Equal(t, "bastion", d.ID)
		assert.Equal(t, "192.0.2.1", d.Host)
		assert.Equal(t, acc.JobID, d.JobID)
		assert.Equal(t, device.HostKeyFingerprint(pinned), d.PinnedFingerprint)
		b, err := json.Marshal(d)
		require.NoError(t, err)
		assert.NotContains(t, string(b), hopPassword, "no credential in an event")
	})
}

// hopPassword is the jump host's password in the notice tests: long enough that no random
// fingerprint in an event can contain it by chance (a two-letter one did, one run in a few
// hundred).
const hopPassword = "hop-password-7Qx2"
