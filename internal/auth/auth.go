// Package auth is NetAuto's identity model: who the caller is (from the JWT claims API Gateway's
// authorizer validated), which role they hold, and what each role may do. It also verifies and
// issues tokens for the local stack, where no API Gateway authorizer exists. It imports no AWS SDK.
package auth

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/netauto/netauto/internal/fault"
)

// Role is a caller's permission level. Each role includes the rights of those below it.
type Role string

// Roles, from least to most powerful.
const (
	// Viewer reads the inventory, runs, jobs and retention settings.
	Viewer Role = "viewer"
	// Operator also runs commands (single runs and bulk jobs) and cancels jobs.
	Operator Role = "operator"
	// Admin also changes the inventory and retention, and may set requested_by for others.
	Admin Role = "admin"
)

var rank = map[Role]int{Viewer: 1, Operator: 2, Admin: 3}

// ParseRole returns the role named s and whether it is one.
func ParseRole(s string) (Role, bool) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	_, ok := rank[r]
	return r, ok
}

// GroupsClaim is the claim that carries the caller's groups (Cognito's name for it); groups named
// like a role grant that role.
const GroupsClaim = "cognito:groups"

// Identity is an authenticated caller.
type Identity struct {
	Subject string
	Email   string
	// Role is the most powerful role among the caller's groups; empty when none.
	Role Role
}

// Name is how the caller appears in requested_by: the email, or the subject when there is none.
func (id Identity) Name() string {
	if id.Email != "" {
		return id.Email
	}
	return id.Subject
}

// Can reports whether the identity holds at least role need.
func (id Identity) Can(need Role) bool {
	return rank[id.Role] >= rank[need] && rank[need] > 0
}

// ErrNoIdentity means a request reached the handler without validated claims.
var ErrNoIdentity = fault.New(fault.Unauthorized, "", "no authenticated identity")

// FromClaims builds an identity from claims in the form API Gateway's JWT authorizer hands to the
// function: every value a string, arrays flattened to "[a b c]".
func FromClaims(claims map[string]string) (Identity, error) {
	sub := claims["sub"]
	if sub == "" {
		return Identity{}, ErrNoIdentity
	}
	id := Identity{Subject: sub, Email: claims["email"]}
	for _, g := range splitList(claims[GroupsClaim]) {
		if r, ok := ParseRole(g); ok && rank[r] > rank[id.Role] {
			id.Role = r
		}
	}
	return id, nil
}

// splitList reads "[a b]" (API Gateway's flattening), a JSON array, or "a,b".
func splitList(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var arr []string
	if json.Unmarshal([]byte(s), &arr) == nil {
		return arr
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}

type ctxKey struct{}

// WithIdentity returns a context carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity in ctx, if any.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}
