package app_test

// Trust on first use end to end: the API (behind the local gateway and its JWT check), the
// executor behind local event source mappings, DynamoDB Local and a simulated fleet that records
// what it receives.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
)

// apiClient calls the public API of a bulkEnv through the local gateway.
type apiClient struct {
	t      *testing.T
	base   string
	tokens map[auth.Role]string
}

func (e *bulkEnv) serveAPI(t *testing.T) *apiClient {
	t.Helper()
	return e.serveAPIWith(t, "", aws.Config{})
}

// serveAPIWith serves the API with saved jobs whose owners are looked up in user pool pool
// (none: not looked up) through awsCfg.
func (e *bulkEnv) serveAPIWith(t *testing.T, pool string, awsCfg aws.Config) *apiClient {
	t.Helper()
	saved, err := app.SavedJobs(config.Config{Tables: e.st.Names.Tables, SecretsDir: e.secrets, UserPoolID: pool}, awsCfg, stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.inv)
	require.NoError(t, err)
	srv, err := api.New(api.Options{Devices: e.inv, Bulk: e.enq, Jobs: e.jobs, Runs: e.runs, SavedJobs: saved})
	require.NoError(t, err)
	gw, err := gateway.New(gateway.Options{
		API:      app.WithIdentity(httpadapter.NewV2(srv).ProxyWithContext),
		Verifier: auth.NewVerifier(signer(t), auth.LocalIssuer, auth.LocalAudience),
	})
	require.NoError(t, err)
	hs := httptest.NewServer(gw)
	t.Cleanup(hs.Close)
	c := &apiClient{t: t, base: hs.URL, tokens: map[auth.Role]string{}}
	for _, r := range []auth.Role{auth.Viewer, auth.Operator, auth.Admin} {
		tok, err := signer(t).Issue(auth.TokenSpec{Subject: string(r) + "-user", Email: string(r) + "@example.com", Groups: []string{string(r)}})
		require.NoError(t, err)
		c.tokens[r] = tok
	}
	return c
}

// do sends a request as role and decodes a JSON answer into out (when not nil); it returns the
// status.
func (c *apiClient) do(role auth.Role, method, path string, body, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(c.t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	require.NoError(c.t, err)
	req.Header.Set("Authorization", "Bearer "+c.tokens[role])
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err, "%s %s", method, path)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if out != nil && resp.StatusCode < 300 {
		require.NoError(c.t, json.Unmarshal(raw, out), "%s %s: %s", method, path, raw)
	}
	return resp.StatusCode
}

func (c *apiClient) device(id string) apiwire.Device {
	c.t.Helper()
	var d apiwire.Device
	require.Equal(c.t, http.StatusOK, c.do(auth.Viewer, http.MethodGet, "/v1/devices/"+id, nil, &d), "get device %s", id)
	return d
}

// jobOptions keep a device's timeout inside the harness's 30 s invocations: with the default
// (60 s) the executor never has time to start a device and the batch is dead-lettered.
var jobOptions = apiwire.BulkOptions{TimeoutS: 10}

// runJob runs "show version" on ids as one bulk job and waits for it to end.
func (c *apiClient) runJob(e *bulkEnv, ids ...string) string {
	c.t.Helper()
	var acc apiwire.BulkAccepted
	require.Equal(c.t, http.StatusAccepted, c.do(auth.Operator, http.MethodPost, "/v1/bulk",
		apiwire.BulkRequest{Command: "show version", DeviceIDs: ids, Options: jobOptions}, &acc))
	e.waitJob(c.t, acc.JobID, time.Minute)
	return acc.JobID
}

func (c *apiClient) run(jobID, deviceID string) apiwire.Run {
	c.t.Helper()
	var r apiwire.Run
	require.Equal(c.t, http.StatusOK, c.do(auth.Viewer, http.MethodGet, "/v1/runs/"+bulk.RunID(jobID, deviceID), nil, &r))
	return r
}

