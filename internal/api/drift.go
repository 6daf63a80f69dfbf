package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/drift"
	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/run"
)

// maxFiltersBytes bounds a PUT /v1/platforms/{name}/filters body: 50 filters of the longest
// allowed expressions fit.
const maxFiltersBytes = 64 << 10

func (s *Server) routeDrift() {
	s.route("GET /v1/platforms", auth.Viewer, s.listPlatforms)
	s.globalRoute("PUT /v1/platforms/{name}/filters", auth.Admin, s.putPlatformFilters)
	s.route("GET /v1/runs/{id}/diff", auth.Viewer, s.runDiff)
	s.route("GET /v1/devices/{id}/history", auth.Viewer, s.deviceHistory)
}

// customFilters reads the admins' noise filters; none without a filter store.
func (s *Server) customFilters(ctx context.Context) (map[string][]platform.NoiseFilter, error) {
	if s.opts.Filters == nil {
		return nil, nil
	}
	return s.opts.Filters.CustomFilters(ctx)
}

// platformToWire is a platform with its filters: the built-in ones, then custom's.
func platformToWire(name string, custom map[string][]platform.NoiseFilter) (apiwire.Platform, error) {
	p, _ := platform.Lookup(name)
	fs, err := drift.Filters(name, custom)
	if err != nil {
		return apiwire.Platform{}, err
	}
	out := apiwire.Platform{Name: p.Name, Description: p.Description, Mode: string(p.Mode), NoiseFilters: make([]apiwire.NoiseFilter, len(fs))}
	for i, f := range fs {
		out.NoiseFilters[i] = apiwire.NoiseFilter{Pattern: f.Pattern, Command: f.Command, Description: f.Description, Builtin: f.Builtin}
	}
	return out, nil
}

func (s *Server) listPlatforms(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	custom, err := s.customFilters(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list := apiwire.PlatformList{Items: []apiwire.Platform{}}
	for _, name := range platform.Known() {
		p, err := platformToWire(name, custom)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		list.Items = append(list.Items, p)
	}
	WriteJSON(w, http.StatusOK, list)
}

func (s *Server) putPlatformFilters(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	name := r.PathValue("name")
	n, err := s.writeFilters(w, r, name)
	target := name
	if !platform.IsKnown(name) {
		target = ""
	}
	s.record(r, id, routeAction("PUT /v1/platforms/{name}/filters"), target, err, map[string]string{"filters": strconv.Itoa(n)})
}

// writeFilters answers PUT /v1/platforms/{name}/filters and returns how many filters it stored
// and the error it answered, for the audit entry.
func (s *Server) writeFilters(w http.ResponseWriter, r *http.Request, name string) (int, error) {
	if !platform.IsKnown(name) {
		s.failFor(w, r, drift.ErrUnknownPlatform, "name", nil)
		return 0, drift.ErrUnknownPlatform
	}
	if s.opts.Filters == nil {
		e := &Error{Code: "unavailable", Message: "this deployment has no filter store; the built-in filters apply"}
		WriteError(w, http.StatusServiceUnavailable, e)
		return 0, e
	}
	body, e, status := readBody(r, maxFiltersBytes)
	if e != nil {
		WriteError(w, status, e)
		return 0, e
	}
	var in apiwire.NoiseFilterUpdate
	if e := decodeStrict(body, &in); e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return 0, e
	}
	if in.Filters == nil {
		e := &Error{Code: "invalid", Field: "filters", Message: "is required (an empty list removes the platform's own filters)"}
		WriteError(w, http.StatusBadRequest, e)
		return 0, e
	}
	fs := make([]platform.NoiseFilter, len(in.Filters))
	for i, f := range in.Filters {
		fs[i] = platform.NoiseFilter{Pattern: f.Pattern, Command: f.Command, Description: f.Description}
	}
	if err := drift.ValidateFilters(fs); err != nil {
		s.failFor(w, r, err, "filters", nil)
		return 0, err
	}
	if err := s.opts.Filters.PutCustomFilters(r.Context(), name, fs); err != nil {
		s.fail(w, r, err)
		return 0, err
	}
	custom, err := s.customFilters(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return 0, err
	}
	p, err := platformToWire(name, custom)
	if err != nil {
		s.fail(w, r, err)
		return 0, err
	}
	WriteJSON(w, http.StatusOK, p)
	return len(fs), nil
}

