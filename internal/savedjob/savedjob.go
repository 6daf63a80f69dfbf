// Package savedjob keeps saved jobs: a command or sequence, its options and a device selector,
// saved by an operator to be started again and again. The selector is evaluated when a job
// starts, so devices added since it was saved are included, and always within the scope its owner
// holds: a saved job runs with its owner as the requester, the owner's recorded roles re-checked
// against the current policy by whoever starts it. It imports no AWS SDK: the store, the secret
// answer store and the inventory are small interfaces.
package savedjob

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// Limits of a saved job.
const (
	MaxNameLen = 128
	// DefaultPage and MaxPage bound a page of the saved job list.
	DefaultPage = 100
	MaxPage     = 500
)

// Errors of the store and the registry.
var (
	// ErrNotFound means no saved job has the id (or the caller may not see it).
	ErrNotFound = fault.New(fault.NotFound, "id", "no saved job with this id")
	// ErrExists means a saved job with the id exists.
	ErrExists = fault.New(fault.Exists, "id", "a saved job with this id already exists")
	// ErrConflict means the stored version differs from the one the write was based on.
	ErrConflict = fault.New(fault.Conflict, "version", "the saved job was changed by someone else; read it again and retry")
)

// Selector chooses a saved job's devices when it starts. Its terms combine with AND: a device is
// chosen when it is one of DeviceIDs (if any are listed), carries every tag of Tags (an empty
// value: the tag with any value), is on Site and runs Platform (when given).
type Selector struct {
	DeviceIDs []string          `dynamodbav:"device_ids,omitempty"`
	Tags      map[string]string `dynamodbav:"tags,omitempty"`
	Site      string            `dynamodbav:"site,omitempty"`
	Platform  string            `dynamodbav:"platform,omitempty"`
}

// Normalize checks the selector, naming each field under "selector.", and de-duplicates its ids.
// It needs at least one term: a selector of nothing would choose every device.
func (s *Selector) Normalize() error {
	if len(s.DeviceIDs) == 0 && len(s.Tags) == 0 && s.Site == "" && s.Platform == "" {
		return fault.New(fault.Invalid, "selector", "must have at least one term: device_ids, tags, site or platform")
	}
	if s.DeviceIDs != nil {
		ids, err := bulk.NormalizeDeviceIDs("selector.device_ids", s.DeviceIDs, false)
		if err != nil {
			return err
		}
		s.DeviceIDs = ids
	}
	return device.ValidateTerms("selector.", s.Tags, s.Site, s.Platform)
}

