// Package webhook keeps NetAuto's webhooks and delivers events to them: an admin registers a URL,
// an event filter and a body format; each matching event is POSTed with an HMAC-SHA256 signature,
// retried with backoff on server errors, timeouts and connection failures, logged per attempt, and
// a webhook whose deliveries keep failing is disabled with a visible reason. The URL and the
// signing secret are write-only secrets kept in the secret store; only the URL's scheme and host
// are ever shown. Every connection is checked on the address actually dialled (guard.go), so a
// webhook cannot reach loopback, link-local, metadata or private addresses unless an admin allows
// a range. It imports no AWS SDK: the store, the secret store and the queue are small interfaces.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// Format is a webhook's body format.
type Format string

// Body formats.
const (
	// FormatJSON posts the whole EventBridge event: id, detail-type, source, time, detail.
	FormatJSON Format = "json"
	// FormatSlack posts {"text": "..."}: a one-line summary and a link, as Slack's incoming
	// webhooks (and Mattermost's, and Teams' Slack-compatible connectors) take it.
	FormatSlack Format = "slack"
)

// Limits of a webhook.
const (
	MaxNameLen = 128
	MaxURLLen  = 2048
	// MaxCIDRs bounds a webhook's allowed private ranges.
	MaxCIDRs = 20
	// SecretBytes is the length of a signing secret before hex encoding.
	SecretBytes = 32
)

// Delivery policy defaults (Notifier's fields override them).
const (
	// DefaultMaxAttempts is how often one delivery is tried before it is given up.
	DefaultMaxAttempts = 5
	// DefaultDisableAfter is how many deliveries in a row may be given up before the webhook is
	// disabled.
	DefaultDisableAfter = 5
	// DefaultLogTTL is how long the delivery log keeps an attempt.
	DefaultLogTTL = 30 * 24 * time.Hour
	// DefaultTimeout bounds one attempt: connect, TLS, request and response headers.
	DefaultTimeout = 10 * time.Second
)

// DefaultBackoff is the wait before each retry: after the 1st attempt 10 s, then 1 min, 5 min
// and 15 min (SQS's longest message delay).
var DefaultBackoff = []time.Duration{10 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute}

