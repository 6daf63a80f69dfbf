package bulk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// memAnswers is an in-memory bulk.AnswerStore; its next failDeletes deletions fail.
type memAnswers struct {
	mu          sync.Mutex
	m           map[string][]string
	failDeletes int
}

func (a *memAnswers) PutAnswers(_ context.Context, jobID string, answers []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string][]string{}
	}
	a.m[jobID] = append([]string(nil), answers...)
	return nil
}

func (a *memAnswers) GetAnswers(_ context.Context, jobID string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.m[jobID]
	if !ok {
		return nil, fmt.Errorf("answers of %s: %w", jobID, bulk.ErrAnswersGone)
	}
	return v, nil
}

func (a *memAnswers) DeleteAnswers(_ context.Context, jobID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.failDeletes > 0 {
		a.failDeletes--
		return errors.New("secret store unavailable")
	}
	delete(a.m, jobID)
	return nil
}

func (a *memAnswers) has(jobID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.m[jobID]
	return ok
}

// seqEngine runs sequences in-process: command i of a device prints "out i of <id>\n". It keeps
// the sequences it was given; block, when set, runs before the commands.
type seqEngine struct {
	*fakeEngine
	mu    sync.Mutex
	seqs  []sshexec.Sequence
	block func(ctx context.Context) *sshexec.Result
}

func (f *seqEngine) RunSequence(ctx context.Context, t sshexec.Target, seq sshexec.Sequence, sink sshexec.SequenceSink) sshexec.Result {
	f.mu.Lock()
	f.seqs = append(f.seqs, seq)
	block := f.block
	f.mu.Unlock()
	if block != nil {
		if res := block(ctx); res != nil {
			return *res
		}
	}
	res := sshexec.Result{Status: sshexec.StatusSucceeded}
	for i := range seq.Commands {
		if err := sink.StartCommand(i); err != nil {
			return sshexec.Result{Status: sshexec.StatusFailed, Reason: sshexec.ReasonSinkError}
		}
		n, _ := fmt.Fprintf(sink, "out %d of %s\n", i, t.Host)
		res.Bytes += int64(n)
		res.Commands = append(res.Commands, sshexec.CommandResult{Status: sshexec.StatusSucceeded, Bytes: int64(n)})
	}
	return res
}

func newSeqEnv(t *testing.T, ids ...string) (*env, *seqEngine, *memAnswers) {
	t.Helper()
	e := newEnv(t, ids...)
	eng := &seqEngine{fakeEngine: e.engine}
	answers := &memAnswers{}
	e.exec.Engine, e.exec.Answers, e.enq.Answers = eng, answers, answers
	return e, eng, answers
}

var admin = auth.Identity{Subject: "admin@example.com", Role: auth.Admin}

func secretSequence(secret string) []bulk.Command {
	return []bulk.Command{
		{Command: "show clock"},
		{Command: "copy scp: flash:", Prompts: []bulk.Prompt{{Expect: "Password:", Answer: secret, Secret: true}, {Expect: "[confirm]", Answer: "y"}}},
	}
}

// TestExecutorSequenceWithSecretAnswer: the message carries no secret answer, the engine gets it
// from the answer store, each command's output and result is kept apart, and the job's end
// deletes the answers.
func TestExecutorSequenceWithSecretAnswer(t *testing.T) {
	const secret = "hunter2-scp"
	e, eng, answers := newSeqEnv(t, "d1", "d2")
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Commands: secretSequence(secret), DeviceIDs: []string{"d1", "d2"}}, admin)
	require.NoError(t, err)
	require.True(t, answers.has(acc.JobID), "answers stored with the job")
	sent := e.queue.Take()
	require.Len(t, sent, 1)
	body, err := json.Marshal(sent[0].Message)
	require.NoError(t, err)
	assert.NotContains(t, string(body), secret, "the message body holds the secret answer")
	e.handle(t, sent[0].Message)

	require.Len(t, eng.seqs, 2)
	for _, seq := range eng.seqs {
		require.Len(t, seq.Commands, 2)
		assert.Equal(t, secret, seq.Commands[1].Prompts[0].Answer, "the engine got the answer back")
		assert.True(t, seq.Commands[1].Prompts[0].Secret)
	}
	j := e.job(t, acc.JobID)
	assert.Equal(t, bulk.JobCompleted, j.Status)
	assert.False(t, answers.has(acc.JobID), "the ended job's answers are deleted")
	r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, "d1"))
	require.NoError(t, err)
	assert.Equal(t, "show clock (+1 more)", r.Command)
	require.Len(t, r.Commands, 2)
	assert.Equal(t, run.CommandResult{Command: "copy scp: flash:", Status: run.Succeeded, Bytes: int64(len("out 1 of d1\n")), Offset: int64(len("out 0 of d1\n"))}, r.Commands[1])
	states := allDevices(t, e.jobs, acc.JobID)
	res := states["d2"].CommandResults(j)
	require.Len(t, res, 2, "the job keeps each device's per-command results")
	assert.Equal(t, "copy scp: flash:", res[1].Command)
}

