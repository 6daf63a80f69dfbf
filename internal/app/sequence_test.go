package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// seqSink keeps each command's output apart, as a reference for what the pipeline stores.
type seqSink struct {
	outs [][]byte
}

func (s *seqSink) StartCommand(i int) error {
	for len(s.outs) <= i {
		s.outs = append(s.outs, nil)
	}
	return nil
}

func (s *seqSink) Write(p []byte) (int, error) {
	s.outs[len(s.outs)-1] = append(s.outs[len(s.outs)-1], p...)
	return len(p), nil
}

// referenceSequence runs cmds on a device directly with the engine: the exact output of each
// command.
func referenceSequence(t *testing.T, d devicesim.InventoryDevice, cmds []bulk.Command, stop bool) (sshexec.Result, [][]byte) {
	t.Helper()
	engine, err := sshexec.New(engineOptions)
	require.NoError(t, err)
	seq := sshexec.Sequence{StopOnError: stop}
	for _, c := range cmds {
		sc := sshexec.Command{Text: c.Command}
		for _, p := range c.Prompts {
			sc.Prompts = append(sc.Prompts, sshexec.Prompt{Expect: p.Expect, Answer: p.Answer, Secret: p.Secret, Regex: p.Regex})
		}
		seq.Commands = append(seq.Commands, sc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sink := &seqSink{}
	res := engine.RunSequence(ctx, sshexec.Target{Host: d.Host, Port: d.Port, Platform: d.Platform, Username: d.Username,
		AuthMethod: sshexec.AuthMethod(d.AuthMethod), Password: d.Password, HostKey: d.HostKey}, seq, sink)
	return res, sink.outs
}

// commandOutput is command i's output as the run store gives it back (what GET
// /v1/runs/{id}/output?command=N answers).
func (e *bulkEnv) commandOutput(t *testing.T, r run.Run, i int) []byte {
	t.Helper()
	require.Less(t, i, len(r.Commands), "run %s has no command %d", r.ID, i)
	var b bytes.Buffer
	require.NoError(t, e.runs.WriteOutputRange(context.Background(), r, r.Commands[i].Offset, r.Commands[i].Bytes, &b))
	return b.Bytes()
}

// recordingQueue keeps the body of every message the enqueuer sends, as the SQS sender encodes it.
type recordingQueue struct {
	bulk.Queue
	mu     sync.Mutex
	bodies []string
}

func (q *recordingQueue) SendAll(ctx context.Context, msgs []bulk.Message) ([]int, error) {
	q.mu.Lock()
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			q.mu.Unlock()
			return nil, err
		}
		q.bodies = append(q.bodies, string(b))
	}
	q.mu.Unlock()
	return q.Queue.SendAll(ctx, msgs)
}

func (q *recordingQueue) all() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return strings.Join(q.bodies, "\n")
}

