package bulk_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/bulk"
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
