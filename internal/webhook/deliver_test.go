package webhook_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/webhook"
)

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a local webhook receiver answering with the statuses of script in turn (the last
// one from then on).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	script []int
}

func newReceiver(t *testing.T, script ...int) *receiver {
	t.Helper()
	r := &receiver{script: script}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body})
		status := r.script[min(len(r.got), len(r.script))-1]
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// rig is a registry and a notifier over in-memory stores, logging into a buffer, as on a local
// stack: loopback may be allowed.
type rig struct {
	store    *memStore
	secrets  *memSecrets
	queue    *memQueue
	registry *webhook.Registry
	notifier *webhook.Notifier
	logs     *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{store: newMemStore(), secrets: newMemSecrets(), queue: &memQueue{}, logs: &bytes.Buffer{}}
	var err error
	r.registry, err = webhook.NewRegistry(r.store, r.secrets, webhook.AllowLoopback()) // the receivers are local
	require.NoError(t, err)
	r.notifier = &webhook.Notifier{Store: r.store, Secrets: r.secrets, Queue: r.queue, Timeout: 2 * time.Second, AllowLoopback: true,
		UIURL: "https://netauto.example.com", Logger: slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	return r
}

// loopback creates a webhook posting to a local receiver at url, allowed to reach loopback.
func (r *rig) loopback(t *testing.T, url string, in webhook.Input) (webhook.Webhook, string) {
	t.Helper()
	in.URL, in.AllowPrivateCIDRs = url, []string{"127.0.0.0/8"}
	if in.Name == "" {
		in.Name = "receiver"
	}
	h, secret, err := r.registry.Create(context.Background(), in)
	require.NoError(t, err)
	return h, secret
}

func jobFinished(id string) webhook.Event {
	return webhook.Event{Version: "0", ID: id, DetailType: "Job Finished", Source: "netauto", Time: time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC),
		Detail: json.RawMessage(`{"version":1,"job_id":"j1","status":"completed","command":"show version","counts":{"succeeded":47,"failed":3},"failed":[{"device_id":"r1","name":"core-1","status":"failed","reason":"exit_status"}],"ui_path":"/?job=j1"}`)}
}

func TestDeliverySignedAndVerified(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format webhook.Format
		check  func(t *testing.T, body []byte)
	}{
		{"json body is the EventBridge event", webhook.FormatJSON, func(t *testing.T, body []byte) {
			var ev map[string]any
			require.NoError(t, json.Unmarshal(body, &ev))
			assert.Equal(t, "ev-1", ev["id"])
			assert.Equal(t, "Job Finished", ev["detail-type"])
			assert.Equal(t, "netauto", ev["source"])
			assert.Equal(t, "2026-12-06T22:00:00Z", ev["time"])
			detail, _ := ev["detail"].(map[string]any)
			assert.Equal(t, "j1", detail["job_id"])
		}},
		{"slack body is one line of text with a link", webhook.FormatSlack, func(t *testing.T, body []byte) {
			var msg map[string]string
			require.NoError(t, json.Unmarshal(body, &msg))
			assert.Equal(t, "NetAuto job j1 completed: `show version` — 47 succeeded, 3 failed; not succeeded: core-1 and 2 more <https://netauto.example.com/?job=j1|open in NetAuto>", msg["text"])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t)
			rcv := newReceiver(t, http.StatusOK)
			h, secret := r.loopback(t, rcv.URL+"/hook", webhook.Input{Format: tc.format})
			require.True(t, strings.HasPrefix(secret, "whsec_"), "signing secret %q", secret)

			n, err := r.notifier.Publish(ctx, jobFinished("ev-1"))
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.NoError(t, r.queue.drain(ctx, r.notifier))

			got := rcv.requests()
			require.Len(t, got, 1)
			req := got[0]
			assert.Equal(t, "Job Finished", req.header.Get(webhook.HeaderEvent))
			assert.Equal(t, webhook.DeliveryID("ev-1", h.ID), req.header.Get(webhook.HeaderDelivery))
			assert.Equal(t, "application/json", req.header.Get("Content-Type"))
			require.NoError(t, webhook.Verify(secret, req.header.Get(webhook.HeaderTimestamp), req.header.Get(webhook.HeaderSignature), req.body, time.Now(), 5*time.Minute),
				"the receiver verifies the signature with the secret it was given once")
			assert.Error(t, webhook.Verify(secret, req.header.Get(webhook.HeaderTimestamp), req.header.Get(webhook.HeaderSignature), append(req.body, ' '), time.Now(), 5*time.Minute),
				"a changed body fails verification")
			assert.Error(t, webhook.Verify("whsec_other", req.header.Get(webhook.HeaderTimestamp), req.header.Get(webhook.HeaderSignature), req.body, time.Now(), 5*time.Minute),
				"another secret fails verification")
			tc.check(t, req.body)

			log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
			require.NoError(t, err)
			require.Len(t, log, 1)
			assert.Equal(t, webhook.OutcomeDelivered, log[0].Outcome)
			assert.Equal(t, 200, log[0].StatusCode)
			assert.Equal(t, "ev-1", log[0].EventID)
			assert.Equal(t, 1, log[0].Attempt)
		})
	}
}

