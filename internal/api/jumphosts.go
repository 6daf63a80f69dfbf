package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/jumphost"
)

// JumpHosts is the registry of jump hosts; *jumphost.Registry implements it.
type JumpHosts interface {
	Create(ctx context.Context, in jumphost.Input) (jumphost.JumpHost, error)
	Get(ctx context.Context, id string) (jumphost.JumpHost, error)
	List(ctx context.Context) ([]jumphost.JumpHost, error)
	Update(ctx context.Context, id string, p jumphost.Patch) (jumphost.JumpHost, error)
	Delete(ctx context.Context, id string) error
	AcceptHostKey(ctx context.Context, id, fingerprint string) (jumphost.JumpHost, error)
}

// errNoJumpHosts answers the jump host routes on a deployment built without a registry.
var errNoJumpHosts = fault.New(fault.Unavailable, "", "jump hosts are not configured on this deployment")

// routeJumpHosts registers the jump host routes: admins on every site only, since a jump host
// carries the connections of devices of any site.
func (s *Server) routeJumpHosts() {
	s.globalRoute("GET /v1/jump-hosts", auth.Admin, s.listJumpHosts)
	s.globalRoute("POST /v1/jump-hosts", auth.Admin, s.createJumpHost)
	s.globalRoute("GET /v1/jump-hosts/{id}", auth.Admin, s.getJumpHost)
	s.globalRoute("PATCH /v1/jump-hosts/{id}", auth.Admin, s.updateJumpHost)
	s.globalRoute("DELETE /v1/jump-hosts/{id}", auth.Admin, s.deleteJumpHost)
	s.globalRoute("POST /v1/jump-hosts/{id}/host-key/accept", auth.Admin, s.acceptJumpHostKey)
}

