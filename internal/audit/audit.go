// Package audit is NetAuto's append-only audit trail: who did what to which target, with what
// outcome. Every change (devices, credentials, policy, imports), every job, run, cancel, purge and
// host-key event writes one entry. It imports no AWS SDK; the DynamoDB store lives in dynamo.
package audit

import (
	"context"
	"time"
)

// Outcomes of an audited action.
const (
	// OutcomeOK: the action was done.
	OutcomeOK = "ok"
	// OutcomeDenied: the action was refused (role, scope or command policy).
	OutcomeDenied = "denied"
	// OutcomeFailed: the action was tried and failed (bad input, conflict, a device fault).
	OutcomeFailed = "failed"
)

// Entry is one audit record.
type Entry struct {
	// ID is unique and sorts by time; the recorder assigns it when empty.
	ID string
	// Time is when the action happened; the recorder sets it when zero.
	Time time.Time
	// Actor is the verified identity (auth.Identity.Name) or the system function that acted.
	Actor string
	// Role is the actor's role for this action, scoped ("operator:ams1") where that granted it.
	Role string
	// Action names what was done, "<resource>.<verb>": "device.create", "job.cancel",
	// "host_key.pin", ...
	Action string
	// Target is what it was done to: a device, job, run, credential profile or policy id.
	Target string
	// Outcome is OutcomeOK, OutcomeDenied or OutcomeFailed.
	Outcome string
	// Reason says why an action was denied or failed (an error code or rule id); empty when ok.
	Reason string
	// RequestID and Source are the API request's id and the caller's address, when there was one.
	RequestID string
	Source    string
	// Detail holds a few small facts about the action (a command, a device count); never secrets.
	Detail map[string]string
}

// Recorder appends entries to the audit trail. Record must not lose an entry silently: an error
// means the entry was not stored.
type Recorder interface {
	Record(ctx context.Context, e Entry) error
}

// Request is the API request an action came in on, as the audit trail names it.
type Request struct {
	ID     string
	Source string
}

type requestKey struct{}

// WithRequest returns a context carrying the request's id and source address.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the request in ctx; the zero Request when there is none.
func RequestFrom(ctx context.Context) Request {
	r, _ := ctx.Value(requestKey{}).(Request)
	return r
}