// diffQuery is GET /v1/runs/{id}/diff's query: ?against=&format=&raw=&context=.
type diffQuery struct {
	against string
	json    bool
	raw     bool
	context int
}

// parseDiffQuery reads the diff's query, naming the field of a bad value.
func parseDiffQuery(r *http.Request) (diffQuery, *Error) {
	q := r.URL.Query()
	d := diffQuery{against: q.Get("against"), context: 3}
	if d.against != "" && !validRunID(d.against) {
		return d, &Error{Code: "invalid", Field: "against", Message: "is not a valid run id"}
	}
	switch q.Get("format") {
	case "", "text":
	case "json":
		d.json = true
	default:
		return d, &Error{Code: "invalid", Field: "format", Message: "must be text or json"}
	}
	switch q.Get("raw") {
	case "", "0", "false":
	case "1", "true":
		d.raw = true
	default:
		return d, &Error{Code: "invalid", Field: "raw", Message: "must be 1, 0, true or false"}
	}
	if c := q.Get("context"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 || n > drift.MaxContext {
			return d, &Error{Code: "invalid", Field: "context", Message: fmt.Sprintf("must be a whole number from 0 to %d", drift.MaxContext)}
		}
		d.context = n
	}
	return d, nil
}

// diffSide is one run of a diff: the run, its output and its noise.
type diffSide struct {
	run    run.Run
	output []byte
	noise  run.LineFilter
}

// diffSide reads one side of a diff for the caller, answering the error itself (field names the
// query parameter or path value it came from).
func (s *Server) diffSide(w http.ResponseWriter, r *http.Request, caller auth.Identity, id, field string, raw bool, noises *drift.Noises) (diffSide, bool) {
	rn, stored, err := bulk.GetRun(r.Context(), s.opts.Runs, s.opts.Jobs, id)
	if err == nil {
		err = s.runInScope(r.Context(), caller, auth.Viewer, rn)
	}
	if err != nil {
		s.failFor(w, r, err, field, nil)
		return diffSide{}, false
	}
	if !rn.Status.Terminal() {
		WriteError(w, http.StatusConflict, &Error{Code: "run_not_finished", Field: field, Message: fmt.Sprintf("run %s is %s; a diff compares finished runs", rn.ID, rn.Status)})
		return diffSide{}, false
	}
	if rn.Bytes > drift.MaxOutputBytes {
		WriteError(w, http.StatusUnprocessableEntity, &Error{Code: "output_too_large", Field: field,
			Message: fmt.Sprintf("run %s's output is %d bytes; a diff compares outputs of at most %d bytes", rn.ID, rn.Bytes, drift.MaxOutputBytes)})
		return diffSide{}, false
	}
	side := diffSide{run: rn}
	if stored {
		buf := &cappedBuffer{limit: drift.MaxOutputBytes}
		buf.Grow(int(rn.Bytes))
		if err := s.opts.Runs.WriteOutput(r.Context(), rn.ID, buf); err != nil {
			if errors.Is(err, errOverCap) {
				WriteError(w, http.StatusUnprocessableEntity, &Error{Code: "output_too_large", Field: field,
					Message: fmt.Sprintf("run %s's output is over %d bytes, the most a diff compares", rn.ID, drift.MaxOutputBytes)})
				return diffSide{}, false
			}
			s.fail(w, r, err)
			return diffSide{}, false
		}
		side.output = buf.Bytes()
		if int64(len(side.output)) != rn.Bytes {
			// A purge removes a run's chunks one by one: comparing what is left would show
			// deletions that never happened on the device.
			WriteError(w, http.StatusConflict, &Error{Code: "output_incomplete", Field: field,
				Message: fmt.Sprintf("run %s's stored output is %d of its %d bytes (it is being purged); a diff compares whole outputs", rn.ID, len(side.output), rn.Bytes)})
			return diffSide{}, false
		}
	}
	if !raw {
		plat := ""
		if d, err := s.opts.Devices.Get(r.Context(), rn.DeviceID); err == nil {
			plat = d.Platform
		} else if !errors.Is(err, device.ErrNotFound) {
			s.fail(w, r, err)
			return diffSide{}, false
		}
		nz, err := noises.ForCommands(plat, rn.CommandTexts())
		if err != nil {
			s.fail(w, r, err)
			return diffSide{}, false
		}
		side.noise = nz
	}
	return side, true
}

// maxJSONDiffBytes bounds a JSON diff's body: a Lambda response carries at most 6 MB, and the
// gateway's envelope escapes the body's quotes once more. Two unrelated outputs of short lines
// reach several times the outputs' size in JSON (tens of MB for 1 MiB outputs).
const maxJSONDiffBytes = 4 << 20

