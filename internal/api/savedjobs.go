package api

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/savedjob"
)

// SavedJobs keeps saved jobs under their ownership rules; *savedjob.Registry implements it.
type SavedJobs interface {
	Create(ctx context.Context, in savedjob.Input, by auth.Identity) (savedjob.SavedJob, error)
	Get(ctx context.Context, id string, caller auth.Identity) (savedjob.SavedJob, error)
	List(ctx context.Context, cursor string, limit int, caller auth.Identity) ([]savedjob.SavedJob, string, error)
	Update(ctx context.Context, id string, in savedjob.Input, version int64, caller auth.Identity) (savedjob.SavedJob, error)
	Delete(ctx context.Context, id string, version int64, caller auth.Identity) (savedjob.SavedJob, error)
	// Start returns the bulk request saved job id makes now and the identity (its owner) to
	// enqueue it as.
	Start(ctx context.Context, id string, caller auth.Identity) (bulk.Request, auth.Identity, error)
	// Request is a saved job's bulk request with its secret answers, and no devices.
	Request(ctx context.Context, j savedjob.SavedJob) (bulk.Request, error)
}

// errNoSavedJobs answers the saved job routes on a deployment built without a registry.
var errNoSavedJobs = fault.New(fault.Unavailable, "", "saved jobs are not configured on this deployment")

// routeSavedJobs registers the saved job routes: site-scoped, a saved job being in scope when
// the caller holds the role on its sites (savedjob.SavedJob.Sites).
func (s *Server) routeSavedJobs() {
	s.route("GET /v1/saved-jobs", auth.Viewer, s.listSavedJobs)
	s.route("POST /v1/saved-jobs", auth.Operator, s.createSavedJob)
	s.route("GET /v1/saved-jobs/{id}", auth.Viewer, s.getSavedJob)
	s.route("PATCH /v1/saved-jobs/{id}", auth.Operator, s.updateSavedJob)
	s.route("DELETE /v1/saved-jobs/{id}", auth.Operator, s.deleteSavedJob)
	s.route("POST /v1/saved-jobs/{id}/run", auth.Operator, s.runSavedJob)
}

