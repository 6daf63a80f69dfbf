package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
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

// Usage counts output bytes (run.Usage); the DynamoDB run store implements it.
type Usage interface {
	// DeviceUsage returns what a device's runs are charged and store themselves.
	DeviceUsage(ctx context.Context, deviceID string) (run.Usage, error)
	// FleetTotals returns every device's bytes as the retention purge last folded them (with
	// the outputs stored once) and the time they are exact as of (zero before the first fold):
	// a fixed number of reads, whatever the fleet's size.
	FleetTotals(ctx context.Context) (run.Usage, time.Time, error)
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
	if s.opts.Usage != nil {
		u, asOf, err := s.opts.Usage.FleetTotals(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		view.ChargedBytes, view.StoredBytes = &u.ChargedBytes, &u.StoredBytes
		if !asOf.IsZero() {
			view.TotalsAsOf = &asOf
		}
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
