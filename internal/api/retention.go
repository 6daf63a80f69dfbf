package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
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
	// SharedBytes returns the bytes of every output stored once.
	SharedBytes(ctx context.Context) (int64, error)
}

// usageWorkers bounds the devices whose bytes GET /v1/retention reads at once.
const usageWorkers = 16

// totalUsage sums every inventory device's usage and the outputs stored once: one consistent
// query per device, usageWorkers at a time. The first read that fails ends the sum: the reads
// under way are cancelled and no more start (under throttling, thousands more would only add to
// it).
func (s *Server) totalUsage(ctx context.Context) (run.Usage, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		total run.Usage
		mu    sync.Mutex
		wg    sync.WaitGroup
	)
	slots := make(chan struct{}, usageWorkers)
	cursor := ""
	for ctx.Err() == nil {
		devs, next, err := s.opts.Devices.List(ctx, device.Filter{}, device.Page{Limit: device.MaxPageSize, Cursor: cursor})
		if err != nil {
			cancel(fmt.Errorf("list devices: %w", err))
			break
		}
		for _, d := range devs {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer func() { <-slots; wg.Done() }()
				u, err := s.opts.Usage.DeviceUsage(ctx, d.ID)
				if err != nil {
					cancel(fmt.Errorf("usage of device %s: %w", d.ID, err)) // only the first cause stays
					return
				}
				mu.Lock()
				defer mu.Unlock()
				total.ChargedBytes += u.ChargedBytes
				total.StoredBytes += u.StoredBytes
			}()
		}
		if next == "" {
			break
		}
		cursor = next
	}
	wg.Wait()
	if ctx.Err() != nil {
		return run.Usage{}, context.Cause(ctx)
	}
	shared, err := s.opts.Usage.SharedBytes(ctx)
	if err != nil {
		return run.Usage{}, fmt.Errorf("stored once bytes: %w", err)
	}
	total.StoredBytes += shared
	return total, nil
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
		u, err := s.totalUsage(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		view.ChargedBytes, view.StoredBytes = &u.ChargedBytes, &u.StoredBytes
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