// Matches reports whether d meets every term of the selector.
func (s Selector) Matches(d device.Device) bool {
	if len(s.DeviceIDs) > 0 && !slices.Contains(s.DeviceIDs, d.ID) {
		return false
	}
	if s.Site != "" && d.Site != s.Site {
		return false
	}
	if s.Platform != "" && d.Platform != s.Platform {
		return false
	}
	for k, v := range s.Tags {
		got, ok := d.Tags[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}

// SavedJob is a saved job. Its Commands are kept without secret answers; those are in the answer
// store under AnswersKey.
type SavedJob struct {
	ID       string
	Name     string
	Command  string
	Commands []bulk.Command
	Options  bulk.Options
	Selector Selector
	// Owner is the name of who saved it (the requester of its jobs); Grants the roles they held
	// when they last saved it.
	Owner  string
	Grants bulk.Grants
	// AnswersKey names the secret answers in the answer store; empty when there are none. It
	// changes with every change of the answers, so a write that loses a race never leaves the
	// stored job with another write's answers.
	AnswersKey string
	// Schedule runs it on a cron (nil: only when started by hand); NextDue is its next due
	// time while the schedule is enabled, zero otherwise (the scheduler finds due jobs by it).
	Schedule  *Schedule
	NextDue   time.Time
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NextRuns are the saved job's next due times (none when it has no enabled schedule).
func (j SavedJob) NextRuns(after time.Time) []time.Time {
	if j.Schedule == nil || !j.Schedule.Enabled {
		return nil
	}
	runs, _ := j.Schedule.NextRuns(after, NextRunsShown)
	return runs
}

// OwnerIdentity is the owner as the requester of the saved job's jobs, with the roles recorded.
func (j SavedJob) OwnerIdentity() auth.Identity {
	return auth.Identity{Subject: j.Owner, Role: j.Grants.Role, Sites: j.Grants.Sites}
}

// Sites are the sites a caller needs a role on to see the saved job: the selector's site, else
// the sites its owner may run commands on when that is not everywhere. None (an owner who may
// run everywhere, a selector without a site) needs the role everywhere.
func (j SavedJob) Sites() []string {
	if j.Selector.Site != "" {
		return []string{j.Selector.Site}
	}
	if all, sites := j.OwnerIdentity().Scope(auth.Operator); !all {
		return sites
	}
	return nil
}

// Request is the bulk request the saved job makes, without devices and without secret answers.
func (j SavedJob) Request() bulk.Request {
	req := bulk.Request{Command: j.Command, Commands: bulk.Redacted(j.Commands), Options: j.Options, SavedJobID: j.ID}
	if req.Commands != nil {
		req.Command = "" // a sequence's Command is its summary: bulk.Request takes one or the other
	}
	return req
}

// Input is a create or a change: the fields given (nil: not given). Commands, when given,
// replace the job's sequence whole, secret answers included; Command and Commands are exclusive.
type Input struct {
	Name     *string
	Command  *string
	Commands []bulk.Command
	Options  *bulk.Options
	Selector *Selector
	// Schedule, when given, replaces the schedule; enabling it (again) makes the next due
	// time the first after now, so times missed while paused are skipped.
	Schedule *Schedule
}

// Store keeps saved jobs.
type Store interface {
	// Create stores a new saved job; ErrExists when the id is taken.
	Create(ctx context.Context, j SavedJob) error
	// Get returns one; ErrNotFound when there is none.
	Get(ctx context.Context, id string) (SavedJob, error)
	// Update replaces one if its stored version is prevVersion: ErrNotFound, ErrConflict.
	Update(ctx context.Context, j SavedJob, prevVersion int64) error
	// Delete removes one if its stored version is version: ErrNotFound, ErrConflict.
	Delete(ctx context.Context, id string, version int64) error
	// List returns at most limit saved jobs by id after cursor, and the next page's cursor.
	List(ctx context.Context, cursor string, limit int) ([]SavedJob, string, error)
}

// Devices is the inventory a selector is evaluated over; *device.Inventory implements it.
type Devices interface {
	List(ctx context.Context, f device.Filter, p device.Page) ([]device.Device, string, error)
	GetMany(ctx context.Context, ids []string) (map[string]device.Device, error)
}

// Registry creates, changes, deletes and starts saved jobs under the ownership rules: an operator
// changes, deletes and starts their own, an admin (everywhere) any; a viewer reads those in
// their scope.
type Registry struct {
	store   Store
	answers bulk.AnswerStore
	devices Devices
	// Now is the registry's clock (default: the wall clock, UTC).
	Now func() time.Time
	// Owners, when set, is asked about a saved job's owner before every start (CheckOwner).
	Owners Owners
	// Dropped lists replaced and deleted answers until their delete succeeds, for the watchdog to
	// retry (bulk.DropAnswers); nil: a failed delete leaves the secret behind.
	Dropped bulk.AnswerLedger
}

// New returns a registry; answers may be nil (a saved job with a secret answer is then refused).
func New(store Store, answers bulk.AnswerStore, devices Devices) (*Registry, error) {
	if store == nil || devices == nil {
		return nil, fmt.Errorf("new saved job registry: store and devices are required")
	}
	return &Registry{store: store, answers: answers, devices: devices}, nil
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now().UTC()
}

// visible reports whether caller may see j.
func visible(caller auth.Identity, j SavedJob) bool { return caller.CanOnAll(auth.Viewer, j.Sites()) }

// mayChange refuses a caller who may not change, delete or start j: only its owner, with the
// operator role on its sites, or an admin everywhere.
func mayChange(caller auth.Identity, j SavedJob) error {
	if caller.Can(auth.Admin) {
		return nil
	}
	if caller.Name() != j.Owner {
		return fault.Errorf(fault.Forbidden, "id", "only the saved job's owner (%s) or an admin may change or start it", j.Owner)
	}
	if !caller.CanOnAll(auth.Operator, j.Sites()) {
		return fault.Errorf(fault.Forbidden, "id", "changing or starting this saved job needs the operator role on its sites")
	}
	return nil
}

// Get returns saved job id as caller may see it; ErrNotFound also when it is out of scope.
func (r *Registry) Get(ctx context.Context, id string, caller auth.Identity) (SavedJob, error) {
	j, err := r.store.Get(ctx, id)
	if err != nil {
		return SavedJob{}, err
	}
	if !visible(caller, j) {
		return SavedJob{}, ErrNotFound
	}
	return j, nil
}

// List returns a page of the saved jobs caller may see: a page is read, then filtered, so it may
// hold fewer than limit while the cursor leads on.
func (r *Registry) List(ctx context.Context, cursor string, limit int, caller auth.Identity) ([]SavedJob, string, error) {
	items, next, err := r.store.List(ctx, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	return slices.DeleteFunc(items, func(j SavedJob) bool { return !visible(caller, j) }), next, nil
}

// apply validates in onto j (a create when j.ID is empty) and returns the full sequence with its
// secret answers when in gives one.
func apply(j *SavedJob, in Input, create bool, now time.Time) (answers []string, newCommands bool, err error) {
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		switch {
		case name == "":
			return nil, false, fault.New(fault.Invalid, "name", "is required")
		case utf8.RuneCountInString(name) > MaxNameLen:
			return nil, false, fault.Errorf(fault.Invalid, "name", "must be at most %d characters", MaxNameLen)
		case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			return nil, false, fault.New(fault.Invalid, "name", "must not contain control characters")
		}
		j.Name = name
	} else if create {
		return nil, false, fault.New(fault.Invalid, "name", "is required")
	}
	req := bulk.Request{Command: j.Command, Commands: bulk.Redacted(j.Commands), Options: j.Options}
	if in.Command != nil || in.Commands != nil || create {
		newCommands = true
		req.Command, req.Commands = "", in.Commands
		if in.Command != nil {
			req.Command = *in.Command
		}
	}
	if in.Options != nil {
		req.Options = *in.Options
	}
	// One home for what a job runs and how: the bulk request's own rules.
	if newCommands {
		if err := req.NormalizeCommands(); err != nil {
			return nil, false, err
		}
	} else if err := req.Options.Validate(); err != nil {
		return nil, false, err
	}
	if newCommands {
		j.Command, j.Commands, answers = req.Command, bulk.Redacted(req.Commands), bulk.SecretAnswers(req.Commands)
	}
	j.Options = req.Options
	if in.Selector != nil {
		sel := *in.Selector
		sel.Tags = maps.Clone(sel.Tags)
		if err := sel.Normalize(); err != nil {
			return nil, false, err
		}
		j.Selector = sel
	} else if create {
		return nil, false, fault.New(fault.Invalid, "selector", "is required")
	}
	if in.Schedule != nil {
		sched := *in.Schedule
		sched.PausedReason = ""
		if err := sched.Normalize(); err != nil {
			return nil, false, err
		}
		j.Schedule, j.NextDue = &sched, time.Time{}
		if sched.Enabled {
			next, err := sched.Next(now)
			if err != nil {
				return nil, false, fault.Errorf(fault.Invalid, "schedule.cron", "%v", err)
			}
			j.NextDue = next
		}
	}
	return answers, newCommands, nil
}

// Create validates in and saves it as a new job owned by by, recording by's roles.
func (r *Registry) Create(ctx context.Context, in Input, by auth.Identity) (SavedJob, error) {
	now := r.now()
	j := SavedJob{ID: bulk.NewID(now), Owner: by.Name(), Grants: bulk.GrantsOf(by), Version: 1, CreatedAt: now, UpdatedAt: now}
	answers, _, err := apply(&j, in, true, now)
	if err != nil {
		return SavedJob{}, err
	}
	if err := scopeCheck(by, j); err != nil {
		return SavedJob{}, err
	}
	if err := r.putAnswers(ctx, &j, answers); err != nil {
		return SavedJob{}, err
	}
	if err := r.store.Create(ctx, j); err != nil {
		r.dropAnswers(ctx, j.AnswersKey)
		return SavedJob{}, err
	}
	return j, nil
}

// scopeCheck refuses a selector site out of the owner's scope: its jobs could never run there.
func scopeCheck(by auth.Identity, j SavedJob) error {
	if s := j.Selector.Site; s != "" && !by.CanOn(auth.Operator, s) {
		return fault.Errorf(fault.Forbidden, "selector.site", "needs the operator role on site %q", s)
	}
	return nil
}

// Update changes saved job id as caller asks, if its version is version (0: any). A change by
// its owner records their roles anew; an admin's change keeps the owner and their roles.
func (r *Registry) Update(ctx context.Context, id string, in Input, version int64, caller auth.Identity) (SavedJob, error) {
	old, err := r.Get(ctx, id, caller)
	if err != nil {
		return SavedJob{}, err
	}
	if err := mayChange(caller, old); err != nil {
		return SavedJob{}, err
	}
	if version != 0 && version != old.Version {
		return SavedJob{}, ErrConflict
	}
	j := old
	j.Commands = slices.Clone(old.Commands)
	answers, newCommands, err := apply(&j, in, false, r.now())
	if err != nil {
		return SavedJob{}, err
	}
	if caller.Name() == j.Owner {
		j.Grants = bulk.GrantsOf(caller)
	}
	if err := scopeCheck(j.OwnerIdentity(), j); err != nil {
		return SavedJob{}, err
	}
	j.Version, j.UpdatedAt = old.Version+1, r.now()
	if newCommands {
		j.AnswersKey = ""
		if err := r.putAnswers(ctx, &j, answers); err != nil {
			return SavedJob{}, err
		}
	}
	if err := r.store.Update(ctx, j, old.Version); err != nil {
		if j.AnswersKey != old.AnswersKey {
			r.dropAnswers(ctx, j.AnswersKey)
		}
		return SavedJob{}, err
	}
	if j.AnswersKey != old.AnswersKey {
		r.dropAnswers(ctx, old.AnswersKey)
	}
	return j, nil
}

// Delete removes saved job id and its secret answers, if its version is version (0: any).
func (r *Registry) Delete(ctx context.Context, id string, version int64, caller auth.Identity) (SavedJob, error) {
	j, err := r.Get(ctx, id, caller)
	if err != nil {
		return SavedJob{}, err
	}
	if err := mayChange(caller, j); err != nil {
		return SavedJob{}, err
	}
	if version != 0 && version != j.Version {
		return SavedJob{}, ErrConflict
	}
	if err := r.store.Delete(ctx, id, j.Version); err != nil {
		return SavedJob{}, err
	}
	r.dropAnswers(ctx, j.AnswersKey)
	return j, nil
}

// putAnswers stores a saved job's secret answers under a key of this version of it.
func (r *Registry) putAnswers(ctx context.Context, j *SavedJob, answers []string) error {
	if len(answers) == 0 {
		return nil
	}
	if r.answers == nil {
		return fault.New(fault.Unavailable, "commands", "this deployment has no store for secret answers")
	}
	key := fmt.Sprintf("%s/v%d", j.ID, j.Version)
	if err := r.answers.PutAnswers(ctx, key, answers); err != nil {
		return fmt.Errorf("store secret answers of saved job %s: %w", j.ID, err)
	}
	j.AnswersKey = key
	return nil
}

// dropAnswers deletes answers no stored job names, listed in r.Dropped until the delete succeeds
// so that the watchdog retries a failed one (bulk.DropAnswers). A failure leaves a secret to
// delete, not a wrong answer, so it is not the caller's error; it is logged (names, no values).
func (r *Registry) dropAnswers(ctx context.Context, key string) {
	if err := bulk.DropAnswers(ctx, r.answers, r.Dropped, key); err != nil {
		slog.Default().WarnContext(ctx, "saved job answers not deleted yet", "key", key, "err", err)
	}
}

// Start prepares saved job id to run now at caller's request: it checks the caller may start it,
// evaluates the selector within its owner's scope, puts the secret answers back, and returns the
// bulk request and the identity (the owner, with the recorded roles) to enqueue it as.
func (r *Registry) Start(ctx context.Context, id string, caller auth.Identity) (bulk.Request, auth.Identity, error) {
	j, err := r.Get(ctx, id, caller)
	if err != nil {
		return bulk.Request{}, auth.Identity{}, err
	}
	if err := mayChange(caller, j); err != nil {
		return bulk.Request{}, auth.Identity{}, err
	}
	if err := CheckOwner(ctx, r.Owners, j); err != nil {
		return bulk.Request{}, auth.Identity{}, err
	}
	req, err := r.Request(ctx, j)
	if err != nil {
		return bulk.Request{}, auth.Identity{}, err
	}
	ids, err := r.Resolve(ctx, j)
	if err != nil {
		return bulk.Request{}, auth.Identity{}, err
	}
	req.DeviceIDs = ids
	return req, j.OwnerIdentity(), nil
}

// Request is j's bulk request with its secret answers, and no devices.
func (r *Registry) Request(ctx context.Context, j SavedJob) (bulk.Request, error) {
	req := j.Request()
	if j.AnswersKey == "" {
		return req, nil
	}
	if r.answers == nil {
		return bulk.Request{}, fault.New(fault.Unavailable, "commands", "this deployment has no store for secret answers")
	}
	answers, err := r.answers.GetAnswers(ctx, j.AnswersKey)
	if err != nil {
		return bulk.Request{}, fmt.Errorf("read secret answers of saved job %s: %w", j.ID, err)
	}
	cmds, err := bulk.WithAnswers(req.Commands, answers)
	if err != nil {
		return bulk.Request{}, fmt.Errorf("secret answers of saved job %s: %w", j.ID, err)
	}
	req.Commands = cmds
	return req, nil
}

// Resolve evaluates j's selector now: the devices that meet every term and lie where its owner
// holds the operator role. None is fault.NoMatch; more than a job may hold is invalid.
func (r *Registry) Resolve(ctx context.Context, j SavedJob) ([]string, error) {
	owner, sel := j.OwnerIdentity(), j.Selector
	var ids []string
	keep := func(d device.Device) error {
		if sel.Matches(d) && owner.CanOn(auth.Operator, d.Site) {
			if ids = append(ids, d.ID); len(ids) > bulk.MaxDevices {
				return fault.Errorf(fault.Invalid, "selector", "matches more than %d devices, the most one job may run on", bulk.MaxDevices)
			}
		}
		return nil
	}
	if len(sel.DeviceIDs) > 0 {
		found, err := r.devices.GetMany(ctx, sel.DeviceIDs)
		if err != nil {
			return nil, fmt.Errorf("read devices of saved job %s: %w", j.ID, err)
		}
		for _, id := range sel.DeviceIDs {
			if d, ok := found[id]; ok {
				if err := keep(d); err != nil {
					return nil, err
				}
			}
		}
	} else {
		f := device.Filter{Site: sel.Site, Platform: sel.Platform}
		if len(sel.Tags) > 0 { // the store filters on one tag; Matches checks them all
			f.TagKey = slices.Min(slices.Collect(maps.Keys(sel.Tags)))
			f.TagValue = sel.Tags[f.TagKey]
		}
		if all, sites := owner.Scope(auth.Operator); !all {
			f.Sites = append([]string{}, sites...)
		}
		page := device.Page{Limit: device.MaxPageSize}
		for {
			ds, next, err := r.devices.List(ctx, f, page)
			if err != nil {
				return nil, fmt.Errorf("list devices of saved job %s: %w", j.ID, err)
			}
			for _, d := range ds {
				if err := keep(d); err != nil {
					return nil, err
				}
			}
			if next == "" {
				break
			}
			page.Cursor = next
		}
	}
	if len(ids) == 0 {
		return nil, fault.Errorf(fault.NoMatch, "selector", "saved job %s selects no device in its owner's (%s) scope now", j.ID, j.Owner)
	}
	return ids, nil
}