func jumpHostToWire(h jumphost.JumpHost) apiwire.JumpHost {
	out := apiwire.JumpHost{
		ID: h.ID, Host: h.Host, Port: h.Port, Username: h.Username, AuthMethod: string(h.AuthMethod),
		HostKey: h.HostKey, HostKeyLearnedAt: h.HostKeyLearnedAt, TrustOnFirstUse: h.TrustOnFirstUse,
		HasCredential: h.HasCredential, Version: h.Version, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
	if h.HostKey != "" {
		out.HostKeyFingerprint = device.HostKeyFingerprint(h.HostKey)
	}
	if p := h.PendingHostKey; p != nil {
		out.PendingHostKey = &apiwire.PendingHostKey{Key: p.Key, Fingerprint: p.Fingerprint, SeenAt: p.SeenAt}
	}
	return out
}

// jumpHostID reads and checks the path's jump host id; the error is the answer, for the audit
// entry too.
func (s *Server) jumpHostID(r *http.Request) (string, error) {
	if s.opts.JumpHosts == nil {
		return "", errNoJumpHosts
	}
	return pathRecordID(r, "jump host")
}

// answerJumpHost writes h with its ETag, or err.
func (s *Server) answerJumpHost(w http.ResponseWriter, r *http.Request, status int, h jumphost.JumpHost, err error) {
	var inUse *jumphost.InUseError
	switch {
	case errors.As(err, &inUse):
		WriteJSON(w, http.StatusConflict, apiwire.JumpHostInUseBody{
			Error:       apiwire.Error{Code: "jump_host_in_use", Field: "id", Message: inUse.Public()},
			DeviceCount: inUse.Count, DeviceIDs: inUse.DeviceIDs,
		})
	case errors.Is(err, jumphost.ErrHostKeyNotPending):
		WriteError(w, http.StatusConflict, &Error{Code: "host_key_not_pending", Field: "fingerprint",
			Message: "the jump host has no pending host key with this fingerprint; read it again"})
	case err != nil:
		s.fail(w, r, err)
	default:
		writeRecord(w, status, "/v1/jump-hosts/"+h.ID, h.Version, jumpHostToWire(h))
	}
}

func (s *Server) listJumpHosts(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if s.opts.JumpHosts == nil {
		s.fail(w, r, errNoJumpHosts)
		return
	}
	if hs, ok := listRecords(s, w, r, s.opts.JumpHosts.List, jumpHostToWire); ok {
		WriteJSON(w, http.StatusOK, apiwire.JumpHostList{Items: hs})
	}
}

func (s *Server) getJumpHost(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	id, err := s.jumpHostID(r)
	var h jumphost.JumpHost
	if err == nil {
		h, err = s.opts.JumpHosts.Get(r.Context(), id)
	}
	s.answerJumpHost(w, r, http.StatusOK, h, err)
}

func (s *Server) createJumpHost(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var in apiwire.JumpHostInput
	var h jumphost.JumpHost
	err := func() error {
		if s.opts.JumpHosts == nil {
			return errNoJumpHosts
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		var err error
		h, err = s.opts.JumpHosts.Create(r.Context(), jumphost.Input{
			JumpHost: jumphost.JumpHost{
				ID: in.ID, Host: in.Host, Port: in.Port, Username: in.Username, AuthMethod: device.AuthMethod(in.AuthMethod),
				HostKey: in.HostKey, TrustOnFirstUse: in.TrustOnFirstUse,
			},
			Credential: device.Credential{Password: in.Password, PrivateKey: in.PrivateKey, Passphrase: in.Passphrase},
		})
		return err
	}()
	s.record(r, caller, "jump_host.create", in.ID, err, nil)
	s.answerJumpHost(w, r, http.StatusCreated, h, err)
}

func (s *Server) updateJumpHost(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var wp apiwire.JumpHostPatch
	var h jumphost.JumpHost
	err := func() error {
		id, err := s.jumpHostID(r)
		if err != nil {
			return err
		}
		if err := decodeBody(r, &wp); err != nil {
			return err
		}
		var am *device.AuthMethod
		if wp.AuthMethod != nil {
			m := device.AuthMethod(*wp.AuthMethod)
			am = &m
		}
		pa := jumphost.Patch{
			Host: wp.Host, Port: wp.Port, Username: wp.Username, AuthMethod: am, HostKey: wp.HostKey, TrustOnFirstUse: wp.TrustOnFirstUse,
			Password: wp.Password, PrivateKey: wp.PrivateKey, Passphrase: wp.Passphrase, Version: wp.Version,
		}
		if pa.Version, err = patchBase(r, pa.Version, "jump host"); err != nil {
			return err
		}
		h, err = s.opts.JumpHosts.Update(r.Context(), id, pa)
		return err
	}()
	s.record(r, caller, "jump_host.update", r.PathValue("id"), err, patchFields(wp))
	s.answerJumpHost(w, r, http.StatusOK, h, err)
}

func (s *Server) deleteJumpHost(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, err := s.jumpHostID(r)
	if err == nil {
		err = s.opts.JumpHosts.Delete(r.Context(), id)
	}
	s.record(r, caller, "jump_host.delete", r.PathValue("id"), err, nil)
	s.answerJumpHost(w, r, http.StatusNoContent, jumphost.JumpHost{}, err)
}

// acceptJumpHostKey makes a jump host's pending host key its pinned one; the body names the key
// by its fingerprint, as for a device.
func (s *Server) acceptJumpHostKey(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var in apiwire.HostKeyAccept
	var h jumphost.JumpHost
	err := func() error {
		id, err := s.jumpHostID(r)
		if err != nil {
			return err
		}
		if err := decodeBody(r, &in); err != nil {
			return err
		}
		if in.Fingerprint == "" {
			return fault.New(fault.Invalid, "fingerprint", `is required: the pending key's "SHA256:..." fingerprint`)
		}
		h, err = s.opts.JumpHosts.AcceptHostKey(r.Context(), id, in.Fingerprint)
		return err
	}()
	s.record(r, caller, "jump_host.accept_host_key", r.PathValue("id"), err, map[string]string{"fingerprint": in.Fingerprint})
	s.answerJumpHost(w, r, http.StatusOK, h, err)
}
