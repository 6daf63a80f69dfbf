package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// Scope: a role held through a "<role>:<site>" group reaches that site's devices only. Routes come
// in two kinds. A site-scoped route (route) lets in a caller holding the role on some site, and
// its handler then serves only what lies in the caller's scope: a device, run or job out of scope
// answers 404 exactly as one that does not exist, so scope never reveals what other sites hold.
// A global route (globalRoute) needs the plain role, held everywhere: settings that are not any
// site's (retention, policy, credential profiles, the audit trail).

// route registers a site-scoped handler: the caller needs role need on at least one site, and
// the handler enforces the site of each object it touches (inScope and the helpers below).
func (s *Server) route(pattern string, need auth.Role, h func(http.ResponseWriter, *http.Request, auth.Identity)) {
	s.handle(pattern, need, auth.Identity.CanSomewhere, "on at least one site", h)
}

// globalRoute registers a handler that needs role need everywhere (a plain, unscoped group).
func (s *Server) globalRoute(pattern string, need auth.Role, h func(http.ResponseWriter, *http.Request, auth.Identity)) {
	s.handle(pattern, need, auth.Identity.Can, "everywhere (an unscoped group)", h)
}

func (s *Server) handle(pattern string, need auth.Role, may func(auth.Identity, auth.Role) bool, where string,
	h func(http.ResponseWriter, *http.Request, auth.Identity)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		id, ok := auth.FromContext(r.Context())
		if !ok {
			s.fail(w, r, errNoToken)
			return
		}
		serve := func(w http.ResponseWriter, r *http.Request) {
			if !may(id, need) {
				s.fail(w, r, fault.Errorf(fault.Forbidden, "", "this needs the %s role %s", need, where))
				return
			}
			h(w, r, id)
		}
		if mutating(r.Method) { // one audit entry per request, a refusal included
			s.audited(pattern, w, r, id, serve)
			return
		}
		serve(w, r)
	})
}

// scopedDevice reads device id for a caller who needs role need on its site; a device out of
// scope is device.ErrNotFound.
func (s *Server) scopedDevice(ctx context.Context, id auth.Identity, need auth.Role, deviceID string) (device.Device, error) {
	d, err := s.opts.Devices.Get(ctx, deviceID)
	if err != nil {
		return device.Device{}, err
	}
	if !id.CanOn(need, d.Site) {
		return device.Device{}, device.ErrNotFound
	}
	return d, nil
}

// scopedJob reads job jobID for a caller who needs role need on every one of its sites, with its
// counts when counts is set (they cost a read of each count shard); a job out of scope is
// bulk.ErrJobNotFound.
func (s *Server) scopedJob(ctx context.Context, id auth.Identity, need auth.Role, jobID string, counts bool) (bulk.Job, error) {
	read := s.opts.Jobs.JobControl
	if counts {
		read = s.opts.Jobs.GetJob
	}
	j, err := read(ctx, jobID)
	if err != nil {
		return bulk.Job{}, err
	}
	if !id.CanOnAll(need, j.Sites) {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	return j, nil
}

// runInScope reports whether the caller holds role need on the site of rn's device; the run of a
// device that no longer exists needs the role everywhere.
func (s *Server) runInScope(ctx context.Context, id auth.Identity, need auth.Role, rn run.Run) error {
	if id.Can(need) {
		return nil
	}
	_, err := s.scopedDevice(ctx, id, need, rn.DeviceID)
	if errors.Is(err, device.ErrNotFound) {
		return run.ErrNotFound
	}
	return err
}

// siteFilter narrows f to the sites where the caller holds role need; all is false when that is
// not everywhere.
func siteFilter(id auth.Identity, need auth.Role, f *device.Filter) {
	if all, sites := id.Scope(need); !all {
		f.Sites = sites
		if f.Sites == nil {
			f.Sites = []string{}
		}
	}
}

// errSiteScope refuses an input that would put a device on a site out of the caller's scope.
func errSiteScope(field string, need auth.Role, site string) error {
	if site == "" {
		return fault.Errorf(fault.Forbidden, field, "a device without a site needs the %s role everywhere", need)
	}
	return fault.Errorf(fault.Forbidden, field, "needs the %s role on site %q", need, site)
}
