package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/notify"
)

// Headers of a delivery.
const (
	HeaderEvent     = "X-NetAuto-Event"
	HeaderDelivery  = "X-NetAuto-Delivery"
	HeaderTimestamp = "X-NetAuto-Timestamp"
	HeaderSignature = "X-NetAuto-Signature"
)

// DetailTypeTest is the detail type of the event POST /v1/webhooks/{id}/test sends; every
// webhook takes it, whatever its filter.
const DetailTypeTest = "Webhook Test"

// Event is an EventBridge event as a webhook's JSON body carries it.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account,omitempty"`
	Time       time.Time       `json:"time"`
	Region     string          `json:"region,omitempty"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// Delivery is one event on its way to one webhook: the message on the delivery queue. Its ID is
// the same for every attempt (receivers de-duplicate by it); Attempt counts from 1.
type Delivery struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhook_id"`
	Attempt   int    `json:"attempt"`
	Event     Event  `json:"event"`
}

// DeliveryID is the id of event eventID's delivery to webhook webhookID: the same however often
// the event is fanned out, so a receiver sees one delivery id per event.
func DeliveryID(eventID, webhookID string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + webhookID))
	return hex.EncodeToString(sum[:16])
}

// Outcome is what became of one attempt.
type Outcome string

// Outcomes.
const (
	// OutcomeDelivered is a 2xx answer.
	OutcomeDelivered Outcome = "delivered"
	// OutcomeRetrying is a failure that is tried again (NextAttemptAt).
	OutcomeRetrying Outcome = "retrying"
	// OutcomeFailed is a failure that is not tried again: not retryable, or the last attempt.
	OutcomeFailed Outcome = "failed"
)

// Attempt is one entry of a webhook's delivery log.
type Attempt struct {
	// ID orders the log: time-sortable, unique.
	ID         string
	WebhookID  string
	DeliveryID string
	EventID    string
	DetailType string
	Attempt    int
	// StatusCode is the receiver's answer; 0 when there was none (Error says why).
	StatusCode    int
	Error         string
	Outcome       Outcome
	Duration      time.Duration
	At            time.Time
	NextAttemptAt *time.Time
}

// Queue carries deliveries: Send makes d visible to the notifier after delay.
type Queue interface {
	Send(ctx context.Context, d Delivery, delay time.Duration) error
}

// Lister lists the webhooks an event fans out to; Store implements it.
type Lister interface {
	List(ctx context.Context) ([]Webhook, error)
}

// Notifier fans events out to webhooks and makes their deliveries.
type Notifier struct {
	Store   Store
	Secrets Secrets
	Queue   Queue
	// Resolver looks up webhook hosts (default net.DefaultResolver).
	Resolver Resolver
	// TLSConfig, when set, replaces the TLS client configuration (tests trust their receiver's
	// certificate with it); nil verifies receivers against the system's roots.
	TLSConfig *tls.Config
	// AllowLoopback lets deliveries reach loopback addresses in a webhook's allowed ranges. Only
	// a local stack sets it (NET_AUTO_WEBHOOK_ALLOW_LOOPBACK=1): in AWS loopback is the Lambda
	// sandbox's Runtime API.
	AllowLoopback bool
	// Timeout bounds one attempt (default DefaultTimeout).
	Timeout time.Duration
	// Backoff is the wait before each retry; MaxAttempts bounds the attempts of a delivery and
	// DisableAfter the deliveries given up in a row before the webhook is disabled (defaults
	// DefaultBackoff, DefaultMaxAttempts, DefaultDisableAfter).
	Backoff      []time.Duration
	MaxAttempts  int
	DisableAfter int
	// LogTTL is how long an attempt stays in the delivery log (default DefaultLogTTL).
	LogTTL time.Duration
	// UIURL is the UI's origin, which Slack bodies link to (the event's ui_path appended).
	UIURL string
	// Audit, when set, records each webhook the notifier disables.
	Audit audit.Recorder
	// Metrics, when set, receives one EMF line per attempt of a queued delivery (WebhookAttempts,
	// WebhookAttemptMs by Outcome) and per webhook disabled (WebhookDisabled).
	Metrics *metrics.Emitter
	Now     func() time.Time
	Logger  *slog.Logger
}

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now().UTC()
	}
	return time.Now().UTC()
}