// savedJobID reads the path's saved job id, refusing a deployment without saved jobs; the error
// is for the audit entry.
func (s *Server) savedJobID(w http.ResponseWriter, r *http.Request) (string, error) {
	if s.opts.SavedJobs == nil {
		s.fail(w, r, errNoSavedJobs)
		return "", errNoSavedJobs
	}
	id := r.PathValue("id")
	if !validJobID(id) {
		return "", refuse(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid saved job id"})
	}
	return id, nil
}

func savedJobToWire(j savedjob.SavedJob) apiwire.SavedJob {
	sel := j.Selector
	return apiwire.SavedJob{
		ID: j.ID, Name: j.Name, Command: j.Command, Commands: commandsToWire(j.Commands), Options: optionsToWire(j.Options),
		Selector: apiwire.Selector{DeviceIDs: sel.DeviceIDs, Tags: sel.Tags, Site: sel.Site, Platform: sel.Platform},
		Owner:    j.Owner, OwnerRoles: whoAmIToWire(j.OwnerIdentity()).Roles, Sites: j.Sites(),
		Schedule: scheduleToWire(j.Schedule), NextRuns: j.NextRuns(time.Now()),
		Version: j.Version, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
	}
}

func scheduleToWire(s *savedjob.Schedule) *apiwire.Schedule {
	if s == nil {
		return nil
	}
	return &apiwire.Schedule{Cron: s.Cron, TimeZone: s.TimeZone, Enabled: s.Enabled, PausedReason: s.PausedReason}
}

// scheduleFromWire takes a schedule as given; its paused reason is the system's, never the caller's.
func scheduleFromWire(s *apiwire.Schedule) *savedjob.Schedule {
	if s == nil {
		return nil
	}
	return &savedjob.Schedule{Cron: s.Cron, TimeZone: s.TimeZone, Enabled: s.Enabled}
}

func selectorFromWire(sel *apiwire.Selector) *savedjob.Selector {
	if sel == nil {
		return nil
	}
	return &savedjob.Selector{DeviceIDs: sel.DeviceIDs, Tags: sel.Tags, Site: sel.Site, Platform: sel.Platform}
}

// savedJobDetail is a saved job change's audit detail: its name and what it runs (no answer).
func savedJobDetail(j savedjob.SavedJob, detail map[string]string) map[string]string {
	if j.ID == "" {
		return detail
	}
	detail["name"] = j.Name
	return commandDetail(j.Request(), detail)
}

func (s *Server) listSavedJobs(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	if s.opts.SavedJobs == nil {
		s.fail(w, r, errNoSavedJobs)
		return
	}
	limit, ok := s.limitParam(w, r, savedjob.DefaultPage, savedjob.MaxPage)
	if !ok {
		return
	}
	items, next, err := s.opts.SavedJobs.List(r.Context(), r.URL.Query().Get("cursor"), limit, caller)
	if err != nil {
		s.failFor(w, r, err, "cursor", nil)
		return
	}
	list := apiwire.SavedJobList{Items: convertAll(items, savedJobToWire), Next: next}
	if list.Items == nil {
		list.Items = []apiwire.SavedJob{}
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *Server) getSavedJob(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, err := s.savedJobID(w, r)
	if err != nil {
		return
	}
	j, err := s.opts.SavedJobs.Get(r.Context(), id, caller)
	if err != nil {
		s.failFor(w, r, err, "id", nil)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(j.Version, 10)))
	WriteJSON(w, http.StatusOK, savedJobToWire(j))
}

func (s *Server) createSavedJob(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var err error
	var j savedjob.SavedJob
	defer func() { s.record(r, caller, "saved_job.create", j.ID, err, savedJobDetail(j, map[string]string{})) }()
	if s.opts.SavedJobs == nil {
		err = errNoSavedJobs
		s.fail(w, r, err)
		return
	}
	var in apiwire.SavedJobInput
	if err = decodeBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	input := savedjob.Input{Name: &in.Name, Command: &in.Command, Commands: commandsFromWire(in.Commands), Selector: selectorFromWire(in.Selector), Schedule: scheduleFromWire(in.Schedule)}
	opts := optionsFromWire(in.Options)
	input.Options = &opts
	if in.Commands != nil && in.Command == "" {
		input.Command = nil
	}
	if j, err = s.opts.SavedJobs.Create(r.Context(), input, caller); err != nil {
		s.failFor(w, r, err, "", nil)
		return
	}
	w.Header().Set("Location", "/v1/saved-jobs/"+j.ID)
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(j.Version, 10)))
	WriteJSON(w, http.StatusCreated, savedJobToWire(j))
}

func (s *Server) updateSavedJob(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var err error
	var j savedjob.SavedJob
	defer func() {
		s.record(r, caller, "saved_job.update", r.PathValue("id"), err, savedJobDetail(j, map[string]string{}))
	}()
	var id string
	if id, err = s.savedJobID(w, r); err != nil {
		return
	}
	var p apiwire.SavedJobPatch
	if err = decodeBody(r, &p); err != nil {
		s.fail(w, r, err)
		return
	}
	version, e := ifMatch(r, p.Version, "saved job")
	if e != nil {
		err = refuse(w, http.StatusBadRequest, e)
		return
	}
	if p.Command != nil && p.Commands != nil {
		err = refuse(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "commands", Message: "exactly one of command or commands"})
		return
	}
	input := savedjob.Input{Name: p.Name, Command: p.Command, Commands: commandsFromWire(p.Commands), Selector: selectorFromWire(p.Selector), Schedule: scheduleFromWire(p.Schedule)}
	if p.Options != nil {
		opts := optionsFromWire(*p.Options)
		input.Options = &opts
	}
	var v int64
	if version != nil {
		v = *version
	}
	if j, err = s.opts.SavedJobs.Update(r.Context(), id, input, v, caller); err != nil {
		s.failFor(w, r, err, "", nil)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(j.Version, 10)))
	WriteJSON(w, http.StatusOK, savedJobToWire(j))
}

