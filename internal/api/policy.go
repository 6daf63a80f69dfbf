package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/policy"
)

// Policies keeps the command policy; *dynamo.PolicyStore implements it.
type Policies interface {
	GetPolicy(ctx context.Context) (policy.Policy, error)
	PutPolicy(ctx context.Context, p policy.Policy, expected int64) (policy.Policy, error)
}

// maxPolicyBytes bounds a PUT /v1/policy body: 500 rules fit, and the stored item stays well
// inside DynamoDB's 400 KB.
const maxPolicyBytes = 256 << 10

func policyToWire(p policy.Policy) apiwire.Policy {
	out := apiwire.Policy{Rules: make([]apiwire.PolicyRule, len(p.Rules)), Version: p.Version, Default: p.Version == 0, UpdatedBy: p.UpdatedBy}
	for i, r := range p.Rules {
		out.Rules[i] = apiwire.PolicyRule{ID: r.ID, Effect: string(r.Effect), Roles: r.Roles, Platforms: r.Platforms, Pattern: r.Pattern, Reason: r.Reason}
	}
	if !p.UpdatedAt.IsZero() {
		t := p.UpdatedAt
		out.UpdatedAt = &t
	}
	return out
}

// getPolicy answers the policy in force: the stored one, or the defaults (version 0).
func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, _ auth.Identity) {
	p, _, err := policy.Current(r.Context(), s.opts.Policy)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(p.Version, 10)))
	WriteJSON(w, http.StatusOK, policyToWire(p))
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	version, err := s.writePolicy(w, r, id)
	detail := map[string]string{}
	if version > 0 {
		detail["version"] = strconv.FormatInt(version, 10)
	}
	s.record(r, id, "policy.update", "policy", err, detail)
}

// writePolicy answers PUT /v1/policy and returns the version it stored (0 on failure) and the
// error it answered, for the audit entry.
func (s *Server) writePolicy(w http.ResponseWriter, r *http.Request, id auth.Identity) (int64, error) {
	if s.opts.Policy == nil {
		e := &Error{Code: "unavailable", Message: "this deployment has no policy store; the built-in policy applies"}
		WriteError(w, http.StatusServiceUnavailable, e)
		return 0, e
	}
	body, e, status := readBody(r, maxPolicyBytes)
	if e != nil {
		WriteError(w, status, e)
		return 0, e
	}
	var in apiwire.PolicyUpdate
	if e := decodeStrict(body, &in); e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return 0, e
	}
	if m := r.Header.Get("If-Match"); m != "" {
		v, err := strconv.ParseInt(strings.Trim(m, `"`), 10, 64)
		if err != nil || v < 0 {
			e := &Error{Code: "invalid", Field: "If-Match", Message: "must be the policy's ETag (its version)"}
			WriteError(w, http.StatusBadRequest, e)
			return 0, e
		}
		if in.Version != nil && *in.Version != v {
			e := &Error{Code: "invalid", Field: "version", Message: "differs from the If-Match header"}
			WriteError(w, http.StatusBadRequest, e)
			return 0, e
		}
		in.Version = &v
	}
	if in.Version == nil || *in.Version < 0 {
		e := &Error{Code: "invalid", Field: "version", Message: "is required: the version the change replaces (0 for the built-in defaults), or send If-Match"}
		WriteError(w, http.StatusBadRequest, e)
		return 0, e
	}
	if in.Rules == nil {
		e := &Error{Code: "invalid", Field: "rules", Message: "is required (an empty list refuses every command)"}
		WriteError(w, http.StatusBadRequest, e)
		return 0, e
	}
	rules := make([]policy.Rule, len(in.Rules))
	for i, wr := range in.Rules {
		rules[i] = policy.Rule{ID: wr.ID, Effect: policy.Effect(wr.Effect), Roles: wr.Roles, Platforms: wr.Platforms, Pattern: wr.Pattern, Reason: wr.Reason}
	}
	if _, err := policy.Compile(rules); err != nil {
		s.failFor(w, r, err, "rules", nil)
		return 0, err
	}
	stored, err := s.opts.Policy.PutPolicy(r.Context(), policy.Policy{Rules: rules, UpdatedAt: time.Now().UTC(), UpdatedBy: id.Name()}, *in.Version)
	if err != nil {
		s.fail(w, r, err)
		return 0, err
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(stored.Version, 10)))
	WriteJSON(w, http.StatusOK, policyToWire(stored))
	return stored.Version, nil
}

