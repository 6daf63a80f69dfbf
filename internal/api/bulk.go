package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
)

// Bulk accepts and cancels jobs; *bulk.Enqueuer implements it.
type Bulk interface {
	// Enqueue accepts a job on behalf of by, who needs the operator role on every device's site.
	Enqueue(ctx context.Context, req bulk.Request, by auth.Identity) (bulk.Accepted, error)
	Cancel(ctx context.Context, jobID string) (bulk.Job, error)
}

// Jobs reads jobs; the DynamoDB job store implements it.
type Jobs interface {
	// GetJob returns the job with its counts; JobControl without them, in one small read.
	GetJob(ctx context.Context, id string) (bulk.Job, error)
	JobControl(ctx context.Context, id string) (bulk.Job, error)
	// ListJobs returns jobs newest first, at most limit, after cursor.
	ListJobs(ctx context.Context, cursor string, limit int) ([]bulk.JobSummary, string, error)
	Devices(ctx context.Context, jobID, cursor string, limit int) ([]bulk.DeviceState, string, error)
	// Events returns a page of the job's catch-up from since (docs/websocket.md): the latest
	// state of each device that moved, and the job_done event on the last page; next is the
	// cursor of the next page ("" on the last).
	Events(ctx context.Context, jobID string, since int64, cursor string, limit int) (events []bulk.Event, next string, err error)
	// JobDevice returns a job and one device's state in it, for runs not stored yet.
	JobDevice(ctx context.Context, jobID, deviceID string) (bulk.Job, bulk.DeviceState, error)
	// AddRerun lists rerunID among the job's re-runs.
	AddRerun(ctx context.Context, jobID, rerunID string) error
}

// Runs reads runs; the DynamoDB run store implements it.
type Runs interface {
	Get(ctx context.Context, id string) (run.Run, error)
	WriteOutput(ctx context.Context, id string, w interface{ Write([]byte) (int, error) }) error
	// WriteOutputRange writes n bytes of run r's output from offset: one command's.
	WriteOutputRange(ctx context.Context, r run.Run, offset, n int64, w interface{ Write([]byte) (int, error) }) error
	ListByDevice(ctx context.Context, deviceID, cursor string, limit int) ([]run.Run, string, error)
	// History returns the finished runs of command on a device, newest first.
	History(ctx context.Context, deviceID, command, cursor string, limit int) ([]run.Run, string, error)
}

func validJobID(id string) bool { return len(id) > 0 && len(id) <= 64 && device.ValidID(id) }

func validRunID(id string) bool { return len(id) > 0 && len(id) <= 160 && idChars(id) }

func idChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func (s *Server) createRun(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	var in apiwire.RunRequest
	if err := decodeBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.DeviceID == "" {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "device_id", Message: "is required"})
		return
	}
	req := bulk.Request{
		Command: in.Command, Commands: commandsFromWire(in.Commands), DeviceIDs: []string{in.DeviceID}, RequestedBy: in.RequestedBy, Options: optionsFromWire(in.Options),
	}
	err := s.admit(r.Context(), &req, id)
	var acc bulk.Accepted
	if err == nil {
		acc, err = s.opts.Bulk.Enqueue(r.Context(), req, id)
	}
	s.record(r, id, "run.create", runTarget(acc.JobID, in.DeviceID), err, commandDetail(req, map[string]string{"device_id": in.DeviceID}))
	if err != nil {
		s.failFor(w, r, err, "device_id", nil)
		return
	}
	runID := bulk.RunID(acc.JobID, in.DeviceID)
	w.Header().Set("Location", "/v1/runs/"+runID)
	WriteJSON(w, http.StatusAccepted, apiwire.RunAccepted{RunID: runID, JobID: acc.JobID})
}

// commandDetail adds a request's commands to an audit entry's detail: the command, or a sequence's
// summary and its commands one per line with their prompts' expectations. No answer is recorded:
// a secret one never may be, and the others are not needed to tell what ran.
func commandDetail(req bulk.Request, detail map[string]string) map[string]string {
	seq := req.Sequence()
	detail["command"] = bulk.Summary(seq)
	if req.Commands != nil {
		lines := make([]string, len(seq))
		for i, c := range seq {
			lines[i] = c.Command
			for _, p := range c.Prompts {
				lines[i] += " [prompt " + strconv.Quote(p.Expect) + "]"
			}
		}
		detail["commands"] = strings.Join(lines, "\n")
		if req.Options.StopOnError {
			detail["stop_on_error"] = "true"
		}
	}
	return detail
}

