// Package live is the WebSocket side of live progress: it accepts connections that carry a valid
// token, keeps their subscriptions to bulk jobs, and answers a subscribe with a snapshot of the
// job. Progress itself is pushed by a bulk.Publisher (internal/push) to the subscriptions this
// package stores. It imports no AWS SDK and no Lambda events: the connection store, the job
// reader, the token verifier and the message poster are small interfaces, and the Lambda adapter
// (internal/app) translates API Gateway WebSocket events into calls of Server's methods.
//
// The wire protocol is described in docs/websocket.md.
package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"time"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// Limits of the protocol.
const (
	// ConnectionTTL is how long a connection lives: API Gateway closes WebSocket connections after
	// two hours, so records older than that (plus a margin) are stale and expire by TTL.
	ConnectionTTL = 2*time.Hour + 5*time.Minute
	// MaxFrameBytes is API Gateway's WebSocket frame size; every message sent stays below it.
	MaxFrameBytes = 32 << 10
	// snapshotBudget is the size a snapshot part aims to stay under, leaving room below
	// MaxFrameBytes for its envelope.
	snapshotBudget = 24 << 10
	// MaxMessageBytes bounds a client message (a subscribe is ~80 bytes).
	MaxMessageBytes = 4 << 10
)

// Message types sent to clients (besides bulk.EventProgress and bulk.EventJobDone).
const (
	TypeSnapshot     = "snapshot"
	TypeUnsubscribed = "unsubscribed"
	TypeError        = "error"
	// TypeEvents is several events of one job in one message, in order: {"type":"events",
	// "job_id":"…","events":[{"type":"bulk_progress",…},…]}. A single event is sent bare.
	TypeEvents = "events"
)

// EventsBudget is the size the events of one TypeEvents message stay under, leaving room below
// MaxFrameBytes for its envelope.
const EventsBudget = 16 << 10

// Errors of the stores, the poster and the server.
var (
	// ErrGone means the connection no longer exists (API Gateway answers 410).
	ErrGone = fault.New(fault.NotFound, "", "connection gone")
	// ErrNotFound means a connection record does not exist.
	ErrNotFound = fault.New(fault.NotFound, "", "connection not found")
	// ErrExpired means a connection exists but its token has expired: it may no longer subscribe
	// and receives no more progress.
	ErrExpired = fault.New(fault.Unauthorized, "", "the connection's token has expired")
	// ErrUnauthorized wraps every refused $connect; the wrapped text says why.
	ErrUnauthorized = fault.New(fault.Unauthorized, "", "unauthorized")
)

// Connection is an open WebSocket connection and the identity that opened it.
type Connection struct {
	ID          string
	Identity    auth.Identity
	ConnectedAt time.Time
	// ExpiresAt is when the connection stops receiving: its token's expiry, or API Gateway's
	// two-hour cap on a connection when that comes first.
	ExpiresAt time.Time
}

// Store keeps connections and their subscriptions.
type Store interface {
	// PutConnection stores a new connection.
	PutConnection(ctx context.Context, c Connection) error
	// GetConnection returns a connection; ErrNotFound when it does not exist, ErrExpired when it
	// has passed its ExpiresAt.
	GetConnection(ctx context.Context, id string) (Connection, error)
	// DeleteConnection removes a connection and every subscription it holds; removing an
	// unknown connection is not an error.
	DeleteConnection(ctx context.Context, id string) error
	// Subscribe subscribes a connection to a job until expires; ErrNotFound when the connection
	// does not exist (it disconnected meanwhile).
	Subscribe(ctx context.Context, connID, jobID string, expires time.Time) error
	// Unsubscribe removes one subscription; removing an unknown one is not an error.
	Unsubscribe(ctx context.Context, connID, jobID string) error
	// Subscribers lists the connections subscribed to a job.
	Subscribers(ctx context.Context, jobID string) ([]string, error)
}

// Jobs reads bulk jobs (the job store's read side).
type Jobs interface {
	GetJob(ctx context.Context, id string) (bulk.Job, error)
	Devices(ctx context.Context, jobID string, cursor string, limit int) ([]bulk.DeviceState, string, error)
}

// Poster sends one message to one connection (PostToConnection); ErrGone when the connection is
// gone.
type Poster interface {
	Post(ctx context.Context, connID string, data []byte) error
}

// Verifier validates a token and returns its claims, flattened as API Gateway passes them; a
// rejected token's error wraps auth.ErrUnauthorized, any other error means it could not be checked.
type Verifier interface {
	Verify(raw string) (map[string]string, error)
}

