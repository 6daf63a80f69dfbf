// Package eventbus publishes NetAuto's events (internal/notify) to an Amazon EventBridge bus with
// PutEvents: at most 10 entries and 256 KB a call, and the entries a call reports as failed are
// sent again with backoff. Locally the same client talks to infra/eventbus's stand-in
// (AWS_ENDPOINT_URL_EVENTBRIDGE).
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/netauto/netauto/internal/notify"
)

// PutEvents limits (EventBridge quotas).
const (
	// MaxEntries is the most entries one PutEvents call takes.
	MaxEntries = 10
	// MaxRequestBytes is the most one PutEvents call may carry, counted as EntrySize counts.
	MaxRequestBytes = 256 * 1024
)

// API is the part of the EventBridge client the bus uses.
type API interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Bus publishes events to one EventBridge bus; it implements notify.Publisher.
type Bus struct {
	api  API
	name string
	// Attempts is how often an entry is tried in all (default 3); Backoff the wait before the
	// first retry, doubled for each next (default 200 ms).
	Attempts int
	Backoff  time.Duration
	Logger   *slog.Logger
}

// New returns a bus that publishes to the bus named name (a name or an ARN) through api.
func New(api API, name string) (*Bus, error) {
	if api == nil || name == "" {
		return nil, errors.New("new event bus: client and bus name are required")
	}
	return &Bus{api: api, name: name, Attempts: 3, Backoff: 200 * time.Millisecond}, nil
}

// Name is the bus's name or ARN.
func (b *Bus) Name() string { return b.name }

// EntrySize is an entry's size as EventBridge counts it against the 256 KB limit: 14 bytes for a
// time, and the UTF-8 bytes of source, detail type, detail and each resource.
func EntrySize(e types.PutEventsRequestEntry) int {
	n := 0
	if e.Time != nil {
		n += 14
	}
	n += len(aws.ToString(e.Source)) + len(aws.ToString(e.DetailType)) + len(aws.ToString(e.Detail))
	for _, r := range e.Resources {
		n += len(r)
	}
	return n
}

// Publish sends events, in calls of at most MaxEntries entries and MaxRequestBytes, retrying the
// entries EventBridge reports as failed with a retryable code. It returns an error naming the
// entries that were not accepted; the others were.
func (b *Bus) Publish(ctx context.Context, events ...notify.Event) error {
	var (
		entries []types.PutEventsRequestEntry
		errs    []error
	)
	for _, e := range events {
		detail, err := e.DetailJSON()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		entry := types.PutEventsRequestEntry{
			Source: aws.String(notify.Source), DetailType: aws.String(e.DetailType), Detail: aws.String(string(detail)),
			EventBusName: aws.String(b.name),
		}
		if !e.Time.IsZero() {
			entry.Time = aws.Time(e.Time)
		}
		if size := EntrySize(entry); size > MaxRequestBytes {
			errs = append(errs, fmt.Errorf("%s event of %d bytes is over EventBridge's %d", e.DetailType, size, MaxRequestBytes))
			continue
		}
		entries = append(entries, entry)
	}
	for _, chunk := range chunks(entries) {
		if err := b.put(ctx, chunk); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// chunks splits entries into PutEvents calls: at most MaxEntries and MaxRequestBytes each.
func chunks(entries []types.PutEventsRequestEntry) [][]types.PutEventsRequestEntry {
	var (
		out  [][]types.PutEventsRequestEntry
		cur  []types.PutEventsRequestEntry
		size int
	)
	for _, e := range entries {
		n := EntrySize(e)
		if len(cur) == MaxEntries || (len(cur) > 0 && size+n > MaxRequestBytes) {
			out, cur, size = append(out, cur), nil, 0
		}
		cur, size = append(cur, e), size+n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// put sends one call's entries, and again those that failed with a retryable code, up to
// Attempts times in all.
func (b *Bus) put(ctx context.Context, entries []types.PutEventsRequestEntry) error {
	attempts, wait := max(b.Attempts, 1), b.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		out, err := b.api.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		var retry []types.PutEventsRequestEntry
		switch {
		case err != nil:
			// The SDK has retried what it retries (throttling, 5xx); the call as a whole failed.
			return fmt.Errorf("put %d events on bus %s: %w", len(entries), b.name, err)
		case out.FailedEntryCount == 0:
			return nil
		default:
			var codes []string
			for i, r := range out.Entries {
				if r.ErrorCode == nil || i >= len(entries) {
					continue
				}
				codes = append(codes, aws.ToString(r.ErrorCode))
				if retryable(aws.ToString(r.ErrorCode)) {
					retry = append(retry, entries[i])
				}
			}
			last = fmt.Errorf("bus %s refused %d of %d events (%s)", b.name, out.FailedEntryCount, len(entries), strings.Join(codes, ", "))
		}
		if len(retry) == 0 || attempt >= attempts {
			return last
		}
		if b.Logger != nil {
			b.Logger.WarnContext(ctx, "event bus refused events; retrying them", "bus", b.name, "retrying", len(retry), "attempt", attempt, "err", last)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(last, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		entries = retry
	}
}

// retryable reports whether an entry that failed with code may succeed when sent again: the
// service's own trouble and throttling may pass; a malformed or forbidden entry will not.
func retryable(code string) bool {
	switch code {
	case "InternalFailure", "InternalException", "ThrottlingException", "ServiceUnavailable", "LimitExceededException":
		return true
	}
	return false
}

// Client returns an EventBridge client for cfg.
func Client(cfg aws.Config) *eventbridge.Client { return eventbridge.NewFromConfig(cfg) }