// TestSequenceEndToEnd runs command sequences through the enqueuer, the queue and the executor
// on simulated IOS devices and checks what is stored per command.
func TestSequenceEndToEnd(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Seed: 61, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}, {Platform: "cisco_ios"}, {Platform: "cisco_iosxe"}}})
	q := &recordingQueue{Queue: e.enq.Queue}
	e.enq.Queue = q
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	admin := auth.Identity{Subject: "tester@example.com", Role: auth.Admin}
	ctx := context.Background()
	// runOne runs cmds on the first device and returns its run.
	runOne := func(t *testing.T, cmds []bulk.Command, opts bulk.Options, by auth.Identity) run.Run {
		t.Helper()
		if opts.TimeoutS == 0 {
			opts.TimeoutS = 20
		}
		acc, err := e.enq.Enqueue(ctx, bulk.Request{Commands: cmds, DeviceIDs: e.ids[:1], Options: opts}, by)
		require.NoError(t, err)
		e.waitJob(t, acc.JobID, 60*time.Second)
		r, err := e.runs.Get(ctx, bulk.RunID(acc.JobID, e.ids[0]))
		require.NoError(t, err)
		return r
	}
	dev := e.devs[e.ids[0]]

	t.Run("three commands with a confirm, stored per command", func(t *testing.T) {
		cmds := []bulk.Command{
			{Command: "show clock"},
			{Command: "clear counters", Prompts: []bulk.Prompt{{Expect: "[confirm]", Answer: "y"}}},
			{Command: "show version"},
		}
		r := runOne(t, cmds, bulk.Options{}, admin)
		require.Equal(t, run.Succeeded, r.Status, "reason %q, message %q", r.Reason, r.Message)
		assert.Equal(t, "show clock (+2 more)", r.Command, "the run's one-line summary")
		require.Len(t, r.Commands, 3)
		assert.Equal(t, []string{"y"}, e.fleet.Received(dev.ID).Answers, "the device got the answer")
		res, want := referenceSequence(t, dev, cmds, false)
		require.Equal(t, sshexec.StatusSucceeded, res.Status, "reference: %s", res.Message)
		var whole []byte
		for i, c := range r.Commands {
			assert.Equal(t, cmds[i].Command, c.Command, "command %d", i)
			assert.Equal(t, run.Succeeded, c.Status, "command %d", i)
			got := e.commandOutput(t, r, i)
			assert.Equal(t, string(want[i]), string(got), "command %d's output against the device's", i)
			assert.EqualValues(t, len(got), c.Bytes, "command %d's bytes", i)
			whole = append(whole, got...)
		}
		assert.Contains(t, string(e.commandOutput(t, r, 1)), "CLEAR-5-COUNTERS", "the confirmed command acted")
		assert.Equal(t, string(whole), string(e.output(t, r.ID)), "the commands' outputs make the whole output")
	})

	t.Run("stop_on_error stops at % Invalid input", func(t *testing.T) {
		cmds := []bulk.Command{{Command: "show clock"}, {Command: "show bogus thing"}, {Command: "show version"}}
		r := runOne(t, cmds, bulk.Options{StopOnError: true}, admin)
		assert.Equal(t, run.Failed, r.Status)
		assert.Equal(t, "command_error", r.Reason)
		assert.Contains(t, r.Message, "command 2 of 3", "the message names the failing command")
		require.Len(t, r.Commands, 2, "the third command never started")
		assert.Equal(t, run.Succeeded, r.Commands[0].Status)
		assert.Equal(t, run.Failed, r.Commands[1].Status)
		assert.Contains(t, string(e.commandOutput(t, r, 1)), "% Invalid input")

		// Without it every command runs and the run has the first failure's outcome.
		r = runOne(t, cmds, bulk.Options{}, admin)
		assert.Equal(t, run.Failed, r.Status)
		require.Len(t, r.Commands, 3)
		assert.Equal(t, run.Succeeded, r.Commands[2].Status)
		assert.Contains(t, string(e.commandOutput(t, r, 2)), "Cisco IOS Software")
	})

	t.Run("a secret answer is never queued, stored, logged or shown", func(t *testing.T) {
		secret := e.devs[e.ids[0]].Password // the simulated scp server's password
		cmds := []bulk.Command{
			{Command: "show clock"},
			{Command: "copy scp: flash:", Prompts: []bulk.Prompt{
				{Expect: "remote host []?", Answer: "10.0.0.9"},
				{Expect: "Source filename []?", Answer: "image.bin"},
				{Expect: `Destination filename \[.*\]\?`, Regex: true},
				{Expect: "Password:", Answer: secret, Secret: true},
			}},
		}
		r := runOne(t, cmds, bulk.Options{}, admin)
		require.Equal(t, run.Succeeded, r.Status, "reason %q, message %q", r.Reason, r.Message)
		require.Len(t, r.Commands, 2)
		assert.Contains(t, string(e.commandOutput(t, r, 1)), "bytes copied", "the device accepted the secret answer")
		j, err := e.jobs.GetJob(ctx, r.JobID)
		require.NoError(t, err)
		stored, err := json.Marshal(j)
		require.NoError(t, err)
		runJSON, err := json.Marshal(r)
		require.NoError(t, err)
		for what, text := range map[string]string{
			"queue message bodies": q.all(), "stored output": string(e.output(t, r.ID)), "executor logs": e.logText(),
			"job record": string(stored), "run record": string(runJSON),
		} {
			assert.NotContains(t, text, secret, "the secret answer in the %s", what)
		}
		assert.Contains(t, q.all(), `"secret_answers":true`, "the message says the answers are in the store")
		// The job has ended: its answers are gone from the secret store.
		deadline := time.Now().Add(10 * time.Second)
		for {
			left, err := filepath.Glob(filepath.Join(e.secrets, "jobs__"+r.JobID+"*"))
			require.NoError(t, err)
			if len(left) == 0 {
				break
			}
			require.False(t, time.Now().After(deadline), "the ended job's secret answers are still stored: %v", left)
			time.Sleep(20 * time.Millisecond) // polling an asynchronous outcome, bounded
		}
	})

	t.Run("an unanswered prompt ends timed_out naming it", func(t *testing.T) {
		cmds := []bulk.Command{{Command: "show clock"}, {Command: "clear counters"}, {Command: "show version"}}
		r := runOne(t, cmds, bulk.Options{}, admin)
		assert.Equal(t, run.TimedOut, r.Status)
		assert.Equal(t, "prompt_unanswered", r.Reason)
		assert.Contains(t, r.Message, "[confirm]", "the message quotes the question")
		require.Len(t, r.Commands, 2, "the run ended at the unanswered command")
		assert.Equal(t, "prompt_unanswered", r.Commands[1].Reason)
	})

	t.Run("the executor re-checks every item against the policy", func(t *testing.T) {
		// Accepted without the API's check (which refuses it): the executor refuses it before
		// sending anything, naming the item.
		before := e.fleet.Sessions(e.ids[0])
		cmds := []bulk.Command{{Command: "show clock"}, {Command: "clear counters", Prompts: []bulk.Prompt{{Expect: "[confirm]", Answer: "y"}}}}
		r := runOne(t, cmds, bulk.Options{}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
		assert.Equal(t, run.Failed, r.Status)
		assert.Equal(t, "command_denied", r.Reason)
		assert.Contains(t, r.Message, "commands[1]", "the refusal names the item")
		assert.Empty(t, r.Commands, "no command started")
		assert.Equal(t, before, e.fleet.Sessions(e.ids[0]), "no session was opened")
	})
}

