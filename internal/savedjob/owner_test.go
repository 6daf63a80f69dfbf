package savedjob_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/savedjob"
)

// fakeOwners answers from a map; err, when set, is the provider failing.
type fakeOwners struct {
	accounts map[string]savedjob.Account
	err      error
}

func (f fakeOwners) Account(_ context.Context, name string) (savedjob.Account, error) {
	if f.err != nil {
		return savedjob.Account{}, f.err
	}
	a, ok := f.accounts[name]
	if !ok {
		return savedjob.Account{}, savedjob.ErrNoAccount
	}
	return a, nil
}

// TestCheckOwner holds the owner rules: gone, disabled, or holding less than the recorded roles
// where the saved job's devices may be refuses with the reason; a provider error decides nothing.
func TestCheckOwner(t *testing.T) {
	t.Parallel()
	groups := func(g ...string) auth.Identity { return auth.Identity{Subject: "o"}.WithGroups(g) }
	global := bulk.Grants{Role: auth.Operator}
	adminAms := bulk.Grants{Role: auth.Operator, Sites: map[string]auth.Role{"ams1": auth.Admin}}
	scoped := bulk.Grants{Sites: map[string]auth.Role{"ams1": auth.Operator, "fra1": auth.Operator}}
	tests := []struct {
		name     string
		grants   bulk.Grants
		site     string
		acct     *savedjob.Account
		provider error
		want     string // the reason; "" allowed; "provider" an IdentityProviderError
	}{
		{name: "unchanged", grants: global, acct: &savedjob.Account{Enabled: true, Identity: groups("operator")}},
		{name: "promoted", grants: global, acct: &savedjob.Account{Enabled: true, Identity: groups("admin")}},
		{name: "deleted", grants: global, want: savedjob.ReasonOwnerDeleted},
		{name: "disabled", grants: global, acct: &savedjob.Account{Enabled: false, Identity: groups("operator")}, want: savedjob.ReasonOwnerDisabled},
		{name: "viewer now", grants: global, acct: &savedjob.Account{Enabled: true, Identity: groups("viewer")}, want: savedjob.ReasonOwnerDemoted},
		{name: "narrowed to a site, selector everywhere", grants: global, acct: &savedjob.Account{Enabled: true, Identity: groups("operator:ams1")}, want: savedjob.ReasonOwnerDemoted},
		{name: "narrowed to the selector's site", grants: global, site: "ams1", acct: &savedjob.Account{Enabled: true, Identity: groups("operator:ams1")}},
		{name: "narrowed to another site", grants: global, site: "ams1", acct: &savedjob.Account{Enabled: true, Identity: groups("operator:fra1")}, want: savedjob.ReasonOwnerDemoted},
		{name: "lost admin on a site it may reach", grants: adminAms, acct: &savedjob.Account{Enabled: true, Identity: groups("operator")}, want: savedjob.ReasonOwnerDemoted},
		{name: "lost admin on a site the selector leaves out", grants: adminAms, site: "fra1", acct: &savedjob.Account{Enabled: true, Identity: groups("operator")}},
		{name: "lost one of two sites", grants: scoped, acct: &savedjob.Account{Enabled: true, Identity: groups("operator:ams1")}, want: savedjob.ReasonOwnerDemoted},
		{name: "scoped owner made global", grants: scoped, acct: &savedjob.Account{Enabled: true, Identity: groups("operator")}},
		{name: "provider down", grants: global, provider: errors.New("connection refused"), want: "provider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			owners := fakeOwners{accounts: map[string]savedjob.Account{}, err: tc.provider}
			if tc.acct != nil {
				owners.accounts["olga@example.com"] = *tc.acct
			}
			j := savedjob.SavedJob{ID: "sj1", Owner: "olga@example.com", Grants: tc.grants, Selector: savedjob.Selector{Site: tc.site}}
			err := savedjob.CheckOwner(context.Background(), owners, j)
			switch tc.want {
			case "":
				require.NoError(t, err)
			case "provider":
				_, ok := errors.AsType[*savedjob.IdentityProviderError](err)
				require.True(t, ok, "%v", err)
				assert.Equal(t, fault.Unavailable, fault.KindOf(err))
			default:
				oe, ok := errors.AsType[*savedjob.OwnerError](err)
				require.True(t, ok, "%v", err)
				assert.Equal(t, tc.want, oe.Code())
				assert.Equal(t, fault.Forbidden, fault.KindOf(err))
				assert.Contains(t, err.Error(), "olga@example.com")
			}
		})
	}
	require.NoError(t, savedjob.CheckOwner(context.Background(), nil, savedjob.SavedJob{Owner: "x"}), "no provider: no check")
}
