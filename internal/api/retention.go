package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/retention"
)

// Retention serves the retention routes; *retention.Purger implements it.
type Retention interface {
	// Limits returns the configured retention settings.
	Limits() retention.Settings
	// LastReport returns the last purge's report (retention.ErrNoReport when none ran yet).
	LastReport(ctx context.Context) (retention.Report, error)
	// Purge runs a purge now and returns its report.
	Purge(ctx context.Context, trigger string) (retention.Report, error)
}

// errNoRetention answers the retention routes on a deployment without retention.
var errNoRetention = fault.New(fault.Unavailable, "", "retention is not configured on this deployment")

func (s *Server) retentionReady(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.Retention == nil {
		s.fail(w, r, errNoRetention)
		return false
	}
	return true
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if !s.retentionReady(w, r) {
		return
	}
	view := apiwire.RetentionView{Settings: retentionSettingsToWire(s.opts.Retention.Limits())}
	rep, err := s.opts.Retention.LastReport(r.Context())
	switch {
	case err == nil:
		wr := retentionReportToWire(rep)
		view.LastReport = &wr
	case !errors.Is(err, retention.ErrNoReport):
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, view)
}

func (s *Server) purgeRetention(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	if !s.retentionReady(w, r) {
		return
	}
	if r.ContentLength > 0 {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Message: "this route takes no body", Field: "body"})
		return
	}
	s.opts.Logger.InfoContext(r.Context(), "retention purge requested", "by", id.Email)
	rep, err := s.opts.Retention.Purge(r.Context(), "api")
	s.record(r, id, "retention.purge", "", err, retention.AuditDetail(rep))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, retentionReportToWire(rep))
}
