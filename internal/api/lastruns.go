package api

import (
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// MaxLastRunsIDs bounds the device ids of one POST /v1/devices/last-runs.
const MaxLastRunsIDs = 1000

// lastRunsParallel bounds the index queries one request has in flight.
const lastRunsParallel = 16

// lastRuns answers the newest run of each of many devices at once, so a page listing devices
// shows every device's last status with a bounded number of requests (one per 1,000 devices)
// instead of one per device. Devices without runs, unknown ids and devices out of the caller's
// scope are absent from the answer.
func (s *Server) lastRuns(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var in apiwire.LastRunsRequest
	if err := decodeBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	switch {
	case len(in.DeviceIDs) == 0:
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "device_ids", Message: "must name at least one device"})
		return
	case len(in.DeviceIDs) > MaxLastRunsIDs:
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "device_ids", Message: fmt.Sprintf("must name at most %d devices", MaxLastRunsIDs)})
		return
	}
	ids := make([]string, 0, len(in.DeviceIDs))
	seen := make(map[string]bool, len(in.DeviceIDs))
	for i, id := range in.DeviceIDs {
		if !device.ValidID(id) {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: fmt.Sprintf("device_ids[%d]", i), Message: "is not a valid device id"})
			return
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if !caller.Can(auth.Viewer) {
		found, err := s.opts.Devices.GetMany(r.Context(), ids)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		ids = slices.DeleteFunc(ids, func(id string) bool {
			d, ok := found[id]
			return !ok || !caller.CanOn(auth.Viewer, d.Site)
		})
	}
	out := apiwire.LastRuns{Items: make(map[string]apiwire.Run, len(ids))}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan string)
	for range min(lastRunsParallel, len(ids)) {
		wg.Go(func() {
			for id := range next {
				runs, _, err := s.opts.Runs.ListByDevice(r.Context(), id, "", 1)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil && len(runs) > 0 {
					out.Items[id] = runToWire(runs[0])
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range ids {
		next <- id
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		s.fail(w, r, firstErr)
		return
	}
	WriteJSON(w, http.StatusOK, out)
}
