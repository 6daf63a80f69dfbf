package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
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
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// AuditLog lists the audit trail for GET /v1/audit; *dynamo.AuditStore implements it.
type AuditLog interface {
	// List returns at most limit entries f selects, newest first, after cursor, and the next
	// page's cursor ("" at the end); fault.ErrBadCursor for a cursor it did not issue.
	List(ctx context.Context, f audit.Filter, cursor string, limit int) ([]audit.Entry, string, error)
}

// mutating reports whether a request of method changes something: its route writes one audit
// entry per request.
func mutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// routeActions names the audit action of each mutating route; a route missing here gets one
// made from its path (routeAction).
var routeActions = map[string]string{
	"POST /v1/devices":                 "device.create",
	"POST /v1/devices/import":          "device.import",
	"POST /v1/devices/last-runs":       "device.last_runs",
	"PATCH /v1/devices/{id}":           "device.update",
	"DELETE /v1/devices/{id}":          "device.delete",
	"POST /v1/runs":                    "run.create",
	"POST /v1/bulk":                    "job.create",
	"POST /v1/bulk/{job_id}/cancel":    "job.cancel",
	"POST /v1/bulk/{job_id}/rerun":     "job.rerun",
	"PUT /v1/platforms/{name}/filters": "noise_filters.update",
	"PUT /v1/policy":                   "policy.update",
	"POST /v1/policy/check":            "policy.check",
	"POST /v1/retention/purge":         "retention.purge",
	// A jump host's accept is told apart from a device's.
	"POST /v1/jump-hosts/{id}/host-key/accept": "jump_host.accept_host_key",
}

// routeAction is the audit action of a mutating route pattern ("POST /v1/jump-hosts/{id}"):
// routeActions' name, or "<resource>.<verb>" from the path — its last two fixed segments when
// it ends in one after another ("host_key.accept"), else its last resource in the singular and
// the method's verb ("jump_host.update").
func routeAction(pattern string) string {
	if a, ok := routeActions[pattern]; ok {
		return a
	}
	method, path, _ := strings.Cut(pattern, " ")
	segs := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	var fixed []string
	for _, s := range segs {
		if !strings.HasPrefix(s, "{") {
			fixed = append(fixed, strings.ReplaceAll(s, "-", "_"))
		}
	}
	if len(fixed) == 0 {
		return "request." + strings.ToLower(method)
	}
	last := segs[len(segs)-1]
	if len(segs) >= 2 && !strings.HasPrefix(last, "{") && !strings.HasPrefix(segs[len(segs)-2], "{") {
		return strings.TrimSuffix(fixed[len(fixed)-2], "s") + "." + fixed[len(fixed)-1]
	}
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodPatch: "update", http.MethodDelete: "delete"}[method]
	if len(segs) >= 2 && strings.HasPrefix(segs[len(segs)-2], "{") && !strings.HasPrefix(last, "{") {
		verb = fixed[len(fixed)-1] // /jobs/{id}/run: job.run
		fixed = fixed[:len(fixed)-1]
	}
	return strings.TrimSuffix(fixed[len(fixed)-1], "s") + "." + verb
}

// auditNote is the audit entry a mutating request's handler names through record; handle
// writes it once the handler returns.
type auditNote struct {
	set            bool
	action, target string
	err            error
	detail         map[string]string
}

type noteKey struct{}

// answerWriter remembers an answer's status and, for an error answer, the start of its body,
// where the error code is.
type answerWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (a *answerWriter) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *answerWriter) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	if a.status >= 400 && a.body.Len() < 4096 {
		a.body.Write(p[:min(len(p), 4096-a.body.Len())])
	}
	return a.ResponseWriter.Write(p)
}

// audited runs a mutating route's handler and writes its one audit entry: the one the handler
// named (record), completed from its answer, or else one made from the route and the answer.
func (s *Server) audited(pattern string, w http.ResponseWriter, r *http.Request, id auth.Identity, run func(http.ResponseWriter, *http.Request)) {
	note := &auditNote{}
	aw := &answerWriter{ResponseWriter: w}
	run(aw, r.WithContext(context.WithValue(r.Context(), noteKey{}, note)))
	e := audit.Entry{Action: note.action, Target: note.target, Detail: note.detail, Outcome: audit.OutcomeOK}
	if !note.set {
		e.Action, e.Target = routeAction(pattern), cmp.Or(r.PathValue("id"), r.PathValue("job_id"))
	}
	switch {
	case note.err != nil:
		kind := fault.KindOf(note.err)
		e.Outcome, e.Reason = audit.OutcomeFailed, kind.String()
		if refused(kind) {
			e.Outcome = audit.OutcomeDenied
		}
		if code, _ := answerCode(aw.body.Bytes()); code != "" {
			e.Reason = code
		}
	case aw.status >= 400:
		e.Outcome = audit.OutcomeFailed
		if aw.status == http.StatusForbidden || aw.status == http.StatusTooManyRequests {
			e.Outcome = audit.OutcomeDenied
		}
		code, rule := answerCode(aw.body.Bytes())
		e.Reason = cmp.Or(code, strconv.Itoa(aw.status))
		if rule != "" {
			e.Detail = withDetail(e.Detail, "rule", rule)
		}
	}
	s.writeAudit(r, id, e)
}

