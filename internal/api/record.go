package api

import (
	"net/http"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
)

// record names the audit entry of one mutating request: who (id), what (action, target), a few
// facts (detail), and the outcome read from err (nil is ok, a forbidden or over-limit fault is
// denied, anything else failed). Within a mutating route the entry is written once, when the handler returns
// (handle): a handler that fails before it calls record is still recorded, from its answer's
// status and error code, and a second call replaces the first. Outside a route it writes at once.
// A recorder failure is logged, never returned: the action has already happened or been refused.
func (s *Server) record(r *http.Request, id auth.Identity, action, target string, err error, detail map[string]string) {
	if n, ok := r.Context().Value(noteKey{}).(*auditNote); ok {
		n.action, n.target, n.err, n.detail, n.set = action, target, err, detail, true
		return
	}
	e := audit.Entry{Action: action, Target: target, Outcome: audit.OutcomeOK, Detail: detail}
	if err != nil {
		kind := fault.KindOf(err)
		e.Outcome, e.Reason = audit.OutcomeFailed, kind.String()
		if refused(kind) {
			e.Outcome = audit.OutcomeDenied
		}
	}
	s.writeAudit(r, id, e)
}

// refused tells whether an error of kind is a refusal (the caller may not, or not now) rather
// than a failure: its audit outcome is denied.
func refused(kind fault.Kind) bool { return kind == fault.Forbidden || kind == fault.OverLimit }

// writeAudit completes e with the caller and the request and hands it to the recorder.
func (s *Server) writeAudit(r *http.Request, id auth.Identity, e audit.Entry) {
	req := audit.RequestFrom(r.Context())
	e.Actor, e.Role, e.RequestID, e.Source = id.Name(), roleName(id), req.ID, req.Source
	if s.opts.Audit == nil {
		s.opts.Logger.Info("audit", "audit", true, "actor", e.Actor, "action", e.Action, "target", e.Target, "outcome", e.Outcome, "reason", e.Reason)
		return
	}
	if rerr := s.opts.Audit.Record(r.Context(), e); rerr != nil {
		s.opts.Logger.Error("audit record failed", "action", e.Action, "target", e.Target, "err", rerr)
	}
}