// Webhook is a webhook's metadata. The URL and the signing secret are never part of it: Endpoint
// is the URL's scheme and host, for people to recognise it.
type Webhook struct {
	ID   string
	Name string
	// Endpoint is the URL's scheme://host[:port], without user info, path or query.
	Endpoint string
	// Events filters the detail types delivered; empty delivers every one.
	Events []string
	Format Format
	// Enabled is false when an admin disabled the webhook or it was disabled after failures
	// (DisabledReason says which).
	Enabled        bool
	DisabledReason string
	// AllowPrivateCIDRs are ranges an admin allows this webhook to reach although they are
	// private, loopback or link-local; http is allowed only to them.
	AllowPrivateCIDRs []string
	// FailedDeliveries counts the deliveries given up in a row since the last success.
	FailedDeliveries int
	Version          int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// Wants reports whether the webhook takes events of detailType.
func (h Webhook) Wants(detailType string) bool {
	return len(h.Events) == 0 || slices.Contains(h.Events, detailType)
}

// Secret is a webhook's write-only part: where it posts and what it signs with.
type Secret struct {
	URL           string `json:"url"`
	SigningSecret string `json:"signing_secret"`
}

// LogValue hides both halves from log/slog; the JSON form is what the secret store keeps.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[webhook secret redacted]") }

// String hides both halves in any accidental formatting.
func (s Secret) String() string { return "[webhook secret redacted]" }

// GoString hides both halves in %#v formatting.
func (s Secret) GoString() string { return "webhook.Secret{redacted}" }

// Errors of the store and the registry.
var (
	// ErrNotFound means no webhook has the id.
	ErrNotFound = fault.New(fault.NotFound, "id", "no webhook with this id")
	// ErrExists means a webhook with the id exists.
	ErrExists = fault.New(fault.Exists, "id", "a webhook with this id already exists")
	// ErrConflict means the stored version differs from the one the write was based on.
	ErrConflict = fault.New(fault.Conflict, "version", "the webhook was changed by someone else; read it again and retry")
)

// Store keeps webhook metadata and the delivery log. Get, Update and Delete fail with ErrNotFound
// when the webhook is gone; Update and Delete with ErrConflict when the stored version differs.
type Store interface {
	Create(ctx context.Context, h Webhook) error
	Get(ctx context.Context, id string) (Webhook, error)
	// Update writes the admin's fields of h, never FailedDeliveries (the notifier's atomic
	// AddFailure and ResetFailures own it), unless resetFailures sets it to zero.
	Update(ctx context.Context, h Webhook, prevVersion int64, resetFailures bool) error
	Delete(ctx context.Context, id string, version int64) error
	// List returns every webhook by id.
	List(ctx context.Context) ([]Webhook, error)
	// AddFailure counts one more delivery given up in a row and returns the count.
	AddFailure(ctx context.Context, id string) (int, error)
	// ResetFailures sets the count of deliveries given up in a row to zero, whatever the caller
	// last read of it.
	ResetFailures(ctx context.Context, id string) error
	// Disable disables an enabled webhook with reason and reports whether this call did; a
	// disabled one stays as it is.
	Disable(ctx context.Context, id, reason string, at time.Time) (bool, error)
	// PutAttempt logs one delivery attempt, kept until expires.
	PutAttempt(ctx context.Context, a Attempt, expires time.Time) error
	// Attempts returns at most limit attempts of webhook id, newest first, after cursor, and
	// the next page's cursor ("" at the end); fault.ErrBadCursor for a cursor it did not issue.
	Attempts(ctx context.Context, id, cursor string, limit int) ([]Attempt, string, error)
}

// Secrets keeps each webhook's Secret; Get fails with ErrNotFound when there is none.
type Secrets interface {
	PutWebhookSecret(ctx context.Context, id string, s Secret) error
	GetWebhookSecret(ctx context.Context, id string) (Secret, error)
	DeleteWebhookSecret(ctx context.Context, id string) error
}

// Input is a webhook to create.
type Input struct {
	Name   string
	URL    string
	Events []string
	Format Format
	// Enabled defaults to true.
	Enabled           *bool
	AllowPrivateCIDRs []string
}

// Patch changes some fields of a webhook; nil fields stay. Enabling a webhook clears its
// disabled reason and failure count. Version, when given, must match the stored one.
type Patch struct {
	Name   *string
	URL    *string
	Events *[]string
	Format *Format
	// Enabled, when set, enables or disables the webhook.
	Enabled           *bool
	AllowPrivateCIDRs *[]string
	Version           *int64
	// RotateSecret gives the webhook a new signing secret, which Update returns. A new URL needs
	// it: the old receiver knows the old secret and could sign deliveries to the new one.
	RotateSecret bool
}

// Registry is the webhook service the API uses.
type Registry struct {
	store   Store
	secrets Secrets
	now     func() time.Time
	// loopback allows loopback ranges in allow_private_cidrs (a local stack only).
	loopback bool
}

// RegistryOption configures a Registry.
type RegistryOption func(*Registry)

// AllowLoopback lets admins allow loopback ranges (127.0.0.0/8, ::1) in allow_private_cidrs and
// URLs with loopback address literals. Only a local stack sets it
// (NET_AUTO_WEBHOOK_ALLOW_LOOPBACK=1): in AWS loopback is the Lambda sandbox's Runtime API.
func AllowLoopback() RegistryOption {
	return func(r *Registry) { r.loopback = true }
}

// NewRegistry returns a registry over store and secrets.
func NewRegistry(store Store, secrets Secrets, opts ...RegistryOption) (*Registry, error) {
	if store == nil || secrets == nil {
		return nil, errors.New("new webhook registry: store and secret store are required")
	}
	r := &Registry{store: store, secrets: secrets, now: func() time.Time { return time.Now().UTC() }}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// NewSigningSecret returns a fresh random signing secret, "whsec_" and 64 hex digits.
func NewSigningSecret() string {
	var b [SecretBytes]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + hex.EncodeToString(b[:])
}

// checkName validates a webhook's name.
func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fault.New(fault.Invalid, "name", "is required")
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", fault.Errorf(fault.Invalid, "name", "must be at most %d characters", MaxNameLen)
	case !device.Printable(name):
		return "", fault.New(fault.Invalid, "name", "must not contain control or invisible format characters")
	}
	return name, nil
}

