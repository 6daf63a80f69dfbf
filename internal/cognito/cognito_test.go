package cognito_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	standin "github.com/netauto/netauto/infra/cognito"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/cognito"
	"github.com/netauto/netauto/internal/savedjob"
)

const pool = "eu-west-1_Test123"

// newUsers starts the stand-in and returns the adapter over the real SDK client pointed at it.
func newUsers(t *testing.T) (*cognito.Users, *standin.Server) {
	t.Helper()
	idp := standin.New(pool)
	srv := httptest.NewServer(idp)
	t.Cleanup(srv.Close)
	client := cip.New(cip.Options{
		Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	users, err := cognito.NewUsers(client, pool)
	require.NoError(t, err)
	return users, idp
}

// TestAccount reads accounts through Cognito's JSON protocol: found by email (the pool's
// username attribute), groups mapped to roles as the token's groups are, paged groups read whole,
// a disabled or archived account not enabled, an unknown user ErrNoAccount.
func TestAccount(t *testing.T) {
	t.Parallel()
	users, idp := newUsers(t)
	many := []string{"viewer"}
	for i := range 70 { // more than one page of 60
		many = append(many, fmt.Sprintf("operator:site%02d", i))
	}
	idp.Put(standin.User{Username: "0001", Email: "olga@example.com", Enabled: true, Groups: []string{"operator", "admin:lab", "unrelated"}})
	idp.Put(standin.User{Username: "0002", Email: "dan@example.com", Enabled: false, Groups: []string{"operator"}})
	idp.Put(standin.User{Username: "0003", Email: "arc@example.com", Enabled: true, Status: "ARCHIVED", Groups: []string{"operator"}})
	idp.Put(standin.User{Username: "0004", Email: "many@example.com", Enabled: true, Groups: many})
	ctx := context.Background()
	tests := []struct {
		name        string
		user        string
		wantEnabled bool
		wantStatus  string
		wantRole    auth.Role
		wantSites   int
	}{
		{name: "enabled operator with a scoped admin group", user: "olga@example.com", wantEnabled: true, wantStatus: "CONFIRMED", wantRole: auth.Operator, wantSites: 1},
		{name: "by the pool's own username", user: "0001", wantEnabled: true, wantStatus: "CONFIRMED", wantRole: auth.Operator, wantSites: 1},
		{name: "disabled", user: "dan@example.com", wantEnabled: false, wantStatus: "CONFIRMED", wantRole: auth.Operator},
		{name: "archived counts as disabled", user: "arc@example.com", wantEnabled: false, wantStatus: "ARCHIVED", wantRole: auth.Operator},
		{name: "groups over two pages", user: "many@example.com", wantEnabled: true, wantStatus: "CONFIRMED", wantRole: auth.Viewer, wantSites: 70},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			acct, err := users.Account(ctx, tc.user)
			require.NoError(t, err)
			assert.Equal(t, tc.wantEnabled, acct.Enabled)
			assert.Equal(t, tc.wantStatus, acct.Status)
			assert.Equal(t, tc.wantRole, acct.Identity.Role)
			assert.Len(t, acct.Identity.Sites, tc.wantSites)
		})
	}
	acct, err := users.Account(ctx, "olga@example.com")
	require.NoError(t, err)
	assert.Equal(t, auth.Admin, acct.Identity.RoleOn("lab"), "admin:lab maps as the token path maps it")

	_, err = users.Account(ctx, "nobody@example.com")
	require.ErrorIs(t, err, savedjob.ErrNoAccount)
}

// TestAccountProviderDown: a provider that fails is an error that is not ErrNoAccount, so nothing
// is decided on it.
func TestAccountProviderDown(t *testing.T) {
	t.Parallel()
	users, idp := newUsers(t)
	idp.Put(standin.User{Username: "0001", Email: "olga@example.com", Enabled: true, Groups: []string{"operator"}})
	idp.SetDown(true)
	_, err := users.Account(context.Background(), "olga@example.com")
	require.Error(t, err)
	assert.NotErrorIs(t, err, savedjob.ErrNoAccount)
	assert.Contains(t, err.Error(), "InternalErrorException")
}

// TestNewUsersNeedsPool: no pool id, no adapter.
func TestNewUsersNeedsPool(t *testing.T) {
	t.Parallel()
	_, err := cognito.NewUsers(cip.New(cip.Options{Region: "eu-west-1"}), "")
	require.Error(t, err)
}
