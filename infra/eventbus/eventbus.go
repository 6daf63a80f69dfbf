// Package eventbus is the local stand-in for Amazon EventBridge's PutEvents: an HTTP server
// speaking the AWS JSON 1.1 protocol (X-Amz-Target: AWSEvents.PutEvents) that the real SDK
// client talks to through AWS_ENDPOINT_URL_EVENTBRIDGE. It checks entries as EventBridge does
// (source, detail type and a JSON-object detail required; at most 10 entries and 256 KB a call;
// a known bus), answers per entry, records what it accepted for tests to read, and hands each
// accepted event to the targets whose rule matches it, in process, as a rule with a Lambda target
// would.
package eventbus

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Limits EventBridge applies to a PutEvents call.
const (
	MaxEntries      = 10
	MaxRequestBytes = 256 * 1024
	// maxBody bounds what the server reads of a request: the entries' limit plus JSON framing.
	maxBody = 2 * MaxRequestBytes
)

// Account and Region are what recorded events name.
const (
	Account = "000000000000"
	Region  = "us-east-1"
)

// Target is a rule's target: deliver receives each accepted event that match accepts.
type Target struct {
	match   func(source, detailType string) bool
	deliver func(ctx context.Context, e events.CloudWatchEvent) error
}

// Options configures New.
type Options struct {
	// Buses are the names of the buses that exist besides "default".
	Buses []string
	// Keep is how many accepted events are kept for Events and GET / (default DefaultKeep); the
	// oldest go first.
	Keep   int
	Logger *slog.Logger
}

// DefaultKeep is how many accepted events a stand-in keeps by default.
const DefaultKeep = 10000

// Server is a running PutEvents stand-in.
type Server struct {
	logger *slog.Logger
	buses  map[string]bool
	srv    *http.Server
	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever an event is recorded
	recorded []events.CloudWatchEvent
	targets  []Target
	failNext []string // error codes the next entries fail with, one entry each
	keep     int
	calls    int
	inflight sync.WaitGroup
}

