package localdev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/eventbus"
	"github.com/netauto/netauto/infra/localdev"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/notify/notifytest"
)

// TestBulkJobEventsOnTheLocalStack runs two bulk jobs through the whole local system (gateway,
// api, queue, executor, devices, DynamoDB Local) and reads what its EventBridge stand-in received:
// per job one Job Finished listing the failed devices, one Host Key Mismatch for the device whose
// key changed, and for the second job one Output Changed listing exactly the device whose
// configuration changed; every event matches its schema, and a rule's target receives them.
func TestBulkJobEventsOnTheLocalStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local system")
	}
	t.Setenv(localdev.EnvStateDir, t.TempDir())
	t.Setenv(config.EnvEventBus, "")
	bus, err := eventbus.Start(context.Background(), "127.0.0.1:0", eventbus.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	targeted := make(chan events.CloudWatchEvent, 16)
	bus.AddTarget(func(source, detailType string) bool {
		return source == notify.Source && detailType == notify.DetailTypeJobFinished
	}, func(_ context.Context, e events.CloudWatchEvent) error {
		targeted <- e
		return nil
	})

	base, fleet := runLocal(t, localdev.Options{
		EventBus: bus,
		Fleet: &devicesim.Spec{Count: 5, Seed: 5, Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}},
			Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 1}, {Fault: devicesim.FaultChangedHostKey, Count: 1}}},
	})

	var ids []string
	var refused, changedKey, healthy string
	for _, d := range fleet.Inventory() {
		ids = append(ids, d.ID)
		switch d.Fault {
		case devicesim.FaultRefuse:
			refused = d.ID
		case devicesim.FaultChangedHostKey:
			changedKey = d.ID
		default:
			healthy = d.ID
		}
	}
	require.NotEmpty(t, refused)
	require.NotEmpty(t, changedKey)
	token := devToken(t, base)
	wctx, wcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer wcancel()

	first := startJob(t, base, token, ids)
	_, err = bus.WaitFor(wctx, func(es []events.CloudWatchEvent) bool {
		return len(ofJob(es, notify.DetailTypeJobFinished, first)) == 1
	})
	require.NoError(t, err)
	require.True(t, fleet.SetConfigRevision(healthy, 7))
	second := startJob(t, base, token, ids)
	got, err := bus.WaitFor(wctx, func(es []events.CloudWatchEvent) bool {
		return len(ofJob(es, notify.DetailTypeJobFinished, second)) == 1 && len(ofJob(es, notify.DetailTypeOutputChanged, second)) == 1
	})
	require.NoError(t, err)

	for _, e := range got {
		assert.Equal(t, notify.Source, e.Source)
		notifytest.RequireValid(t, e.DetailType, e.Detail)
	}
	for _, job := range []string{first, second} {
		finished := ofJob(got, notify.DetailTypeJobFinished, job)
		require.Len(t, finished, 1, "one Job Finished for job %s", job)
		var d notify.JobFinished
		require.NoError(t, json.Unmarshal(finished[0].Detail, &d))
		assert.Equal(t, "completed", d.Status)
		assert.Equal(t, "ops@example.com", d.RequestedBy)
		assert.Equal(t, map[string]int{"succeeded": 3, "unreachable": 1, "host_key_mismatch": 1}, d.Counts)
		var failed []string
		for _, f := range d.Failed {
			failed = append(failed, f.DeviceID+":"+f.Status)
		}
		assert.ElementsMatch(t, []string{refused + ":unreachable", changedKey + ":host_key_mismatch"}, failed)

		keys := ofJob(got, notify.DetailTypeHostKeyMismatch, job)
		require.Len(t, keys, 1, "one Host Key Mismatch for job %s", job)
		var k notify.HostKeyMismatch
		require.NoError(t, json.Unmarshal(keys[0].Detail, &k))
		assert.Equal(t, notify.KindDevice, k.Kind)
		assert.Equal(t, changedKey, k.ID)
		assert.NotEqual(t, k.PinnedFingerprint, k.PresentedFingerprint)
	}
	assert.Empty(t, ofJob(got, notify.DetailTypeOutputChanged, first), "nothing to compare the first job with")
	var oc notify.OutputChanged
	require.NoError(t, json.Unmarshal(ofJob(got, notify.DetailTypeOutputChanged, second)[0].Detail, &oc))
	require.Len(t, oc.Changed, 1, "exactly the device whose configuration changed: %+v", oc.Changed)
	assert.Equal(t, healthy, oc.Changed[0].DeviceID)
	assert.Equal(t, second+"."+healthy, oc.Changed[0].RunID)
	assert.Equal(t, first+"."+healthy, oc.Changed[0].PreviousRunID)

	var delivered []string
	for len(delivered) < 2 {
		select {
		case e := <-targeted:
			delivered = append(delivered, e.DetailType)
		case <-wctx.Done():
			require.FailNow(t, "the rule's target did not get both Job Finished events", "got %v", delivered)
		}
	}
}

// ofJob returns the events of one detail type about job.
func ofJob(es []events.CloudWatchEvent, detailType, job string) []events.CloudWatchEvent {
	return slices.DeleteFunc(slices.Clone(es), func(e events.CloudWatchEvent) bool {
		var d struct {
			JobID string `json:"job_id"`
		}
		return e.DetailType != detailType || json.Unmarshal(e.Detail, &d) != nil || d.JobID != job
	})
}

func devToken(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Post(base+"/dev/token", "application/json", bytes.NewReader([]byte(`{"email":"ops@example.com","role":"operator"}`)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Token
}

func startJob(t *testing.T, base, token string, ids []string) string {
	t.Helper()
	body, err := json.Marshal(apiwire.BulkRequest{Command: "show running-config", DeviceIDs: ids, Options: apiwire.BulkOptions{TimeoutS: 20}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+"/v1/bulk", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var acc apiwire.BulkAccepted
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&acc))
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.NotEmpty(t, acc.JobID)
	return acc.JobID
}
