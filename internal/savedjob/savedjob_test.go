package savedjob_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/savedjob"
)

// memStore is an in-memory savedjob.Store for the domain's unit tests.
type memStore struct {
	mu   sync.Mutex
	jobs map[string]savedjob.SavedJob
}

func (s *memStore) Create(_ context.Context, j savedjob.SavedJob) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jobs[j.ID]; ok {
		return savedjob.ErrExists
	}
	s.jobs[j.ID] = j
	return nil
}

func (s *memStore) Get(_ context.Context, id string) (savedjob.SavedJob, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.jobs[id]
	if !ok {
		return savedjob.SavedJob{}, savedjob.ErrNotFound
	}
	return j, nil
}

func (s *memStore) Update(_ context.Context, j savedjob.SavedJob, prev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.jobs[j.ID]
	switch {
	case !ok:
		return savedjob.ErrNotFound
	case old.Version != prev:
		return savedjob.ErrConflict
	}
	s.jobs[j.ID] = j
	return nil
}

func (s *memStore) Delete(_ context.Context, id string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.jobs[id]
	switch {
	case !ok:
		return savedjob.ErrNotFound
	case old.Version != version:
		return savedjob.ErrConflict
	}
	delete(s.jobs, id)
	return nil
}

func (s *memStore) List(_ context.Context, _ string, _ int) ([]savedjob.SavedJob, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.jobs)), "", nil
}

// memDevices is an in-memory inventory: List filters by site, platform, one tag and scope, and
// pages one device at a time so paging is exercised.
type memDevices []device.Device

func (m memDevices) List(_ context.Context, f device.Filter, p device.Page) ([]device.Device, string, error) {
	start := 0
	if p.Cursor != "" {
		start = slices.IndexFunc(m, func(d device.Device) bool { return d.ID == p.Cursor })
	}
	for i := start; i < len(m); i++ {
		d := m[i]
		if (f.Site != "" && d.Site != f.Site) || (f.Platform != "" && d.Platform != f.Platform) ||
			(f.Sites != nil && !slices.Contains(f.Sites, d.Site)) {
			continue
		}
		if v, ok := d.Tags[f.TagKey]; f.TagKey != "" && (!ok || (f.TagValue != "" && v != f.TagValue)) {
			continue
		}
		next := ""
		if i+1 < len(m) {
			next = m[i+1].ID
		}
		return []device.Device{d}, next, nil
	}
	return nil, "", nil
}

func (m memDevices) GetMany(_ context.Context, ids []string) (map[string]device.Device, error) {
	out := map[string]device.Device{}
	for _, d := range m {
		if slices.Contains(ids, d.ID) {
			out[d.ID] = d
		}
	}
	return out, nil
}

// memAnswers is an in-memory bulk.AnswerStore.
type memAnswers struct {
	mu sync.Mutex
	m  map[string][]string
}

func (a *memAnswers) PutAnswers(_ context.Context, key string, answers []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.m[key] = answers
	return nil
}

func (a *memAnswers) GetAnswers(_ context.Context, key string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.m[key]
	if !ok {
		return nil, bulk.ErrAnswersGone
	}
	return v, nil
}

func (a *memAnswers) DeleteAnswers(_ context.Context, key string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, key)
	return nil
}

func dev(id, site, platform string, tags map[string]string) device.Device {
	return device.Device{ID: id, Site: site, Platform: platform, Tags: tags}
}

var (
	operator = auth.Identity{Subject: "ann", Email: "ann@example.com", Role: auth.Operator}
	other    = auth.Identity{Subject: "bob", Email: "bob@example.com", Role: auth.Operator}
	admin    = auth.Identity{Subject: "root", Email: "root@example.com", Role: auth.Admin}
	scoped   = auth.Identity{Subject: "olga", Email: "olga@example.com", Sites: map[string]auth.Role{"ams1": auth.Operator}}
	viewer   = auth.Identity{Subject: "vic", Email: "vic@example.com", Role: auth.Viewer}
)

func newRegistry(t *testing.T, devs memDevices) (*savedjob.Registry, *memAnswers) {
	t.Helper()
	answers := &memAnswers{m: map[string][]string{}}
	r, err := savedjob.New(&memStore{jobs: map[string]savedjob.SavedJob{}}, answers, devs)
	require.NoError(t, err)
	return r, answers
}

func ptr[T any](v T) *T { return &v }

func input(sel savedjob.Selector) savedjob.Input {
	return savedjob.Input{Name: ptr("job"), Command: ptr("show version"), Selector: &sel}
}

