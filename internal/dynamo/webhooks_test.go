package dynamo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/webhook"
)

func testWebhook(id string) webhook.Webhook {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return webhook.Webhook{ID: id, Name: "ops " + id, Endpoint: "https://hooks.example.com", Events: []string{"Job Finished"},
		Format: webhook.FormatSlack, Enabled: true, AllowPrivateCIDRs: []string{"10.1.0.0/16"}, Version: 1, CreatedAt: now, UpdatedAt: now}
}

// TestWebhookStore runs the webhook store against DynamoDB Local: create, get, list, versioned
// update and delete, the atomic failure count, the conditional disable.
func TestWebhookStore(t *testing.T) {
	db, table := newTable(t, resources.WebhooksTable)
	s, err := NewWebhookStore(db, table)
	require.NoError(t, err)
	ctx := context.Background()

	h := testWebhook("h1")
	require.NoError(t, s.Create(ctx, h))
	require.ErrorIs(t, s.Create(ctx, h), webhook.ErrExists)
	require.NoError(t, s.Create(ctx, testWebhook("h2")))
	got, err := s.Get(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, h, got)
	_, err = s.Get(ctx, "nope")
	assert.ErrorIs(t, err, webhook.ErrNotFound)

	// A delivery log in the same table is not a webhook.
	require.NoError(t, s.PutAttempt(ctx, webhook.Attempt{ID: "a1", WebhookID: "h1", Outcome: webhook.OutcomeDelivered, At: time.Now()}, time.Now().Add(time.Hour)))
	list, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{"h1", "h2"}, []string{list[0].ID, list[1].ID})

	// Concurrent failures each count.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddFailure(ctx, "h1")
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	n, err := s.AddFailure(ctx, "h1")
	require.NoError(t, err)
	assert.Equal(t, 6, n)
	_, err = s.AddFailure(ctx, "nope")
	assert.ErrorIs(t, err, webhook.ErrNotFound)

	at := time.Now().UTC().Truncate(time.Millisecond)
	done, err := s.Disable(ctx, "h1", "too many failures", at)
	require.NoError(t, err)
	assert.True(t, done)
	done, err = s.Disable(ctx, "h1", "again", at)
	require.NoError(t, err, "disabling a disabled webhook is no error")
	assert.False(t, done, "and this call did not disable it")
	got, err = s.Get(ctx, "h1")
	require.NoError(t, err)
	assert.False(t, got.Enabled)
	assert.Equal(t, "too many failures", got.DisabledReason, "the first reason stays")
	assert.Equal(t, int64(2), got.Version)
	assert.Equal(t, at, got.UpdatedAt)
	_, err = s.Disable(ctx, "nope", "x", at)
	assert.ErrorIs(t, err, webhook.ErrNotFound)

	require.NoError(t, s.ResetFailures(ctx, "h1"))
	got, _ = s.Get(ctx, "h1")
	assert.Zero(t, got.FailedDeliveries)

	h.Name, h.Version = "renamed", 3
	assert.ErrorIs(t, s.Update(ctx, h, 1, false), webhook.ErrConflict, "the disable made a new version")
	require.NoError(t, s.Update(ctx, h, 2, false))
	assert.ErrorIs(t, s.Delete(ctx, "h1", 2), webhook.ErrConflict)
	require.NoError(t, s.Delete(ctx, "h1", 3))
	assert.ErrorIs(t, s.Delete(ctx, "h1", 3), webhook.ErrNotFound)
}

