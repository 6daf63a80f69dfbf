package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
)

// queued returns the bulk messages waiting on the test's queue (and leaves them there).
func (e *env) queued(t *testing.T) []bulk.Message {
	t.Helper()
	var out []bulk.Message
	for _, body := range e.queuedRaw(t) {
		var msg bulk.Message
		require.NoError(t, json.Unmarshal([]byte(body), &msg), "message %q", body)
		out = append(out, msg)
	}
	return out
}

// queuedRaw receives the bodies of the messages on the bulk queue, as sent.
func (e *env) queuedRaw(t *testing.T) []string {
	t.Helper()
	client := stack.SQSClient(e.st.Endpoints.SQS)
	var out []string
	for {
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.st.Names.Queues[resources.BulkQueue]), MaxNumberOfMessages: 10, VisibilityTimeout: 30,
		})
		require.NoError(t, err)
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			out = append(out, aws.ToString(m.Body))
		}
	}
}

// jobCount counts the items of the test's jobs table.
func (e *env) jobCount(t *testing.T) int32 {
	t.Helper()
	out, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(e.st.Names.Tables[resources.JobsTable]), Select: "COUNT",
	})
	require.NoError(t, err)
	return out.Count
}

func TestBulkAccepted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	var rows []map[string]any
	var ids []string
	for i := range 120 {
		id := fmt.Sprintf("b%03d", i)
		rows = append(rows, deviceJSON(id, map[string]any{"password": nil, "credential_profile": "lab"}))
		ids = append(ids, id)
	}
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusCreated, r.Status, "import: %s", truncate(r.Body))
	// Duplicates are dropped, the order kept.
	req := map[string]any{"command": "  show version ", "device_ids": append(append([]string{}, ids...), ids[:7]...),
		"requested_by": "someone-else@example.com", "options": map[string]any{"timeout_s": 30, "max_errors": "5%"}}
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, req))
	assert.Equal(t, http.StatusBadRequest, r.Status, "operator setting requested_by for someone else: %s", r.Body)
	delete(req, "requested_by")
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, req))
	var acc bulk.Accepted
	r.JSON(t, &acc)
	require.Equal(t, http.StatusAccepted, r.Status, "bulk: %s", r.Body)
	require.Equal(t, 120, acc.DeviceCount, "bulk: device count in %s", r.Body)
	require.Equal(t, 3, acc.Batches, "bulk: batches in %s", r.Body)
	require.NotEmpty(t, acc.JobID, "bulk: job id in %s", r.Body)
	msgs := e.queued(t)
	seen := map[string]bool{}
	for _, m := range msgs {
		assert.Equal(t, acc.JobID, m.JobID, "message %+v: job id", m)
		assert.Equal(t, "show version", m.Command, "message %+v: command", m)
		assert.Equal(t, "operator@example.com", m.RequestedBy, "message %+v: requested_by", m)
		assert.LessOrEqual(t, len(m.DeviceIDs), 50, "message %+v: devices", m)
		for _, id := range m.DeviceIDs {
			assert.False(t, seen[id], "device %s in two batches", id)
			seen[id] = true
		}
	}
	assert.Len(t, msgs, 3, "messages queued")
	assert.Len(t, seen, 120, "devices in the queued messages")
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+acc.JobID, "", nil)
	var job bulk.Job
	r.JSON(t, &job)
	assert.Equal(t, http.StatusOK, r.Status, "job %s: %s", acc.JobID, r.Body)
	assert.Equal(t, bulk.JobQueued, job.Status, "job %s: status", acc.JobID)
	assert.Equal(t, 120, job.Counts["queued"], "job %s: queued count", acc.JobID)
	assert.Equal(t, "5%", job.Options.MaxErrors, "job %s: max_errors", acc.JobID)
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+acc.JobID+"/devices?limit=50", "", nil)
	var page struct {
		Items []bulk.DeviceState `json:"items"`
		Next  string             `json:"next"`
	}
	r.JSON(t, &page)
	assert.Equal(t, http.StatusOK, r.Status, "devices page: %s", truncate(r.Body))
	assert.NotEmpty(t, page.Next, "devices page: next")
	if assert.Len(t, page.Items, 50, "devices page: items") {
		assert.Equal(t, "b000", page.Items[0].DeviceID, "devices page: the first device")
		assert.EqualValues(t, "queued", page.Items[0].Status, "devices page: device b000's status")
	}
	// Admin may run on someone's behalf.
	req["requested_by"] = "noc-robot"
	req["device_ids"] = ids[:1]
	r = e.do(admin, "POST", "/v1/bulk", "application/json", mustJSON(t, req))
	r.JSON(t, &acc)
	require.Equal(t, http.StatusAccepted, r.Status, "admin bulk: %s", r.Body)
	j, _ := e.doJob(t, acc.JobID)
	assert.Equal(t, "noc-robot", j.RequestedBy, "job %s: requested_by", acc.JobID)
	// A single run is a job of one device.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/runs", "application/json", []byte(`{"device_id":"b001","command":"show clock"}`))
	var run struct {
		RunID string `json:"run_id"`
		JobID string `json:"job_id"`
	}
	r.JSON(t, &run)
	assert.Equal(t, http.StatusAccepted, r.Status, "run: %s", r.Body)
	assert.True(t, strings.HasSuffix(run.RunID, ".b001"), "run id %q ends in the device id b001", run.RunID)
	r = e.do(admin, "POST", "/v1/bulk/"+acc.JobID+"/cancel", "", nil)
	assert.Equal(t, http.StatusAccepted, r.Status, "cancel job %s: %s", acc.JobID, r.Body)

	// The job list: newest first, a page at a time, to every viewer.
	var list struct {
		Items []bulk.JobSummary `json:"items"`
		Next  string            `json:"next"`
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk?limit=2", "", nil)
	r.JSON(t, &list)
	require.Equal(t, http.StatusOK, r.Status, "job list: %s", r.Body)
	require.Len(t, list.Items, 2, "job list: %s", r.Body)
	require.NotEmpty(t, list.Next, "job list: cursor")
	first := list.Items[0]
	assert.Equal(t, run.JobID, first.ID, "newest job %+v: want the single run's", first)
	assert.Equal(t, "show clock", first.Command, "newest job %+v: command", first)
	assert.Equal(t, 1, first.DeviceCount, "newest job %+v: device count", first)
	assert.Equal(t, "operator@example.com", first.RequestedBy, "newest job %+v: requested_by", first)
	second := list.Items[1]
	assert.Equal(t, acc.JobID, second.ID, "second job %+v: want the admin's", second)
	assert.Equal(t, "noc-robot", second.RequestedBy, "second job %+v: requested_by", second)
	assert.Equal(t, bulk.JobQueued, second.Status, "second job %+v: status", second)
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk?limit=2&cursor="+list.Next, "", nil)
	r.JSON(t, &list)
	assert.Equal(t, http.StatusOK, r.Status, "job list page 2: %s", r.Body)
	if assert.Len(t, list.Items, 1, "job list page 2: want the 120-device job: %s", r.Body) {
		assert.Equal(t, 120, list.Items[0].DeviceCount, "job list page 2: device count")
		assert.False(t, list.Items[0].CreatedAt.IsZero(), "job list page 2: created_at")
	}
	r = e.do("", "GET", "/v1/bulk", "", nil)
	assert.Equal(t, http.StatusUnauthorized, r.Status, "job list without a token")
}