func (n *Notifier) logger() *slog.Logger {
	if n.Logger != nil {
		return n.Logger
	}
	return slog.Default()
}

func (n *Notifier) backoff(attempt int) time.Duration {
	b := n.Backoff
	if b == nil {
		b = DefaultBackoff
	}
	if len(b) == 0 {
		return 0
	}
	return b[min(attempt-1, len(b)-1)]
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Publish fans ev out: one delivery on the queue for each enabled webhook whose filter takes it.
// It returns how many it queued; an error means some were not, and the whole event may be tried
// again (the delivery ids stay the same).
func (n *Notifier) Publish(ctx context.Context, ev Event) (int, error) {
	hs, err := n.Store.List(ctx)
	if err != nil {
		return 0, fmt.Errorf("fan out event %s: %w", ev.ID, err)
	}
	var errs []error
	sent := 0
	for _, h := range hs {
		if !h.Enabled || !h.Wants(ev.DetailType) {
			continue
		}
		d := Delivery{ID: DeliveryID(ev.ID, h.ID), WebhookID: h.ID, Attempt: 1, Event: ev}
		if err := n.Queue.Send(ctx, d, 0); err != nil {
			errs = append(errs, fmt.Errorf("queue delivery of event %s to webhook %s: %w", ev.ID, h.ID, err))
			continue
		}
		sent++
	}
	return sent, errors.Join(errs...)
}

// Deliver makes one attempt of d and decides what follows: done, a retry on the queue after the
// backoff, or given up, which counts towards disabling the webhook. A delivery to a webhook that
// is gone or disabled is dropped. The error is for failures of NetAuto's own services (store,
// queue), when the message should be received again; the receiver's failures are in the log.
func (n *Notifier) Deliver(ctx context.Context, d Delivery) error {
	// Attempts count from 1; a message that says otherwise (edited by hand) is the first.
	d.Attempt = max(d.Attempt, 1)
	h, err := n.Store.Get(ctx, d.WebhookID)
	if errors.Is(err, ErrNotFound) {
		n.logger().Info("webhook delivery dropped: the webhook is gone", "webhook_id", d.WebhookID, "delivery_id", d.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("deliver %s: %w", d.ID, err)
	}
	if !h.Enabled {
		n.logger().Info("webhook delivery dropped: the webhook is disabled", "webhook_id", d.WebhookID, "delivery_id", d.ID)
		return nil
	}
	sec, err := n.Secrets.GetWebhookSecret(ctx, h.ID)
	if errors.Is(err, ErrNotFound) {
		n.logger().Info("webhook delivery dropped: the webhook is being deleted", "webhook_id", d.WebhookID, "delivery_id", d.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("deliver %s: secret of webhook %s: %w", d.ID, h.ID, err)
	}
	a, retryable := n.attempt(ctx, h, sec, d)
	maxAttempts := orDefault(n.MaxAttempts, DefaultMaxAttempts)
	switch {
	case a.Outcome == OutcomeDelivered:
	case retryable && d.Attempt < maxAttempts:
		a.Outcome = OutcomeRetrying
		next := a.At.Add(a.Duration).Add(n.backoff(d.Attempt))
		a.NextAttemptAt = &next
	default:
		a.Outcome = OutcomeFailed
	}
	if err := n.log(ctx, a); err != nil {
		return err
	}
	n.emit(map[string]string{"Function": "notifier", "Outcome": string(a.Outcome)},
		metrics.Metric{Name: "WebhookAttempts", Value: 1, Unit: metrics.Count},
		metrics.Metric{Name: "WebhookAttemptMs", Value: float64(a.Duration.Milliseconds()), Unit: metrics.Milliseconds})
	switch a.Outcome {
	case OutcomeDelivered:
		// Always: a give-up counted after h was read must be reset too (the store skips the
		// write when there is nothing to reset).
		if err := n.Store.ResetFailures(ctx, h.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("deliver %s: %w", d.ID, err)
		}
	case OutcomeRetrying:
		next := d
		next.Attempt++
		if err := n.Queue.Send(ctx, next, n.backoff(d.Attempt)); err != nil {
			return fmt.Errorf("deliver %s: queue attempt %d: %w", d.ID, next.Attempt, err)
		}
	case OutcomeFailed:
		count, err := n.Store.AddFailure(ctx, h.ID)
		if err != nil {
			return fmt.Errorf("deliver %s: %w", d.ID, err)
		}
		if limit := orDefault(n.DisableAfter, DefaultDisableAfter); count >= limit {
			reason := fmt.Sprintf("disabled after %d deliveries in a row failed; the last: %s (%s); enable it again once the receiver works", count, a.summary(), a.At.Format(time.RFC3339))
			disabled, err := n.Store.Disable(ctx, h.ID, reason, n.now())
			if err != nil {
				return fmt.Errorf("deliver %s: %w", d.ID, err)
			}
			if !disabled {
				return nil // another delivery's give-up disabled it (and audited that)
			}
			n.logger().Warn("webhook disabled after failed deliveries", "webhook_id", h.ID, "failed_deliveries", count)
			n.emit(map[string]string{"Function": "notifier"}, metrics.Metric{Name: "WebhookDisabled", Value: 1, Unit: metrics.Count})
			if n.Audit != nil {
				e := audit.Entry{Actor: audit.ActorNotifier, Role: audit.RoleSystem, Action: "webhook.disable", Target: h.ID, Outcome: audit.OutcomeOK,
					Detail: map[string]string{"failed_deliveries": strconv.Itoa(count)}}
				if err := n.Audit.Record(ctx, e); err != nil {
					n.logger().Error("audit record failed", "action", e.Action, "target", e.Target, "err", err)
				}
			}
		}
	}
	return nil
}

// Test sends one test event to webhook id now, whether it is enabled or not, logs the attempt
// and returns it. It is never retried and never counts towards disabling.
func (n *Notifier) Test(ctx context.Context, id string) (Attempt, error) {
	h, err := n.Store.Get(ctx, id)
	if err != nil {
		return Attempt{}, fmt.Errorf("test webhook %s: %w", id, err)
	}
	sec, err := n.Secrets.GetWebhookSecret(ctx, id)
	if err != nil {
		return Attempt{}, fmt.Errorf("test webhook %s: read its secret: %w", id, err)
	}
	now := n.now()
	detail, _ := json.Marshal(map[string]any{"version": 1, "webhook_id": h.ID, "webhook_name": h.Name, "message": "a test delivery from NetAuto"})
	ev := Event{Version: "0", ID: bulk.NewID(now), DetailType: DetailTypeTest, Source: notify.Source, Time: now, Resources: []string{}, Detail: detail}
	a, _ := n.attempt(ctx, h, sec, Delivery{ID: DeliveryID(ev.ID, h.ID), WebhookID: h.ID, Attempt: 1, Event: ev})
	if a.Outcome != OutcomeDelivered {
		a.Outcome = OutcomeFailed
	}
	if err := n.log(ctx, a); err != nil {
		return Attempt{}, err
	}
	return a, nil
}

// emit writes metrics when the notifier has an emitter; a failure to write them is no failure of
// the delivery.
func (n *Notifier) emit(dims map[string]string, ms ...metrics.Metric) {
	if n.Metrics != nil {
		_ = n.Metrics.Emit(dims, nil, ms...)
	}
}

func (n *Notifier) log(ctx context.Context, a Attempt) error {
	ttl := n.LogTTL
	if ttl <= 0 {
		ttl = DefaultLogTTL
	}
	if err := n.Store.PutAttempt(ctx, a, a.At.Add(ttl)); err != nil {
		return fmt.Errorf("log attempt %d of delivery %s: %w", a.Attempt, a.DeliveryID, err)
	}
	return nil
}

// summary is an attempt's result in a few words: the status or the error.
func (a Attempt) summary() string {
	if a.Error != "" {
		return a.Error
	}
	return "HTTP " + strconv.Itoa(a.StatusCode)
}

// maxResponseBody is how much of a receiver's answer is read (and thrown away).
const maxResponseBody = 64 << 10

// attempt POSTs d to h once and reports the attempt and whether a failure may be retried: a
// connection error or timeout, 408, 429 and 5xx may; a refused address, a redirect and other 4xx
// may not.
func (n *Notifier) attempt(ctx context.Context, h Webhook, sec Secret, d Delivery) (Attempt, bool) {
	start := n.now()
	a := Attempt{ID: bulk.NewID(start), WebhookID: h.ID, DeliveryID: d.ID, EventID: d.Event.ID, DetailType: d.Event.DetailType, Attempt: d.Attempt, At: start}
	fail := func(msg string, retryable bool) (Attempt, bool) {
		a.Duration, a.Error, a.Outcome = n.now().Sub(start), redact(msg, sec.URL), OutcomeFailed
		return a, retryable
	}
	body, err := Body(h.Format, d.Event, n.UIURL)
	if err != nil {
		return fail("could not build the body: "+err.Error(), false)
	}
	// Stored ranges are parsed as they were saved; a loopback address in them is refused by the
	// dial policy below unless this is a local stack.
	_, allowed, err := checkCIDRs(h.AllowPrivateCIDRs, true)
	if err != nil {
		return fail("allow_private_cidrs: "+err.Error(), false)
	}
	u, err := url.Parse(sec.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return fail("the stored URL is not an http(s) URL", false)
	}
	timeout := n.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var resolver Resolver = net.DefaultResolver
	if n.Resolver != nil {
		resolver = n.Resolver
	}
	client := newClient(dialPolicy{allowed: allowed, plainHTTP: u.Scheme == "http", loopback: n.AllowLoopback}, resolver, timeout, n.TLSConfig)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sec.URL, bytes.NewReader(body))
	if err != nil {
		return fail("the stored URL is not usable", false)
	}
	ts := strconv.FormatInt(start.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "NetAuto-Webhook/1")
	req.Header.Set(HeaderEvent, d.Event.DetailType)
	req.Header.Set(HeaderDelivery, d.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(sec.SigningSecret, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		var blocked *BlockedError
		if errors.As(err, &blocked) {
			return fail(blocked.Error(), false)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			if ue.Timeout() {
				return fail(fmt.Sprintf("no answer within %s", timeout), true)
			}
			err = ue.Err
		}
		return fail(err.Error(), true)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	_ = resp.Body.Close()
	a.StatusCode, a.Duration = resp.StatusCode, n.now().Sub(start)
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		a.Outcome = OutcomeDelivered
		return a, false
	case code >= 300 && code < 400:
		a.Error, a.Outcome = fmt.Sprintf("redirect (HTTP %d) not followed: give the final URL", code), OutcomeFailed
		return a, false
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		a.Outcome = OutcomeFailed
		return a, true
	default:
		a.Outcome = OutcomeFailed
		return a, false
	}
}

// redact removes the URL and its path from msg: errors of the HTTP stack may quote them.
func redact(msg, rawURL string) string {
	if rawURL == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, rawURL, "[url]")
	if u, err := url.Parse(rawURL); err == nil {
		if p := u.RequestURI(); len(p) > 1 {
			msg = strings.ReplaceAll(msg, p, "[path]")
		}
		if u.User != nil {
			msg = strings.ReplaceAll(msg, u.User.String(), "[userinfo]")
		}
	}
	return msg
}

// Sign returns the X-NetAuto-Signature value of body sent at timestamp (Unix seconds, as in
// X-NetAuto-Timestamp): "sha256=" and the hex HMAC-SHA256, keyed with the signing secret, of
// "<timestamp>.<body>".
func Sign(secret, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery's signature as a receiver does: the signature must match and the
// timestamp be within tolerance of now, so a captured delivery cannot be replayed later.
func Verify(secret, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("timestamp is not Unix seconds")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("timestamp is %s away from now, more than %s", d.Round(time.Second), tolerance)
	}
	if !hmac.Equal([]byte(Sign(secret, timestamp, body)), []byte(signature)) {
		return errors.New("signature does not match")
	}
	return nil
}