// checkEvents validates an event filter against the detail types NetAuto sends and
// de-duplicates it.
func checkEvents(events []string) ([]string, error) {
	out := make([]string, 0, len(events))
	for i, e := range events {
		if !slices.Contains(EventTypes(), e) {
			return nil, fault.Errorf(fault.Invalid, fmt.Sprintf("events[%d]", i), "must be one of %s (empty for all)", strings.Join(EventTypes(), ", "))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// checkFormat validates a body format; empty is json.
func checkFormat(f Format) (Format, error) {
	switch f {
	case "":
		return FormatJSON, nil
	case FormatJSON, FormatSlack:
		return f, nil
	}
	return "", fault.New(fault.Invalid, "format", `must be "json" or "slack"`)
}

// checkCIDRs parses an admin's allowed ranges into their canonical (masked) form; a range that
// holds a loopback address is refused unless loopback is set (a local stack).
func checkCIDRs(cidrs []string, loopback bool) ([]string, []netip.Prefix, error) {
	if len(cidrs) > MaxCIDRs {
		return nil, nil, fault.Errorf(fault.Invalid, "allow_private_cidrs", "must have at most %d ranges", MaxCIDRs)
	}
	var out []string
	var prefixes []netip.Prefix
	for i, c := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, nil, fault.Errorf(fault.Invalid, fmt.Sprintf("allow_private_cidrs[%d]", i), "must be a CIDR range such as 10.1.2.0/24 or fd00:1::/64")
		}
		p = p.Masked()
		if holdsMetadata(p) {
			return nil, nil, fault.Errorf(fault.Invalid, fmt.Sprintf("allow_private_cidrs[%d]", i), "must not contain the cloud metadata address (%s, %s, or its NAT64 and 6to4 forms %s, %s): it is never allowed", metadataV4, metadataV6, metadataNAT64, metadata6to4)
		}
		if !loopback && holdsLoopback(p) {
			return nil, nil, fault.Errorf(fault.Invalid, fmt.Sprintf("allow_private_cidrs[%d]", i), "must not contain a loopback address: %s", loopbackRule)
		}
		if !slices.Contains(out, p.String()) {
			out, prefixes = append(out, p.String()), append(prefixes, p)
		}
	}
	return out, prefixes, nil
}

// checkURL validates a webhook URL under the webhook's allowed ranges and returns its endpoint
// (scheme://host). Errors never repeat the URL: it is a secret.
func checkURL(raw string, allowed []netip.Prefix, loopback bool) (string, error) {
	if raw == "" {
		return "", fault.New(fault.Invalid, "url", "is required")
	}
	if len(raw) > MaxURLLen {
		return "", fault.Errorf(fault.Invalid, "url", "must be at most %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", fault.New(fault.Invalid, "url", "must be an absolute http(s) URL such as https://hooks.example.com/path")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if len(allowed) == 0 {
			return "", fault.New(fault.Invalid, "url", "must use https (http only to addresses in allow_private_cidrs)")
		}
	default:
		return "", fault.New(fault.Invalid, "url", "must use https (http only to addresses in allow_private_cidrs)")
	}
	if u.Fragment != "" {
		return "", fault.New(fault.Invalid, "url", "must not have a fragment (#...)")
	}
	// An address given as a literal is checked now; a name is checked on every connection.
	if a, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		if err := (dialPolicy{allowed: allowed, plainHTTP: u.Scheme == "http", loopback: loopback}).check(a); err != nil {
			return "", fault.Errorf(fault.Invalid, "url", "%s", err.Error())
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

// Create validates in and stores a new webhook with a fresh signing secret, which it returns:
// the only time the secret is shown.
func (r *Registry) Create(ctx context.Context, in Input) (Webhook, string, error) {
	now := r.now()
	h := Webhook{ID: bulk.NewID(now), Enabled: true, Version: 1, CreatedAt: now, UpdatedAt: now}
	var err error
	if h.Name, err = checkName(in.Name); err != nil {
		return Webhook{}, "", err
	}
	if h.Events, err = checkEvents(in.Events); err != nil {
		return Webhook{}, "", err
	}
	if h.Format, err = checkFormat(in.Format); err != nil {
		return Webhook{}, "", err
	}
	var allowed []netip.Prefix
	if h.AllowPrivateCIDRs, allowed, err = checkCIDRs(in.AllowPrivateCIDRs, r.loopback); err != nil {
		return Webhook{}, "", err
	}
	if h.Endpoint, err = checkURL(in.URL, allowed, r.loopback); err != nil {
		return Webhook{}, "", err
	}
	if in.Enabled != nil {
		h.Enabled = *in.Enabled
	}
	sec := Secret{URL: in.URL, SigningSecret: NewSigningSecret()}
	if err := r.secrets.PutWebhookSecret(ctx, h.ID, sec); err != nil {
		return Webhook{}, "", fmt.Errorf("store secret of webhook %s: %w", h.ID, err)
	}
	if err := r.store.Create(ctx, h); err != nil {
		_ = r.secrets.DeleteWebhookSecret(ctx, h.ID)
		return Webhook{}, "", fmt.Errorf("create webhook %s: %w", h.ID, err)
	}
	return h, sec.SigningSecret, nil
}

// Get returns one webhook.
func (r *Registry) Get(ctx context.Context, id string) (Webhook, error) {
	h, err := r.store.Get(ctx, id)
	if err != nil {
		return Webhook{}, fmt.Errorf("get webhook %s: %w", id, err)
	}
	return h, nil
}

// List returns every webhook by id.
func (r *Registry) List(ctx context.Context) ([]Webhook, error) {
	hs, err := r.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	return hs, nil
}

// Update applies pa to webhook id and returns it with its new signing secret when pa rotated
// it (the only time that secret is shown; "" otherwise). A new URL replaces the stored one and
// needs RotateSecret: the receiver at the old URL knows the old secret, so keeping it would let
// that receiver forge deliveries to the new one. Enabling clears the disabled reason and the
// failure count; disabling by hand records that an admin did.
func (r *Registry) Update(ctx context.Context, id string, pa Patch) (Webhook, string, error) {
	if pa.URL != nil && !pa.RotateSecret {
		return Webhook{}, "", fault.New(fault.Invalid, "rotate_secret", "must be true when url changes: the receiver at the old URL knows the signing secret, so a new URL gets a new one (shown in this answer only)")
	}
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return Webhook{}, "", fmt.Errorf("update webhook %s: %w", id, err)
	}
	if pa.Version != nil && *pa.Version != cur.Version {
		return Webhook{}, "", fmt.Errorf("update webhook %s: version %d given, stored version is %d: %w", id, *pa.Version, cur.Version, ErrConflict)
	}
	h := cur
	if pa.Name != nil {
		if h.Name, err = checkName(*pa.Name); err != nil {
			return Webhook{}, "", err
		}
	}
	if pa.Events != nil {
		if h.Events, err = checkEvents(*pa.Events); err != nil {
			return Webhook{}, "", err
		}
	}
	if pa.Format != nil {
		if h.Format, err = checkFormat(*pa.Format); err != nil {
			return Webhook{}, "", err
		}
	}
	if pa.AllowPrivateCIDRs != nil {
		if h.AllowPrivateCIDRs, _, err = checkCIDRs(*pa.AllowPrivateCIDRs, r.loopback); err != nil {
			return Webhook{}, "", err
		}
	}
	// The stored ranges, parsed as saved; a new URL's loopback literal is still refused below.
	_, allowed, _ := checkCIDRs(h.AllowPrivateCIDRs, true)
	var sec Secret
	if pa.URL != nil {
		if h.Endpoint, err = checkURL(*pa.URL, allowed, r.loopback); err != nil {
			return Webhook{}, "", err
		}
	}
	if pa.URL != nil || pa.RotateSecret {
		if sec, err = r.secrets.GetWebhookSecret(ctx, id); err != nil {
			return Webhook{}, "", fmt.Errorf("update webhook %s: read its secret: %w", id, err)
		}
		if pa.URL != nil {
			sec.URL = *pa.URL
		}
		sec.SigningSecret = NewSigningSecret()
	}
	if pa.URL == nil && strings.HasPrefix(h.Endpoint, "http://") && len(allowed) == 0 {
		return Webhook{}, "", fault.New(fault.Invalid, "allow_private_cidrs", "must not be emptied while the url uses http (give an https url too)")
	}
	reset := false
	if pa.Enabled != nil && *pa.Enabled != cur.Enabled {
		h.Enabled = *pa.Enabled
		if h.Enabled {
			reset = true
			h.DisabledReason, h.FailedDeliveries = "", 0
		} else {
			h.DisabledReason = "disabled by an admin"
		}
	}
	h.Version, h.UpdatedAt = cur.Version+1, r.now()
	if err := r.store.Update(ctx, h, cur.Version, reset); err != nil {
		return Webhook{}, "", fmt.Errorf("update webhook %s: %w", id, err)
	}
	if !pa.RotateSecret {
		return h, "", nil
	}
	if err := r.secrets.PutWebhookSecret(ctx, id, sec); err != nil {
		return Webhook{}, "", fmt.Errorf("store secret of webhook %s: %w", id, err)
	}
	return h, sec.SigningSecret, nil
}

// RotateSecret gives webhook id a new signing secret and returns it: the only time it is shown.
// Deliveries from then on are signed with it, retries of earlier ones too.
func (r *Registry) RotateSecret(ctx context.Context, id string) (Webhook, string, error) {
	h, err := r.store.Get(ctx, id)
	if err != nil {
		return Webhook{}, "", fmt.Errorf("rotate secret of webhook %s: %w", id, err)
	}
	sec, err := r.secrets.GetWebhookSecret(ctx, id)
	if err != nil {
		return Webhook{}, "", fmt.Errorf("rotate secret of webhook %s: %w", id, err)
	}
	sec.SigningSecret = NewSigningSecret()
	if err := r.secrets.PutWebhookSecret(ctx, id, sec); err != nil {
		return Webhook{}, "", fmt.Errorf("rotate secret of webhook %s: %w", id, err)
	}
	return h, sec.SigningSecret, nil
}

// Delete removes a webhook and its secret. Its delivery log expires on its own. The secret goes
// first: when its delete fails the webhook stays for the delete to be tried again, rather than
// the URL staying in the secret store with nothing left to name it; a webhook whose secret is gone
// has its deliveries dropped.
func (r *Registry) Delete(ctx context.Context, id string) error {
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	if err := r.secrets.DeleteWebhookSecret(ctx, id); err != nil {
		return fmt.Errorf("delete secret of webhook %s: %w", id, err)
	}
	if err := r.store.Delete(ctx, id, cur.Version); err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	return nil
}

// Attempts returns a page of webhook id's delivery log, newest first.
func (r *Registry) Attempts(ctx context.Context, id, cursor string, limit int) ([]Attempt, string, error) {
	if _, err := r.store.Get(ctx, id); err != nil {
		return nil, "", fmt.Errorf("deliveries of webhook %s: %w", id, err)
	}
	as, next, err := r.store.Attempts(ctx, id, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("deliveries of webhook %s: %w", id, err)
	}
	return as, next, nil
}
