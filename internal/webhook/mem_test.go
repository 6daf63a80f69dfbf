package webhook_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/webhook"
)

// memStore is an in-memory webhook.Store for the domain's unit tests; the DynamoDB store has its
// own tests against DynamoDB Local.
type memStore struct {
	mu       sync.Mutex
	hooks    map[string]webhook.Webhook
	attempts []webhook.Attempt
}

func newMemStore() *memStore { return &memStore{hooks: map[string]webhook.Webhook{}} }

func (s *memStore) Create(_ context.Context, h webhook.Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.hooks[h.ID]; ok {
		return webhook.ErrExists
	}
	s.hooks[h.ID] = h
	return nil
}

func (s *memStore) Get(_ context.Context, id string) (webhook.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return webhook.Webhook{}, webhook.ErrNotFound
	}
	return h, nil
}

func (s *memStore) Update(_ context.Context, h webhook.Webhook, prev int64, resetFailures bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.hooks[h.ID]
	if !ok {
		return webhook.ErrNotFound
	}
	if cur.Version != prev {
		return webhook.ErrConflict
	}
	if !resetFailures {
		h.FailedDeliveries = cur.FailedDeliveries
	}
	s.hooks[h.ID] = h
	return nil
}

func (s *memStore) Delete(_ context.Context, id string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.hooks[id]
	if !ok {
		return webhook.ErrNotFound
	}
	if cur.Version != version {
		return webhook.ErrConflict
	}
	delete(s.hooks, id)
	return nil
}

func (s *memStore) List(context.Context) ([]webhook.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []webhook.Webhook
	for _, h := range s.hooks {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b webhook.Webhook) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (s *memStore) AddFailure(_ context.Context, id string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return 0, webhook.ErrNotFound
	}
	h.FailedDeliveries++
	s.hooks[id] = h
	return h.FailedDeliveries, nil
}

func (s *memStore) ResetFailures(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.hooks[id]
	if !ok {
		return webhook.ErrNotFound
	}
	h.FailedDeliveries = 0
	s.hooks[id] = h
	return nil
}

func (s *memStore) Disable(_ context.Context, id, reason string, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hooks[id]
	if !h.Enabled {
		return false, nil
	}
	h.Enabled, h.DisabledReason, h.Version, h.UpdatedAt = false, reason, h.Version+1, at
	s.hooks[id] = h
	return true, nil
}

func (s *memStore) PutAttempt(_ context.Context, a webhook.Attempt, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts = append(s.attempts, a)
	return nil
}

func (s *memStore) Attempts(_ context.Context, id, _ string, _ int) ([]webhook.Attempt, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []webhook.Attempt
	for _, a := range slices.Backward(s.attempts) {
		if a.WebhookID == id {
			out = append(out, a)
		}
	}
	return out, "", nil
}

// memSecrets is an in-memory webhook.Secrets.
type memSecrets struct {
	mu sync.Mutex
	m  map[string]webhook.Secret
	// failDelete, when set, is what DeleteWebhookSecret fails with.
	failDelete error
}

func newMemSecrets() *memSecrets { return &memSecrets{m: map[string]webhook.Secret{}} }

func (s *memSecrets) PutWebhookSecret(_ context.Context, id string, sec webhook.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = sec
	return nil
}

func (s *memSecrets) GetWebhookSecret(_ context.Context, id string) (webhook.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.m[id]
	if !ok {
		return webhook.Secret{}, webhook.ErrNotFound
	}
	return sec, nil
}

func (s *memSecrets) DeleteWebhookSecret(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failDelete != nil {
		return s.failDelete
	}
	delete(s.m, id)
	return nil
}

// sent is one message the queue took.
type sent struct {
	d     webhook.Delivery
	delay time.Duration
}

// memQueue records what is sent; drain delivers it all, retries included, as the delivery queue
// and its event source do (without waiting out the delays).
type memQueue struct {
	mu   sync.Mutex
	msgs []sent
	all  []sent
}

func (q *memQueue) Send(_ context.Context, d webhook.Delivery, delay time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, sent{d, delay})
	q.all = append(q.all, sent{d, delay})
	return nil
}

func (q *memQueue) take() (sent, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return sent{}, false
	}
	m := q.msgs[0]
	q.msgs = q.msgs[1:]
	return m, true
}

func (q *memQueue) drain(ctx context.Context, n *webhook.Notifier) error {
	for {
		m, ok := q.take()
		if !ok {
			return nil
		}
		if err := n.Deliver(ctx, m.d); err != nil {
			return err
		}
	}
}
