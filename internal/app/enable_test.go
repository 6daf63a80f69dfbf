package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// TestEnableSecretEndToEnd: devices that log in unprivileged run a privileged command with the
// enable secret stored for them in the inventory; a wrong one ends auth_failed, enable_failed,
// and neither secret is in any run's message or output.
func TestEnableSecretEndToEnd(t *testing.T) {
	t.Parallel()
	e := newBulkEnv(t, devicesim.Spec{Seed: 53, Devices: []devicesim.DeviceSpec{
		{Platform: "cisco_ios", Unprivileged: true}, {Platform: "cisco_iosxe", Unprivileged: true}, {Platform: "cisco_ios", Unprivileged: true},
	}})
	ctx := context.Background()
	right, wrong := e.fleet.EnableSecret(), "not-the-enable-secret"
	secretOf := map[string]string{e.ids[0]: right, e.ids[1]: right, e.ids[2]: wrong}
	for id, s := range secretOf {
		_, err := e.inv.Update(ctx, id, device.Patch{EnableSecret: &s})
		require.NoError(t, err)
	}
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 1)
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show running-config", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 15}},
		auth.Identity{Subject: "tester@example.com", Role: auth.Admin})
	require.NoError(t, err)
	e.waitJob(t, acc.JobID, 90*time.Second)
	states := e.allDevices(t, acc.JobID)
	for id, s := range secretOf {
		st := states[id]
		r, err := e.runs.Get(ctx, st.RunID)
		require.NoError(t, err)
		out := string(e.output(t, st.RunID))
		if s == right {
			assert.Equal(t, run.Succeeded, st.Status, "%s: reason %q, message %q", id, st.Reason, r.Message)
			assert.Contains(t, out, "hostname", "%s: the privileged command's output", id)
		} else {
			assert.Equal(t, run.AuthFailed, st.Status, "%s", id)
			assert.Equal(t, "enable_failed", st.Reason, "%s", id)
		}
		for _, secret := range []string{right, wrong} {
			assert.False(t, strings.Contains(r.Message+out, secret), "%s: a secret in the run's message or output", id)
		}
	}
}
