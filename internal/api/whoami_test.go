package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
)

// TestWhoAmI reads the caller's identity and roles back through the gateway's JWT check, for
// plain and scoped groups, an unverified email, and tokens that grant no role.
func TestWhoAmI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name   string
		spec   auth.TokenSpec
		status int
		want   apiwire.WhoAmI
	}{
		{name: "admin everywhere", spec: auth.TokenSpec{Subject: "u-admin", Email: "ada@example.com", Groups: []string{"admin"}},
			status: http.StatusOK, want: apiwire.WhoAmI{Subject: "u-admin", Email: "ada@example.com", Name: "ada@example.com", Role: "admin",
				Roles: []apiwire.RoleGrant{{Role: "admin"}}, Groups: []string{"admin"}}},
		{name: "operator on two sites", spec: auth.TokenSpec{Subject: "u-op", Email: "olga@example.com", Groups: []string{"operator:fra2", "operator:ams1"}},
			status: http.StatusOK, want: apiwire.WhoAmI{Subject: "u-op", Email: "olga@example.com", Name: "olga@example.com",
				Roles: []apiwire.RoleGrant{{Role: "operator", Sites: []string{"ams1", "fra2"}}}, Groups: []string{"operator:ams1", "operator:fra2"}}},
		{name: "viewer everywhere, more on some sites", spec: auth.TokenSpec{Subject: "u-mix", Email: "max@example.com",
			Groups: []string{"viewer", "operator:ams1", "admin:lab", "viewer:fra1"}},
			status: http.StatusOK, want: apiwire.WhoAmI{Subject: "u-mix", Email: "max@example.com", Name: "max@example.com", Role: "viewer",
				Roles:  []apiwire.RoleGrant{{Role: "admin", Sites: []string{"lab"}}, {Role: "operator", Sites: []string{"ams1"}}, {Role: "viewer"}},
				Groups: []string{"viewer", "operator:ams1", "admin:lab"}}},
		{name: "unverified email is not the name", spec: auth.TokenSpec{Subject: "u-unv", Email: "boss@example.com", EmailUnverified: true, Groups: []string{"viewer"}},
			status: http.StatusOK, want: apiwire.WhoAmI{Subject: "u-unv", Name: "u-unv", Role: "viewer",
				Roles: []apiwire.RoleGrant{{Role: "viewer"}}, Groups: []string{"viewer"}}},
		{name: "no role", spec: auth.TokenSpec{Subject: "u-none", Email: "nobody@example.com"}, status: http.StatusForbidden},
		{name: "a comma in a group grants nothing", spec: auth.TokenSpec{Subject: "u-comma", Email: "eve@example.com", Groups: []string{"ops,admin"}},
			status: http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok, err := e.signer.Issue(c.spec)
			require.NoError(t, err, "issue token")
			r := e.forT(t).do(tok, "GET", "/v1/whoami", "", nil)
			require.Equal(t, c.status, r.Status, "body %s", r.Body)
			if c.status != http.StatusOK {
				var eb errorBody
				r.JSON(t, &eb)
				assert.Equal(t, "forbidden", eb.Error.Code, "error code")
				return
			}
			var got apiwire.WhoAmI
			r.JSON(t, &got)
			assert.Equal(t, c.want, got, "whoami")
		})
	}
	assert.Empty(t, e.audit.Entries(), "whoami is a read: it writes no audit entry")
}
