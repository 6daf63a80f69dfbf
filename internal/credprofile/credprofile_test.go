package credprofile_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/credprofile"
	"github.com/netauto/netauto/internal/device"
)

func TestProfileAllows(t *testing.T) {
	p := credprofile.Profile{ID: "p", AllowedSites: []string{"ams1"}, AllowedTags: []map[string]string{{"role": "lab", "env": "dev"}}}
	tests := []struct {
		name  string
		p     credprofile.Profile
		site  string
		tags  map[string]string
		allow bool
	}{
		{name: "site listed", p: p, site: "ams1", allow: true},
		{name: "site not listed", p: p, site: "fra1"},
		{name: "no site never matches", p: credprofile.Profile{AllowedSites: []string{""}}, site: ""},
		{name: "every tag of a set", p: p, site: "fra1", tags: map[string]string{"role": "lab", "env": "dev", "x": "y"}, allow: true},
		{name: "part of a set", p: p, site: "fra1", tags: map[string]string{"role": "lab"}},
		{name: "tag value differs", p: p, site: "fra1", tags: map[string]string{"role": "lab", "env": "prod"}},
		{name: "any site", p: credprofile.Profile{AllowedSites: []string{credprofile.AnySite}}, site: "", allow: true},
		{name: "nothing allowed", p: credprofile.Profile{}, site: "ams1", tags: map[string]string{"role": "lab"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Allows(device.Device{ID: "d", Site: tc.site, Tags: tc.tags})
			if tc.allow {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, device.ErrCredentialNotAllowed)
		})
	}
}

// memStore is an in-memory credprofile.Store for the registry's domain logic.
type memStore map[string]credprofile.Profile

func (m memStore) Create(_ context.Context, p credprofile.Profile) error {
	if _, ok := m[p.ID]; ok {
		return credprofile.ErrExists
	}
	m[p.ID] = p
	return nil
}

func (m memStore) Get(_ context.Context, id string) (credprofile.Profile, error) {
	p, ok := m[id]
	if !ok {
		return credprofile.Profile{}, credprofile.ErrNotFound
	}
	return p, nil
}

func (m memStore) Update(_ context.Context, p credprofile.Profile, prev int64) error {
	if cur, ok := m[p.ID]; !ok || cur.Version != prev {
		return credprofile.ErrConflict
	}
	m[p.ID] = p
	return nil
}

func (m memStore) Delete(_ context.Context, id string, _ int64) error { delete(m, id); return nil }

func (m memStore) List(context.Context) ([]credprofile.Profile, error) { return nil, nil }

func (m memStore) UsedBy(context.Context, string, int) ([]string, error) { return nil, nil }

type memSecrets map[string]device.Credential

func (m memSecrets) Put(_ context.Context, name string, c device.Credential) error {
	m[name] = c
	return nil
}

func (m memSecrets) Get(_ context.Context, name string) (device.Credential, error) {
	c, ok := m[name]
	if !ok {
		return device.Credential{}, device.ErrNotFound
	}
	return c, nil
}

func (m memSecrets) Delete(_ context.Context, name string) error { delete(m, name); return nil }

// TestCredentialChecksAtReadTime: the registry hands a profile's secret only to a device the
// profile allows when the secret is read, so narrowing a profile takes effect at once.
func TestCredentialChecksAtReadTime(t *testing.T) {
	ctx := context.Background()
	reg, err := credprofile.NewRegistry(memStore{}, memSecrets{})
	require.NoError(t, err)
	_, err = reg.Create(ctx, credprofile.Input{Profile: credprofile.Profile{ID: "ams", Username: "svc", AllowedSites: []string{"ams1"}},
		Secret: device.Credential{Password: "pw"}})
	require.NoError(t, err)
	d := device.Device{ID: "r1", Site: "ams1", CredentialProfile: "ams"}
	c, err := reg.Credential(ctx, "ams", d)
	require.NoError(t, err)
	assert.Equal(t, device.Credential{Login: "svc", Password: "pw"}, c)

	sites := []string{"fra1"}
	_, err = reg.Update(ctx, "ams", credprofile.Patch{AllowedSites: &sites})
	require.NoError(t, err)
	_, err = reg.Credential(ctx, "ams", d)
	require.ErrorIs(t, err, device.ErrCredentialNotAllowed)

	_, err = reg.Credential(ctx, "gone", d)
	require.ErrorIs(t, err, device.ErrNotFound)
	_, err = reg.Rule(ctx, "gone")
	require.ErrorIs(t, err, device.ErrUnknownProfile)
}