func (e *env) doJob(t *testing.T, id string) (bulk.Job, int) {
	t.Helper()
	r := e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+id, "", nil)
	var j bulk.Job
	r.JSON(t, &j)
	return j, r.Status
}

func TestBulkAndRunsBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, op := e.tokens[auth.Admin], e.tokens[auth.Operator]
	for _, id := range []string{"d1", "d2"} {
		r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON(id, nil)))
		require.Equal(t, http.StatusCreated, r.Status, "seed device %s: %s", id, r.Body)
	}
	many := make([]string, bulk.MaxDevices+1)
	for i := range many {
		many[i] = fmt.Sprintf("x%05d", i)
	}
	seqOf := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = fmt.Sprintf("show %d", i)
		}
		return out
	}
	promptsOf := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"expect": fmt.Sprintf("q%d?", i), "answer": "y"}
		}
		return out
	}
	bulkBody := func(kv ...any) []byte {
		m := map[string]any{"command": "show version", "device_ids": []string{"d1", "d2"}}
		for i := 0; i+1 < len(kv); i += 2 {
			k := kv[i].(string)
			if kv[i+1] == nil {
				delete(m, k)
			} else {
				m[k] = kv[i+1]
			}
		}
		return mustJSON(t, m)
	}
	opts := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	cases := []badCase{
		{name: "bulk empty body", method: "POST", path: "/v1/bulk", status: 400, field: ""},
		{name: "bulk not JSON", method: "POST", path: "/v1/bulk", body: []byte("show version"), status: 400},
		{name: "bulk JSON array", method: "POST", path: "/v1/bulk", body: []byte(`["d1"]`), status: 400},
		{name: "bulk trailing data", method: "POST", path: "/v1/bulk", body: append(bulkBody(), []byte(`{}`)...), status: 400},
		{name: "bulk unknown field", method: "POST", path: "/v1/bulk", body: bulkBody("priority", 5), status: 400, field: "priority"},
		{name: "bulk unknown option", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("retries", 3)), status: 400, field: "retries"},
		{name: "bulk missing command", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil), status: 400, field: "commands"},
		{name: "bulk blank command", method: "POST", path: "/v1/bulk", body: bulkBody("command", "   \t "), status: 400, field: "commands"},
		{name: "bulk command as number", method: "POST", path: "/v1/bulk", body: bulkBody("command", 42), status: 400, field: "command"},
		{name: "bulk command too long", method: "POST", path: "/v1/bulk", body: bulkBody("command", strings.Repeat("a", bulk.MaxCommandLen+1)), status: 400, field: "command"},
		{name: "bulk multi-line command", method: "POST", path: "/v1/bulk", body: bulkBody("command", "show version\nreload"), status: 400, field: "command"},
		{name: "bulk carriage return", method: "POST", path: "/v1/bulk", body: bulkBody("command", "show version\rreload"), status: 400, field: "command"},
		{name: "bulk NUL in command", method: "POST", path: "/v1/bulk", body: bulkBody("command", "show\x00version"), status: 400, field: "command"},
		{name: "bulk escape sequence", method: "POST", path: "/v1/bulk", body: bulkBody("command", "show \x1b[2Jversion"), status: 400, field: "command"},
		{name: "bulk unicode line separator", method: "POST", path: "/v1/bulk", body: bulkBody("command", "show\u2028reload"), status: 400, field: "command"},
		{name: "bulk missing device_ids", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", nil), status: 400, field: "device_ids"},
		{name: "bulk empty device_ids", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", []string{}), status: 400, field: "device_ids"},
		{name: "bulk device_ids as string", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", "d1,d2"), status: 400, field: "device_ids"},
		{name: "bulk device id as number", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", []any{"d1", 7}), status: 400, field: "device_ids"},
		{name: "bulk bad device id", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", []string{"d1", "../etc"}), status: 400, field: "device_ids[1]"},
		{name: "bulk empty device id", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", []string{""}), status: 400, field: "device_ids[0]"},
		{name: "bulk too many devices", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", many), status: 400, field: "device_ids"},
		{name: "bulk unknown devices", method: "POST", path: "/v1/bulk", body: bulkBody("device_ids", []string{"d1", "ghost1", "ghost2"}), status: 422, field: "device_ids"},
		{name: "bulk negative timeout", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("timeout_s", -1)), status: 400, field: "options.timeout_s"},
		{name: "bulk huge timeout", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("timeout_s", 100000)), status: 400, field: "options.timeout_s"},
		{name: "bulk timeout as string", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("timeout_s", "60")), status: 400, field: "options.timeout_s"},
		{name: "bulk fractional timeout", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("timeout_s", 1.5)), status: 400, field: "options.timeout_s"},
		{name: "bulk negative concurrency", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("max_concurrency", -5)), status: 400, field: "options.max_concurrency"},
		{name: "bulk max_errors words", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("max_errors", "ten")), status: 400, field: "options.max_errors"},
		{name: "bulk max_errors over 100%", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("max_errors", "150%")), status: 400, field: "options.max_errors"},
		{name: "bulk max_errors negative", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("max_errors", "-1")), status: 400, field: "options.max_errors"},
		{name: "bulk max_errors as number", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("max_errors", 3)), status: 400, field: "options.max_errors"},
		{name: "bulk requested_by with control chars", method: "POST", path: "/v1/bulk", body: bulkBody("requested_by", "a\nb"), status: 400, field: "requested_by"},
		{name: "bulk requested_by too long", method: "POST", path: "/v1/bulk", body: bulkBody("requested_by", strings.Repeat("r", 300)), status: 400, field: "requested_by"},
		{name: "bulk oversized body", method: "POST", path: "/v1/bulk", body: bulkBody("command", strings.Repeat("a", 11<<20)), status: 413},
		// Sequences: exactly one of command and commands, 1-20 items, each a string or an object,
		// 0-5 prompts, each rule named by the field's path.
		{name: "bulk command and commands", method: "POST", path: "/v1/bulk", body: bulkBody("commands", []any{"show clock"}), status: 400, field: "commands"},
		{name: "bulk empty commands", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{}), status: 400, field: "commands"},
		{name: "bulk 21 commands", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", seqOf(21)), status: 400, field: "commands"},
		{name: "bulk commands as string", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", "show clock"), status: 400, field: "commands"},
		{name: "bulk command item as number", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{"show clock", 7}), status: 400, field: "commands"},
		{name: "bulk command item as null", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{"show clock", nil}), status: 400, field: "commands"},
		{name: "bulk blank command item", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{"show clock", "show ver", " "}), status: 400, field: "commands[2].command"},
		{name: "bulk blank command object", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": ""}}), status: 400, field: "commands[0].command"},
		{name: "bulk multi-line command item", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{"show clock", "show ver\nreload"}), status: 400, field: "commands[1].command"},
		{name: "bulk command item too long", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{strings.Repeat("a", bulk.MaxCommandLen+1)}), status: 400, field: "commands[0].command"},
		{name: "bulk command item unknown field", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "sudo": true}}), status: 400, field: "sudo"},
		{name: "bulk prompt unknown field", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "?", "delay": 1}}}}), status: 400, field: "delay"},
		{name: "bulk six prompts", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": promptsOf(6)}}), status: 400, field: "commands[0].prompts"},
		{name: "bulk blank expect", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{"a", map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "?"}, map[string]any{"expect": " "}}}}), status: 400, field: "commands[1].prompts[1].expect"},
		{name: "bulk missing expect", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"answer": "y"}}}}), status: 400, field: "commands[0].prompts[0].expect"},
		{name: "bulk expect too long", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": strings.Repeat("?", bulk.MaxExpectLen+1)}}}}), status: 400, field: "commands[0].prompts[0].expect"},
		{name: "bulk bad regex", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "([", "regex": true}}}}), status: 400, field: "commands[0].prompts[0].expect"},
		{name: "bulk answer with a line break", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "?", "answer": "y\nreload"}}}}), status: 400, field: "commands[0].prompts[0].answer"},
		{name: "bulk answer too long", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "?", "answer": strings.Repeat("y", bulk.MaxAnswerLen+1)}}}}), status: 400, field: "commands[0].prompts[0].answer"},
		{name: "bulk empty secret answer", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "Password:", "secret": true}}}}), status: 400, field: "commands[0].prompts[0].answer"},
		{name: "bulk secret as string", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil, "commands", []any{map[string]any{"command": "x", "prompts": []any{map[string]any{"expect": "Password:", "answer": "pw", "secret": "yes"}}}}), status: 400, field: "commands.prompts.secret"},
		{name: "bulk stop_on_error as string", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("stop_on_error", "true")), status: 400, field: "options.stop_on_error"},
		{name: "bulk timeout over the invocation budget", method: "POST", path: "/v1/bulk", body: bulkBody("options", opts("timeout_s", 296)), status: 400, field: "options.timeout_s"},
		{name: "run command and commands", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1","command":"x","commands":["y"]}`), status: 400, field: "commands"},
		{name: "run bad prompt with a secret", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1","commands":[{"command":"copy a b","prompts":[{"expect":"","answer":"hunter2","secret":true}]}]}`), status: 400, field: "commands[0].prompts[0].expect"},
		{name: "run missing device", method: "POST", path: "/v1/runs", body: []byte(`{"command":"show version"}`), status: 400, field: "device_id"},
		{name: "run unknown device", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"ghost","command":"show version"}`), status: 422, field: "device_id"},
		{name: "run bad device id", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"a b","command":"show version"}`), status: 400, field: "device_ids[0]"},
		{name: "run missing command", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1"}`), status: 400, field: "commands"},
		{name: "run multi-line command", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1","command":"conf t\nno router bgp 1"}`), status: 400, field: "command"},
		{name: "run unknown field", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1","command":"x","sudo":true}`), status: 400, field: "sudo"},
		{name: "run bad timeout", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1","command":"x","options":{"timeout_s":0.5}}`), status: 400, field: "options.timeout_s"},
		{name: "get run bad id", method: "GET", path: "/v1/runs/a%20b", status: 400, field: "id"},
		{name: "get run unknown", method: "GET", path: "/v1/runs/nojob.d1", status: 404, field: "id"},
		{name: "run output unknown", method: "GET", path: "/v1/runs/nojob.d1/output", status: 404, field: "id"},
		{name: "job list bad cursor", method: "GET", path: "/v1/bulk?cursor=" + b64(`{"pk":"JOB#x","sk":"META","gsi1pk":"OTHER","gsi1sk":"x"}`), status: 400, field: "cursor"},
		{name: "job list cursor not base64", method: "GET", path: "/v1/bulk?cursor=not!base64", status: 400, field: "cursor"},
		{name: "job list limit zero", method: "GET", path: "/v1/bulk?limit=0", status: 400, field: "limit"},
		{name: "job list limit too big", method: "GET", path: "/v1/bulk?limit=201", status: 400, field: "limit"},
		{name: "device runs bad cursor", method: "GET", path: "/v1/devices/d1/runs?cursor=" + b64(`{"pk":"RUN#x","sk":"META","evil":"1"}`), status: 400, field: "cursor"},
		{name: "device runs bad limit", method: "GET", path: "/v1/devices/d1/runs?limit=0", status: 400, field: "limit"},
		{name: "device runs unknown device", method: "GET", path: "/v1/devices/ghost/runs", status: 404, field: "id"},
		{name: "job bad id", method: "GET", path: "/v1/bulk/..%2F..", status: 400, field: "job_id"},
		{name: "job unknown", method: "GET", path: "/v1/bulk/06h0000000000000000000000", status: 404, field: "job_id"},
		{name: "job devices bad cursor", method: "GET", path: "/v1/bulk/06h0000000000000000000000/devices?cursor=-3", status: 404, field: "job_id"},
		{name: "job devices bad limit", method: "GET", path: "/v1/bulk/06h0000000000000000000000/devices?limit=99999", status: 400, field: "limit"},
		{name: "job events bad since", method: "GET", path: "/v1/bulk/06h0000000000000000000000/events?since=-1", status: 400, field: "since"},
		{name: "job events since not a number", method: "GET", path: "/v1/bulk/06h0000000000000000000000/events?since=abc", status: 400, field: "since"},
		{name: "cancel unknown job", method: "POST", path: "/v1/bulk/06h0000000000000000000000/cancel", status: 404, field: "job_id"},
	}
	t.Logf("%d bad-input cases for runs and bulk", len(cases))
	defer func() {
		// A rejected sequence stores no secret answer either.
		left, err := filepath.Glob(filepath.Join(e.secretsDir, "jobs__*"))
		require.NoError(t, err)
		assert.Empty(t, left, "secret answers stored by rejected requests")
	}()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			ct := ""
			if tc.method == "POST" {
				ct = "application/json"
			}
			r := e.do(op, tc.method, tc.path, ct, tc.body, tc.header...)
			require.Equal(t, tc.status, r.Status, "%s %s: %s", tc.method, tc.path, truncate(r.Body))
			var body errorBody
			r.JSON(t, &body)
			assert.NotEmpty(t, body.Error.Code, "answer %s has no error code", truncate(r.Body))
			assert.NotEmpty(t, body.Error.Message, "answer %s has no error message", truncate(r.Body))
			if tc.field != "" {
				assert.Equal(t, tc.field, body.Error.Field, "error.field (%s)", body.Error.Message)
			}
			if tc.status == http.StatusUnprocessableEntity {
				assert.Contains(t, string(r.Body), "ghost", "422 does not list the unknown ids")
			}
		})
	}
	assert.Empty(t, e.queued(t), "messages enqueued by rejected requests")
	assert.Zero(t, e.jobCount(t), "job items written by rejected requests")
}