// TestExecutorSequenceAnswersGone: a batch whose job's answers are no longer stored fails its
// devices answers_unavailable without opening a session.
func TestExecutorSequenceAnswersGone(t *testing.T) {
	e, eng, answers := newSeqEnv(t, "d1")
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Commands: secretSequence("pw-1"), DeviceIDs: []string{"d1"}}, admin)
	require.NoError(t, err)
	require.NoError(t, answers.DeleteAnswers(context.Background(), acc.JobID))
	e.drain(t)
	st := allDevices(t, e.jobs, acc.JobID)["d1"]
	assert.Equal(t, run.Failed, st.Status)
	assert.Equal(t, bulk.ReasonAnswersUnavailable, st.Reason)
	assert.Empty(t, eng.seqs, "no session was opened")
}

// TestExecutorSequencePolicyNamesItem: the executor's re-check refuses an item (or an answer) the
// policy denies and names it; nothing runs.
func TestExecutorSequencePolicyNamesItem(t *testing.T) {
	tests := []struct {
		name  string
		cmds  []bulk.Command
		field string
	}{
		{name: "item", cmds: []bulk.Command{{Command: "show clock"}, {Command: "reload"}}, field: "commands[1]"},
		{name: "answer", cmds: []bulk.Command{{Command: "show clock", Prompts: []bulk.Prompt{{Expect: "#", Answer: "reload"}}}}, field: "commands[0].prompts[0].answer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, eng, _ := newSeqEnv(t, "d1")
			acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Commands: tc.cmds, DeviceIDs: []string{"d1"}}, auth.Identity{Subject: "op@example.com", Role: auth.Operator})
			require.NoError(t, err)
			e.drain(t)
			r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, "d1"))
			require.NoError(t, err)
			assert.Equal(t, bulk.ReasonCommandDenied, r.Reason)
			assert.Contains(t, r.Message, tc.field)
			assert.Empty(t, eng.seqs, "nothing ran")
		})
	}
}

// TestExecutorInvocationDeadline: a device whose timeout is longer than the invocation is started
// when enough is left, and the invocation's end (less the margin) ends its run timed_out, reason
// invocation_deadline, stored rather than left for a redelivery.
func TestExecutorInvocationDeadline(t *testing.T) {
	e, eng, _ := newSeqEnv(t, "d1")
	e.exec.DeadlineMargin, e.exec.LongRunStart = 50*time.Millisecond, 100*time.Millisecond
	eng.block = func(ctx context.Context) *sshexec.Result {
		<-ctx.Done()
		if errors.Is(context.Cause(ctx), sshexec.ErrInvocationDeadline) {
			return &sshexec.Result{Status: sshexec.StatusTimedOut, Reason: sshexec.ReasonInvocationDeadline}
		}
		return &sshexec.Result{Status: sshexec.StatusTimedOut, Reason: sshexec.ReasonDeadline}
	}
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Commands: []bulk.Command{{Command: "show tech"}}, DeviceIDs: []string{"d1"},
		Options: bulk.Options{TimeoutS: int(bulk.MaxTimeout / time.Second)}}, admin)
	require.NoError(t, err)
	sent := e.queue.Take()
	require.Len(t, sent, 1)
	// The invocation leaves far more than LongRunStart after the batch's own work, even on a
	// loaded machine, so the device is always started; its run then ends at the margin.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	out, err := e.exec.Handle(ctx, sent[0].Message)
	require.NoError(t, err)
	assert.Equal(t, 1, out.Ran, "the device was started")
	assert.False(t, out.Retry, "nothing left for a redelivery")
	r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, "d1"))
	require.NoError(t, err)
	assert.Equal(t, run.TimedOut, r.Status)
	assert.Equal(t, "invocation_deadline", r.Reason)
}

// TestAnswersDeletedByWatchdog: when the deletion of an ended job's secret answers fails, the job
// stays on the unfinished list and the watchdog's next sweep deletes them before it drops it.
func TestAnswersDeletedByWatchdog(t *testing.T) {
	ctx := context.Background()
	e, _, answers := newSeqEnv(t, "d1")
	answers.failDeletes = 1
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Commands: secretSequence("hunter2-scp"), DeviceIDs: []string{"d1"}}, admin)
	require.NoError(t, err)
	e.drain(t)
	require.Equal(t, bulk.JobCompleted, e.job(t, acc.JobID).Status)
	require.True(t, answers.has(acc.JobID), "the failed deletion left the answers")
	unfinished, _, err := e.jobs.UnfinishedJobs(ctx, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{acc.JobID}, unfinished, "the job stays listed for the watchdog")

	w, err := bulk.NewWatchdog(&bulk.Watchdog{Jobs: e.jobs, Runs: e.runs, Queue: e.queue, Publisher: e.pub, Answers: answers,
		StaleAfter: testStale, Period: testPeriod, Logger: discardLogger()})
	require.NoError(t, err)
	rep, err := w.Sweep(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Forgotten, "the ended job is dropped from the list")
	assert.False(t, answers.has(acc.JobID), "the watchdog deleted the answers")
	unfinished, _, err = e.jobs.UnfinishedJobs(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, unfinished, "no job left on the list")
}
