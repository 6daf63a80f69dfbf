package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// acceptHostKey makes a device's pending host key its pinned one. The body names the key by its
// fingerprint, so an admin accepts exactly the key they were shown; a key offered since does not
// match and is answered 409.
func (s *Server) acceptHostKey(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	deviceID := r.PathValue("id")
	var in apiwire.HostKeyAccept
	d, err := s.acceptHostKeyRequest(r, deviceID, &in)
	s.record(r, id, "host_key.accept", deviceID, err, map[string]string{"fingerprint": in.Fingerprint})
	switch {
	case errors.Is(err, device.ErrHostKeyNotPending):
		WriteError(w, http.StatusConflict, &Error{Code: "host_key_not_pending", Field: "fingerprint",
			Message: "the device has no pending host key with this fingerprint; read the device again"})
	case err != nil:
		s.fail(w, r, err)
	default:
		w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(d.Version, 10)))
		WriteJSON(w, http.StatusOK, deviceToWire(d))
	}
}

func (s *Server) acceptHostKeyRequest(r *http.Request, deviceID string, in *apiwire.HostKeyAccept) (device.Device, error) {
	if !device.ValidID(deviceID) {
		return device.Device{}, &refusedBody{http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid device id"}}
	}
	if err := decodeBody(r, in); err != nil {
		return device.Device{}, err
	}
	if in.Fingerprint == "" {
		return device.Device{}, fault.New(fault.Invalid, "fingerprint", `is required: the pending key's "SHA256:..." fingerprint`)
	}
	return s.opts.Devices.AcceptHostKey(r.Context(), deviceID, in.Fingerprint)
}
