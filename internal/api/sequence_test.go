package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/secrets"
)

// TestSequenceSecretAnswer: a run of a sequence with a secret answer is accepted; the answer is in
// the secret store under the job's name and nowhere else: not in the answers, the queue message,
// the job, the audit trail or the logs.
func TestSequenceSecretAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices/import", "application/json", mustJSON(t, []map[string]any{deviceJSON("r1", nil)}))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	const secret = "scp-pa55-Zq81"
	body := fmt.Sprintf(`{"device_id":"r1","commands":["show clock",
		{"command":"copy scp: flash:","prompts":[{"expect":"Password:","answer":%q,"secret":true},{"expect":"[confirm]","answer":"y"}]},
		"show flash"],"options":{"stop_on_error":true}}`, secret)
	r = e.do(e.tokens[auth.Admin], "POST", "/v1/runs", "application/json", []byte(body))
	require.Equal(t, http.StatusAccepted, r.Status, "run: %s", r.Body)
	var acc struct {
		RunID string `json:"run_id"`
		JobID string `json:"job_id"`
	}
	r.JSON(t, &acc)

	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+acc.JobID, "", nil)
	require.Equal(t, http.StatusOK, r.Status, "job: %s", r.Body)
	var job struct {
		Command  string `json:"command"`
		Commands []struct {
			Command string           `json:"command"`
			Prompts []map[string]any `json:"prompts"`
		} `json:"commands"`
		Options map[string]any `json:"options"`
	}
	r.JSON(t, &job)
	assert.Equal(t, "show clock (+2 more)", job.Command, "the job's summary")
	require.Len(t, job.Commands, 3)
	require.Len(t, job.Commands[1].Prompts, 2)
	assert.Equal(t, map[string]any{"expect": "Password:", "secret": true}, job.Commands[1].Prompts[0], "a secret prompt shows no answer")
	assert.Equal(t, "y", job.Commands[1].Prompts[1]["answer"], "a plain answer is shown")
	assert.Equal(t, true, job.Options["stop_on_error"])

	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+acc.RunID, "", nil)
	require.Equal(t, http.StatusOK, r.Status, "run: %s", r.Body)
	assert.Contains(t, string(r.Body), `"command":"show clock (+2 more)"`)
	assert.Contains(t, string(r.Body), `"commands":[]`, "a queued run has started no command")

	stored, err := secrets.NewJobAnswers(e.secrets)
	require.NoError(t, err)
	answers, err := stored.GetAnswers(context.Background(), acc.JobID)
	require.NoError(t, err)
	assert.Equal(t, []string{secret}, answers, "the secret answer is in the secret store")

	assert.NotContains(t, strings.Join(e.queuedRaw(t), "\n"), secret, "the queue message holds the secret answer")
	var entries bytes.Buffer
	for _, en := range e.audit.Entries() {
		b, err := json.Marshal(en)
		require.NoError(t, err)
		entries.Write(b)
	}
	assert.Contains(t, entries.String(), "copy scp: flash:", "the audit entry names the commands")
	assert.NotContains(t, entries.String(), secret, "the audit trail holds the secret answer")
	e.assertNoSecrets(secret)
}

