package app_test

// A device moved to another address never takes its password along: end to end through the API,
// the executor and two simulated fleets that record every authentication attempt.

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/run"
)

func TestMovedDeviceNeverLeaksItsPassword(t *testing.T) {
	t.Parallel()
	const passwordA, passwordB = "fleet-a-secret", "fleet-b-secret"
	e := newBulkEnv(t, devicesim.Spec{Seed: 41, Password: passwordA, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe"}}})
	// Device B: another fleet, another address, another password.
	fleetB, err := devicesim.Start(devicesim.Spec{Seed: 42, Password: passwordB, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe"}}})
	require.NoError(t, err)
	t.Cleanup(func() { fleetB.Close() })
	b := fleetB.Inventory()[0]
	c := e.serveAPI(t)
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues["BulkDeadLetterQueue"], nil, nil), 2)
	id := e.ids[0]
	a := e.devs[id]
	require.False(t, a.Host == b.Host && a.Port == b.Port, "two addresses")

	// On A, with A's password, the run succeeds.
	job := c.runJob(e, id)
	require.Equal(t, string(run.Succeeded), c.run(job, id).Status, "run on A")
	require.True(t, c.device(id).HasCredential)

	offered := func() []string {
		var out []string
		for _, at := range fleetB.Received(b.ID).Auth {
			out = append(out, at.Secret)
		}
		return out
	}

	// Moved to B (its address and its host key) without a credential: the credential is gone
	// and a run fails without offering B anything of A's.
	host, port, key := b.Host, b.Port, b.HostKey
	require.Equal(t, http.StatusOK, c.do(auth.Admin, http.MethodPatch, "/v1/devices/"+id,
		apiwire.DevicePatch{Host: &host, Port: &port, HostKey: &key}, nil))
	assert.False(t, c.device(id).HasCredential, "a new address drops the credential")
	job = c.runJob(e, id)
	r := c.run(job, id)
	assert.Equal(t, string(run.AuthFailed), r.Status, "run on B without a credential: %s %s", r.Reason, r.Message)
	assert.Equal(t, "credential_unavailable", r.Reason, "reason")
	assert.Contains(t, r.Message, "no stored credential (a new host or port drops it)", "message")
	assert.NotContains(t, offered(), passwordA, "B never receives A's password")

	// Moved with a new credential in the same PATCH: B sees only the new one.
	pw := passwordB
	require.Equal(t, http.StatusOK, c.do(auth.Admin, http.MethodPatch, "/v1/devices/"+id,
		apiwire.DevicePatch{Host: &host, Port: &port, Password: &pw}, nil))
	assert.True(t, c.device(id).HasCredential)
	job = c.runJob(e, id)
	r = c.run(job, id)
	assert.Equal(t, string(run.Succeeded), r.Status, "run on B with B's password: %s %s", r.Reason, r.Message)
	got := offered()
	assert.Contains(t, got, passwordB, "B received its own password")
	assert.NotContains(t, got, passwordA, "B never receives A's password")
	assert.NotContains(t, e.logText(), passwordA, "no log line holds A's password")
}