// Server handles the WebSocket routes.
type Server struct {
	Store    Store
	Jobs     Jobs
	Poster   Poster
	Verifier Verifier
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Connect accepts a connection whose token (the ?token= query parameter) is valid and stores it
// with its identity; a missing or invalid token is refused with an error wrapping ErrUnauthorized.
func (s *Server) Connect(ctx context.Context, connID, token string) (Connection, error) {
	if connID == "" {
		return Connection{}, errors.New("connect: no connection id")
	}
	if token == "" {
		return Connection{}, fmt.Errorf("%w: a token is required (?token=<JWT>)", ErrUnauthorized)
	}
	claims, err := s.Verifier.Verify(token)
	if errors.Is(err, auth.ErrUnauthorized) {
		return Connection{}, fmt.Errorf("%w: the token was rejected: %w", ErrUnauthorized, err)
	}
	if err != nil {
		// The token could not be checked (the key set is unreachable): not the caller's fault.
		return Connection{}, fmt.Errorf("connect %s: verify token: %w", connID, err)
	}
	id, err := auth.FromClaims(claims)
	if err != nil {
		return Connection{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	now := s.now()
	c := Connection{ID: connID, Identity: id, ConnectedAt: now, ExpiresAt: now.Add(ConnectionTTL)}
	if exp, ok := tokenExpiry(claims); ok && exp.Before(c.ExpiresAt) {
		c.ExpiresAt = exp
	}
	if !c.ExpiresAt.After(now) {
		return Connection{}, fmt.Errorf("%w: the token has expired", ErrUnauthorized)
	}
	if err := s.Store.PutConnection(ctx, c); err != nil {
		return Connection{}, fmt.Errorf("connect %s: %w", connID, err)
	}
	return c, nil
}

// tokenExpiry reads the exp claim (seconds since the epoch, as decimal text).
func tokenExpiry(claims map[string]string) (time.Time, bool) {
	secs, err := strconv.ParseFloat(claims["exp"], 64)
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0).UTC(), true
}

// Disconnect removes the connection and its subscriptions.
func (s *Server) Disconnect(ctx context.Context, connID string) error {
	if err := s.Store.DeleteConnection(ctx, connID); err != nil {
		return fmt.Errorf("disconnect %s: %w", connID, err)
	}
	return nil
}

// Request is a client message: {"action":"subscribe","job_id":"..."}.
type Request struct {
	Action string `json:"action"`
	JobID  string `json:"job_id"`
}

// Actions a client may send.
const (
	ActionSubscribe   = "subscribe"
	ActionUnsubscribe = "unsubscribe"
)

var jobIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ErrorMessage is sent to a client whose request failed.
type ErrorMessage struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Action  string `json:"action,omitempty"`
	JobID   string `json:"job_id,omitempty"`
}

// Message handles a client message on connection connID. Problems the client caused are answered
// on the connection with an error message and return nil; the returned error is the server's own
// (a store failure) or ErrGone when the connection went away.
func (s *Server) Message(ctx context.Context, connID string, body []byte) error {
	var req Request
	if len(body) > MaxMessageBytes {
		return s.reject(ctx, connID, req, "payload_too_large", fmt.Sprintf("messages are at most %d bytes", MaxMessageBytes))
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return s.reject(ctx, connID, req, "bad_request", "the message must be a JSON object like {\"action\":\"subscribe\",\"job_id\":\"...\"}")
	}
	if req.Action != ActionSubscribe && req.Action != ActionUnsubscribe {
		return s.reject(ctx, connID, req, "bad_request", "action must be subscribe or unsubscribe")
	}
	if !jobIDPattern.MatchString(req.JobID) {
		return s.reject(ctx, connID, req, "bad_request", "job_id must be a job id (1-64 letters, digits, '_' or '-')")
	}
	conn, err := s.Store.GetConnection(ctx, connID)
	if errors.Is(err, ErrExpired) && req.Action == ActionSubscribe {
		return s.reject(ctx, connID, req, "token_expired", "the connection's token has expired; reconnect with a fresh token")
	}
	if errors.Is(err, ErrExpired) {
		err = nil // unsubscribing needs no valid token
	}
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%s from %s: %w", req.Action, connID, ErrGone)
	}
	if err != nil {
		return fmt.Errorf("%s from %s: %w", req.Action, connID, err)
	}
	if req.Action == ActionUnsubscribe {
		if err := s.Store.Unsubscribe(ctx, connID, req.JobID); err != nil {
			return fmt.Errorf("unsubscribe %s from %s: %w", connID, req.JobID, err)
		}
		return s.send(ctx, connID, map[string]string{"type": TypeUnsubscribed, "job_id": req.JobID})
	}
	if !conn.Identity.CanSomewhere(auth.Viewer) {
		return s.reject(ctx, connID, req, "forbidden", "watching a job needs the viewer role or above")
	}
	// A job is watched with the viewer role on all its sites (as GET /v1/bulk/{job_id}); one out
	// of scope answers as one that does not exist.
	j, err := s.Jobs.GetJob(ctx, req.JobID)
	if errors.Is(err, bulk.ErrJobNotFound) || (err == nil && !conn.Identity.CanOnAll(auth.Viewer, j.Sites)) {
		return s.reject(ctx, connID, req, "not_found", "no such job")
	}
	if err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", connID, req.JobID, err)
	}
	// Subscribe first, then read the snapshot: every change after the snapshot is pushed.
	if err := s.Store.Subscribe(ctx, connID, req.JobID, conn.ExpiresAt); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("subscribe %s: %w", connID, ErrGone)
	} else if err != nil {
		return fmt.Errorf("subscribe %s to %s: %w", connID, req.JobID, err)
	}
	parts, err := s.Snapshot(ctx, req.JobID)
	if err != nil {
		return fmt.Errorf("snapshot of %s: %w", req.JobID, err)
	}
	for _, p := range parts {
		if err := s.Poster.Post(ctx, connID, p); err != nil {
			return fmt.Errorf("send snapshot of %s to %s: %w", req.JobID, connID, err)
		}
	}
	return nil
}