// TestSequencePolicy: every item and every answer is checked; a refusal names the item and
// nothing is enqueued.
func TestSequencePolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices/import", "application/json", mustJSON(t, []map[string]any{deviceJSON("r1", nil), deviceJSON("r2", nil)}))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	tests := []struct {
		name  string
		path  string
		body  string
		field string
		rule  string
	}{
		{name: "bulk item", path: "/v1/bulk", body: `{"device_ids":["r1","r2"],"commands":["show clock","show version","clear counters"]}`, field: "commands[2]", rule: "deny-clear"},
		{name: "run item", path: "/v1/runs", body: `{"device_id":"r1","commands":["show clock",{"command":"reload","prompts":[{"expect":"[confirm]"}]}]}`, field: "commands[1]", rule: "deny-reload"},
		{name: "answer that is a command", path: "/v1/runs", body: `{"device_id":"r1","commands":["show clock",{"command":"show version","prompts":[{"expect":"#","answer":"reload"}]}]}`,
			field: "commands[1].prompts[0].answer", rule: "deny-reload"},
		{name: "secret answer that is a command", path: "/v1/runs", body: `{"device_id":"r1","commands":[{"command":"show version","prompts":[{"expect":"#","answer":"write erase","secret":true}]}]}`,
			field: "commands[0].prompts[0].answer", rule: "deny-write-erase"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(e.tokens[auth.Operator], "POST", tc.path, "application/json", []byte(tc.body))
			require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
			var b struct {
				Error struct {
					Code, Field, Rule, Message string
				} `json:"error"`
			}
			r.JSON(t, &b)
			assert.Equal(t, "command_denied", b.Error.Code)
			assert.Equal(t, tc.field, b.Error.Field)
			assert.Equal(t, tc.rule, b.Error.Rule)
			assert.Contains(t, b.Error.Message, tc.field, "the message names the item")
			assert.NotContains(t, b.Error.Message, "write erase", "a refused secret answer is not repeated")
		})
	}
	// POST /v1/policy/check decides a sequence the same way, naming the refused item per device.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/policy/check", "application/json",
		[]byte(`{"device_ids":["r1"],"commands":["show clock",{"command":"show version","prompts":[{"expect":"#","answer":"reload","secret":true}]}]}`))
	require.Equal(t, http.StatusOK, r.Status, "check: %s", r.Body)
	var check apiwire.PolicyCheck
	r.JSON(t, &check)
	require.Len(t, check.Devices, 1)
	assert.False(t, check.Allowed)
	assert.Equal(t, "commands[1].prompts[0].answer", check.Devices[0].Field)
	assert.Equal(t, "deny-reload", check.Devices[0].Rule)
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/policy/check", "application/json", []byte(`{"device_ids":["r1"],"command":"x","commands":["y"]}`))
	assert.Equal(t, http.StatusBadRequest, r.Status, "both command and commands: %s", r.Body)

	// A plain dialog reply to an allowed command passes.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/runs", "application/json",
		[]byte(`{"device_id":"r1","commands":["show clock",{"command":"show version","prompts":[{"expect":"[confirm]","answer":"y"}]}]}`))
	assert.Equal(t, http.StatusAccepted, r.Status, "%s", r.Body)
	msgs := e.queued(t)
	require.Len(t, msgs, 1, "only the allowed run was enqueued")
	assert.Len(t, msgs[0].Commands, 2)
}

// TestRunOutputByCommand stores a sequence's run whose commands cross chunk boundaries and reads
// each command's output back with ?command=N.
func TestRunOutputByCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices/import", "application/json", mustJSON(t, []map[string]any{deviceJSON("r1", nil)}))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	runs, err := dynamo.NewRunStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	ctx := context.Background()
	// Three commands: a short one, one of two and a half chunks, and one inside the tail.
	outs := []string{"short\n", strings.Repeat("0123456789abcdef", run.ChunkSize*5/2/16), "tail end\n"}
	at := time.Now().UTC()
	rr := run.Run{ID: "seqjob.r1", DeviceID: "r1", Command: "a (+2 more)", JobID: "seqjob", RequestedBy: "t@example.com",
		Status: run.Running, Attempt: 1, CreatedAt: at, StartedAt: &at}
	started, err := runs.Start(ctx, rr)
	require.NoError(t, err)
	w := run.NewChunkWriter(ctx, runs, started)
	for i, o := range outs {
		require.NoError(t, w.StartCommand(i))
		_, err := w.Write([]byte(o))
		require.NoError(t, err)
	}
	started.Status, started.FinishedAt, started.Bytes, started.Chunks = run.Succeeded, &at, w.Bytes(), w.Chunks()
	for i, c := range []string{"a", "b", "c"} {
		off, n := w.CommandSpan(i)
		started.Commands = append(started.Commands, run.CommandResult{Command: c, Status: run.Succeeded, Bytes: n, Offset: off})
	}
	require.NoError(t, runs.Finish(ctx, started, w.Pending()))

	for i, want := range outs {
		r := e.do(e.tokens[auth.Viewer], "GET", fmt.Sprintf("/v1/runs/%s/output?command=%d", rr.ID, i), "", nil)
		require.Equal(t, http.StatusOK, r.Status, "command %d: %s", i, truncate(r.Body))
		assert.Equal(t, want, string(r.Body), "command %d's output", i)
		assert.Equal(t, fmt.Sprint(len(want)), r.Header.Get("X-Output-Bytes"), "command %d's bytes", i)
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+rr.ID+"/output", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, strings.Join(outs, ""), string(r.Body), "the whole output")

	for _, bad := range []string{"3", "-1", "x", "1.5", ""} {
		r := e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+rr.ID+"/output?command="+bad, "", nil)
		assert.Equal(t, http.StatusBadRequest, r.Status, "command=%q", bad)
		assert.Contains(t, string(r.Body), `"field":"command"`, "command=%q", bad)
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/runs/"+rr.ID, "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var got struct {
		Commands []map[string]any `json:"commands"`
	}
	r.JSON(t, &got)
	require.Len(t, got.Commands, 3)
	assert.Equal(t, map[string]any{"command": "b", "status": "succeeded", "reason": "", "bytes": float64(len(outs[1]))}, got.Commands[1])
}
