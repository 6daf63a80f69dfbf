// Package auth is NetAuto's identity model: who the caller is (from the JWT claims API Gateway's
// authorizer validated), which role they hold and on which sites, and what each role may do. It
// also verifies and issues tokens for the local stack, where no API Gateway authorizer exists. It
// imports no AWS SDK.
package auth

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/netauto/netauto/internal/fault"
)

// Role is a caller's permission level. Each role includes the rights of those below it.
type Role string

// Roles, from least to most powerful.
const (
	// Viewer reads the inventory, runs, jobs and retention settings.
	Viewer Role = "viewer"
	// Operator also runs commands (single runs and bulk jobs) and cancels its own jobs.
	Operator Role = "operator"
	// Admin also changes the inventory, credentials, policy and retention, reads the audit trail,
	// cancels anyone's job, and may set requested_by for others.
	Admin Role = "admin"
)

var rank = map[Role]int{Viewer: 1, Operator: 2, Admin: 3}

// ParseRole returns the role named s and whether it is one.
func ParseRole(s string) (Role, bool) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	_, ok := rank[r]
	return r, ok
}

// AtLeast reports whether r includes the rights of need.
func (r Role) AtLeast(need Role) bool { return rank[r] >= rank[need] && rank[need] > 0 }

// GroupsClaim is the claim that carries the caller's groups (Cognito's name for it). A group
// named like a role grants that role everywhere; a group "<role>:<site>" grants it on that site's
// devices only.
const GroupsClaim = "cognito:groups"

// Identity is an authenticated caller.
type Identity struct {
	Subject string
	// Email is the caller's email when the token says it is verified; empty otherwise.
	Email string
	// Role is the most powerful role the caller holds everywhere (a plain group); empty when none.
	Role Role
	// Sites holds the roles granted on single sites ("<role>:<site>" groups), site → the most
	// powerful role there, only where that is more than Role. Nil when there are none.
	Sites map[string]Role
}

// Name is how the caller appears in requested_by and the audit trail: the verified email, or the
// subject when there is none.
func (id Identity) Name() string {
	if id.Email != "" {
		return id.Email
	}
	return id.Subject
}

// Can reports whether the identity holds at least role need everywhere.
func (id Identity) Can(need Role) bool { return id.Role.AtLeast(need) }

// CanOn reports whether the identity holds at least role need on site (everywhere, or on that
// site by a scoped group). A device without a site is reached only by an unscoped role.
func (id Identity) CanOn(need Role, site string) bool {
	if id.Can(need) {
		return true
	}
	return site != "" && id.Sites[site].AtLeast(need)
}

// CanSomewhere reports whether the identity holds at least role need everywhere or on some site:
// whether a site-scoped route may let it in at all.
func (id Identity) CanSomewhere(need Role) bool {
	if id.Can(need) {
		return true
	}
	for _, r := range id.Sites {
		if r.AtLeast(need) {
			return true
		}
	}
	return false
}

// CanOnAll reports whether the identity holds at least role need on every one of sites: what it
// takes to see a job, whose devices may span sites. An empty list (a job from before jobs recorded
// their sites) and the empty site (a device without a site) need the role everywhere.
func (id Identity) CanOnAll(need Role, sites []string) bool {
	if id.Can(need) {
		return true
	}
	if len(sites) == 0 {
		return false
	}
	for _, s := range sites {
		if !id.CanOn(need, s) {
			return false
		}
	}
	return true
}

// Scope says where the identity holds at least role need: all is true when it holds it
// everywhere; otherwise sites lists the sites (sorted), possibly none.
func (id Identity) Scope(need Role) (all bool, sites []string) {
	if id.Can(need) {
		return true, nil
	}
	for s, r := range id.Sites {
		if r.AtLeast(need) {
			sites = append(sites, s)
		}
	}
	slices.Sort(sites)
	return false, sites
}

// RoleOn is the most powerful role the identity holds on site; empty when none.
func (id Identity) RoleOn(site string) Role {
	r := id.Role
	if s := id.Sites[site]; site != "" && rank[s] > rank[r] {
		r = s
	}
	return r
}

// ErrNoIdentity means a request reached the handler without validated claims.
var ErrNoIdentity = fault.New(fault.Unauthorized, "", "no authenticated identity")

// FromClaims builds an identity from claims in the form API Gateway's JWT authorizer hands to the
// function: every value a string, arrays flattened to "[a b c]". The email counts only when
// email_verified is "true": a user may change their own unverified email. Groups are whole names:
// a group "ops,admin" is one group that grants nothing.
func FromClaims(claims map[string]string) (Identity, error) {
	sub := claims["sub"]
	if sub == "" {
		return Identity{}, ErrNoIdentity
	}
	id := Identity{Subject: sub}
	if strings.EqualFold(strings.TrimSpace(claims["email_verified"]), "true") {
		id.Email = claims["email"]
	}
	return id.WithGroups(splitGroups(claims[GroupsClaim])), nil
}

// WithGroups returns id holding exactly the roles groups grant: a group named like a role grants
// it everywhere, "<role>:<site>" on that site; other groups grant nothing. It is the one mapping
// from groups to roles, for the token's groups claim and for groups read from the identity
// provider.
func (id Identity) WithGroups(groups []string) Identity {
	id.Role, id.Sites = "", nil
	for _, g := range groups {
		role, site, scoped := strings.Cut(g, ":")
		r, ok := ParseRole(role)
		switch {
		case !ok:
		case !scoped:
			if rank[r] > rank[id.Role] {
				id.Role = r
			}
		case validSite(site):
			if id.Sites == nil {
				id.Sites = map[string]Role{}
			}
			if rank[r] > rank[id.Sites[site]] {
				id.Sites[site] = r
			}
		}
	}
	for s, r := range id.Sites {
		if rank[r] <= rank[id.Role] {
			delete(id.Sites, s)
		}
	}
	if len(id.Sites) == 0 {
		id.Sites = nil
	}
	return id
}

// Groups returns the groups that grant exactly id's roles: the plain role, then one
// "<role>:<site>" per scoped site, sorted. It is the inverse of FromClaims for a stored identity.
func (id Identity) Groups() []string {
	var out []string
	if id.Role != "" {
		out = append(out, string(id.Role))
	}
	for _, s := range slices.Sorted(maps.Keys(id.Sites)) {
		out = append(out, string(id.Sites[s])+":"+s)
	}
	return out
}

// validSite reports whether s can name a site in a group: not empty, no spaces or separators.
func validSite(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n,:[]\"")
}

// splitGroups reads a JSON array, or API Gateway's flattening "[a b]" (group names never hold
// spaces in Cognito), or a single name. Commas never separate groups.
func splitGroups(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var arr []string
	if json.Unmarshal([]byte(s), &arr) == nil {
		return arr
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return strings.Fields(s[1 : len(s)-1])
	}
	return []string{s}
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