// New returns a stand-in that is not listening yet (Start, or Handler to mount it yourself).
func New(opts Options) *Server {
	s := &Server{logger: opts.Logger, buses: map[string]bool{"default": true}, changed: make(chan struct{}), keep: opts.Keep}
	if s.keep <= 0 {
		s.keep = DefaultKeep
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	for _, b := range opts.Buses {
		s.buses[b] = true
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Start returns a stand-in listening on addr (host:port; port 0 picks a free one).
func Start(ctx context.Context, addr string, opts Options) (*Server, error) {
	s := New(opts)
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("event bus stand-in: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is the endpoint to give the SDK (AWS_ENDPOINT_URL_EVENTBRIDGE).
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops the server and waits for deliveries in flight.
func (s *Server) Close() error {
	var err error
	if s.srv != nil {
		err = s.srv.Close()
	}
	s.cancel()
	s.inflight.Wait()
	return err
}

// AddTarget routes every accepted event that match accepts to deliver, in its own goroutine, as
// an EventBridge rule invokes its Lambda target asynchronously. A delivery error is logged.
func (s *Server) AddTarget(match func(source, detailType string) bool, deliver func(ctx context.Context, e events.CloudWatchEvent) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.targets = append(s.targets, Target{match: match, deliver: deliver})
}

// FailNext makes the next len(codes) entries fail, each with its code (e.g. InternalFailure),
// as EventBridge fails single entries of a call; for tests of the client's retries.
func (s *Server) FailNext(codes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = append(s.failNext, codes...)
}

// Events returns the events accepted so far, in order.
func (s *Server) Events() []events.CloudWatchEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recorded)
}

// Calls counts the PutEvents calls answered (accepted or not).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// WaitFor returns the accepted events once ok holds for them, or ctx's error.
func (s *Server) WaitFor(ctx context.Context, ok func([]events.CloudWatchEvent) bool) ([]events.CloudWatchEvent, error) {
	for {
		s.mu.Lock()
		got, changed := slices.Clone(s.recorded), s.changed
		s.mu.Unlock()
		if ok(got) {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("wait for events (%d recorded): %w", len(got), ctx.Err())
		case <-changed:
		}
	}
}

// Handler serves PutEvents (POST; any other target is answered UnknownOperationException) and,
// on GET, the events kept so far as a JSON array, oldest first, for a developer to look at.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// putRequest is PutEvents' input on the wire.
type putRequest struct {
	Entries []struct {
		Source       *string     `json:"Source"`
		DetailType   *string     `json:"DetailType"`
		Detail       *string     `json:"Detail"`
		EventBusName *string     `json:"EventBusName"`
		Resources    []string    `json:"Resources"`
		Time         json.Number `json:"Time"`
		TraceHeader  *string     `json:"TraceHeader"`
	} `json:"Entries"`
	EndpointID *string `json:"EndpointId"`
}

// resultEntry is one entry of PutEvents' answer.
type resultEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(append([]events.CloudWatchEvent{}, s.Events()...))
		return
	}
	if r.Method != http.MethodPost {
		awsError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "only POST is served")
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "AWSEvents.PutEvents" {
		awsError(w, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("operation %q is not served by the local event bus", target))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "read body: "+err.Error())
		return
	}
	if len(body) > maxBody {
		awsError(w, http.StatusRequestEntityTooLarge, "ValidationException", "request is over the size limit")
		return
	}
	var req putRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		awsError(w, http.StatusBadRequest, "SerializationException", "body is not a PutEvents request: "+err.Error())
		return
	}
	if n := len(req.Entries); n < 1 || n > MaxEntries {
		awsError(w, http.StatusBadRequest, "ValidationException",
			fmt.Sprintf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and %d (got %d)", MaxEntries, n))
		return
	}
	total := 0
	for _, e := range req.Entries {
		if e.Time != "" {
			total += 14
		}
		total += len(deref(e.Source)) + len(deref(e.DetailType)) + len(deref(e.Detail))
		for _, res := range e.Resources {
			total += len(res)
		}
	}
	if total > MaxRequestBytes {
		awsError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("Total size of the entries in the request is over the limit (%d bytes, limit %d).", total, MaxRequestBytes))
		return
	}

	now := time.Now().UTC()
	out := struct {
		FailedEntryCount int           `json:"FailedEntryCount"`
		Entries          []resultEntry `json:"Entries"`
	}{Entries: make([]resultEntry, len(req.Entries))}
	var accepted []events.CloudWatchEvent
	s.mu.Lock()
	s.calls++
	for i, e := range req.Entries {
		ev, code, msg := s.check(e.Source, e.DetailType, e.Detail, e.EventBusName, e.Resources, e.Time, now)
		if code == "" && len(s.failNext) > 0 {
			code, msg = s.failNext[0], "injected failure"
			s.failNext = s.failNext[1:]
		}
		if code != "" {
			out.FailedEntryCount++
			out.Entries[i] = resultEntry{ErrorCode: code, ErrorMessage: msg}
			continue
		}
		out.Entries[i] = resultEntry{EventID: ev.ID}
		accepted = append(accepted, ev)
	}
	s.recorded = append(s.recorded, accepted...)
	if over := len(s.recorded) - s.keep; over > 0 {
		s.recorded = slices.Delete(s.recorded, 0, over)
	}
	if len(accepted) > 0 {
		close(s.changed)
		s.changed = make(chan struct{})
	}
	targets := slices.Clone(s.targets)
	s.mu.Unlock()

	for _, ev := range accepted {
		for _, t := range targets {
			if t.match(ev.Source, ev.DetailType) {
				s.deliver(t, ev)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

// check validates one entry as EventBridge does and returns the event it records, or the
// entry's error code and message.
func (s *Server) check(source, detailType, detail, bus *string, resources []string, at json.Number, now time.Time) (events.CloudWatchEvent, string, string) {
	invalid := func(field, reason string) (events.CloudWatchEvent, string, string) {
		return events.CloudWatchEvent{}, "InvalidArgument", fmt.Sprintf("Parameter %s is not valid. Reason: %s", field, reason)
	}
	switch {
	case deref(source) == "":
		return invalid("Source", "Source is a required argument.")
	case len(deref(source)) > 256:
		return invalid("Source", "Source is longer than 256 characters.")
	case deref(detailType) == "":
		return invalid("DetailType", "DetailType is a required argument.")
	case len(deref(detailType)) > 128:
		return invalid("DetailType", "DetailType is longer than 128 characters.")
	case detail == nil:
		return invalid("Detail", "Detail is a required argument.")
	case strings.HasPrefix(deref(source), "aws."):
		return events.CloudWatchEvent{}, "NotAuthorizedForSourceException", "Not authorized for the source."
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(*detail), &obj); err != nil || obj == nil {
		return events.CloudWatchEvent{}, "MalformedDetail", "Detail is malformed."
	}
	name := busName(deref(bus))
	if !s.buses[name] {
		return events.CloudWatchEvent{}, "ResourceNotFoundException", fmt.Sprintf("Event bus %s does not exist.", name)
	}
	when := now
	if at != "" {
		sec, err := at.Float64()
		if err != nil || math.IsNaN(sec) || math.IsInf(sec, 0) {
			return invalid("Time", "Time is not a timestamp.")
		}
		whole, frac := math.Modf(sec)
		when = time.Unix(int64(whole), int64(frac*1e9)).UTC()
	}
	return events.CloudWatchEvent{
		Version: "0", ID: newID(), DetailType: *detailType, Source: *source, AccountID: Account,
		Time: when.Truncate(time.Second), Region: Region, Resources: append([]string{}, resources...),
		Detail: json.RawMessage(*detail),
	}, "", ""
}

// deliver hands ev to t in its own goroutine; Close waits for it.
func (s *Server) deliver(t Target, ev events.CloudWatchEvent) {
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		defer cancel()
		if err := t.deliver(ctx, ev); err != nil {
			s.logger.Error("event bus target failed", "id", ev.ID, "detail_type", ev.DetailType, "err", err)
		}
	}()
}

// busName is the bus a PutEvents entry names: "default" when none, the name of an ARN.
func busName(b string) string {
	if b == "" {
		return "default"
	}
	if i := strings.LastIndex(b, ":event-bus/"); i >= 0 {
		return b[i+len(":event-bus/"):]
	}
	return b
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// newID returns a random UUID, as EventBridge's event ids are.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// awsError answers an AWS JSON protocol error.
func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
