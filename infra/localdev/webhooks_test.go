package localdev_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/localdev"
	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/webhook"
)

// TestWebhookDeliveryOnTheLocalStack runs a bulk job through the whole local system with a
// webhook registered for Job Finished: the EventBridge stand-in hands the event to the notifier,
// the delivery goes through the webhook queue, the receiver's first 500 is retried after the
// backoff (a delayed queue message, as in AWS) and the second attempt arrives signed, with the
// job's detail.
func TestWebhookDeliveryOnTheLocalStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local system")
	}
	t.Setenv(localdev.EnvStateDir, t.TempDir())
	t.Setenv(config.EnvEventBus, "")

	type hit struct {
		header http.Header
		body   []byte
	}
	hits := make(chan hit, 8)
	var calls atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hits <- hit{r.Header.Clone(), b}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer rcv.Close()

	base, fleet := runLocal(t, localdev.Options{Fleet: &devicesim.Spec{Count: 2, Seed: 7, Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}}}})
	var ids []string
	for _, d := range fleet.Inventory() {
		ids = append(ids, d.ID)
	}

	admin := roleToken(t, base, "admin")
	body, err := json.Marshal(apiwire.WebhookInput{Name: "local", URL: rcv.URL + "/hook", Events: []string{notify.DetailTypeJobFinished}, AllowPrivateCIDRs: []string{"127.0.0.0/8"}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, base+"/v1/webhooks", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var created apiwire.WebhookCreated
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	job := startJob(t, base, roleToken(t, base, "operator"), ids) // show running-config, which operators may run on IOS-XE
	var got []hit
	timeout := time.After(2 * time.Minute)
	for len(got) < 2 {
		select {
		case h := <-hits:
			got = append(got, h)
		case <-timeout:
			require.FailNow(t, "the receiver got fewer than 2 deliveries", "%d", len(got))
		}
	}
	last := got[1]
	assert.Equal(t, notify.DetailTypeJobFinished, last.header.Get(webhook.HeaderEvent))
	assert.Equal(t, got[0].header.Get(webhook.HeaderDelivery), last.header.Get(webhook.HeaderDelivery), "the retry is the same delivery")
	require.NoError(t, webhook.Verify(created.SigningSecret, last.header.Get(webhook.HeaderTimestamp), last.header.Get(webhook.HeaderSignature), last.body, time.Now(), time.Minute))
	var ev struct {
		Source string             `json:"source"`
		Detail notify.JobFinished `json:"detail"`
	}
	require.NoError(t, json.Unmarshal(last.body, &ev))
	assert.Equal(t, notify.Source, ev.Source)
	assert.Equal(t, job, ev.Detail.JobID)
	assert.Equal(t, map[string]int{"succeeded": len(ids)}, ev.Detail.Counts)
}

// roleToken signs in with the dev sign-in as role.
func roleToken(t *testing.T, base, role string) string {
	t.Helper()
	resp, err := http.Post(base+"/dev/token", "application/json", bytes.NewReader([]byte(`{"email":"`+role+`@example.com","role":"`+role+`"}`)))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Token
}

// runLocal runs the whole local system (in memory, on a free port) with opts' fleet and event
// bus until the test ends, and returns the gateway's URL and the fleet; the end of the system's
// log is shown when the test failed.
func runLocal(t *testing.T, opts localdev.Options) (string, *devicesim.Fleet) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), "localdev.log"))
	require.NoError(t, err)
	fleetc := make(chan *devicesim.Fleet, 1)
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	opts.Addr, opts.Memory = "127.0.0.1:0", true
	opts.FleetReady = func(f *devicesim.Fleet) { fleetc <- f }
	opts.Logger = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() { errc <- localdev.Run(ctx, opts, func(addr string) { addrc <- addr }) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-errc, "local system")
		logFile.Close()
		if t.Failed() {
			t.Logf("end of the local system's log %s:\n%s", logFile.Name(), tail(logFile.Name(), 40))
		}
	})
	select {
	case addr := <-addrc:
		return "http://" + addr, <-fleetc
	case err := <-errc:
		errc <- err
		require.FailNow(t, "local system did not start", "%v", err)
	case <-time.After(3 * time.Minute):
		require.FailNow(t, "local system not ready within 3 minutes")
	}
	return "", nil
}