func TestVerifyRefusesOldTimestamps(t *testing.T) {
	body := []byte(`{}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1799999000" // 1,000 s before now
	sig := webhook.Sign("whsec_x", ts, body)
	assert.Error(t, webhook.Verify("whsec_x", ts, sig, body, now, 5*time.Minute))
	assert.NoError(t, webhook.Verify("whsec_x", ts, sig, body, now, 20*time.Minute))
}

func TestFilterAndDisabledWebhooksGetNothing(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	rcv := newReceiver(t, http.StatusOK)
	r.loopback(t, rcv.URL, webhook.Input{Name: "only changes", Events: []string{"Output Changed"}})
	off := false
	r.loopback(t, rcv.URL, webhook.Input{Name: "off", Enabled: &off})
	all, _ := r.loopback(t, rcv.URL, webhook.Input{Name: "all"})
	n, err := r.notifier.Publish(ctx, jobFinished("ev-2"))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "only the enabled webhook without a filter takes a Job Finished")
	require.NoError(t, r.queue.drain(ctx, r.notifier))
	require.Len(t, rcv.requests(), 1)
	assert.Equal(t, webhook.DeliveryID("ev-2", all.ID), rcv.requests()[0].header.Get(webhook.HeaderDelivery))
}

func TestRetriesWithBackoff(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   []int
		outcomes []webhook.Outcome
		delays   []time.Duration
	}{
		{"500 twice then 200", []int{500, 500, 200},
			[]webhook.Outcome{webhook.OutcomeRetrying, webhook.OutcomeRetrying, webhook.OutcomeDelivered},
			[]time.Duration{0, 10 * time.Second, time.Minute}},
		{"429 and 408 are retried", []int{429, 408, 204},
			[]webhook.Outcome{webhook.OutcomeRetrying, webhook.OutcomeRetrying, webhook.OutcomeDelivered},
			[]time.Duration{0, 10 * time.Second, time.Minute}},
		{"400 is not retried", []int{400},
			[]webhook.Outcome{webhook.OutcomeFailed}, []time.Duration{0}},
		{"404 is not retried", []int{404},
			[]webhook.Outcome{webhook.OutcomeFailed}, []time.Duration{0}},
		{"always 503: five attempts, then given up", []int{503},
			[]webhook.Outcome{webhook.OutcomeRetrying, webhook.OutcomeRetrying, webhook.OutcomeRetrying, webhook.OutcomeRetrying, webhook.OutcomeFailed},
			[]time.Duration{0, 10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t)
			rcv := newReceiver(t, tc.script...)
			h, _ := r.loopback(t, rcv.URL, webhook.Input{})
			_, err := r.notifier.Publish(ctx, jobFinished("ev-3"))
			require.NoError(t, err)
			require.NoError(t, r.queue.drain(ctx, r.notifier))

			var delays []time.Duration
			for _, m := range r.queue.all {
				delays = append(delays, m.delay)
			}
			assert.Equal(t, tc.delays, delays, "the queue's delays: the backoff schedule")
			log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
			require.NoError(t, err)
			var outcomes []webhook.Outcome
			ids := map[string]bool{}
			for i := range log {
				a := log[len(log)-1-i] // oldest first
				outcomes = append(outcomes, a.Outcome)
				assert.Equal(t, i+1, a.Attempt)
				assert.Equal(t, tc.script[min(i, len(tc.script)-1)], a.StatusCode)
				ids[a.DeliveryID] = true
				if a.Outcome == webhook.OutcomeRetrying {
					require.NotNil(t, a.NextAttemptAt, "a retrying attempt says when the next one is")
				}
			}
			assert.Equal(t, tc.outcomes, outcomes)
			assert.Len(t, ids, 1, "every attempt carries the same delivery id")
			assert.Len(t, rcv.requests(), len(tc.outcomes))
		})
	}
}

func TestGiveUpAndDisable(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.notifier.DisableAfter = 3
	rec := &audittest.Recorder{}
	r.notifier.Audit = rec
	var emf bytes.Buffer
	r.notifier.Metrics = metrics.New(&emf)
	rcv := newReceiver(t, http.StatusInternalServerError)
	h, _ := r.loopback(t, rcv.URL, webhook.Input{})
	for i, id := range []string{"ev-a", "ev-b", "ev-c"} {
		n, err := r.notifier.Publish(ctx, jobFinished(id))
		require.NoError(t, err)
		require.Equal(t, 1, n, "event %d is fanned out while the webhook is enabled", i)
		require.NoError(t, r.queue.drain(ctx, r.notifier))
		got, err := r.registry.Get(ctx, h.ID)
		require.NoError(t, err)
		assert.Equal(t, i+1, got.FailedDeliveries)
		assert.Equal(t, i < 2, got.Enabled, "enabled after %d deliveries given up", i+1)
	}
	got, err := r.registry.Get(ctx, h.ID)
	require.NoError(t, err)
	assert.Contains(t, got.DisabledReason, "disabled after 3 deliveries in a row failed; the last: HTTP 500")
	assert.Len(t, rcv.requests(), 15, "3 deliveries of 5 attempts each")
	require.Len(t, rec.Entries(), 1, "the disable is audited once")
	lines := strings.Split(strings.TrimSpace(emf.String()), "\n")
	require.Len(t, lines, 16, "a metrics line per attempt and one for the disable")
	var last map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[15]), &last))
	assert.Equal(t, 1.0, last["WebhookDisabled"])
	var first map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	assert.Equal(t, "retrying", first["Outcome"])
	assert.Equal(t, 1.0, first["WebhookAttempts"])
	assert.Equal(t, audit.Entry{Actor: audit.ActorNotifier, Role: audit.RoleSystem, Action: "webhook.disable", Target: h.ID, Outcome: audit.OutcomeOK,
		Detail: map[string]string{"failed_deliveries": "3"}}, rec.Entries()[0])

	n, err := r.notifier.Publish(ctx, jobFinished("ev-d"))
	require.NoError(t, err)
	assert.Zero(t, n, "a disabled webhook gets nothing")

	// A retry queued before the webhook was disabled is dropped, not sent.
	require.NoError(t, r.notifier.Deliver(ctx, webhook.Delivery{ID: "late", WebhookID: h.ID, Attempt: 2, Event: jobFinished("ev-c")}))
	assert.Len(t, rcv.requests(), 15)

	// Enabling it again resets the reason and the count.
	on := true
	got, _, err = r.registry.Update(ctx, h.ID, webhook.Patch{Enabled: &on})
	require.NoError(t, err)
	assert.True(t, got.Enabled)
	assert.Empty(t, got.DisabledReason)
	assert.Zero(t, got.FailedDeliveries)
}

func TestSuccessResetsTheFailureCount(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	rcv := newReceiver(t, 400, 200)
	h, _ := r.loopback(t, rcv.URL, webhook.Input{})
	for _, id := range []string{"ev-1", "ev-2"} {
		_, err := r.notifier.Publish(ctx, jobFinished(id))
		require.NoError(t, err)
		require.NoError(t, r.queue.drain(ctx, r.notifier))
	}
	got, err := r.registry.Get(ctx, h.ID)
	require.NoError(t, err)
	assert.Zero(t, got.FailedDeliveries)
}

// fakeResolver answers names from a table, as a DNS server an attacker controls might.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &noSuchHost{}
}

type noSuchHost struct{}

func (noSuchHost) Error() string { return "no such host" }

func TestNoDeliveryToBlockedAddresses(t *testing.T) {
	rcv := newReceiver(t, http.StatusOK)
	port := rcv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	at := func(host string) string { return "https://" + host + ":" + itoa(port) + "/hook/tok3n" }
	resolver := fakeResolver{
		"rebind.example.com":   {netip.MustParseAddr("127.0.0.1")},
		"internal.example.com": {netip.MustParseAddr("10.20.30.40")},
		"meta.example.com":     {netip.MustParseAddr("169.254.169.254")},
		"cgnat.example.com":    {netip.MustParseAddr("100.64.1.1")},
		"mapped.example.com":   {netip.MustParseAddr("::ffff:127.0.0.1")},
		"v6local.example.com":  {netip.MustParseAddr("::1")},
		"ula.example.com":      {netip.MustParseAddr("fd12:3456::1")},
		"zoned.example.com":    {netip.MustParseAddr("::1%lo")},
	}
	for _, tc := range []struct {
		name    string
		url     string
		allowed []string
		want    string
	}{
		{"loopback literal", at("127.0.0.1"), nil, "loopback"},
		{"IPv4-mapped loopback literal", at("[::ffff:127.0.0.1]"), nil, "loopback"},
		{"metadata address", "http://169.254.169.254/latest/meta-data/", []string{"10.0.0.0/8"}, "cloud metadata"},
		{"a name resolving to loopback (DNS rebinding)", at("rebind.example.com"), nil, "loopback"},
		{"a name resolving to a private address", at("internal.example.com"), nil, "private"},
		{"a name resolving to the metadata address", at("meta.example.com"), nil, "cloud metadata"},
		{"a name resolving to carrier-grade NAT", at("cgnat.example.com"), nil, "carrier-grade NAT"},
		{"a name resolving to an IPv4-mapped loopback", at("mapped.example.com"), nil, "loopback"},
		{"a name resolving to IPv6 loopback", at("v6local.example.com"), nil, "loopback"},
		{"a name resolving to a unique local address", at("ula.example.com"), nil, "unique local"},
		{"IPv6 loopback literal with a zone", at("[::1%25lo]"), nil, "loopback"},
		{"IPv6 metadata literal with a zone", "https://[fd00:ec2::254%25eth0]/hook/tok3n", []string{"fd12::/16"}, "cloud metadata"},
		{"a name resolving to IPv6 loopback with a zone", at("zoned.example.com"), nil, "loopback"},
		{"the metadata address's NAT64 form, NAT64 allowed", "https://[64:ff9b::a9fe:a9fe]/hook/tok3n", []string{"64:ff9b::/96"}, "cloud metadata"},
		{"the metadata address's 6to4 form, 6to4 allowed", "https://[2002:a9fe:a9fe::1]/hook/tok3n", []string{"2002::/16"}, "cloud metadata"},
		{"loopback while another range is allowed", "http://rebind.example.com:" + itoa(port) + "/hook/tok3n", []string{"10.0.0.0/8"}, "loopback"},
		{"plain http to a public address", "http://93.184.215.14:" + itoa(port) + "/hook/tok3n", []string{"10.0.0.0/8"}, "http is only allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t)
			r.notifier.Resolver = resolver
			// Stored directly: the registry refuses some of these URLs up front (TestCreateValidation).
			h := webhook.Webhook{ID: "h1", Name: "x", Enabled: true, Format: webhook.FormatJSON, AllowPrivateCIDRs: tc.allowed, Version: 1}
			require.NoError(t, r.store.Create(ctx, h))
			require.NoError(t, r.secrets.PutWebhookSecret(ctx, h.ID, webhook.Secret{URL: tc.url, SigningSecret: "whsec_x"}))
			_, err := r.notifier.Publish(ctx, jobFinished("ev-x"))
			require.NoError(t, err)
			require.NoError(t, r.queue.drain(ctx, r.notifier))
			assert.Empty(t, rcv.requests(), "the receiver got a request")
			log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
			require.NoError(t, err)
			require.Len(t, log, 1, "a blocked address is not retried")
			assert.Equal(t, webhook.OutcomeFailed, log[0].Outcome)
			assert.Contains(t, log[0].Error, tc.want)
			assert.Zero(t, log[0].StatusCode)
			assert.NotContains(t, log[0].Error, "tok3n", "the URL's path is a secret")
		})
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func TestAllowedRangeReachesLoopbackByName(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	rcv := newReceiver(t, http.StatusOK)
	port := rcv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	r.notifier.Resolver = fakeResolver{"receiver.internal": {netip.MustParseAddr("127.0.0.1")}}
	r.loopback(t, "http://receiver.internal:"+itoa(port)+"/hook", webhook.Input{})
	_, err := r.notifier.Publish(ctx, jobFinished("ev-ok"))
	require.NoError(t, err)
	require.NoError(t, r.queue.drain(ctx, r.notifier))
	assert.Len(t, rcv.requests(), 1)
}

func TestRedirectNotFollowed(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	target := newReceiver(t, http.StatusOK)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, target.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	h, _ := r.loopback(t, redirector.URL+"/hook", webhook.Input{})
	_, err := r.notifier.Publish(ctx, jobFinished("ev-r"))
	require.NoError(t, err)
	require.NoError(t, r.queue.drain(ctx, r.notifier))
	assert.Empty(t, target.requests(), "the redirect's target got a request")
	log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, log, 1, "a redirect is not retried")
	assert.Equal(t, 307, log[0].StatusCode)
	assert.Equal(t, webhook.OutcomeFailed, log[0].Outcome)
	assert.Contains(t, log[0].Error, "redirect (HTTP 307) not followed")
}

func TestTimeoutIsRetried(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	r.notifier.Timeout = 200 * time.Millisecond
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); slow.Close() })
	h, _ := r.loopback(t, slow.URL+"/hook", webhook.Input{})
	m := webhook.Delivery{ID: "d1", WebhookID: h.ID, Attempt: 1, Event: jobFinished("ev-t")}
	require.NoError(t, r.notifier.Deliver(ctx, m))
	log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, log, 1)
	assert.Equal(t, webhook.OutcomeRetrying, log[0].Outcome)
	assert.Contains(t, log[0].Error, "no answer within 200ms")
	require.Len(t, r.queue.all, 1, "the retry is queued")
	assert.Equal(t, 2, r.queue.all[0].d.Attempt)
}

func TestURLNeverInErrorsOrLogs(t *testing.T) {
	const token = "T0KEN-s3cr3t"
	ctx := context.Background()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // nothing listens there any more: connection refused
	failing := newReceiver(t, http.StatusBadGateway)
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"connection refused", closedURL + "/services/" + token + "?key=" + token},
		{"server error", failing.URL + "/services/" + token},
		{"user info", strings.Replace(failing.URL, "http://", "http://admin:"+token+"@", 1) + "/x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.notifier.MaxAttempts, r.notifier.DisableAfter = 1, 1
			h, _ := r.loopback(t, tc.url, webhook.Input{})
			assert.NotContains(t, h.Endpoint, token)
			_, err := r.notifier.Publish(ctx, jobFinished("ev-u"))
			require.NoError(t, err)
			require.NoError(t, r.queue.drain(ctx, r.notifier))
			log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
			require.NoError(t, err)
			require.NotEmpty(t, log)
			for _, a := range log {
				assert.NotContains(t, a.Error, token)
			}
			got, err := r.registry.Get(ctx, h.ID)
			require.NoError(t, err)
			assert.False(t, got.Enabled)
			assert.NotContains(t, got.DisabledReason, token)
			assert.NotEmpty(t, r.logs.String())
			assert.NotContains(t, r.logs.String(), token)
		})
	}
}

func TestTestDelivery(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	rcv := newReceiver(t, http.StatusOK)
	off := false
	h, secret := r.loopback(t, rcv.URL, webhook.Input{Events: []string{"Output Changed"}, Enabled: &off})
	a, err := r.notifier.Test(ctx, h.ID)
	require.NoError(t, err)
	assert.Equal(t, webhook.OutcomeDelivered, a.Outcome)
	assert.Equal(t, webhook.DetailTypeTest, a.DetailType)
	got := rcv.requests()
	require.Len(t, got, 1, "a test goes out whatever the filter and the enabled flag say")
	assert.Equal(t, webhook.DetailTypeTest, got[0].header.Get(webhook.HeaderEvent))
	assert.NoError(t, webhook.Verify(secret, got[0].header.Get(webhook.HeaderTimestamp), got[0].header.Get(webhook.HeaderSignature), got[0].body, time.Now(), time.Minute))
	assert.Empty(t, r.queue.all, "a test is never retried")
}

// TestHTTPSGoesThroughTheGuard posts to a TLS receiver on loopback: the guarded dialer hands the
// connection to the TLS handshake, which checks the receiver's certificate (a test server's is
// trusted by no one, so the attempt fails on it and is retried) and never reaches the handler.
func TestHTTPSGoesThroughTheGuard(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	var got atomic.Int32
	tlsRcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { got.Add(1) }))
	t.Cleanup(tlsRcv.Close)
	h, _ := r.loopback(t, tlsRcv.URL+"/hook", webhook.Input{})
	require.True(t, strings.HasPrefix(h.Endpoint, "https://127.0.0.1:"))
	require.NoError(t, r.notifier.Deliver(ctx, webhook.Delivery{ID: "d1", WebhookID: h.ID, Attempt: 1, Event: jobFinished("ev-tls")}))
	log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, log, 1)
	assert.Equal(t, webhook.OutcomeRetrying, log[0].Outcome)
	assert.Contains(t, log[0].Error, "certificate")
	assert.Zero(t, got.Load(), "the handler got a request over an unverified connection")

	// A receiver whose certificate is trusted takes the delivery, resolved by name through the
	// guard, and the certificate is checked against that name.
	r.notifier.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
	r.notifier.TLSConfig.RootCAs.AddCert(tlsRcv.Certificate())
	port := tlsRcv.Listener.Addr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	r.notifier.Resolver = fakeResolver{"example.com": {netip.MustParseAddr("127.0.0.1")}}
	byName, _ := r.loopback(t, "https://example.com:"+itoa(port)+"/hook", webhook.Input{Name: "by name"})
	require.NoError(t, r.notifier.Deliver(ctx, webhook.Delivery{ID: "d2", WebhookID: byName.ID, Attempt: 1, Event: jobFinished("ev-tls2")}))
	log, _, err = r.registry.Attempts(ctx, byName.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, log, 1)
	assert.Equal(t, webhook.OutcomeDelivered, log[0].Outcome, "error: %s", log[0].Error)
	assert.Equal(t, int32(1), got.Load())
}

// TestAttemptNumberOutOfRange delivers messages whose attempt number no notifier wrote (0, or
// negative: a message edited by hand on its way back from the dead-letter queue): each is made
// as the first attempt, its retry as the second, instead of indexing the backoff out of range.
func TestAttemptNumberOutOfRange(t *testing.T) {
	for _, attempt := range []int{0, -3} {
		t.Run(strconv.Itoa(attempt), func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t)
			rcv := newReceiver(t, http.StatusInternalServerError)
			h, _ := r.loopback(t, rcv.URL, webhook.Input{})
			require.NotPanics(t, func() {
				require.NoError(t, r.notifier.Deliver(ctx, webhook.Delivery{ID: "d0", WebhookID: h.ID, Attempt: attempt, Event: jobFinished("ev-0")}))
			})
			log, _, err := r.registry.Attempts(ctx, h.ID, "", 10)
			require.NoError(t, err)
			require.Len(t, log, 1)
			assert.Equal(t, 1, log[0].Attempt)
			require.Len(t, r.queue.all, 1, "the retry is queued")
			assert.Equal(t, 2, r.queue.all[0].d.Attempt)
			assert.Equal(t, 10*time.Second, r.queue.all[0].delay)
		})
	}
}
