package savedjob

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/fault"
)

// Reasons a schedule is paused by the system, shown as its paused_reason and, for a start by
// hand, as the refusal's error code.
const (
	// ReasonOwnerDisabled: the identity provider says the owner's account is disabled.
	ReasonOwnerDisabled = "owner_disabled"
	// ReasonOwnerDeleted: the identity provider has no such user any more.
	ReasonOwnerDeleted = "owner_deleted"
	// ReasonOwnerDemoted: the owner's current groups no longer grant the roles recorded when they
	// saved it, on the sites its devices may be on.
	ReasonOwnerDemoted = "owner_demoted"
	// ReasonOwnerForbidden: the owner's recorded roles no longer let them start it.
	ReasonOwnerForbidden = "owner_forbidden"
)

// Account is what the identity provider says of a user now.
type Account struct {
	// Enabled is false for an account an administrator disabled.
	Enabled bool
	// Status is the provider's account status (Cognito's UserStatus: CONFIRMED, ...), for the
	// message.
	Status string
	// Identity holds the roles the user's groups grant now (auth.Identity.WithGroups).
	Identity auth.Identity
}

// ErrNoAccount is returned (wrapped) by an Owners lookup when the provider has no such user.
var ErrNoAccount = errors.New("no such user in the identity provider")

// Owners asks the identity provider about a saved job's owner; nil when the deployment has none
// to ask (the recorded roles are then all there is).
type Owners interface {
	// Account returns user name's account now: an error wrapping ErrNoAccount when there is no
	// such user; any other error means the provider could not be asked.
	Account(ctx context.Context, name string) (Account, error)
}

// OwnerError refuses a start because the identity provider says the saved job's owner may no
// longer start it; Reason is one of the Reason* tokens.
type OwnerError struct {
	SavedJobID, Owner, Reason string
	detail                    string
}

// Error implements error.
func (e *OwnerError) Error() string {
	return fmt.Sprintf("saved job %s is not started: its owner %s %s (%s)", e.SavedJobID, e.Owner, e.detail, e.Reason)
}

// Kind implements fault.Described: the owner is not allowed to.
func (e *OwnerError) Kind() fault.Kind { return fault.Forbidden }

// Field implements fault.Described.
func (e *OwnerError) Field() string { return "id" }

// Public implements fault.Described.
func (e *OwnerError) Public() string { return e.Error() }

// Code is the error code the API answers with: the reason.
func (e *OwnerError) Code() string { return e.Reason }

// IdentityProviderError means the identity provider could not be asked about an owner: nothing
// is decided (no pause); the scheduler tries again at its next fire.
type IdentityProviderError struct {
	Owner string
	Err   error
}

// Error implements error; the cause is the adapter's, which names no secret.
func (e *IdentityProviderError) Error() string {
	return fmt.Sprintf("ask the identity provider about %s: %v", e.Owner, e.Err)
}

// Unwrap returns the cause.
func (e *IdentityProviderError) Unwrap() error { return e.Err }

// Kind implements fault.Described: the caller may retry.
func (e *IdentityProviderError) Kind() fault.Kind { return fault.Unavailable }

// Field implements fault.Described.
func (e *IdentityProviderError) Field() string { return "" }

// Public implements fault.Described: the provider's own error stays in the log.
func (e *IdentityProviderError) Public() string {
	return "the identity provider could not be asked about the saved job's owner; try again"
}

// CheckOwner asks owners about j's owner: an *OwnerError when the account is gone or disabled,
// or its groups now grant less than the roles recorded on the sites j's devices may be on; an
// *IdentityProviderError when the provider could not be asked; nil when the owner may start it,
// or when owners is nil.
func CheckOwner(ctx context.Context, owners Owners, j SavedJob) error {
	if owners == nil {
		return nil
	}
	acct, err := owners.Account(ctx, j.Owner)
	refuse := func(reason, detail string) error {
		return &OwnerError{SavedJobID: j.ID, Owner: j.Owner, Reason: reason, detail: detail}
	}
	switch {
	case errors.Is(err, ErrNoAccount):
		return refuse(ReasonOwnerDeleted, "no longer exists in the identity provider")
	case err != nil:
		return &IdentityProviderError{Owner: j.Owner, Err: err}
	case !acct.Enabled:
		return refuse(ReasonOwnerDisabled, "is disabled in the identity provider")
	}
	if site, ok := demotedOn(j, acct.Identity); !ok {
		where := "everywhere"
		if site != "" {
			where = "on site " + site
		}
		return refuse(ReasonOwnerDemoted, fmt.Sprintf("no longer holds the %s role %s recorded when they saved it",
			j.OwnerIdentity().RoleOn(site), where))
	}
	return nil
}

// demotedOn checks that now grants, on every scope j's devices may be on, at least the role
// recorded when j was saved: the selector's site when it names one, else everywhere and each
// site the recorded roles name. It returns the first scope that falls short ("" for
// everywhere) and false, or true when none does.
func demotedOn(j SavedJob, now auth.Identity) (string, bool) {
	recorded := j.OwnerIdentity()
	scopes := []string{j.Selector.Site}
	if j.Selector.Site == "" {
		scopes = append(scopes, slices.Sorted(maps.Keys(recorded.Sites))...)
	}
	for _, s := range scopes {
		if need := recorded.RoleOn(s); need != "" && !now.RoleOn(s).AtLeast(need) {
			return s, false
		}
	}
	return "", true
}