// runFromPath reads the run named by the path's id, answering 400 or 404 itself (404 also for a
// run of a device out of the caller's scope). A run not stored yet reads as its job's batch has
// it (bulk.GetRun); stored says which.
func (s *Server) runFromPath(w http.ResponseWriter, r *http.Request, caller auth.Identity) (rn run.Run, stored, ok bool) {
	id := r.PathValue("id")
	if !validRunID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid run id"})
		return run.Run{}, false, false
	}
	rn, stored, err := bulk.GetRun(r.Context(), s.opts.Runs, s.opts.Jobs, id)
	if err == nil {
		err = s.runInScope(r.Context(), caller, auth.Viewer, rn)
	}
	if err != nil {
		s.failFor(w, r, err, "id", nil)
		return run.Run{}, false, false
	}
	return rn, stored, true
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	if rn, _, ok := s.runFromPath(w, r, caller); ok {
		WriteJSON(w, http.StatusOK, runToWire(rn))
	}
}

func (s *Server) runOutput(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	rn, stored, ok := s.runFromPath(w, r, caller)
	if !ok {
		return
	}
	bytes := rn.Bytes
	var one *run.CommandResult
	if v, given := r.URL.Query()["command"]; given {
		results := rn.Results()
		n, err := strconv.Atoi(v[0])
		if len(v) != 1 || err != nil || n < 0 || n >= len(results) {
			msg := fmt.Sprintf("must be a command's index, from 0 to %d", len(results)-1)
			if len(results) == 0 {
				msg = "must be a command's index, and this run started no command"
			}
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "command", Message: msg})
			return
		}
		one = &results[n]
		bytes = one.Bytes
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Run-Status", string(rn.Status))
	h.Set("X-Output-Bytes", strconv.FormatInt(bytes, 10))
	h.Set("X-Output-Truncated", strconv.FormatBool(rn.Truncated))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if !stored {
		return // no run stored, so no output: its chunks are never written before it
	}
	var err error
	if one != nil {
		err = s.opts.Runs.WriteOutputRange(r.Context(), rn, one.Offset, one.Bytes, w)
	} else {
		err = s.opts.Runs.WriteOutput(r.Context(), rn.ID, w)
	}
	if err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "write run output", "run_id", rn.ID, "err", err)
	}
}

func (s *Server) deviceRuns(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	s.deviceRunPage(w, r, caller, s.opts.Runs.ListByDevice)
}

// deviceRunPage answers one page of a device's runs, newest first, as read reads them for the
// path's device id after ?cursor=, at most ?limit= (1-200, default 50).
func (s *Server) deviceRunPage(w http.ResponseWriter, r *http.Request, caller auth.Identity,
	read func(ctx context.Context, deviceID, cursor string, limit int) ([]run.Run, string, error)) {
	id := r.PathValue("id")
	if !device.ValidID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid device id"})
		return
	}
	limit, ok := s.limitParam(w, r, 50, 200)
	if !ok {
		return
	}
	if _, err := s.scopedDevice(r.Context(), caller, auth.Viewer, id); err != nil {
		s.fail(w, r, err)
		return
	}
	items, next, err := read(r.Context(), id, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.failFor(w, r, err, "cursor", nil)
		return
	}
	list := apiwire.RunList{Items: convertAll(items, runToWire), Next: next}
	if list.Items == nil {
		list.Items = []apiwire.Run{}
	}
	WriteJSON(w, http.StatusOK, list)
}

// limitParam reads ?limit= (default def, 1..max), answering 400 on a bad value.
func (s *Server) limitParam(w http.ResponseWriter, r *http.Request, def, maxN int) (int, bool) {
	l := r.URL.Query().Get("limit")
	if l == "" {
		return def, true
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > maxN {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "limit", Message: fmt.Sprintf("must be a whole number from 1 to %d", maxN)})
		return 0, false
	}
	return n, true
}