func (s *Server) reject(ctx context.Context, connID string, req Request, code, msg string) error {
	s.logger().InfoContext(ctx, "websocket request refused", "connection_id", connID, "code", code, "action", req.Action)
	return s.send(ctx, connID, ErrorMessage{Type: TypeError, Code: code, Message: msg, Action: req.Action, JobID: req.JobID})
}

func (s *Server) send(ctx context.Context, connID string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	if err := s.Poster.Post(ctx, connID, b); err != nil {
		return fmt.Errorf("send to %s: %w", connID, err)
	}
	return nil
}

// DeviceEntry is one device in a snapshot.
type DeviceEntry struct {
	DeviceID string     `json:"device_id"`
	Status   run.Status `json:"status"`
	RunID    string     `json:"run_id,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	// DurationMS is the run's duration once terminal.
	DurationMS int64 `json:"duration_ms,omitempty"`
	// OutputDigest identifies the output up to whitespace (run.OutputDigest).
	OutputDigest string `json:"output_digest,omitempty"`
	// Changed is the run's drift flag once it succeeded (run.Run.Changed).
	Changed *bool `json:"changed,omitempty"`
	// Seq is the job event that last changed the device: a pushed event for this device applies
	// only when its seq is greater.
	Seq int64 `json:"seq"`
}

// SnapshotPart is one message of a snapshot. A snapshot is Parts messages; the first carries the
// job summary, each carries a share of the devices.
type SnapshotPart struct {
	Type  string `json:"type"`
	JobID string `json:"job_id"`
	// Seq is the highest seq the snapshot holds (docs/websocket.md).
	Seq     int64         `json:"seq"`
	Part    int           `json:"part"`
	Parts   int           `json:"parts"`
	Job     *bulk.Job     `json:"job,omitempty"`
	Devices []DeviceEntry `json:"devices"`
}

// Snapshot reads the job and all its devices and encodes them as messages below the frame limit.
func (s *Server) Snapshot(ctx context.Context, jobID string) ([][]byte, error) {
	j, err := s.Jobs.GetJob(ctx, jobID)
	if err != nil {
		return nil, err
	}
	var devs []DeviceEntry
	cursor := ""
	for {
		page, next, err := s.Jobs.Devices(ctx, jobID, cursor, 1000)
		if err != nil {
			return nil, err
		}
		for _, d := range page {
			devs = append(devs, DeviceEntry{DeviceID: d.DeviceID, Status: d.Status, RunID: d.RunID, Reason: d.Reason,
				DurationMS: d.DurationMS, OutputDigest: d.OutputDigest, Changed: d.Changed, Seq: d.Seq})
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return encodeSnapshot(j, devs)
}

// encodeSnapshot cuts devs into parts of at most snapshotBudget bytes of device entries.
func encodeSnapshot(j bulk.Job, devs []DeviceEntry) ([][]byte, error) {
	var groups [][]DeviceEntry
	size := 0
	var cur []DeviceEntry
	for _, d := range devs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, fmt.Errorf("encode device %s: %w", d.DeviceID, err)
		}
		if len(cur) > 0 && size+len(b)+1 > snapshotBudget {
			groups = append(groups, cur)
			cur, size = nil, 0
		}
		cur = append(cur, d)
		size += len(b) + 1
	}
	groups = append(groups, cur)
	// The snapshot's seq is the highest it holds (a catch-up can start from it): its devices',
	// or its job_done's once the job ended.
	seq := j.Seq
	for _, d := range devs {
		seq = max(seq, d.Seq)
	}
	out := make([][]byte, 0, len(groups))
	for i, g := range groups {
		p := SnapshotPart{Type: TypeSnapshot, JobID: j.ID, Seq: seq, Part: i + 1, Parts: len(groups), Devices: g}
		if p.Devices == nil {
			p.Devices = []DeviceEntry{}
		}
		if i == 0 {
			p.Job = &j
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode snapshot: %w", err)
		}
		if len(b) > MaxFrameBytes {
			return nil, fmt.Errorf("snapshot part %d is %d bytes, over the %d-byte frame", i+1, len(b), MaxFrameBytes)
		}
		out = append(out, b)
	}
	return out, nil
}