func (s *Server) checkPolicy(w http.ResponseWriter, r *http.Request, id auth.Identity) {
	body, e, status := readBody(r, maxImportBytes)
	if e != nil {
		WriteError(w, status, e)
		return
	}
	var in apiwire.PolicyCheckRequest
	if e := decodeStrict(body, &in); e != nil {
		WriteError(w, http.StatusBadRequest, e)
		return
	}
	req := bulk.Request{Command: in.Command, Commands: commandsFromWire(in.Commands), DeviceIDs: in.DeviceIDs}
	ids, err := req.Normalize()
	if err != nil {
		s.failFor(w, r, err, "device_ids", nil)
		return
	}
	p, verdicts, _, err := s.verdicts(r.Context(), req, ids, id)
	if err != nil {
		s.failFor(w, r, err, "device_ids", nil)
		return
	}
	out := apiwire.PolicyCheck{Allowed: true, Version: p.Version, Devices: make([]apiwire.PolicyVerdict, len(verdicts))}
	for i, v := range verdicts {
		out.Devices[i] = apiwire.PolicyVerdict{DeviceID: v.DeviceID, Allowed: v.Allowed}
		if !v.Allowed {
			out.Allowed = false
			out.Devices[i].Rule, out.Devices[i].Reason, out.Devices[i].Field = v.Rule, v.Reason, v.Field
		}
	}
	WriteJSON(w, http.StatusOK, out)
}

// verdicts decides the normalised request's command or sequence (every command and prompt
// answer) for each of ids with the caller's role on each device's site. Devices that do not
// exist, or lie out of the caller's operator scope, answer bulk.UnknownDevicesError. It also
// returns the devices it read.
func (s *Server) verdicts(ctx context.Context, req bulk.Request, ids []string, id auth.Identity) (policy.Policy, []policy.Verdict, map[string]device.Device, error) {
	p, set, err := policy.Current(ctx, s.opts.Policy)
	if err != nil {
		return policy.Policy{}, nil, nil, err
	}
	found, err := s.opts.Devices.GetMany(ctx, ids)
	if err != nil {
		return policy.Policy{}, nil, nil, fmt.Errorf("get devices: %w", err)
	}
	devs := make([]device.Device, 0, len(ids))
	var unknown []string
	for _, i := range ids {
		d, ok := found[i]
		if !ok || !id.CanOn(auth.Operator, d.Site) {
			// Out of the caller's scope is as unknown as absent.
			unknown = append(unknown, i)
			continue
		}
		devs = append(devs, d)
	}
	if len(unknown) > 0 {
		return policy.Policy{}, nil, nil, &bulk.UnknownDevicesError{IDs: unknown}
	}
	seq, single := req.Sequence(), req.Commands == nil
	verdicts := make([]policy.Verdict, len(devs))
	for i, d := range devs {
		dec, field := bulk.CheckSequence(set, seq, single, d.Platform, id.RoleOn(d.Site))
		verdicts[i] = policy.Verdict{DeviceID: d.ID, Decision: dec, Field: field}
	}
	return p, verdicts, found, nil
}

// admit checks a run or bulk request against the caller's role's device limit and the command
// policy before it is enqueued: nil when
// the caller may run it on every device, a policy.DeniedError naming the rule and the refused
// devices otherwise. A request the enqueuer will reject as invalid, or that names unknown
// devices, is left for it to answer. An admitted request carries the devices the check read
// (req.Devices), so the enqueue does not read them again.
func (s *Server) admit(ctx context.Context, req *bulk.Request, id auth.Identity) error {
	norm := *req // the enqueue normalises the request itself, once
	ids, err := norm.Normalize()
	if err != nil {
		return nil
	}
	role := auth.Operator
	if id.Can(auth.Admin) {
		role = auth.Admin
	}
	if limit := s.opts.MaxJobDevices[role]; limit > 0 && len(ids) > limit {
		return fault.Errorf(fault.Forbidden, "device_ids", "a job of %d devices is over the %s role's limit of %d devices per job", len(ids), role, limit)
	}
	_, verdicts, found, err := s.verdicts(ctx, norm, ids, id)
	var unknown *bulk.UnknownDevicesError
	if errors.As(err, &unknown) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := policy.Refusal(verdicts); err != nil {
		return err
	}
	req.Devices = found
	return nil
}