// TestResolve evaluates selectors over a small inventory: terms AND-ed, within the owner's scope.
func TestResolve(t *testing.T) {
	devs := memDevices{
		dev("a1", "ams1", "cisco_ios", map[string]string{"role": "core", "pod": "7"}),
		dev("a2", "ams1", "arista_eos", map[string]string{"role": "core"}),
		dev("a3", "ams1", "cisco_ios", map[string]string{"role": "edge"}),
		dev("f1", "fra1", "cisco_ios", map[string]string{"role": "core"}),
		dev("n1", "", "cisco_ios", map[string]string{"role": "core"}),
	}
	tests := []struct {
		name    string
		owner   auth.Identity
		sel     savedjob.Selector
		want    []string
		wantErr fault.Kind
	}{
		{name: "site", owner: operator, sel: savedjob.Selector{Site: "ams1"}, want: []string{"a1", "a2", "a3"}},
		{name: "tag", owner: operator, sel: savedjob.Selector{Tags: map[string]string{"role": "core"}}, want: []string{"a1", "a2", "f1", "n1"}},
		{name: "tag AND platform", owner: operator, sel: savedjob.Selector{Tags: map[string]string{"role": "core"}, Platform: "cisco_ios"}, want: []string{"a1", "f1", "n1"}},
		{name: "two tags AND-ed", owner: operator, sel: savedjob.Selector{Tags: map[string]string{"role": "core", "pod": "7"}}, want: []string{"a1"}},
		{name: "ids AND site", owner: operator, sel: savedjob.Selector{DeviceIDs: []string{"a3", "f1", "gone"}, Site: "ams1"}, want: []string{"a3"}},
		{name: "scoped owner by tag", owner: scoped, sel: savedjob.Selector{Tags: map[string]string{"role": "core"}}, want: []string{"a1", "a2"}},
		{name: "scoped owner by ids", owner: scoped, sel: savedjob.Selector{DeviceIDs: []string{"f1", "n1", "a3"}}, want: []string{"a3"}},
		{name: "nothing matches", owner: operator, sel: savedjob.Selector{Platform: "juniper_junos"}, wantErr: fault.NoMatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newRegistry(t, devs)
			sj, err := r.Create(context.Background(), input(tt.sel), tt.owner)
			require.NoError(t, err)
			ids, err := r.Resolve(context.Background(), sj)
			if tt.wantErr != fault.Internal {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, fault.KindOf(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ids)
		})
	}
}

// TestOwnership: the owner and admins change, delete and start a saved job; other operators and
// viewers may not; a caller out of its scope does not see it.
func TestOwnership(t *testing.T) {
	devs := memDevices{dev("a1", "ams1", "cisco_ios", nil)}
	tests := []struct {
		name    string
		owner   auth.Identity
		caller  auth.Identity
		wantErr fault.Kind // Internal: allowed
	}{
		{"owner", operator, operator, fault.Internal},
		{"admin", operator, admin, fault.Internal},
		{"another operator", operator, other, fault.Forbidden},
		{"a viewer", operator, viewer, fault.Forbidden},
		{"scoped owner", scoped, scoped, fault.Internal},
		{"an operator elsewhere does not see it", auth.Identity{Subject: "x", Sites: map[string]auth.Role{"ams1": auth.Operator}}, auth.Identity{Subject: "y", Sites: map[string]auth.Role{"fra1": auth.Operator}}, fault.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r, _ := newRegistry(t, devs)
			sj, err := r.Create(ctx, input(savedjob.Selector{Site: "ams1"}), tt.owner)
			require.NoError(t, err)
			check := func(what string, err error) {
				t.Helper()
				if tt.wantErr == fault.Internal {
					assert.NoError(t, err, what)
				} else {
					assert.Equal(t, tt.wantErr, fault.KindOf(err), "%s: %v", what, err)
				}
			}
			_, owner, err := r.Start(ctx, sj.ID, tt.caller)
			check("start", err)
			if err == nil {
				assert.Equal(t, tt.owner.Name(), owner.Name(), "the job runs as its owner")
			}
			updated, err := r.Update(ctx, sj.ID, savedjob.Input{Name: ptr("renamed")}, 0, tt.caller)
			check("update", err)
			if err == nil {
				assert.Equal(t, tt.owner.Name(), updated.Owner, "a change keeps the owner")
			}
			_, err = r.Delete(ctx, sj.ID, 0, tt.caller)
			check("delete", err)
		})
	}
}

// TestSecretAnswersFollowTheSavedJob: stored at save under a key of that version, put back at
// start, replaced by new commands, kept by other changes, deleted with the saved job.
func TestSecretAnswersFollowTheSavedJob(t *testing.T) {
	ctx := context.Background()
	r, answers := newRegistry(t, memDevices{dev("a1", "ams1", "cisco_ios", nil)})
	in := savedjob.Input{Name: ptr("copy"), Selector: &savedjob.Selector{DeviceIDs: []string{"a1"}}, Commands: []bulk.Command{
		{Command: "copy scp: flash:", Prompts: []bulk.Prompt{{Expect: "Password:", Answer: "pw1", Secret: true}}}}}
	sj, err := r.Create(ctx, in, admin)
	require.NoError(t, err)
	assert.Empty(t, sj.Commands[0].Prompts[0].Answer, "the saved job holds no secret answer")
	assert.Equal(t, map[string][]string{sj.AnswersKey: {"pw1"}}, answers.m)

	req, _, err := r.Start(ctx, sj.ID, admin)
	require.NoError(t, err)
	assert.Equal(t, "pw1", req.Commands[0].Prompts[0].Answer, "put back at start")
	assert.Equal(t, sj.ID, req.SavedJobID)

	renamed, err := r.Update(ctx, sj.ID, savedjob.Input{Name: ptr("copy 2")}, 0, admin)
	require.NoError(t, err)
	assert.Equal(t, sj.AnswersKey, renamed.AnswersKey, "a rename keeps the answers")

	in.Commands[0].Prompts[0].Answer = "pw2"
	changed, err := r.Update(ctx, sj.ID, savedjob.Input{Commands: in.Commands}, 0, admin)
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{changed.AnswersKey: {"pw2"}}, answers.m, "new answers replace the old")

	_, err = r.Update(ctx, sj.ID, savedjob.Input{Commands: in.Commands}, 1, admin)
	assert.True(t, errors.Is(err, savedjob.ErrConflict), "a stale version: %v", err)
	assert.Len(t, answers.m, 1, "a refused change leaves no answers behind")

	_, err = r.Delete(ctx, sj.ID, 0, admin)
	require.NoError(t, err)
	assert.Empty(t, answers.m, "deleted with the saved job")
}
