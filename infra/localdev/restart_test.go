package localdev_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/resources"
)

// client calls the API of one instance with an admin token signed by the state folder's key.
type client struct {
	t     *testing.T
	base  string
	token string
}

func newClient(t *testing.T, stateDir, base string) *client {
	t.Helper()
	signer, err := auth.LoadOrCreateSigner(filepath.Join(stateDir, "jwt-signing-key.pem"))
	require.NoError(t, err)
	tok, err := signer.Issue(auth.TokenSpec{Subject: "restart@test", Email: "restart@test", Groups: []string{"admin"}, TTL: time.Hour})
	require.NoError(t, err)
	return &client{t: t, base: base, token: tok}
}

// do sends a request and decodes a JSON answer into out (when not nil); it returns the status,
// the headers and the raw body.
func (c *client) do(method, path string, body any, out any, headers ...string) (int, http.Header, []byte) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(c.t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode, resp.Header, raw
}

type job struct {
	Status string         `json:"status"`
	Counts map[string]int `json:"counts"`
}

// ended counts the job's devices in a terminal status.
func (j job) ended() int {
	n := 0
	for s, c := range j.Counts {
		if s != "queued" && s != "running" {
			n += c
		}
	}
	return n
}

// waitJob polls the job until cond holds, failing after limit.
func (c *client) waitJob(id string, limit time.Duration, cond func(job) bool) job {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var j job
		status, _, raw := c.do(http.MethodGet, "/v1/bulk/"+id, nil, &j)
		require.Equal(c.t, http.StatusOK, status, "get job: %s", raw)
		if cond(j) {
			return j
		}
		if time.Now().After(deadline) {
			require.FailNow(c.t, "job condition not met in time", "job %s: not met within %s; last %+v", id, limit, j)
		}
		<-tick.C
	}
}

// commandRuns counts, per device, the runs of command in the fleet's command log.
func commandRuns(t *testing.T, stateDir, command string) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join(stateDir, "fleet", "commands.log"))
	require.NoError(t, err)
	defer f.Close()
	runs := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, cmd, ok := strings.Cut(sc.Text(), "\t")
		if ok && cmd == command {
			runs[id]++
		}
	}
	require.NoError(t, sc.Err())
	return runs
}

// TestRestartMidJob stops `make dev` with Ctrl-C in the middle of a 200-device job and starts it
// again on the same state folder: the inventory and the user's edits are kept, and the job ends
// with every device run exactly once, none failed for the restart, and exact counters.
func TestRestartMidJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local system twice")
	}
	const (
		devices = 200
		command = "seq 25"                      // 25 lines, one per 40 ms: about a second per device
		output  = 9*len("1\n") + 16*len("10\n") // what each device stores
	)
	state := t.TempDir()
	// One device more than the job's, which the user deletes: it must not come back.
	args := []string{"-fleet", "201", "-fleet-platforms", "linux", "-fleet-faults", "slow_drip=201", "-fleet-drip", "40ms"}
	first := startLocaldev(t, state, args...)
	api := newClient(t, state, first.url)

	// The user's edits before the restart.
	status, hdr, raw := api.do(http.MethodGet, "/v1/devices/sim-0001", nil, nil)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	status, _, raw = api.do(http.MethodPatch, "/v1/devices/sim-0001", map[string]any{"name": "renamed-by-user"}, nil, "If-Match", hdr.Get("ETag"))
	require.Equal(t, http.StatusOK, status, "rename: %s", raw)
	status, _, raw = api.do(http.MethodDelete, "/v1/devices/sim-0201", nil, nil)
	require.Equal(t, http.StatusNoContent, status, "delete: %s", raw)

	ids := make([]string, devices)
	for i := range ids {
		ids[i] = fmt.Sprintf("sim-%04d", i+1)
	}
	var accepted struct {
		JobID string `json:"job_id"`
	}
	status, _, raw = api.do(http.MethodPost, "/v1/bulk", map[string]any{"command": command, "device_ids": ids}, &accepted)
	require.Equal(t, http.StatusAccepted, status, "%s", raw)
	// Stop once a batch has ended and the next is under way.
	api.waitJob(accepted.JobID, time.Minute, func(j job) bool { return j.ended() >= 60 })
	require.NoError(t, first.stop(t, syscall.SIGINT), "localdev did not exit cleanly after Ctrl-C")
	ranBefore := commandRuns(t, state, command)
	require.Less(t, len(ranBefore), devices, "every device had run before the stop: it did not land mid-job")
	t.Logf("devices run before the restart: %d of %d", len(ranBefore), devices)

	second := startLocaldev(t, state, args...)
	api.base = second.url

	// The inventory is the one before the restart: no device twice, the edits stand.
	var page struct {
		Items []struct{ ID, Name string } `json:"items"`
	}
	status, _, raw = api.do(http.MethodGet, "/v1/devices?limit=500", nil, &page)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	names := map[string]string{}
	for _, d := range page.Items {
		require.NotContains(t, names, d.ID, "device %s listed twice", d.ID)
		names[d.ID] = d.Name
	}
	assert.Len(t, names, devices)
	assert.Equal(t, "renamed-by-user", names["sim-0001"], "the user's rename was overwritten")
	assert.NotContains(t, names, "sim-0201", "a device the user deleted was seeded again")

	// The job ends, with every device run once and succeeded.
	j := api.waitJob(accepted.JobID, 90*time.Second, func(j job) bool {
		return j.Status != "queued" && j.Status != "running"
	})
	assert.Equal(t, "completed", j.Status)
	assert.Equal(t, devices, j.Counts["succeeded"], "counts %v", j.Counts)
	assert.Equal(t, devices, j.ended(), "counts %v", j.Counts)

	var jobDevices struct {
		Items []struct {
			DeviceID string `json:"device_id"`
			Status   string `json:"status"`
			Reason   string `json:"reason"`
			RunID    string `json:"run_id"`
		} `json:"items"`
	}
	status, _, raw = api.do(http.MethodGet, "/v1/bulk/"+accepted.JobID+"/devices?limit=2000", nil, &jobDevices)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	require.Len(t, jobDevices.Items, devices)
	recount := map[string]int{}
	for _, d := range jobDevices.Items {
		recount[d.Status]++
		assert.Equal(t, "succeeded", d.Status, "device %s ended %s (%s)", d.DeviceID, d.Status, d.Reason)
	}
	for s, n := range j.Counts {
		assert.Equal(t, n, recount[s], "job count %s against the devices' statuses", s)
	}

	runs := commandRuns(t, state, command)
	for _, id := range ids {
		assert.Equal(t, 1, runs[id], "device %s ran the command %d times", id, runs[id])
	}

	// Each device's byte counter equals the output stored for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := dynamo.NewRunStore(stack.DynamoDBClient(second.endpoints["dynamodb"]), second.tables[resources.RunsTable], time.Minute)
	require.NoError(t, err)
	for _, d := range jobDevices.Items {
		status, _, body := api.do(http.MethodGet, "/v1/runs/"+url.PathEscape(d.RunID)+"/output", nil, nil)
		require.Equal(t, http.StatusOK, status, "output of %s: %s", d.RunID, body)
		assert.Len(t, body, output, "output of %s", d.RunID)
		counter, err := store.DeviceBytes(ctx, d.DeviceID)
		require.NoError(t, err)
		assert.Equal(t, int64(len(body)), counter, "byte counter of %s", d.DeviceID)
	}
	require.NoError(t, second.stop(t, syscall.SIGINT))
}
