package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/netauto/netauto/internal/device"
)

// The steps the handlers of versioned admin records (credential profiles, jump hosts, webhooks)
// share.

// pathRecordID reads and checks the path's id of a record of kind noun ("jump host"); the error is
// the 400 answer, for the audit entry too.
func pathRecordID(r *http.Request, noun string) (string, error) {
	id := r.PathValue("id")
	if !device.ValidID(id) {
		return "", &refusedBody{http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid " + noun + " id"}}
	}
	return id, nil
}

// patchBase is the version a change is based on (ifMatch), its refusal a 400 answer for the audit
// entry too.
func patchBase(r *http.Request, body *int64, noun string) (*int64, error) {
	v, e := ifMatch(r, body, noun)
	if e != nil {
		return nil, &refusedBody{http.StatusBadRequest, e}
	}
	return v, nil
}

// writeRecord answers a record's read or change: 204 with no body for a delete, else body with
// the record's version as its ETag, and location as its Location for a 201.
func writeRecord(w http.ResponseWriter, status int, location string, version int64, body any) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", location)
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(version, 10)))
	WriteJSON(w, status, body)
}

// listRecords reads every record for a list route that takes no query, in wire form; false when
// it answered the request with the refusal or the error.
func listRecords[T, W any](s *Server, w http.ResponseWriter, r *http.Request, list func(context.Context) ([]T, error), toWire func(T) W) ([]W, bool) {
	if !noQuery(w, r) {
		return nil, false
	}
	recs, err := list(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return listed(recs, toWire), true
}
