package api

import (
	"errors"
	"net/http"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// answer is how the API answers one kind of error.
type answer struct {
	status int
	code   string
	// message is said when the error has no message of its own for the caller.
	message string
}

// answers is the one table from error kinds to HTTP statuses and API error codes.
var answers = map[fault.Kind]answer{
	fault.Invalid:      {http.StatusBadRequest, "invalid", "the request is invalid"},
	fault.Unauthorized: {http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"},
	fault.Forbidden:    {http.StatusForbidden, "forbidden", "this needs another role"},
	fault.NotFound:     {http.StatusNotFound, "not_found", "not found"},
	fault.Exists:       {http.StatusConflict, "already_exists", "already exists"},
	fault.Conflict:     {http.StatusConflict, "version_conflict", "changed by someone else; read it again and retry"},
	fault.Finished:     {http.StatusConflict, "job_finished", "the job has already finished"},
	fault.Unresolved:   {http.StatusUnprocessableEntity, "unknown_devices", "the request names devices that are not in the inventory"},
	fault.Rejected:     {http.StatusUnprocessableEntity, "import_rejected", "the request was rejected; nothing was done"},
	fault.Unavailable:  {http.StatusServiceUnavailable, "unavailable", "this is not available on this deployment"},
	fault.Timeout:      {http.StatusServiceUnavailable, "timeout", "the request took too long; try again"},
	fault.OverLimit:    {http.StatusTooManyRequests, "too_many_running_jobs", "too many jobs are running; wait for one to finish"},
	fault.NoMatch:      {http.StatusUnprocessableEntity, "no_devices", "the selection matches no device; nothing was started"},
	fault.NotFinished:  {http.StatusConflict, "job_not_finished", "the job has not finished yet"},
	fault.Internal:     {http.StatusInternalServerError, "internal", "internal error; it has been logged"},
}

// fieldLister is an invalid-input error that names every rejected field (device.ValidationError).
type fieldLister interface{ FieldErrors() []device.FieldError }

// idLister is an error naming the ids a request gave that do not exist (bulk.UnknownDevicesError).
type idLister interface{ UnknownIDs() []string }

// coded is an error with its own error code in place of its kind's (savedjob.OwnerError:
// owner_disabled, ...).
type coded interface{ Code() string }

// refusal is an error of a rule that refused the request on some devices (policy.DeniedError):
// it has its own error code, and names the rule and the devices.
type refusal interface {
	Code() string
	RuleID() string
	DeniedIDs() []string
}

// failure is the status and body the API answers err with: the status and code of err's kind,
// and the field and message err gives for the caller. field names the input the error concerns
// when err names none (the path's id, say); extra adds top-level members to the body of an
// error that describes itself (an import's per-row result). An error of no kind is internal:
// the caller learns nothing of it.
func failure(err error, field string, extra map[string]any) (int, map[string]any) {
	kind := fault.KindOf(err)
	a, ok := answers[kind]
	if !ok {
		kind, a = fault.Internal, answers[fault.Internal]
	}
	e := &Error{Code: a.code, Message: a.message}
	body := map[string]any{"error": e}
	d, described := fault.As(err)
	if kind == fault.Internal || !described {
		return a.status, body
	}
	if kind != fault.OverLimit { // an over-limit refusal is about no input of the request
		e.Field = field
	}
	if f := d.Field(); f != "" {
		e.Field = f
	}
	if m := d.Public(); m != "" {
		e.Message = m
	}
	if l, ok := d.(fieldLister); ok && len(l.FieldErrors()) > 0 {
		e.Details = l.FieldErrors()
	}
	if l, ok := d.(idLister); ok {
		body["unknown_ids"] = l.UnknownIDs()
	}
	if c, ok := d.(coded); ok && c.Code() != "" {
		e.Code = c.Code()
	}
	if rf, ok := d.(refusal); ok {
		e.Code, e.Rule, e.Devices = rf.Code(), rf.RuleID(), rf.DeniedIDs()
	}
	for k, v := range extra {
		body[k] = v
	}
	return a.status, body
}

// fail answers err (see failure) for a request whose context names no field.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.failFor(w, r, err, "", nil)
}

// failFor answers err (see failure); field names the input the error concerns when err names
// none, and extra adds top-level members to the body (an import's per-row result). Internal
// errors are logged: they never hold secrets, as stores and secret stores keep values out of
// their errors.
func (s *Server) failFor(w http.ResponseWriter, r *http.Request, err error, field string, extra map[string]any) {
	if refused, ok := errors.AsType[*refusedBody](err); ok {
		WriteError(w, refused.status, refused.body)
		return
	}
	status, body := failure(err, field, extra)
	if status == http.StatusInternalServerError {
		s.opts.Logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteJSON(w, status, body)
}