// TestSequenceBulk runs a three-command sequence on 100 simulated devices of four platforms and
// checks every command's stored output against the device's, byte for byte.
func TestSequenceBulk(t *testing.T) {
	t.Parallel()
	platforms := []string{"cisco_ios", "cisco_iosxe", "cisco_nxos", "arista_eos"}
	specs := make([]devicesim.DeviceSpec, 100)
	for i := range specs {
		specs[i] = devicesim.DeviceSpec{Platform: platforms[i%len(platforms)], Version: i % 2}
	}
	e := newBulkEnv(t, devicesim.Spec{Seed: 67, Devices: specs})
	e.exec.Concurrency = 25
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	cmds := []bulk.Command{{Command: "show version"}, {Command: "show interfaces"}, {Command: "show clock"}}
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Commands: cmds, DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}},
		auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	j := e.waitJob(t, acc.JobID, 120*time.Second)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	states := e.allDevices(t, acc.JobID)
	require.Len(t, states, 100)

	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for id, d := range e.devs {
		st := states[id]
		if !assert.Equal(t, run.Succeeded, st.Status, "device %s (%s): reason %q", id, d.Platform, st.Reason) {
			continue
		}
		res := st.CommandResults(j)
		if assert.Len(t, res, 3, "device %s: per-command results in the job", id) {
			assert.Equal(t, "show interfaces", res[1].Command)
			assert.Equal(t, run.Succeeded, res[2].Status)
		}
		r, err := e.runs.Get(context.Background(), st.RunID)
		require.NoError(t, err)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ref, want := referenceSequence(t, d, cmds, false)
			mu.Lock()
			defer mu.Unlock()
			if !assert.Equal(t, sshexec.StatusSucceeded, ref.Status, "device %s: reference run", id) || !assert.Len(t, r.Commands, 3, "device %s", id) {
				return
			}
			for i := range cmds {
				got := e.commandOutput(t, r, i)
				assert.True(t, bytes.Equal(want[i], got), "device %s command %d: stored %d bytes, the device printed %d", id, i, len(got), len(want[i]))
			}
		}()
	}
	wg.Wait()
	e.checkAccounting(t, j, states)
}

// BenchmarkSequenceWrites measures what sequences cost in DynamoDB writes per device against one
// command, on the same 200-device fleet in one run: consumed write units as DynamoDB Local
// reports them, for one command, the same command as a sequence of one, and three commands.
func BenchmarkSequenceWrites(b *testing.B) {
	platforms := []string{"cisco_ios", "cisco_iosxe", "cisco_nxos", "arista_eos"}
	specs := make([]devicesim.DeviceSpec, 200)
	for i := range specs {
		specs[i] = devicesim.DeviceSpec{Platform: platforms[i%len(platforms)]}
	}
	e := newBulkEnv(b, devicesim.Spec{Seed: 73, Devices: specs})
	e.exec.Concurrency = 25
	e.startWorkers(b, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	n := float64(len(e.ids))
	measure := func(req bulk.Request) (units float64, bytes int64) {
		req.DeviceIDs, req.Options = e.ids, bulk.Options{TimeoutS: 20}
		e.writes.units.Store(true)
		before := e.writes.snapshot()
		acc, err := e.enq.Enqueue(context.Background(), req, auth.Identity{Subject: "bench@example.com", Role: auth.Operator})
		require.NoError(b, err)
		j := e.waitJob(b, acc.JobID, 120*time.Second)
		require.Equal(b, len(e.ids), j.Counts[run.Succeeded], "every device succeeded")
		e.writes.units.Store(false)
		_, _, u0 := writes(before)
		_, _, u := writes(e.writes.snapshot())
		for _, id := range e.ids[:1] {
			r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, id))
			require.NoError(b, err)
			bytes = r.Bytes
		}
		return (u - u0) / n, bytes
	}
	b.ResetTimer()
	for range b.N {
		one, oneBytes := measure(bulk.Request{Command: "show interfaces"})
		// The same command as a sequence of one: the per-command bookkeeping alone.
		seq1, _ := measure(bulk.Request{Commands: []bulk.Command{{Command: "show interfaces"}}})
		seq, seqBytes := measure(bulk.Request{Commands: []bulk.Command{{Command: "show version"}, {Command: "show interfaces"}, {Command: "show clock"}}})
		b.ReportMetric(one, "one-command-wru/device")
		b.ReportMetric(seq1, "sequence-of-one-wru/device")
		b.ReportMetric(seq, "sequence-of-three-wru/device")
		b.ReportMetric(seq1/one, "sequence-of-one/one-command")
		b.Logf("output bytes of the first device: one command %d, sequence of three %d", oneBytes, seqBytes)
	}
}