func (s *Server) deleteSavedJob(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var err error
	var j savedjob.SavedJob
	defer func() {
		s.record(r, caller, "saved_job.delete", r.PathValue("id"), err, savedJobDetail(j, map[string]string{}))
	}()
	var id string
	if id, err = s.savedJobID(w, r); err != nil {
		return
	}
	version, e := ifMatch(r, nil, "saved job")
	if e != nil {
		err = refuse(w, http.StatusBadRequest, e)
		return
	}
	var v int64
	if version != nil {
		v = *version
	}
	if j, err = s.opts.SavedJobs.Delete(r.Context(), id, v, caller); err != nil {
		s.failFor(w, r, err, "", nil)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// runSavedJob starts a saved job now: its selector evaluated in its owner's scope, the job
// requested by its owner and checked against the current policy with the owner's roles, and
// answered as POST /v1/bulk answers.
func (s *Server) runSavedJob(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	id, err := s.savedJobID(w, r)
	if err != nil {
		s.record(r, caller, "saved_job.run", r.PathValue("id"), err, map[string]string{"devices": "0"})
		return
	}
	acc, err := s.startSavedJob(r, id, caller, nil)
	if err != nil {
		s.failFor(w, r, err, "id", nil)
		return
	}
	w.Header().Set("Location", "/v1/bulk/"+acc.JobID)
	WriteJSON(w, http.StatusAccepted, apiwire.BulkAccepted{JobID: acc.JobID, DeviceCount: acc.DeviceCount, Batches: acc.Batches})
}

// startSavedJob starts saved job id at caller's request and writes its one audit entry, with
// extra detail.
func (s *Server) startSavedJob(r *http.Request, id string, caller auth.Identity, extra map[string]string) (acc bulk.Accepted, err error) {
	var req bulk.Request
	var owner auth.Identity
	defer func() {
		detail := map[string]string{"devices": strconv.Itoa(len(req.DeviceIDs))}
		maps.Copy(detail, extra)
		if acc.JobID != "" {
			detail["job_id"], detail["owner"] = acc.JobID, owner.Name()
		}
		s.record(r, caller, "saved_job.run", id, err, commandDetail(req, detail))
	}()
	if s.opts.SavedJobs == nil {
		return acc, errNoSavedJobs
	}
	req, owner, err = s.opts.SavedJobs.Start(r.Context(), id, caller)
	if err == nil {
		err = s.admit(r.Context(), &req, owner)
	}
	if err == nil {
		acc, err = s.opts.Bulk.Enqueue(r.Context(), req, owner)
	}
	return acc, err
}

// RunScheduled starts saved job id for its schedule's due time as caller (its owner), exactly
// as POST /v1/saved-jobs/{id}/run does (ownership, scope, policy, limits, one audit entry from
// source "scheduler"), and returns the new job's id.
func (s *Server) RunScheduled(ctx context.Context, id string, caller auth.Identity, due time.Time) (string, error) {
	ctx = audit.WithRequest(ctx, audit.Request{ID: "scheduled-" + id + "-" + due.UTC().Format("20060102T150405Z"), Source: "scheduler"})
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, "/v1/saved-jobs/"+id+"/run", nil)
	if err != nil {
		return "", fmt.Errorf("start saved job %s: %w", id, err)
	}
	acc, err := s.startSavedJob(r, id, caller, map[string]string{"due": due.UTC().Format(time.RFC3339)})
	return acc.JobID, err
}

// rerunStatuses are the device statuses a re-run may pick: the terminal ones.
func rerunStatuses() []run.Status {
	return slices.DeleteFunc(run.Statuses(), func(st run.Status) bool { return !st.Terminal() })
}

// parseStatuses checks a re-run's statuses: at least one, each a terminal status.
func parseStatuses(in []string) (map[run.Status]bool, error) {
	allowed := rerunStatuses()
	names := make([]string, len(allowed))
	for i, st := range allowed {
		names[i] = string(st)
	}
	if len(in) == 0 {
		return nil, fault.Errorf(fault.Invalid, "statuses", "must name at least one status: %s", strings.Join(names, ", "))
	}
	out := map[run.Status]bool{}
	for i, v := range in {
		if !slices.Contains(allowed, run.Status(v)) {
			return nil, fault.Errorf(fault.Invalid, "statuses["+strconv.Itoa(i)+"]", "must be one of %s", strings.Join(names, ", "))
		}
		out[run.Status(v)] = true
	}
	return out, nil
}

// mayActOnJob refuses a caller who is neither the job's requester nor an admin everywhere.
func mayActOnJob(caller auth.Identity, j bulk.Job, what string) error {
	if j.RequestedBy != caller.Name() && !caller.Can(auth.Admin) {
		return fault.Errorf(fault.Forbidden, "job_id", "only the job's requester (%s) or an admin may %s it", j.RequestedBy, what)
	}
	return nil
}

// rerunBulk starts a new job with a finished job's command(s) and options on exactly its devices
// that ended in the given statuses; the new job records rerun_of and the old one lists it.
func (s *Server) rerunBulk(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	var err error
	var req bulk.Request
	var acc bulk.Accepted
	defer func() {
		detail := map[string]string{"devices": strconv.Itoa(len(req.DeviceIDs))}
		if acc.JobID != "" {
			detail["rerun_job_id"] = acc.JobID
		}
		s.record(r, caller, "job.rerun", r.PathValue("job_id"), err, commandDetail(req, detail))
	}()
	id, ok := s.jobID(w, r)
	if !ok {
		err = fault.New(fault.Invalid, "job_id", "is not a valid job id")
		return
	}
	var in apiwire.RerunRequest
	if err = decodeBody(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	req, err = s.rerunRequest(r.Context(), id, in.Statuses, caller)
	if err == nil {
		err = s.admit(r.Context(), &req, caller)
	}
	if err == nil {
		acc, err = s.opts.Bulk.Enqueue(r.Context(), req, caller)
	}
	if err != nil {
		s.failFor(w, r, err, "job_id", nil)
		return
	}
	if lerr := s.opts.Jobs.AddRerun(r.Context(), id, acc.JobID); lerr != nil {
		// The new job exists and names the old one; only the old one's list misses it.
		s.opts.Logger.ErrorContext(r.Context(), "list a re-run on its job", "job_id", id, "rerun_job_id", acc.JobID, "err", lerr)
	}
	w.Header().Set("Location", "/v1/bulk/"+acc.JobID)
	WriteJSON(w, http.StatusAccepted, apiwire.BulkAccepted{JobID: acc.JobID, DeviceCount: acc.DeviceCount, Batches: acc.Batches})
}

// rerunRequest builds the re-run of job id on its devices that ended in statuses.
func (s *Server) rerunRequest(ctx context.Context, id string, statuses []string, caller auth.Identity) (bulk.Request, error) {
	want, err := parseStatuses(statuses)
	if err != nil {
		return bulk.Request{}, err
	}
	j, err := s.scopedJob(ctx, caller, auth.Operator, id, true)
	if err != nil {
		return bulk.Request{}, err
	}
	if err := mayActOnJob(caller, j, "re-run"); err != nil {
		return bulk.Request{}, err
	}
	if !j.Status.Terminal() {
		return bulk.Request{}, fault.Errorf(fault.NotFinished, "job_id", "job %s is %s: a job is re-run once it has finished", j.ID, j.Status)
	}
	var ids []string
	for cursor := ""; ; {
		page, next, err := s.opts.Jobs.Devices(ctx, id, cursor, 2000)
		if err != nil {
			return bulk.Request{}, err
		}
		for _, d := range page {
			if want[d.Status] {
				ids = append(ids, d.DeviceID)
			}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(ids) == 0 {
		return bulk.Request{}, fault.Errorf(fault.NoMatch, "statuses", "no device of job %s ended %s", j.ID, strings.Join(statuses, " or "))
	}
	req := bulk.Request{Command: j.Command, Commands: j.Commands, Options: j.Options, DeviceIDs: ids, RerunOf: j.ID}
	if j.Commands != nil {
		req.Command = ""
	}
	if j.SecretAnswers || bulk.HasSecrets(j.Commands) {
		if req.Commands, err = s.savedAnswers(ctx, j, caller); err != nil {
			return bulk.Request{}, err
		}
	}
	return req, nil
}

// savedAnswers returns job j's sequence with its secret answers, which a job deletes when it
// ends: they are read again from the saved job that started it, while it runs the same sequence.
func (s *Server) savedAnswers(ctx context.Context, j bulk.Job, caller auth.Identity) ([]bulk.Command, error) {
	gone := fault.Errorf(fault.Invalid, "job_id", "job %s's secret prompt answers were deleted when it ended; start it again with POST /v1/bulk giving them", j.ID)
	if j.SavedJobID == "" || s.opts.SavedJobs == nil {
		return nil, gone
	}
	sj, err := s.opts.SavedJobs.Get(ctx, j.SavedJobID, caller)
	if err != nil {
		return nil, gone
	}
	full, err := s.opts.SavedJobs.Request(ctx, sj)
	if err != nil || !reflect.DeepEqual(bulk.Redacted(full.Commands), bulk.Redacted(j.Commands)) {
		return nil, gone
	}
	return full.Commands, nil
}
