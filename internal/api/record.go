package api

import (
	"net/http"

	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
)

// record writes the audit entry of one mutating request: who (id), what (action, target), and the
// outcome read from err (nil is ok, a forbidden fault is denied, anything else failed). A recorder
// failure is logged, never returned: the action has already happened or been refused.
func (s *Server) record(r *http.Request, id auth.Identity, action, target string, err error, detail map[string]string) {
	req := audit.RequestFrom(r.Context())
	e := audit.Entry{
		Actor: id.Name(), Role: string(id.Role), Action: action, Target: target,
		Outcome: audit.OutcomeOK, RequestID: req.ID, Source: req.Source, Detail: detail,
	}
	if err != nil {
		kind := fault.KindOf(err)
		e.Outcome, e.Reason = audit.OutcomeFailed, kind.String()
		if kind == fault.Forbidden {
			e.Outcome = audit.OutcomeDenied
		}
	}
	if s.opts.Audit == nil {
		s.opts.Logger.Info("audit", "actor", e.Actor, "action", e.Action, "target", e.Target, "outcome", e.Outcome, "reason", e.Reason)
		return
	}
	if rerr := s.opts.Audit.Record(r.Context(), e); rerr != nil {
		s.opts.Logger.Error("audit record failed", "action", e.Action, "target", e.Target, "err", rerr)
	}
}