// TestWebhookDeliveryLog: newest first, paged by cursor, expired attempts left out, a cursor of
// another webhook's log refused.
func TestWebhookDeliveryLog(t *testing.T) {
	db, table := newTable(t, resources.WebhooksTable)
	s, err := NewWebhookStore(db, table)
	require.NoError(t, err)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Millisecond)
	next := base.Add(10 * time.Second)
	for i := range 5 {
		a := webhook.Attempt{ID: "a" + string(rune('0'+i)), WebhookID: "h1", DeliveryID: "d1", EventID: "e1", DetailType: "Job Finished",
			Attempt: i + 1, StatusCode: 500, Outcome: webhook.OutcomeRetrying, Duration: 42 * time.Millisecond, At: base.Add(time.Duration(i) * time.Second), NextAttemptAt: &next}
		require.NoError(t, s.PutAttempt(ctx, a, base.Add(time.Hour)))
	}
	require.NoError(t, s.PutAttempt(ctx, webhook.Attempt{ID: "a9", WebhookID: "h1", Outcome: webhook.OutcomeFailed, Error: "old", At: base}, base.Add(-time.Hour)))
	require.NoError(t, s.PutAttempt(ctx, webhook.Attempt{ID: "b0", WebhookID: "h2", Outcome: webhook.OutcomeDelivered, At: base}, base.Add(time.Hour)))

	page, cursor, err := s.Attempts(ctx, "h1", "", 3)
	require.NoError(t, err)
	var ids []string
	for _, a := range page {
		ids = append(ids, a.ID)
	}
	assert.Equal(t, []string{"a4", "a3"}, ids, "newest first; the expired a9 is left out of its page")
	require.NotEmpty(t, cursor)
	assert.Equal(t, webhook.Attempt{ID: "a4", WebhookID: "h1", DeliveryID: "d1", EventID: "e1", DetailType: "Job Finished", Attempt: 5, StatusCode: 500,
		Outcome: webhook.OutcomeRetrying, Duration: 42 * time.Millisecond, At: base.Add(4 * time.Second), NextAttemptAt: &next}, page[0])
	page, cursor, err = s.Attempts(ctx, "h1", cursor, 3)
	require.NoError(t, err)
	ids = nil
	for _, a := range page {
		ids = append(ids, a.ID)
	}
	assert.Equal(t, []string{"a2", "a1", "a0"}, ids)
	if cursor != "" {
		page, _, err = s.Attempts(ctx, "h1", cursor, 3)
		require.NoError(t, err)
		assert.Empty(t, page)
	}

	_, _, err = s.Attempts(ctx, "h2", mustCursor(t, map[string]string{"pk": "LOG#h1", "sk": "a3"}), 3)
	assert.ErrorIs(t, err, fault.ErrBadCursor, "a cursor into another webhook's log")
	_, _, err = s.Attempts(ctx, "h1", "garbage!", 3)
	assert.ErrorIs(t, err, fault.ErrBadCursor)
}

// hookedWebhooks is the DynamoDB webhook store with a hook run just after Get has read a
// webhook: where a concurrent writer gets in between a caller's read and its write.
type hookedWebhooks struct {
	*WebhookStore
	afterGet func()
}

func (s hookedWebhooks) Get(ctx context.Context, id string) (webhook.Webhook, error) {
	h, err := s.WebhookStore.Get(ctx, id)
	if s.afterGet != nil {
		s.afterGet()
	}
	return h, err
}

// mapSecrets is a webhook secret store in a map (the tests here use it from one goroutine).
type mapSecrets map[string]webhook.Secret

func (m mapSecrets) PutWebhookSecret(_ context.Context, id string, s webhook.Secret) error {
	m[id] = s
	return nil
}

func (m mapSecrets) GetWebhookSecret(_ context.Context, id string) (webhook.Secret, error) {
	s, ok := m[id]
	if !ok {
		return webhook.Secret{}, webhook.ErrNotFound
	}
	return s, nil
}

func (m mapSecrets) DeleteWebhookSecret(_ context.Context, id string) error {
	delete(m, id)
	return nil
}

