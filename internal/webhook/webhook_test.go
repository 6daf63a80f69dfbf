package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/webhook"
)

func TestCreateValidation(t *testing.T) {
	const secretPath = "/services/T000/B000/XXXXsecret"
	for _, tc := range []struct {
		name  string
		in    webhook.Input
		field string
		msg   string
	}{
		{"no name", webhook.Input{URL: "https://h.example.com" + secretPath}, "name", "is required"},
		{"control character in the name", webhook.Input{Name: "a\x07b", URL: "https://h.example.com"}, "name", "control"},
		{"no url", webhook.Input{Name: "n"}, "url", "is required"},
		{"not a URL", webhook.Input{Name: "n", URL: "hooks.example.com" + secretPath}, "url", "absolute http(s) URL"},
		{"ftp", webhook.Input{Name: "n", URL: "ftp://h.example.com" + secretPath}, "url", "must use https"},
		{"http without an allowed range", webhook.Input{Name: "n", URL: "http://h.example.com" + secretPath}, "url", "must use https"},
		{"loopback literal", webhook.Input{Name: "n", URL: "https://127.0.0.1" + secretPath}, "url", "loopback"},
		{"metadata literal", webhook.Input{Name: "n", URL: "https://169.254.169.254" + secretPath}, "url", "cloud metadata"},
		{"IPv6 loopback literal with a zone", webhook.Input{Name: "n", URL: "https://[::1%25lo]" + secretPath}, "url", "loopback"},
		{"IPv6 metadata literal with a zone", webhook.Input{Name: "n", URL: "https://[fd00:ec2::254%25eth0]" + secretPath}, "url", "cloud metadata"},
		{"link-local literal with a zone", webhook.Input{Name: "n", URL: "https://[fe80::1%25eth0]" + secretPath}, "url", "link-local"},
		{"private literal outside the allowed range", webhook.Input{Name: "n", URL: "https://10.0.0.1" + secretPath, AllowPrivateCIDRs: []string{"192.168.0.0/16"}}, "url", "private"},
		{"unknown event", webhook.Input{Name: "n", URL: "https://h.example.com", Events: []string{"Job Finished", "Job Started"}}, "events[1]", "must be one of"},
		{"unknown format", webhook.Input{Name: "n", URL: "https://h.example.com", Format: "xml"}, "format", `"json" or "slack"`},
		{"bad range", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"10.0.0.0/33"}}, "allow_private_cidrs[0]", "CIDR"},
		{"a range with the metadata address", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"169.254.0.0/16"}}, "allow_private_cidrs[0]", "metadata"},
		{"a NAT64 range (it holds the metadata address's NAT64 form)", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"10.0.0.0/8", "64:ff9b::/96"}}, "allow_private_cidrs[1]", "metadata"},
		{"a 6to4 range holding the metadata address's 6to4 form", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"2002:a9fe::/32"}}, "allow_private_cidrs[0]", "metadata"},
		{"the metadata address's NAT64 form as a literal", webhook.Input{Name: "n", URL: "https://[64:ff9b::a9fe:a9fe]" + secretPath, AllowPrivateCIDRs: []string{"64:ff9b::a00:0/104"}}, "url", "cloud metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			_, _, err := r.registry.Create(context.Background(), tc.in)
			require.Error(t, err)
			d, ok := fault.As(err)
			require.True(t, ok, "%v is not a described fault", err)
			assert.Equal(t, fault.Invalid, d.Kind())
			assert.Equal(t, tc.field, d.Field())
			assert.Contains(t, d.Public(), tc.msg)
			assert.NotContains(t, err.Error(), "XXXXsecret", "the URL is a secret")
			hs, _ := r.store.List(context.Background())
			assert.Empty(t, hs, "nothing is stored")
			assert.Empty(t, r.secrets.m, "no secret is stored")
		})
	}
}

