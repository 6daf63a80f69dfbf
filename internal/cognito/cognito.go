// Package cognito asks an Amazon Cognito user pool about the owners of saved jobs
// (AdminGetUser, AdminListGroupsForUser): whether the account still exists and is enabled, and
// which roles its groups grant now. It implements savedjob.Owners.
package cognito

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/savedjob"
)

// API is the part of the Cognito Identity Provider client the adapter calls.
type API interface {
	AdminGetUser(ctx context.Context, in *cip.AdminGetUserInput, opts ...func(*cip.Options)) (*cip.AdminGetUserOutput, error)
	cip.AdminListGroupsForUserAPIClient
}

// Users reads accounts of one user pool.
type Users struct {
	api  API
	pool string
}

var _ savedjob.Owners = (*Users)(nil)

// NewUsers returns the adapter for user pool poolID (config checks its form).
func NewUsers(api API, poolID string) (*Users, error) {
	if api == nil {
		return nil, errors.New("new cognito users: no client")
	}
	if poolID == "" {
		return nil, errors.New("new cognito users: no user pool id")
	}
	return &Users{api: api, pool: poolID}, nil
}

// disabledStatus are account statuses that count as disabled although the account is enabled:
// an archived account, and one Cognito flagged as compromised.
var disabledStatus = map[types.UserStatusType]bool{types.UserStatusTypeArchived: true, types.UserStatusTypeCompromised: true}

// Account implements savedjob.Owners: name is a saved job's owner (a verified email, which is
// the pool's username attribute, or the subject), and the groups are read for the username
// Cognito answers with. A user the pool does not know wraps savedjob.ErrNoAccount.
func (u *Users) Account(ctx context.Context, name string) (savedjob.Account, error) {
	out, err := u.api.AdminGetUser(ctx, &cip.AdminGetUserInput{UserPoolId: aws.String(u.pool), Username: aws.String(name)})
	if _, ok := errors.AsType[*types.UserNotFoundException](err); ok {
		return savedjob.Account{}, fmt.Errorf("user %s: %w", name, savedjob.ErrNoAccount)
	}
	if err != nil {
		return savedjob.Account{}, fmt.Errorf("get user %s: %w", name, err)
	}
	username := aws.ToString(out.Username)
	if username == "" {
		username = name
	}
	var groups []string
	pages := cip.NewAdminListGroupsForUserPaginator(u.api, &cip.AdminListGroupsForUserInput{
		UserPoolId: aws.String(u.pool), Username: aws.String(username), Limit: aws.Int32(60),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if _, ok := errors.AsType[*types.UserNotFoundException](err); ok {
			return savedjob.Account{}, fmt.Errorf("user %s: %w", name, savedjob.ErrNoAccount)
		}
		if err != nil {
			return savedjob.Account{}, fmt.Errorf("list groups of user %s: %w", name, err)
		}
		for _, g := range page.Groups {
			groups = append(groups, aws.ToString(g.GroupName))
		}
	}
	return savedjob.Account{
		Enabled:  out.Enabled && !disabledStatus[out.UserStatus],
		Status:   string(out.UserStatus),
		Identity: auth.Identity{Subject: name}.WithGroups(groups),
	}, nil
}
