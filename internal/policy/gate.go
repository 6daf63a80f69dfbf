package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// Reader reads the stored policy; ErrNotStored when none was ever stored.
type Reader interface {
	GetPolicy(ctx context.Context) (Policy, error)
}

// ErrConflict means the policy changed since the version a write was based on.
var ErrConflict = fault.New(fault.Conflict, "version", "the policy was changed by someone else; read it again and retry")

// Current returns the policy in force, compiled: the stored one, or the defaults (version 0)
// when none is stored.
func Current(ctx context.Context, store Reader) (Policy, *Set, error) {
	if store == nil {
		return Policy{Rules: Defaults()}, DefaultSet, nil
	}
	p, err := store.GetPolicy(ctx)
	if errors.Is(err, ErrNotStored) {
		return Policy{Rules: Defaults()}, DefaultSet, nil
	}
	if err != nil {
		return Policy{}, nil, fmt.Errorf("get policy: %w", err)
	}
	set, err := Compile(p.Rules)
	if err != nil {
		return Policy{}, nil, fmt.Errorf("compile stored policy version %d: %w", p.Version, err)
	}
	return p, set, nil
}

// Verdict is the decision for one device.
type Verdict struct {
	DeviceID string
	Decision
	// Field names what was refused (commands[1], commands[0].prompts[0].answer); empty: the
	// command.
	Field string
}

// CheckDevices decides command for each device, with the role id holds on the device's site.
func (s *Set) CheckDevices(command string, devs []device.Device, id auth.Identity) []Verdict {
	out := make([]Verdict, len(devs))
	for i, d := range devs {
		out[i] = Verdict{DeviceID: d.ID, Decision: s.Check(command, d.Platform, id.RoleOn(d.Site))}
	}
	return out
}

// Refusal returns the DeniedError of the refused verdicts, or nil when every one is allowed.
func Refusal(verdicts []Verdict) error {
	var e *DeniedError
	for _, v := range verdicts {
		if v.Allowed {
			continue
		}
		if e == nil {
			e = &DeniedError{Rule: v.Rule, Reason: v.Reason, FieldName: v.Field}
		}
		e.Devices = append(e.Devices, v.DeviceID)
	}
	if e == nil {
		return nil
	}
	slices.Sort(e.Devices)
	return e
}

// Code is the API error code of a refusal by the policy.
const Code = "command_denied"

// DeniedError is a command the policy refuses: the rule that refused it first (other devices may
// be refused by other rules), its reason and every refused device. It is a fault.Forbidden.
type DeniedError struct {
	Rule    string
	Reason  string
	Devices []string
	// FieldName is the refused field (commands[1]); empty: command.
	FieldName string
}

// Error implements error.
func (e *DeniedError) Error() string { return e.Public() }

// Kind implements fault.Described.
func (e *DeniedError) Kind() fault.Kind { return fault.Forbidden }

// Field implements fault.Described: the command, or the item of a sequence, that is refused.
func (e *DeniedError) Field() string {
	if e.FieldName != "" {
		return e.FieldName
	}
	return "command"
}

// Public implements fault.Described.
func (e *DeniedError) Public() string {
	where := "this device"
	if len(e.Devices) != 1 {
		where = fmt.Sprintf("%d devices", len(e.Devices))
	}
	what := "this command"
	if e.FieldName != "" {
		what = e.FieldName
	}
	return fmt.Sprintf("the command policy refuses %s on %s: %s (rule %s)", what, where, e.Reason, e.Rule)
}

// Code is the API error code: command_denied.
func (e *DeniedError) Code() string { return Code }

// RuleID is the refusing rule's id.
func (e *DeniedError) RuleID() string { return e.Rule }

// DeniedIDs are the refused devices.
func (e *DeniedError) DeniedIDs() []string { return e.Devices }