func TestCreateShowsOnlyTheEndpoint(t *testing.T) {
	r := newRig(t)
	h, secret, err := r.registry.Create(context.Background(), webhook.Input{
		Name: " ops ", URL: "https://user:pw@hooks.example.com:8443/services/T0/B0/abc?x=1", Events: []string{"Job Finished", "Job Finished"},
		AllowPrivateCIDRs: []string{"10.1.2.3/24"},
	})
	require.NoError(t, err)
	assert.Equal(t, "ops", h.Name)
	assert.Equal(t, "https://hooks.example.com:8443", h.Endpoint)
	assert.Equal(t, []string{"Job Finished"}, h.Events)
	assert.Equal(t, webhook.FormatJSON, h.Format)
	assert.Equal(t, []string{"10.1.2.0/24"}, h.AllowPrivateCIDRs)
	assert.True(t, h.Enabled)
	sec, err := r.secrets.GetWebhookSecret(context.Background(), h.ID)
	require.NoError(t, err)
	assert.Equal(t, secret, sec.SigningSecret)
	assert.Len(t, secret, len("whsec_")+64)
}

func TestUpdateAndRotate(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	h, secret, err := r.registry.Create(ctx, webhook.Input{Name: "n", URL: "https://a.example.com/1"})
	require.NoError(t, err)

	url := "https://b.example.com/2"
	slack := webhook.FormatSlack
	off := false
	got, newSecret, err := r.registry.Update(ctx, h.ID, webhook.Patch{URL: &url, Format: &slack, Enabled: &off, RotateSecret: true})
	require.NoError(t, err)
	assert.Equal(t, "https://b.example.com", got.Endpoint)
	assert.Equal(t, webhook.FormatSlack, got.Format)
	assert.False(t, got.Enabled)
	assert.Equal(t, "disabled by an admin", got.DisabledReason)
	assert.Equal(t, int64(2), got.Version)
	assert.Len(t, newSecret, len("whsec_")+64)
	assert.NotEqual(t, secret, newSecret, "a new URL gets a new signing secret: the old receiver knows the old one")
	sec, _ := r.secrets.GetWebhookSecret(ctx, h.ID)
	assert.Equal(t, webhook.Secret{URL: url, SigningSecret: newSecret}, sec)
	secret = newSecret

	stale := int64(1)
	_, _, err = r.registry.Update(ctx, h.ID, webhook.Patch{Version: &stale})
	assert.ErrorIs(t, err, webhook.ErrConflict)

	none := []string{}
	_, noSecret, err := r.registry.Update(ctx, h.ID, webhook.Patch{AllowPrivateCIDRs: &none})
	require.NoError(t, err, "an https webhook needs no range")
	assert.Empty(t, noSecret, "no rotation asked for, no secret shown")
	sec, _ = r.secrets.GetWebhookSecret(ctx, h.ID)
	assert.Equal(t, secret, sec.SigningSecret, "and the secret stays")

	_, rotated, err := r.registry.RotateSecret(ctx, h.ID)
	require.NoError(t, err)
	assert.NotEqual(t, secret, rotated)
	sec, _ = r.secrets.GetWebhookSecret(ctx, h.ID)
	assert.Equal(t, webhook.Secret{URL: url, SigningSecret: rotated}, sec)

	require.NoError(t, r.registry.Delete(ctx, h.ID))
	_, err = r.registry.Get(ctx, h.ID)
	assert.ErrorIs(t, err, webhook.ErrNotFound)
	assert.Empty(t, r.secrets.m, "the secret goes with the webhook")
}

