package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
)

// queued returns the bulk messages waiting on the test's queue (and leaves them there).
func (e *env) queued(t *testing.T) []bulk.Message {
	t.Helper()
	client := stack.SQSClient(e.st.Endpoints.SQS)
	var out []bulk.Message
	for {
		r, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(e.st.Names.Queues[resources.BulkQueue]), MaxNumberOfMessages: 10, VisibilityTimeout: 30,
		})
		require.NoError(t, err)
		if len(r.Messages) == 0 {
			return out
		}
		for _, m := range r.Messages {
			var msg bulk.Message
			require.NoError(t, json.Unmarshal([]byte(aws.ToString(m.Body)), &msg), "message %q", aws.ToString(m.Body))
			out = append(out, msg)
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
	if r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, rows)); r.Status != http.StatusCreated {
		t.Fatalf("import: %d %s", r.Status, truncate(r.Body))
	}
	// Duplicates are dropped, the order kept.
	req := map[string]any{"command": "  show version ", "device_ids": append(append([]string{}, ids...), ids[:7]...),
		"requested_by": "someone-else@example.com", "options": map[string]any{"timeout_s": 30, "max_errors": "5%"}}
	r := e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, req))
	if r.Status != http.StatusBadRequest {
		t.Errorf("operator setting requested_by for someone else: %d %s, want 400", r.Status, r.Body)
	}
	delete(req, "requested_by")
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk", "application/json", mustJSON(t, req))
	var acc bulk.Accepted
	r.JSON(t, &acc)
	if r.Status != http.StatusAccepted || acc.DeviceCount != 120 || acc.Batches != 3 || acc.JobID == "" {
		t.Fatalf("bulk: %d %s, want 202 with 120 devices in 3 batches", r.Status, r.Body)
	}
	msgs := e.queued(t)
	seen := map[string]bool{}
	for _, m := range msgs {
		if m.JobID != acc.JobID || m.Command != "show version" || m.RequestedBy != "operator@example.com" || len(m.DeviceIDs) > 50 {
			t.Errorf("message %+v", m)
		}
		for _, id := range m.DeviceIDs {
			if seen[id] {
				t.Errorf("%s in two batches", id)
			}
			seen[id] = true
		}
	}
	if len(msgs) != 3 || len(seen) != 120 {
		t.Errorf("%d messages with %d devices, want 3 with 120", len(msgs), len(seen))
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+acc.JobID, "", nil)
	var job bulk.Job
	r.JSON(t, &job)
	if r.Status != 200 || job.Status != bulk.JobQueued || job.Counts["queued"] != 120 || job.Options.MaxErrors != "5%" {
		t.Errorf("job: %d %+v", r.Status, job)
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk/"+acc.JobID+"/devices?limit=50", "", nil)
	var page struct {
		Items []bulk.DeviceState `json:"items"`
		Next  string             `json:"next"`
	}
	r.JSON(t, &page)
	if r.Status != 200 || len(page.Items) != 50 || page.Next == "" || page.Items[0].DeviceID != "b000" || page.Items[0].Status != "queued" {
		t.Errorf("devices page: %d %d items next %q", r.Status, len(page.Items), page.Next)
	}
	// Admin may run on someone's behalf.
	req["requested_by"] = "noc-robot"
	req["device_ids"] = ids[:1]
	r = e.do(admin, "POST", "/v1/bulk", "application/json", mustJSON(t, req))
	r.JSON(t, &acc)
	if r.Status != http.StatusAccepted {
		t.Fatalf("admin bulk: %d %s", r.Status, r.Body)
	}
	if j, _ := e.doJob(t, acc.JobID); j.RequestedBy != "noc-robot" {
		t.Errorf("requested_by = %q, want noc-robot", j.RequestedBy)
	}
	// A single run is a job of one device.
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/runs", "application/json", []byte(`{"device_id":"b001","command":"show clock"}`))
	var run struct {
		RunID string `json:"run_id"`
		JobID string `json:"job_id"`
	}
	r.JSON(t, &run)
	if r.Status != http.StatusAccepted || !strings.HasSuffix(run.RunID, ".b001") {
		t.Errorf("run: %d %s", r.Status, r.Body)
	}
	r = e.do(e.tokens[auth.Operator], "POST", "/v1/bulk/"+acc.JobID+"/cancel", "", nil)
	if r.Status != http.StatusAccepted {
		t.Errorf("cancel: %d %s", r.Status, r.Body)
	}

	// The job list: newest first, a page at a time, to every viewer.
	var list struct {
		Items []bulk.JobSummary `json:"items"`
		Next  string            `json:"next"`
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk?limit=2", "", nil)
	r.JSON(t, &list)
	if r.Status != 200 || len(list.Items) != 2 || list.Next == "" {
		t.Fatalf("job list: %d %s, want 2 jobs and a cursor", r.Status, r.Body)
	}
	if first := list.Items[0]; first.ID != run.JobID || first.Command != "show clock" || first.DeviceCount != 1 || first.RequestedBy != "operator@example.com" {
		t.Errorf("newest job %+v, want the single run's", first)
	}
	if second := list.Items[1]; second.ID != acc.JobID || second.RequestedBy != "noc-robot" || second.Status != bulk.JobQueued {
		t.Errorf("second job %+v, want the admin's", second)
	}
	r = e.do(e.tokens[auth.Viewer], "GET", "/v1/bulk?limit=2&cursor="+list.Next, "", nil)
	r.JSON(t, &list)
	if r.Status != 200 || len(list.Items) != 1 || list.Items[0].DeviceCount != 120 || list.Items[0].CreatedAt.IsZero() {
		t.Errorf("job list page 2: %d %s, want the 120-device job", r.Status, r.Body)
	}
	if r = e.do("", "GET", "/v1/bulk", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("job list without a token: %d, want 401", r.Status)
	}
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
		if r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON(id, nil))); r.Status != http.StatusCreated {
			t.Fatalf("seed: %d", r.Status)
		}
	}
	many := make([]string, bulk.MaxDevices+1)
	for i := range many {
		many[i] = fmt.Sprintf("x%05d", i)
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
		{name: "bulk missing command", method: "POST", path: "/v1/bulk", body: bulkBody("command", nil), status: 400, field: "command"},
		{name: "bulk blank command", method: "POST", path: "/v1/bulk", body: bulkBody("command", "   \t "), status: 400, field: "command"},
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
		{name: "run missing device", method: "POST", path: "/v1/runs", body: []byte(`{"command":"show version"}`), status: 400, field: "device_id"},
		{name: "run unknown device", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"ghost","command":"show version"}`), status: 422, field: "device_id"},
		{name: "run bad device id", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"a b","command":"show version"}`), status: 400, field: "device_ids[0]"},
		{name: "run missing command", method: "POST", path: "/v1/runs", body: []byte(`{"device_id":"d1"}`), status: 400, field: "command"},
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
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			ct := ""
			if tc.method == "POST" {
				ct = "application/json"
			}
			r := e.do(op, tc.method, tc.path, ct, tc.body, tc.header...)
			if r.Status != tc.status {
				t.Fatalf("%s %s: %d %s, want %d", tc.method, tc.path, r.Status, truncate(r.Body), tc.status)
			}
			var body errorBody
			r.JSON(t, &body)
			if body.Error.Code == "" || body.Error.Message == "" {
				t.Errorf("answer %s has no error code and message", truncate(r.Body))
			}
			if tc.field != "" && body.Error.Field != tc.field {
				t.Errorf("error.field = %q (%s), want %q", body.Error.Field, body.Error.Message, tc.field)
			}
			if tc.status == 422 && !strings.Contains(string(r.Body), "ghost") {
				t.Errorf("422 does not list the unknown ids: %s", r.Body)
			}
		})
	}
	if n := len(e.queued(t)); n != 0 {
		t.Errorf("%d messages enqueued by rejected requests", n)
	}
	if n := e.jobCount(t); n != 0 {
		t.Errorf("%d job items written by rejected requests", n)
	}
}