// jsonDiffSize is the size of hunks' lines in apiwire.Diff's JSON form, escapes counted.
func jsonDiffSize(hunks []drift.Hunk) int {
	n := 0
	for _, h := range hunks {
		n += 100 // the hunk's numbers and keys
		for _, l := range h.Lines {
			n += len(`{"op":"context","text":""},`) + len(l.Text)
			for i := 0; i < len(l.Text); i++ {
				switch c := l.Text[i]; {
				case c == '"' || c == '\\':
					n++
				case c < 0x20:
					n += 5 // \u00XX
				}
			}
		}
	}
	return n
}

// errOverCap is what a cappedBuffer answers a write past its limit with.
var errOverCap = errors.New("output over the diff's limit")

// cappedBuffer is a bytes.Buffer that refuses to grow past limit bytes.
type cappedBuffer struct {
	bytes.Buffer
	limit int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.limit {
		return 0, errOverCap
	}
	return b.Buffer.Write(p)
}

func (s *Server) runDiff(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	q, e := parseDiffQuery(r)
	if e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return
	}
	id := r.PathValue("id")
	if !validRunID(id) {
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "id", Message: "is not a valid run id"})
		return
	}
	var noises *drift.Noises
	if !q.raw {
		custom, err := s.customFilters(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		noises = drift.NewNoises(custom)
	}
	newSide, ok := s.diffSide(w, r, caller, id, "id", q.raw, noises)
	if !ok {
		return
	}
	if q.against == "" {
		if q.against = newSide.run.PreviousRunID; q.against == "" {
			WriteError(w, http.StatusNotFound, &Error{Code: "no_previous_run", Field: "against",
				Message: "the run has no previous successful run of its command on its device to compare with; name one with ?against="})
			return
		}
	}
	oldSide, ok := s.diffSide(w, r, caller, q.against, "against", q.raw, noises)
	if !ok {
		return
	}
	hunks, err := drift.Diff(oldSide.output, newSide.output, oldSide.noise, newSide.noise, q.context)
	if err != nil {
		s.failFor(w, r, err, "id", nil)
		return
	}
	h := w.Header()
	h.Set("X-Diff-Against", q.against)
	h.Set("X-Diff-Changed", strconv.FormatBool(len(hunks) > 0))
	if q.json {
		if n := jsonDiffSize(hunks); n > maxJSONDiffBytes {
			WriteError(w, http.StatusUnprocessableEntity, &Error{Code: "diff_too_large", Field: "format",
				Message: fmt.Sprintf("this diff's JSON form is about %d bytes, over the %d a response carries; ask for format=text (unified), which is smaller", n, maxJSONDiffBytes)})
			return
		}
		out := apiwire.Diff{RunID: id, Against: q.against, Raw: q.raw, Changed: len(hunks) > 0, Hunks: make([]apiwire.DiffHunk, len(hunks))}
		for i, hk := range hunks {
			wh := apiwire.DiffHunk{OldStart: hk.OldStart, OldLines: hk.OldLines, NewStart: hk.NewStart, NewLines: hk.NewLines, Lines: make([]apiwire.DiffLine, len(hk.Lines))}
			for j, l := range hk.Lines {
				wh.Lines[j] = apiwire.DiffLine{Op: string(l.Op), Text: l.Text}
			}
			out.Hunks[i] = wh
		}
		WriteJSON(w, http.StatusOK, out)
		return
	}
	h.Set("Content-Type", "text/x-diff; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if err := drift.WriteUnified(w, q.against, id, hunks); err != nil {
		s.opts.Logger.ErrorContext(r.Context(), "write diff", "run_id", id, "err", err)
	}
}

func (s *Server) deviceHistory(w http.ResponseWriter, r *http.Request, caller auth.Identity) {
	command := r.URL.Query().Get("command")
	switch {
	case command == "":
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "command", Message: "is required: the command whose runs to list"})
		return
	case len(command) > bulk.MaxCommandLen:
		WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "command", Message: fmt.Sprintf("must be at most %d bytes", bulk.MaxCommandLen)})
		return
	}
	s.deviceRunPage(w, r, caller, func(ctx context.Context, deviceID, cursor string, limit int) ([]run.Run, string, error) {
		return s.opts.Runs.History(ctx, deviceID, command, cursor, limit)
	})
}