// answerCode reads the code (and a policy refusal's rule) of an error answer's body.
func answerCode(body []byte) (code, rule string) {
	var b struct {
		Error struct {
			Code string `json:"code"`
			Rule string `json:"rule"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &b)
	return b.Error.Code, b.Error.Rule
}

func withDetail(d map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(d)+1)
	for dk, dv := range d {
		out[dk] = dv
	}
	out[k] = v
	return out
}

// roleName is the caller's role as an entry shows it: the global role, or the site grants
// ("operator:ams1,viewer:lon1") of a caller who holds none.
func roleName(id auth.Identity) string {
	if id.Role != "" {
		return string(id.Role)
	}
	var out []string
	for site, r := range id.Sites {
		out = append(out, string(r)+":"+site)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// Limits of GET /v1/audit.
const (
	defaultAuditLimit = 50
	maxAuditLimit     = 500
	maxAuditFilterLen = 256
)

// listAudit answers GET /v1/audit: the trail newest first, filtered by actor, action, target and
// since (RFC 3339), a page of limit at a time.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	if s.opts.AuditLog == nil {
		WriteError(w, http.StatusServiceUnavailable, &Error{Code: "unavailable", Message: "this deployment keeps no audit trail to list"})
		return
	}
	q := r.URL.Query()
	for k, vs := range q {
		switch k {
		case "actor", "action", "target", "since", "limit", "cursor":
		default:
			WriteError(w, http.StatusBadRequest, &Error{Code: "unknown_parameter", Field: k, Message: "is not a known query parameter (actor, action, target, since, limit, cursor)"})
			return
		}
		if len(vs) > 1 {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: k, Message: "may be given once"})
			return
		}
	}
	f := audit.Filter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	for k, v := range map[string]string{"actor": f.Actor, "action": f.Action, "target": f.Target} {
		if len(v) > maxAuditFilterLen || strings.ContainsFunc(v, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: k, Message: "must be at most 256 characters without control characters"})
			return
		}
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			WriteError(w, http.StatusBadRequest, &Error{Code: "invalid", Field: "since", Message: "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"})
			return
		}
		f.Since = t
	}
	limit, ok := s.limitParam(w, r, defaultAuditLimit, maxAuditLimit)
	if !ok {
		return
	}
	entries, next, err := s.opts.AuditLog.List(r.Context(), f, q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := apiwire.AuditList{Items: make([]apiwire.AuditEntry, len(entries)), Next: next}
	for i, e := range entries {
		out.Items[i] = apiwire.AuditEntry{
			ID: e.ID, Time: e.Time, Actor: e.Actor, Role: e.Role, Action: e.Action, Target: e.Target, Outcome: e.Outcome,
			Reason: e.Reason, RequestID: e.RequestID, Source: e.Source, Detail: e.Detail,
		}
	}
	WriteJSON(w, http.StatusOK, out)
}

// runTarget is a run request's audit target: the run, once accepted, else the device.
func runTarget(jobID, deviceID string) string {
	if jobID == "" {
		return deviceID
	}
	return bulk.RunID(jobID, deviceID)
}

// importDetail is an import's audit detail: how many rows came, were created and failed.
func importDetail(res device.ImportResult, rows int) map[string]string {
	return map[string]string{"mode": string(res.Mode), "rows": strconv.Itoa(rows), "created": strconv.Itoa(res.Created), "failed": strconv.Itoa(res.Failed)}
}

// patchFields is an update's audit detail: the names of the fields patch p (a struct of pointer
// fields, apiwire.DevicePatch or apiwire.JumpHostPatch) sets, never their values (a password or
// key is among them).
func patchFields(p any) map[string]string {
	var names []string
	v := reflect.ValueOf(p)
	for i := range v.NumField() {
		f := v.Field(i)
		if (f.Kind() == reflect.Pointer || f.Kind() == reflect.Map || f.Kind() == reflect.Slice) && !f.IsNil() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return map[string]string{"fields": strings.Join(names, ",")}
}
