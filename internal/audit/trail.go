package audit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"
)

// Actors of the entries NetAuto's own functions write: they act on their own, not for a caller.
const (
	// ActorExecutor is the executor function (job start and finish, refusals before a device runs).
	ActorExecutor = "system:executor"
	// ActorWatchdog is the watchdog function (jobs it ends).
	ActorWatchdog = "system:watchdog"
	// ActorRetention is the scheduled retention purge.
	ActorRetention = "system:retention"
	// ActorNotifier is the notifier function (webhooks it disables after failed deliveries).
	ActorNotifier = "system:notifier"
	// RoleSystem is the role of the system actors.
	RoleSystem = "system"
)

// idTime is the time part of an entry id: fixed width, so ids sort by time as strings.
const idTime = "20060102T150405.000000Z"

// NewID returns a unique entry id that sorts by t: the UTC time to the microsecond, then 8 random
// bytes in hex, so two entries of the same microsecond still get different ids.
func NewID(t time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return IDAt(t) + "-" + hex.EncodeToString(b[:])
}

// IDAt returns the smallest id of time t: every id made at t or later sorts at or after it, every
// id made before it sorts before it.
func IDAt(t time.Time) string { return t.UTC().Format(idTime) }

// IDTime returns the time an id (NewID) was made at.
func IDTime(id string) (time.Time, bool) {
	if len(id) < len(idTime) {
		return time.Time{}, false
	}
	t, err := time.Parse(idTime, id[:len(idTime)])
	return t, err == nil
}

// Trail is the Recorder every NetAuto function uses: it completes an entry (id, time), appends it
// to the store and writes it as one structured log line (audit=true) for a SIEM that reads the
// logs. The line is written also when the store fails, with the store's error.
type Trail struct {
	store  Recorder
	logger *slog.Logger
	now    func() time.Time
}

// NewTrail returns a trail over store (nil: entries are only logged) that logs to logger (nil:
// slog.Default()).
func NewTrail(store Recorder, logger *slog.Logger) *Trail {
	if logger == nil {
		logger = slog.Default()
	}
	return &Trail{store: store, logger: logger, now: func() time.Time { return time.Now().UTC() }}
}

// Record completes e, stores it and logs it. An error means the entry was not stored.
func (t *Trail) Record(ctx context.Context, e Entry) error {
	if e.Time.IsZero() {
		e.Time = t.now()
	}
	if e.ID == "" {
		e.ID = NewID(e.Time)
	}
	var err error
	if t.store != nil {
		err = t.store.Record(ctx, e)
	}
	attrs := []slog.Attr{
		slog.Bool("audit", true), slog.String("audit_id", e.ID), slog.String("actor", e.Actor),
		slog.String("role", e.Role), slog.String("action", e.Action), slog.String("target", e.Target),
		slog.String("outcome", e.Outcome), slog.String("reason", e.Reason),
		slog.String("request_id", e.RequestID), slog.String("source", e.Source),
	}
	if len(e.Detail) > 0 {
		detail := make([]any, 0, 2*len(e.Detail))
		for k, v := range e.Detail {
			detail = append(detail, slog.String(k, v))
		}
		attrs = append(attrs, slog.Group("detail", detail...))
	}
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelError
		attrs = append(attrs, slog.Bool("stored", false), slog.String("err", err.Error()))
	}
	t.logger.LogAttrs(ctx, level, "audit", attrs...)
	return err
}

// ErrDuplicateID means an entry with the same id is already in the trail: the store refused to
// overwrite it.
var ErrDuplicateID = errors.New("audit entry id already recorded")

// Filter selects entries of the trail; the zero Filter selects all. Fields set are AND-ed.
type Filter struct {
	Actor  string
	Action string
	Target string
	// Since keeps entries made at or after it (zero: no bound).
	Since time.Time
}

// Epoch is before the first entry of any trail: listings walk back no further.
var Epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Cursor returns the page cursor that continues a newest-first listing before id (exclusive).
func Cursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// ParseCursor returns the id a Cursor continues before; false for a cursor this package did not
// make.
func ParseCursor(c string) (string, bool) {
	if len(c) > 128 {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	if _, ok := IDTime(string(b)); !ok {
		return "", false
	}
	return string(b), true
}
