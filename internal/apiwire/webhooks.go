package apiwire

import "time"

// Webhook is a webhook as the API returns it. The URL is write-only: Endpoint is its scheme and
// host only. The signing secret is shown once, in WebhookCreated.
type Webhook struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Endpoint is the URL's scheme://host[:port], without path, query or user info.
	Endpoint string `json:"endpoint"`
	// Events filters the detail types delivered; empty delivers every one.
	Events []string `json:"events"`
	// Format is "json" (the whole EventBridge event) or "slack" ({"text": "..."}).
	Format         string `json:"format"`
	Enabled        bool   `json:"enabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// AllowPrivateCIDRs are ranges the webhook may reach although private, loopback or link-local.
	AllowPrivateCIDRs []string `json:"allow_private_cidrs"`
	// FailedDeliveries counts deliveries given up in a row since the last success.
	FailedDeliveries int       `json:"failed_deliveries"`
	Version          int64     `json:"version"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// WebhookCreated is the answer of POST /v1/webhooks and POST /v1/webhooks/{id}/rotate-secret:
// the webhook and its signing secret, shown this once.
type WebhookCreated struct {
	Webhook
	SigningSecret string `json:"signing_secret"`
}

// WebhookUpdated is the answer of PATCH /v1/webhooks/{id}: the webhook, and its new signing
// secret (shown this once) when the PATCH had rotate_secret.
type WebhookUpdated struct {
	Webhook
	SigningSecret string `json:"signing_secret,omitempty"`
}

// WebhookInput is the body of POST /v1/webhooks. Enabled defaults to true, Format to "json".
type WebhookInput struct {
	Name              string   `json:"name"`
	URL               string   `json:"url"`
	Events            []string `json:"events,omitempty"`
	Format            string   `json:"format,omitempty"`
	Enabled           *bool    `json:"enabled,omitempty"`
	AllowPrivateCIDRs []string `json:"allow_private_cidrs,omitempty"`
}

// WebhookPatch is the body of PATCH /v1/webhooks/{id}: nil fields stay. Enabling clears the
// disabled reason and the failure count. A new URL needs RotateSecret true: the answer then has
// the new signing secret (WebhookCreated), shown this once.
type WebhookPatch struct {
	Name              *string   `json:"name,omitempty"`
	URL               *string   `json:"url,omitempty"`
	Events            *[]string `json:"events,omitempty"`
	Format            *string   `json:"format,omitempty"`
	Enabled           *bool     `json:"enabled,omitempty"`
	AllowPrivateCIDRs *[]string `json:"allow_private_cidrs,omitempty"`
	Version           *int64    `json:"version,omitempty"`
	RotateSecret      *bool     `json:"rotate_secret,omitempty"`
}

// WebhookList is the body of GET /v1/webhooks: every webhook, by id.
type WebhookList struct {
	Items []Webhook `json:"items"`
}

// WebhookDelivery is one attempt in a webhook's delivery log.
type WebhookDelivery struct {
	ID         string `json:"id"`
	DeliveryID string `json:"delivery_id"`
	EventID    string `json:"event_id"`
	DetailType string `json:"detail_type"`
	Attempt    int    `json:"attempt"`
	// StatusCode is the receiver's answer; absent when there was none (Error says why).
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
	// Outcome is delivered, retrying (NextAttemptAt says when) or failed.
	Outcome       string     `json:"outcome"`
	DurationMS    int64      `json:"duration_ms"`
	At            time.Time  `json:"at"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// WebhookDeliveryList is the body of GET /v1/webhooks/{id}/deliveries: newest first.
type WebhookDeliveryList struct {
	Items []WebhookDelivery `json:"items"`
	Next  string            `json:"next,omitempty"`
}