// TestURLChangeNeedsRotation: a new URL without rotate_secret is refused with 400 naming
// rotate_secret, nothing changed; rotate_secret alone rotates like rotate-secret.
func TestURLChangeNeedsRotation(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	h, secret, err := r.registry.Create(ctx, webhook.Input{Name: "n", URL: "https://a.example.com/1"})
	require.NoError(t, err)

	url, name := "https://b.example.com/XXXXsecret", "renamed"
	_, _, err = r.registry.Update(ctx, h.ID, webhook.Patch{URL: &url, Name: &name})
	d, ok := fault.As(err)
	require.True(t, ok, "%v is not a described fault", err)
	assert.Equal(t, fault.Invalid, d.Kind())
	assert.Equal(t, "rotate_secret", d.Field())
	assert.Contains(t, d.Public(), "must be true when url changes")
	assert.NotContains(t, err.Error(), "XXXXsecret", "the URL is a secret")
	got, err := r.registry.Get(ctx, h.ID)
	require.NoError(t, err)
	assert.Equal(t, h, got, "nothing changed")
	sec, _ := r.secrets.GetWebhookSecret(ctx, h.ID)
	assert.Equal(t, webhook.Secret{URL: "https://a.example.com/1", SigningSecret: secret}, sec, "nor the secret")

	got, rotated, err := r.registry.Update(ctx, h.ID, webhook.Patch{RotateSecret: true})
	require.NoError(t, err)
	assert.NotEqual(t, secret, rotated)
	assert.Equal(t, h.Version+1, got.Version)
	sec, _ = r.secrets.GetWebhookSecret(ctx, h.ID)
	assert.Equal(t, webhook.Secret{URL: "https://a.example.com/1", SigningSecret: rotated}, sec, "the URL stays")
}

func TestHTTPNeedsItsRange(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	h, _, err := r.registry.Create(ctx, webhook.Input{Name: "n", URL: "http://10.1.2.3:8080/hook", AllowPrivateCIDRs: []string{"10.1.2.0/24"}})
	require.NoError(t, err)
	none := []string{}
	_, _, err = r.registry.Update(ctx, h.ID, webhook.Patch{AllowPrivateCIDRs: &none})
	d, ok := fault.As(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "allow_private_cidrs", d.Field())
}

func TestBlocked(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true}, {"127.255.0.9", true}, {"::1", true}, {"::ffff:127.0.0.1", true},
		{"10.0.0.1", true}, {"172.16.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"169.254.1.1", true}, {"fd00:ec2::254", true}, {"fe80::1", true},
		{"fc00::1", true}, {"fd12::1", true}, {"100.64.0.1", true}, {"100.127.255.254", true},
		{"0.0.0.0", true}, {"::", true}, {"224.0.0.1", true}, {"ff02::1", true}, {"255.255.255.255", true},
		{"::ffff:10.0.0.1", true}, {"::ffff:169.254.169.254", true}, {"64:ff9b::a00:1", true},
		{"::1%lo", true}, {"fe80::1%eth0", true}, {"fd00:ec2::254%eth0", true}, {"fd12::1%eth0", true},
		{"8.8.8.8", false}, {"172.32.0.1", false}, {"100.128.0.1", false}, {"2606:4700::1111", false}, {"::ffff:8.8.8.8", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			_, blocked := webhook.Blocked(netip.MustParseAddr(tc.addr))
			assert.Equal(t, tc.blocked, blocked)
		})
	}
}