// TestWebhookFailureCountRaces interleaves the notifier's atomic failure count with an admin's
// update and with a successful delivery on DynamoDB Local: a give-up counted after the webhook
// was read is neither overwritten by the admin's write nor left standing after a success.
func TestWebhookFailureCountRaces(t *testing.T) {
	db, table := newTable(t, resources.WebhooksTable)
	base, err := NewWebhookStore(db, table)
	require.NoError(t, err)
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)

	// newHook creates an enabled webhook posting to the receiver with before failures counted
	// (and disabled by the notifier first when disabled), and returns the store with its hook.
	newHook := func(t *testing.T, before int, disabled bool) (*webhook.Registry, *hookedWebhooks, mapSecrets, string) {
		t.Helper()
		s := &hookedWebhooks{WebhookStore: base}
		secrets := mapSecrets{}
		reg, err := webhook.NewRegistry(s, secrets, webhook.AllowLoopback())
		require.NoError(t, err)
		h, _, err := reg.Create(ctx, webhook.Input{Name: "race", URL: receiver.URL + "/hook", AllowPrivateCIDRs: []string{"127.0.0.0/8"}})
		require.NoError(t, err)
		for range before {
			_, err := base.AddFailure(ctx, h.ID)
			require.NoError(t, err)
		}
		if disabled {
			done, err := base.Disable(ctx, h.ID, "disabled after failures", time.Now())
			require.NoError(t, err)
			require.True(t, done)
		}
		return reg, s, secrets, h.ID
	}
	giveUp := func(t *testing.T, id string) func() {
		return func() {
			_, err := base.AddFailure(ctx, id)
			require.NoError(t, err)
		}
	}

	t.Run("admin update", func(t *testing.T) {
		name, on, off := "renamed", true, false
		for _, tc := range []struct {
			name     string
			disabled bool
			patch    webhook.Patch
			want     int
		}{
			{"a rename keeps a failure counted meanwhile", false, webhook.Patch{Name: &name}, 2},
			{"an admin's disable keeps it", false, webhook.Patch{Enabled: &off}, 2},
			{"enabling resets the count, as it says", true, webhook.Patch{Enabled: &on}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				reg, s, _, id := newHook(t, 1, tc.disabled)
				s.afterGet = giveUp(t, id) // the registry has read the webhook; a give-up lands
				_, _, err := reg.Update(ctx, id, tc.patch)
				require.NoError(t, err)
				got, err := base.Get(ctx, id)
				require.NoError(t, err)
				assert.Equal(t, tc.want, got.FailedDeliveries)
				if tc.patch.Name != nil {
					assert.Equal(t, name, got.Name, "the admin's change is written")
				}
			})
		}
	})

	t.Run("success after a concurrent give-up", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			before int
		}{
			{"read with no failures", 0},
			{"read with failures", 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, s, secrets, id := newHook(t, tc.before, false)
				n := &webhook.Notifier{Store: s, Secrets: secrets, Timeout: 5 * time.Second, AllowLoopback: true}
				s.afterGet = giveUp(t, id) // the notifier has read the webhook; another delivery gives up
				require.NoError(t, n.Deliver(ctx, webhook.Delivery{ID: "d-" + id, WebhookID: id, Attempt: 1,
					Event: webhook.Event{Version: "0", ID: "ev-" + id, DetailType: "Job Finished", Source: "netauto", Detail: []byte(`{}`)}}))
				got, err := base.Get(ctx, id)
				require.NoError(t, err)
				assert.Zero(t, got.FailedDeliveries, "the success after the give-up resets the count")
				as, _, err := base.Attempts(ctx, id, "", 10)
				require.NoError(t, err)
				require.Len(t, as, 1)
				assert.Equal(t, webhook.OutcomeDelivered, as[0].Outcome, "the receiver took it")
			})
		}
	})

	t.Run("reset", func(t *testing.T) {
		_, _, _, id := newHook(t, 0, false)
		require.NoError(t, base.ResetFailures(ctx, id), "nothing to reset is no error")
		assert.ErrorIs(t, base.ResetFailures(ctx, "nope"), webhook.ErrNotFound)
	})
}
