package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/webhook"
)

// Webhooks keeps each webhook's URL and signing secret in a secret store, one secret per webhook
// named webhooks/<id>, as a JSON object in the secret's password field; it implements
// webhook.Secrets.
type Webhooks struct {
	store device.SecretStore
}

// NewWebhooks returns the webhook secret store over store.
func NewWebhooks(store device.SecretStore) (*Webhooks, error) {
	if store == nil {
		return nil, errors.New("new webhook secrets: no secret store")
	}
	return &Webhooks{store: store}, nil
}

// WebhookSecretName is the secret name of a webhook's URL and signing secret.
func WebhookSecretName(id string) string { return "webhooks/" + id }

// PutWebhookSecret implements webhook.Secrets.
func (w *Webhooks) PutWebhookSecret(ctx context.Context, id string, s webhook.Secret) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode secret of webhook %s: %w", id, err)
	}
	return w.store.Put(ctx, WebhookSecretName(id), device.Credential{Password: string(data)})
}

// GetWebhookSecret implements webhook.Secrets; webhook.ErrNotFound when none is stored.
func (w *Webhooks) GetWebhookSecret(ctx context.Context, id string) (webhook.Secret, error) {
	c, err := w.store.Get(ctx, WebhookSecretName(id))
	if errors.Is(err, device.ErrNotFound) {
		return webhook.Secret{}, fmt.Errorf("secret of webhook %s: %w", id, webhook.ErrNotFound)
	}
	if err != nil {
		return webhook.Secret{}, err
	}
	var s webhook.Secret
	if err := json.Unmarshal([]byte(c.Password), &s); err != nil {
		return webhook.Secret{}, fmt.Errorf("secret of webhook %s is not a JSON object", id)
	}
	return s, nil
}

// DeleteWebhookSecret implements webhook.Secrets: at once, without a recovery window, when the
// store can (Purge): a deleted webhook's URL should not be restorable.
func (w *Webhooks) DeleteWebhookSecret(ctx context.Context, id string) error {
	if p, ok := w.store.(interface {
		Purge(ctx context.Context, name string) error
	}); ok {
		return p.Purge(ctx, WebhookSecretName(id))
	}
	return w.store.Delete(ctx, WebhookSecretName(id))
}