func TestTrustOnFirstUseEndToEnd(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Seed: 31, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_iosxe"}, {Platform: "arista_eos"}, {Platform: "juniper_junos"}, {Platform: "cisco_iosxe"}, // operators may run show commands on network platforms only
	}})
	trail := &audittest.Recorder{}
	e.exec.Audit = trail
	c := e.serveAPI(t)
	for _, id := range e.ids {
		empty, tofu := "", true
		require.Equal(t, http.StatusOK, c.do(auth.Admin, http.MethodPatch, "/v1/devices/"+id,
			apiwire.DevicePatch{HostKey: &empty, TrustOnFirstUse: &tofu}, nil), "make %s trust on first use", id)
		require.Empty(t, c.device(id).HostKey, "%s starts without a pinned key", id)
	}
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 4)
	id := e.ids[0]
	served := e.devs[id].HostKey

	// The first run pins the key the device presented.
	job := c.runJob(e, id)
	first := c.run(job, id)
	assert.Equal(t, string(run.Succeeded), first.Status, "first run: %s %s", first.Reason, first.Message)
	d := c.device(id)
	assert.Equal(t, served, d.HostKey, "first run pinned the device's key")
	assert.Equal(t, device.HostKeyFingerprint(served), d.HostKeyFingerprint, "fingerprint shown")
	require.NotNil(t, d.HostKeyLearnedAt, "learned time shown")
	assert.Nil(t, d.PendingHostKey, "nothing pending")

	// The device's key changes: the next run is refused before anything is sent.
	changed, err := e.fleet.ChangeHostKey(id)
	require.NoError(t, err)
	before := e.fleet.Received(id)
	job = c.runJob(e, id)
	r := c.run(job, id)
	assert.Equal(t, string(run.HostKeyMismatch), r.Status, "run after the key changed")
	assert.Equal(t, "host_key_changed", r.Reason, "reason")
	after := e.fleet.Received(id)
	assert.Equal(t, before.Auth, after.Auth, "no password or other credential reached the device")
	assert.Equal(t, before.Commands, after.Commands, "no command reached the device")
	d = c.device(id)
	assert.Equal(t, served, d.HostKey, "the pinned key is kept")
	require.NotNil(t, d.PendingHostKey, "the offered key is pending")
	assert.Equal(t, changed, d.PendingHostKey.Key, "pending key")
	assert.Equal(t, device.HostKeyFingerprint(changed), d.PendingHostKey.Fingerprint, "pending fingerprint")
	assert.False(t, d.PendingHostKey.SeenAt.IsZero(), "seen at")

	// An admin accepts it by its fingerprint; the old key's fingerprint is refused.
	accept := func(role auth.Role, fp string) int {
		return c.do(role, http.MethodPost, "/v1/devices/"+id+"/host-key/accept", apiwire.HostKeyAccept{Fingerprint: fp}, nil)
	}
	assert.Equal(t, http.StatusForbidden, accept(auth.Operator, d.PendingHostKey.Fingerprint), "an operator may not accept")
	assert.Equal(t, http.StatusConflict, accept(auth.Admin, d.HostKeyFingerprint), "wrong fingerprint")
	assert.Equal(t, http.StatusOK, accept(auth.Admin, d.PendingHostKey.Fingerprint), "right fingerprint")
	d = c.device(id)
	assert.Equal(t, changed, d.HostKey, "the accepted key is pinned")
	assert.Nil(t, d.PendingHostKey, "nothing pending after the accept")
	job = c.runJob(e, id)
	assert.Equal(t, string(run.Succeeded), c.run(job, id).Status, "run after the accept")

	// Two jobs at once on the other devices, none pinned yet: each device ends with one key,
	// the one it serves, pinned once.
	rest := e.ids[1:]
	var wg sync.WaitGroup
	jobs := make([]string, 2)
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var acc apiwire.BulkAccepted
			if assert.Equal(t, http.StatusAccepted, c.do(auth.Operator, http.MethodPost, "/v1/bulk",
				apiwire.BulkRequest{Command: "show version", DeviceIDs: rest, Options: jobOptions}, &acc)) {
				jobs[i] = acc.JobID
			}
		}()
	}
	wg.Wait()
	for _, j := range jobs {
		require.NotEmpty(t, j)
		e.waitJob(t, j, time.Minute)
		for _, dev := range rest {
			assert.Equal(t, string(run.Succeeded), c.run(j, dev).Status, "device %s in job %s", dev, j)
		}
	}
	pins := map[string]int{}
	for _, en := range trail.Entries() {
		if en.Action == "host_key.pin" {
			pins[en.Target]++
			assert.Equal(t, audit.ActorExecutor, en.Actor, "pin actor")
		}
	}
	for _, dev := range rest {
		assert.Equal(t, e.devs[dev].HostKey, c.device(dev).HostKey, "device %s pinned its own key", dev)
		assert.Equal(t, 1, pins[dev], "device %s pinned once", dev)
	}
	assert.Equal(t, 1, pins[id], "the first device pinned once")
	mismatches := 0
	for _, en := range trail.Entries() {
		if en.Action == "host_key.mismatch" && en.Target == id {
			mismatches++
			assert.Equal(t, device.HostKeyFingerprint(changed), en.Detail["fingerprint"], "audited offered key")
		}
	}
	assert.Equal(t, 1, mismatches, "the refused run is audited")
	assert.False(t, strings.Contains(e.logText(), e.devs[id].Password), "no password in the executor's logs")
}