func TestSlackText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ev     webhook.Event
		uiURL  string
		expect string
	}{
		{"output changed", webhook.Event{DetailType: "Output Changed", Detail: json.RawMessage(`{"job_id":"j2","command":"show run","changed_count":7,"changed":[{"device_id":"a","name":"edge-1"},{"device_id":"b"}],"ui_path":"/?job=j2"}`)},
			"https://ui.example.com/", "NetAuto job j2: the output of `show run` changed on 7 device(s): edge-1, b and 5 more <https://ui.example.com/?job=j2|open in NetAuto>"},
		{"host key mismatch escapes and names the jump host", webhook.Event{DetailType: "Host Key Mismatch", Detail: json.RawMessage(`{"kind":"jump_host","id":"bastion","name":"<b>&","host":"10.0.0.1","presented_fingerprint":"SHA256:new","pinned_fingerprint":"SHA256:old","job_id":"j3"}`)},
			"", "NetAuto: jump host &lt;b&gt;&amp; (10.0.0.1) presented SSH host key SHA256:new instead of its pinned SHA256:old; an admin must accept it or investigate /?job=j3"},
		{"an unknown type", webhook.Event{ID: "e9", DetailType: "Other"}, "", `NetAuto event "Other" (e9)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.expect, webhook.SlackText(tc.ev, tc.uiURL))
		})
	}
}

// TestSlackTextOfNotifyEvents summarises events as the notify package builds them.
func TestSlackTextOfNotifyEvents(t *testing.T) {
	at := time.Date(2026, 12, 6, 22, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		ev     notify.Event
		expect string
	}{
		{"job finished", notify.NewJobFinished(notify.JobFinished{JobID: "j1", Status: "completed", Command: "show clock", FinishedAt: at,
			Counts: map[string]int{"succeeded": 1, "unreachable": 1}, Failed: []notify.FailedDevice{{DeviceID: "r2", Status: "unreachable"}}}),
			"NetAuto job j1 completed: `show clock` — 1 succeeded, 1 unreachable; not succeeded: r2 <https://ui.example.com/?job=j1|open in NetAuto>"},
		{"output changed", notify.NewOutputChanged(notify.OutputChanged{JobID: "j2", Command: "show run", Changed: []notify.ChangedDevice{{DeviceID: "r1", Name: "core-1"}}}, at),
			"NetAuto job j2: the output of `show run` changed on 1 device(s): core-1 <https://ui.example.com/?job=j2|open in NetAuto>"},
		{"host key mismatch", notify.NewHostKeyMismatch(notify.HostKeyMismatch{Kind: notify.KindDevice, ID: "r3", Host: "192.0.2.3", PresentedFingerprint: "SHA256:new", PinnedFingerprint: "SHA256:old", JobID: "j3", SeenAt: at}),
			"NetAuto: device r3 (192.0.2.3) presented SSH host key SHA256:new instead of its pinned SHA256:old; an admin must accept it or investigate <https://ui.example.com/?job=j3|open in NetAuto>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			detail, err := tc.ev.DetailJSON()
			require.NoError(t, err)
			ev := webhook.Event{ID: "e1", DetailType: tc.ev.DetailType, Source: notify.Source, Time: tc.ev.Time, Detail: detail}
			assert.Equal(t, tc.expect, webhook.SlackText(ev, "https://ui.example.com"))
		})
	}
	assert.Equal(t, notify.DetailTypes(), webhook.EventTypes(), "a filter takes exactly the detail types NetAuto sends")
}

// TestDeleteLeavesNoOrphanURL: when the secret store fails to delete a webhook's URL and signing
// secret, the webhook stays, so the delete can be tried again and takes the secret with it; it
// never answers 404 to that retry with the URL (a bearer secret) left in the store.
func TestDeleteLeavesNoOrphanURL(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	h, _, err := r.registry.Create(ctx, webhook.Input{Name: "n", URL: "https://hooks.example.com/services/T0/B0/tok"})
	require.NoError(t, err)
	r.secrets.failDelete = errors.New("secret store unavailable")
	require.Error(t, r.registry.Delete(ctx, h.ID))
	_, err = r.registry.Get(ctx, h.ID)
	require.NoError(t, err, "the webhook stays while its secret does")

	r.secrets.failDelete = nil
	require.NoError(t, r.registry.Delete(ctx, h.ID), "the delete is tried again")
	_, err = r.registry.Get(ctx, h.ID)
	assert.ErrorIs(t, err, webhook.ErrNotFound)
	assert.Empty(t, r.secrets.m, "no URL is left in the secret store")
}

// TestLoopbackOnlyOnALocalStack: outside a local stack no allowed range may hold a loopback (or
// unspecified) address in any form, no URL may name one, and a webhook saved with such a range
// (on a local stack, or before the rule) reaches no loopback address when delivered.
func TestLoopbackOnlyOnALocalStack(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		in    webhook.Input
		field string
	}{
		{"IPv4 loopback range", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"10.0.0.0/8", "127.0.0.0/8"}}, "allow_private_cidrs[1]"},
		{"one loopback address", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"127.0.0.1/32"}}, "allow_private_cidrs[0]"},
		{"a range around the Runtime API", webhook.Input{Name: "n", URL: "http://127.0.0.1:9001/2018-06-01/runtime/invocation/next", AllowPrivateCIDRs: []string{"127.0.0.0/24"}}, "allow_private_cidrs[0]"},
		{"IPv6 loopback", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"::1/128"}}, "allow_private_cidrs[0]"},
		{"the unspecified range (0.0.0.0 reaches the host)", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"0.0.0.0/8"}}, "allow_private_cidrs[0]"},
		{"IPv6 unspecified", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"::/128"}}, "allow_private_cidrs[0]"},
		{"IPv4-mapped loopback", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"::ffff:127.0.0.0/104"}}, "allow_private_cidrs[0]"},
		{"NAT64 loopback", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"64:ff9b::7f00:0/120"}}, "allow_private_cidrs[0]"},
		{"6to4 loopback", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"2002:7f00::/32"}}, "allow_private_cidrs[0]"},
		{"a wide range holding loopback", webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"64.0.0.0/2"}}, "allow_private_cidrs[0]"},
		{"a loopback literal", webhook.Input{Name: "n", URL: "https://127.0.0.1/hook"}, "url"},
		{"an unspecified literal", webhook.Input{Name: "n", URL: "https://0.0.0.0/hook"}, "url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, secrets := newMemStore(), newMemSecrets()
			reg, err := webhook.NewRegistry(store, secrets)
			require.NoError(t, err)
			_, _, err = reg.Create(ctx, tc.in)
			d, ok := fault.As(err)
			require.True(t, ok, "%v is not a described fault", err)
			assert.Equal(t, fault.Invalid, d.Kind())
			assert.Equal(t, tc.field, d.Field())
			assert.Contains(t, d.Public(), "Lambda Runtime API", "the rule is named")
			hs, _ := store.List(ctx)
			assert.Empty(t, hs, "nothing is stored")
		})
	}

	t.Run("an update is refused too", func(t *testing.T) {
		store, secrets := newMemStore(), newMemSecrets()
		reg, err := webhook.NewRegistry(store, secrets)
		require.NoError(t, err)
		h, _, err := reg.Create(ctx, webhook.Input{Name: "n", URL: "https://h.example.com", AllowPrivateCIDRs: []string{"10.0.0.0/8"}})
		require.NoError(t, err)
		ranges := []string{"127.0.0.0/8"}
		_, _, err = reg.Update(ctx, h.ID, webhook.Patch{AllowPrivateCIDRs: &ranges})
		d, ok := fault.As(err)
		require.True(t, ok, "%v is not a described fault", err)
		assert.Equal(t, "allow_private_cidrs[0]", d.Field())
		got, _ := reg.Get(ctx, h.ID)
		assert.Equal(t, []string{"10.0.0.0/8"}, got.AllowPrivateCIDRs, "nothing changed")
	})

	t.Run("a local stack allows it", func(t *testing.T) {
		reg, err := webhook.NewRegistry(newMemStore(), newMemSecrets(), webhook.AllowLoopback())
		require.NoError(t, err)
		_, _, err = reg.Create(ctx, webhook.Input{Name: "n", URL: "http://127.0.0.1:9000/hook", AllowPrivateCIDRs: []string{"127.0.0.0/8", "::1/128"}})
		require.NoError(t, err)
	})

	t.Run("a stored loopback range reaches nothing from AWS", func(t *testing.T) {
		r := newRig(t)
		rcv := newReceiver(t, http.StatusOK)
		h, _ := r.loopback(t, rcv.URL+"/hook", webhook.Input{}) // saved on a local stack
		r.notifier.AllowLoopback = false                        // delivered by a notifier in AWS
		require.NoError(t, r.notifier.Deliver(ctx, webhook.Delivery{ID: "d1", WebhookID: h.ID, Attempt: 1, Event: jobFinished("ev-1")}))
		assert.Empty(t, rcv.requests(), "the receiver on loopback got nothing")
		as, _, err := r.store.Attempts(ctx, h.ID, "", 10)
		require.NoError(t, err)
		require.Len(t, as, 1)
		assert.Equal(t, webhook.OutcomeFailed, as[0].Outcome, "refused, not retried")
		assert.Contains(t, as[0].Error, "Lambda Runtime API")
	})
}
