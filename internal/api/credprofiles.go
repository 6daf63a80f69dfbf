package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/credprofile"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// CredentialProfiles is the registry of shared credential profiles; *credprofile.Registry
// implements it.
type CredentialProfiles interface {
	Create(ctx context.Context, in credprofile.Input) (credprofile.Profile, error)
	Get(ctx context.Context, id string) (credprofile.Profile, error)
	List(ctx context.Context) ([]credprofile.Profile, error)
	Update(ctx context.Context, id string, p credprofile.Patch) (credprofile.Profile, error)
	Delete(ctx context.Context, id string) error
}

// errNoProfiles answers the credential profile routes on a deployment built without a registry.
var errNoProfiles = fault.New(fault.Unavailable, "", "credential profiles are not configured on this deployment")

// routeProfiles registers the credential profile routes: admins only, on every site, since a
// profile's secret may reach devices of any site.
func (s *Server) routeProfiles() {
	s.globalRoute("GET /v1/credential-profiles", auth.Admin, s.listProfiles)
	s.globalRoute("POST /v1/credential-profiles", auth.Admin, s.createProfile)
	s.globalRoute("GET /v1/credential-profiles/{id}", auth.Admin, s.getProfile)
	s.globalRoute("PATCH /v1/credential-profiles/{id}", auth.Admin, s.updateProfile)
	s.globalRoute("DELETE /v1/credential-profiles/{id}", auth.Admin, s.deleteProfile)
}

// profileAdmin refuses a caller whose admin role is limited to some sites, and a deployment
// without a registry.
func (s *Server) profileAdmin(id auth.Identity) error {
	if !id.Can(auth.Admin) {
		return fault.New(fault.Forbidden, "", "credential profiles need the admin role on every site")
	}
	if s.opts.Profiles == nil {
		return errNoProfiles
	}
	return nil
}

// refuse writes e and returns it as an invalid-input fault for the audit entry.
func refuse(w http.ResponseWriter, status int, e *Error) error {
	WriteError(w, status, e)
	return fault.New(fault.Invalid, e.Field, e.Message)
}

func profileToWire(p credprofile.Profile) apiwire.CredentialProfile {
	return apiwire.CredentialProfile{
		ID: p.ID, Username: p.Username, AllowedSites: p.AllowedSites, AllowedTags: p.AllowedTags,
		HasSecret: p.HasSecret, HasEnable: p.HasEnableSecret, Version: p.Version, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}

// profileID reads and checks the path's profile id.
func profileID(r *http.Request) (string, *Error) {
	id := r.PathValue("id")
	if !device.ValidID(id) {
		return "", &Error{Code: "invalid", Field: "id", Message: "is not a valid credential profile id"}
	}
	return id, nil
}

// profileTarget checks the caller and the path's profile id of a change, answering the request
// when either is refused; the error is for the audit entry.
func (s *Server) profileTarget(w http.ResponseWriter, r *http.Request, id auth.Identity) (string, error) {
	if err := s.profileAdmin(id); err != nil {
		s.fail(w, r, err)
		return "", err
	}
	pid, e := profileID(r)
	if e != nil {
		return "", refuse(w, http.StatusBadRequest, e)
	}
	return pid, nil
}

// ifMatch returns the version a change is based on: the body's version, or the If-Match header
// (the ETag of a read of what, a "device" or "profile"), which must agree with it when both
// are given.
func ifMatch(r *http.Request, body *int64, what string) (*int64, *Error) {
	m := r.Header.Get("If-Match")
	if m == "" {
		return body, nil
	}
	v, err := strconv.ParseInt(strings.Trim(m, `"`), 10, 64)
	if err != nil {
		return nil, &Error{Code: "invalid", Field: "If-Match", Message: "must be the " + what + "'s ETag (its version)"}
	}
	if body != nil && *body != v {
		return nil, &Error{Code: "invalid", Field: "version", Message: "differs from the If-Match header"}
	}
	return &v, nil
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	if err := s.profileAdmin(id); err != nil {
		s.fail(w, r, err)
		return
	}
	if ps, ok := listRecords(s, w, r, s.opts.Profiles.List, profileToWire); ok {
		WriteJSON(w, http.StatusOK, apiwire.CredentialProfileList{Items: ps})
	}
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	if err := s.profileAdmin(id); err != nil {
		s.fail(w, r, err)
		return
	}
	pid, e := profileID(r)
	if e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return
	}
	p, err := s.opts.Profiles.Get(r.Context(), pid)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeRecord(w, http.StatusOK, "", p.Version, profileToWire(p))
}

func (s *Server) createProfile(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	var err error
	target := ""
	defer func() { s.record(r, id, "credential_profile.create", target, err, nil) }()
	if err = s.profileAdmin(id); err != nil {
		s.fail(w, r, err)
		return
	}
	var in apiwire.CredentialProfileInput
	if err = decodeBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	target = in.ID
	var p credprofile.Profile
	p, err = s.opts.Profiles.Create(r.Context(), credprofile.Input{
		Profile: credprofile.Profile{ID: in.ID, Username: in.Username, AllowedSites: in.AllowedSites, AllowedTags: in.AllowedTags},
		Secret:  device.Credential{Password: in.Password, PrivateKey: in.PrivateKey, Passphrase: in.Passphrase, EnableSecret: in.EnableSecret},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeRecord(w, http.StatusCreated, "/v1/credential-profiles/"+p.ID, p.Version, profileToWire(p))
}

func (s *Server) updateProfile(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	var err error
	defer func() { s.record(r, id, "credential_profile.update", r.PathValue("id"), err, nil) }()
	var pid string
	if pid, err = s.profileTarget(w, r, id); err != nil {
		return
	}
	var wp apiwire.CredentialProfilePatch
	if err = decodeBody(r, &wp); err != nil {
		s.fail(w, r, err)
		return
	}
	pa := credprofile.Patch{
		Username: wp.Username, AllowedSites: wp.AllowedSites, AllowedTags: wp.AllowedTags,
		Password: wp.Password, PrivateKey: wp.PrivateKey, Passphrase: wp.Passphrase, EnableSecret: wp.EnableSecret, Version: wp.Version,
	}
	var e *Error
	if pa.Version, e = ifMatch(r, pa.Version, "profile"); e != nil {
		err = refuse(w, http.StatusBadRequest, e)
		return
	}
	var p credprofile.Profile
	p, err = s.opts.Profiles.Update(r.Context(), pid, pa)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeRecord(w, http.StatusOK, "", p.Version, profileToWire(p))
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	var err error
	defer func() { s.record(r, id, "credential_profile.delete", r.PathValue("id"), err, nil) }()
	var pid string
	if pid, err = s.profileTarget(w, r, id); err != nil {
		return
	}
	if err = s.opts.Profiles.Delete(r.Context(), pid); err != nil {
		var inUse *credprofile.InUseError
		if errors.As(err, &inUse) {
			WriteJSON(w, http.StatusConflict, apiwire.ProfileInUseBody{
				Error:     apiwire.Error{Code: "in_use", Field: "id", Message: inUse.Public()},
				DeviceIDs: inUse.DeviceIDs,
			})
			return
		}
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
