// Package fault is NetAuto's error vocabulary: every error a caller may be told about carries a
// Kind (not found, invalid, conflict, ...), the input field it concerns and a message written for
// the caller. Domain packages declare their sentinels with New and wrap with %w as usual; the HTTP
// edge asks As or KindOf and maps the kind to a status and an error code in one table, so no
// error is ever matched by its text.
package fault

import (
	"context"
	"errors"
	"fmt"
)

// Kind says what went wrong in terms of what the caller can do about it.
type Kind int

// The kinds. The zero Kind is Internal: an error that carries no kind is the server's own.
const (
	// Internal is a failure of the server or a service it uses; the caller is told nothing more.
	Internal Kind = iota
	// Invalid is input that breaks a rule; the error names the field.
	Invalid
	// NotFound is a reference to something that does not exist.
	NotFound
	// Exists is a create of something that already exists.
	Exists
	// Conflict is a write based on a version someone else has changed since.
	Conflict
	// Finished is a change to something that has already ended (a cancel of a finished job).
	Finished
	// Unresolved is a request that names things that do not exist (devices not in the inventory).
	Unresolved
	// Rejected is a request refused as a whole because some of its parts are wrong; nothing was done.
	Rejected
	// Unauthorized is a request without valid credentials.
	Unauthorized
	// Forbidden is a request the caller's role does not allow.
	Forbidden
	// Unavailable is a feature this deployment does not offer.
	Unavailable
	// Timeout is a request that ran out of time or was cancelled.
	Timeout
	// OverLimit is a request that would take the caller over a limit on what they may have in
	// flight at once (unfinished jobs); it may succeed once some of it has ended.
	OverLimit
	// NoMatch is a request whose selection matches nothing to act on (a saved job's selector, a
	// re-run's statuses): nothing was done.
	NoMatch
	// NotFinished is a request that needs something to have ended first (a re-run of a running job).
	NotFinished
)

var kindNames = [...]string{
	Internal: "internal", Invalid: "invalid", NotFound: "not found", Exists: "exists", Conflict: "conflict",
	Finished: "finished", Unresolved: "unresolved", Rejected: "rejected", Unauthorized: "unauthorized",
	Forbidden: "forbidden", Unavailable: "unavailable", Timeout: "timeout", OverLimit: "over limit",
	NoMatch: "no match", NotFinished: "not finished",
}

// String names the kind.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Described is an error that says for itself what the caller is told: its kind, the input field it
// concerns and a message. *Error is one; domain error types that hold more (every rejected field
// of an input, the unknown ids of a request) implement it too.
type Described interface {
	error
	// Kind classifies the error.
	Kind() Kind
	// Field names the input the error concerns, or "" when none does or the request's context
	// already names it.
	Field() string
	// Public is the message for the caller. It names no secret and no internal detail.
	Public() string
}

// Error is an error of a known kind. Its text is what the caller is told, so it must hold no
// secret and no internal detail; its cause, when it has one, is still seen by errors.Is and
// errors.As.
type Error struct {
	kind  Kind
	field string
	msg   string
	cause error
}

// New returns an error of kind about field (or none) with message msg; use it to declare
// sentinels.
func New(kind Kind, field, msg string) *Error {
	return &Error{kind: kind, field: field, msg: msg}
}

// Errorf is fmt.Errorf with a kind and a field: the formatted text is the message, and an error
// given to %w stays the cause.
func Errorf(kind Kind, field, format string, args ...any) *Error {
	err := fmt.Errorf(format, args...)
	e := &Error{kind: kind, field: field, msg: err.Error()}
	if errors.Unwrap(err) != nil || isMulti(err) {
		e.cause = err
	}
	return e
}

// Wrap returns err with a kind, a field and a message for the caller in place of err's own text;
// err stays the cause.
func Wrap(err error, kind Kind, field, msg string) *Error {
	return &Error{kind: kind, field: field, msg: msg, cause: err}
}

func isMulti(err error) bool {
	_, ok := err.(interface{ Unwrap() []error })
	return ok
}

// Error implements error: the message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Kind implements Described.
func (e *Error) Kind() Kind { return e.kind }

// Field implements Described.
func (e *Error) Field() string { return e.field }

// Public implements Described: the message.
func (e *Error) Public() string { return e.msg }

// As returns the first error in err's chain that describes itself, if any.
func As(err error) (Described, bool) {
	var d Described
	if errors.As(err, &d) {
		return d, true
	}
	return nil, false
}

// KindOf returns err's kind: that of the first error in its chain that has one, Timeout for a
// cancelled or expired context, Internal otherwise (nil included).
func KindOf(err error) Kind {
	if d, ok := As(err); ok {
		return d.Kind()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Timeout
	}
	return Internal
}

// ErrBadCursor is returned (wrapped) for a page cursor that is not one this API issued, by every
// store that pages.
var ErrBadCursor = New(Invalid, "cursor", "is not a cursor this API issued")
