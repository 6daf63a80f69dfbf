package bulk_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/policy"
	"github.com/netauto/netauto/internal/sshexec"
)

// A job of several batches writes two audit entries, its start and its finish, however many
// devices and batches it has and however often a batch is delivered.
func TestExecutorAuditsJobStartAndFinishOnce(t *testing.T) {
	ids := deviceIDs("a", 7)
	e := newEnv(t, ids...)
	rec := &audittest.Recorder{}
	e.exec.Audit = rec
	e.enq.BatchSize = 3
	e.engine.fail["a02"] = sshexec.StatusUnreachable
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	sent := e.queue.Take()
	require.Len(t, sent, 3)
	for _, s := range sent {
		e.handle(t, s.Message)
		e.handle(t, s.Message) // a duplicate delivery
	}
	e.drain(t)
	require.Equal(t, []string{"job.start", "job.finish"}, rec.Actions())
	start, finish := rec.Entries()[0], rec.Entries()[1]
	for _, en := range []audit.Entry{start, finish} {
		assert.Equal(t, acc.JobID, en.Target)
		assert.Equal(t, audit.ActorExecutor, en.Actor)
		assert.Equal(t, audit.RoleSystem, en.Role)
		assert.Equal(t, audit.OutcomeOK, en.Outcome)
		assert.Equal(t, "op@example.com", en.Detail["requested_by"])
		assert.Equal(t, "7", en.Detail["devices"])
	}
	assert.Equal(t, "show version", start.Detail["command"])
	assert.Equal(t, string(bulk.JobCompleted), finish.Detail["status"])
	assert.Equal(t, "6", finish.Detail["count_succeeded"])
	assert.Equal(t, "1", finish.Detail["count_unreachable"])
}

// fixedPolicy is a policy store holding one policy.
type fixedPolicy policy.Policy

func (p fixedPolicy) GetPolicy(context.Context) (policy.Policy, error) { return policy.Policy(p), nil }

// A command the policy refuses when the device's turn comes (the policy changed after the job
// was accepted) writes one denied entry per refused device, naming the rule.
func TestExecutorAuditsCommandDenied(t *testing.T) {
	ids := deviceIDs("p", 2)
	e := newEnv(t, ids...)
	rec := &audittest.Recorder{}
	e.exec.Audit = rec
	acc := e.enqueue(t, ids, bulk.Options{TimeoutS: 5})
	e.exec.Policy = fixedPolicy{Version: 2, Rules: []policy.Rule{{ID: "no-show", Effect: policy.Deny, Pattern: "show"}}}
	e.drain(t)
	var denied []audit.Entry
	for _, en := range rec.Entries() {
		if en.Action == "run.command_denied" {
			denied = append(denied, en)
		}
	}
	require.Len(t, denied, 2)
	for _, en := range denied {
		assert.Equal(t, audit.OutcomeDenied, en.Outcome)
		assert.Equal(t, "no-show", en.Reason)
		assert.Equal(t, acc.JobID, en.Detail["job_id"])
		assert.Equal(t, bulk.RunID(acc.JobID, en.Detail["device_id"]), en.Target)
	}
}
