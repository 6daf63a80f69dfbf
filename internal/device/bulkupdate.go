package device

import (
	"context"
	"fmt"
	"strings"

	"github.com/netauto/netauto/internal/fault"
)

// MaxBulkUpdate bounds the devices of one bulk update: they are written in one all-or-nothing
// store call (a DynamoDB transaction holds at most 100 items).
const MaxBulkUpdate = 100

// maxUnknownNamed bounds the ids an UnknownDevicesError's message names (UnknownIDs has all).
const maxUnknownNamed = 10

// BulkSet is what a bulk update sets on every device it names; nil fields stay as they are.
type BulkSet struct {
	// JumpHostIDs is the jump host chain every device gets, in order; empty clears it.
	JumpHostIDs *[]string
}

// UnknownDevicesError refuses a bulk update that names devices that do not exist or that the
// caller may not change: nothing was changed.
type UnknownDevicesError struct {
	IDs []string
}

// Error implements error.
func (e *UnknownDevicesError) Error() string { return e.Public() }

// Kind implements fault.Described: bad input.
func (e *UnknownDevicesError) Kind() fault.Kind { return fault.Invalid }

// Field implements fault.Described.
func (e *UnknownDevicesError) Field() string { return "device_ids" }

// Public implements fault.Described: the message names the ids (the first maxUnknownNamed).
func (e *UnknownDevicesError) Public() string {
	named := e.IDs
	more := ""
	if len(named) > maxUnknownNamed {
		named, more = named[:maxUnknownNamed], fmt.Sprintf(" and %d more", len(e.IDs)-maxUnknownNamed)
	}
	return fmt.Sprintf("names %d devices that do not exist or that you may not change: %s%s; nothing was changed",
		len(e.IDs), strings.Join(named, ", "), more)
}

// UnknownIDs lists every id the update refused.
func (e *UnknownDevicesError) UnknownIDs() []string { return e.IDs }

// BatchUpdater is a Store that can replace several devices in one all-or-nothing call (a
// DynamoDB transaction), each only if its stored version is the one given.
type BatchUpdater interface {
	// UpdateBatch stores all of ds or none: ErrConflict (wrapped) when a device's stored version
	// is not prev[i], ErrNotFound (wrapped) when one is gone.
	UpdateBatch(ctx context.Context, ds []Device, prev []int64) error
}

// BulkUpdate applies set to every device of ids, all or nothing: the ids must be distinct and
// name existing devices that may(device) allows (others: *UnknownDevicesError naming them), the
// set must be valid (*ValidationError with fields under "set."), and a device changed meanwhile
// fails the whole update with ErrConflict. It returns the stored devices in the order of ids.
func (inv *Inventory) BulkUpdate(ctx context.Context, ids []string, set BulkSet, may func(Device) bool) ([]Device, error) {
	v := &ValidationError{}
	switch {
	case len(ids) == 0:
		v.add("device_ids", "must name at least one device")
	case len(ids) > MaxBulkUpdate:
		v.add("device_ids", "must name at most %d devices", MaxBulkUpdate)
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if len(v.Fields) > 0 {
			break
		}
		switch {
		case !ValidID(id):
			v.add(fmt.Sprintf("device_ids[%d]", i), "is not a valid device id")
		case seen[id]:
			v.add(fmt.Sprintf("device_ids[%d]", i), "repeats device %q", id)
		}
		seen[id] = true
	}
	if set.JumpHostIDs == nil {
		v.add("set", "must set something: jump_host_ids (an empty list clears the chains)")
	} else {
		chain := &ValidationError{}
		validateChain(chain, *set.JumpHostIDs)
		for _, f := range chain.Fields {
			v.add("set."+f.Field, "%s", f.Message)
		}
	}
	if err := v.orNil(); err != nil {
		return nil, err
	}
	cur, err := inv.store.GetMany(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("bulk update: read devices: %w", err)
	}
	var unknown []string
	for _, id := range ids {
		if d, ok := cur[id]; !ok || !may(d) {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		return nil, &UnknownDevicesError{IDs: unknown}
	}
	chain := *set.JumpHostIDs
	if len(chain) == 0 {
		chain = nil
	}
	if err := inv.checkChain(ctx, Device{JumpHostIDs: chain}); err != nil {
		if ve, ok := err.(*ValidationError); ok {
			for i := range ve.Fields {
				ve.Fields[i].Field = "set." + ve.Fields[i].Field
			}
		}
		return nil, err
	}
	now := inv.now()
	out := make([]Device, len(ids))
	prev := make([]int64, len(ids))
	for i, id := range ids {
		d := cur[id]
		prev[i] = d.Version
		d.JumpHostIDs = chain
		d.Version++
		d.UpdatedAt = now
		out[i] = d
	}
	bu, ok := inv.store.(BatchUpdater)
	if !ok {
		return nil, fault.Errorf(fault.Unavailable, "", "bulk updates are not available on this device store")
	}
	if err := bu.UpdateBatch(ctx, out, prev); err != nil {
		return nil, fmt.Errorf("bulk update %d devices: %w", len(out), err)
	}
	return out, nil
}