func (s *Server) createBulk(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	body, e, status := readBody(r, maxImportBytes)
	if e != nil {
		WriteError(w, status, e)
		return
	}
	var req apiwire.BulkRequest
	if e := decodeStrict(body, &req); e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return
	}
	breq := bulkRequestFromWire(req)
	err := s.admit(r.Context(), &breq, id)
	var acc bulk.Accepted
	if err == nil {
		acc, err = s.opts.Bulk.Enqueue(r.Context(), breq, id)
	}
	s.record(r, id, "job.create", acc.JobID, err, commandDetail(breq, map[string]string{"devices": strconv.Itoa(len(breq.DeviceIDs))}))
	if err != nil {
		s.failFor(w, r, err, "device_ids", nil)
		return
	}
	w.Header().Set("Location", "/v1/bulk/"+acc.JobID)
	WriteJSON(w, http.StatusAccepted, apiwire.BulkAccepted{JobID: acc.JobID, DeviceCount: acc.DeviceCount, Batches: acc.Batches})
}

func (s *Server) jobID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("job_id")
	if !validJobID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "job_id", Message: "is not a valid job id"})
		return "", false
	}
	return id, true
}

func (s *Server) getBulk(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	j, err := s.scopedJob(r.Context(), caller, auth.Viewer, id, true)
	if err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	WriteJSON(w, http.StatusOK, jobToWire(j))
}

// listBulk answers the jobs, newest first, a page at a time. A caller with a scoped role sees only
// the jobs all of whose sites are in scope: a page is read, then filtered, so it may hold fewer
// items than limit (even none) while next still leads on.
func (s *Server) listBulk(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	limit, ok := s.limitParam(w, r, 50, 200)
	if !ok {
		return
	}
	items, next, err := s.opts.Jobs.ListJobs(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.failFor(w, r, err, "cursor", nil)
		return
	}
	if !caller.Can(auth.Viewer) {
		items = slices.DeleteFunc(items, func(j bulk.JobSummary) bool { return !caller.CanOnAll(auth.Viewer, j.Sites) })
	}
	list := apiwire.JobList{Items: convertAll(items, jobSummaryToWire), Next: next}
	if list.Items == nil {
		list.Items = []apiwire.JobSummary{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *Server) bulkDevices(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	limit, ok := s.limitParam(w, r, 500, 2000)
	if !ok {
		return
	}
	var onlyChanged *bool
	switch v := r.URL.Query().Get("changed"); v {
	case "":
	case "true", "false":
		b := v == "true"
		onlyChanged = &b
	default:
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "changed", Message: "must be true or false"})
		return
	}
	// The job names the commands of its devices' per-command results (and holds a scoped
	// caller's scope).
	j, err := s.scopedJob(r.Context(), caller, auth.Viewer, id, false)
	if err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	items, next, err := s.opts.Jobs.Devices(r.Context(), id, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	if onlyChanged != nil {
		// A page is read, then filtered: it may hold fewer items than limit while next leads on.
		items = slices.DeleteFunc(items, func(d bulk.DeviceState) bool { return d.Changed == nil || *d.Changed != *onlyChanged })
	}
	list := apiwire.JobDeviceList{Items: convertAll(items, func(d bulk.DeviceState) apiwire.JobDevice { return jobDeviceToWire(d, j) }), Next: next}
	if list.Items == nil {
		list.Items = []apiwire.JobDevice{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *Server) bulkEvents(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	since := int64(0)
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "since", Message: "must be a sequence number (0 or more)"})
			return
		}
		since = n
	}
	limit, ok := s.limitParam(w, r, 500, 1000)
	if !ok {
		return
	}
	if _, err := s.scopedJob(r.Context(), caller, auth.Viewer, id, false); err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	events, next, err := s.opts.Jobs.Events(r.Context(), id, since, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.failFor(w, r, err, "cursor", nil)
		return
	}
	WriteJSON(w, http.StatusOK, apiwire.EventList{Items: eventsToWire(events), Next: next})
}

func (s *Server) cancelBulk(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, ok := s.jobID(w, r)
	if !ok {
		return
	}
	j, err := s.scopedJob(r.Context(), caller, auth.Operator, id, false)
	if err == nil {
		err = mayActOnJob(caller, j, "cancel")
	}
	if err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	j, err = s.opts.Bulk.Cancel(r.Context(), id)
	if err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	WriteJSON(w, http.StatusAccepted, jobToWire(j))
}
