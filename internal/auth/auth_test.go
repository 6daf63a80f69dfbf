package auth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFromClaims(t *testing.T) {
	tests := []struct {
		name   string
		claims map[string]string
		want   Identity
	}{
		{"plain group", map[string]string{"sub": "u", GroupsClaim: "[operator]"}, Identity{Subject: "u", Role: Operator}},
		{"most powerful plain group wins", map[string]string{"sub": "u", GroupsClaim: "[viewer admin operator]"}, Identity{Subject: "u", Role: Admin}},
		{"JSON array", map[string]string{"sub": "u", GroupsClaim: `["viewer","operator"]`}, Identity{Subject: "u", Role: Operator}},
		{"a comma is part of the group's name", map[string]string{"sub": "u", GroupsClaim: "[ops,admin]"}, Identity{Subject: "u"}},
		{"a single comma name grants nothing", map[string]string{"sub": "u", GroupsClaim: "viewer,admin"}, Identity{Subject: "u"}},
		{"scoped group", map[string]string{"sub": "u", GroupsClaim: "[operator:ams1]"}, Identity{Subject: "u", Sites: map[string]Role{"ams1": Operator}}},
		{"scoped groups beside a plain one", map[string]string{"sub": "u", GroupsClaim: "[viewer operator:ams1 admin:fra2 viewer:lon1]"},
			Identity{Subject: "u", Role: Viewer, Sites: map[string]Role{"ams1": Operator, "fra2": Admin}}},
		{"plain role covers a weaker scoped one", map[string]string{"sub": "u", GroupsClaim: "[admin operator:ams1]"}, Identity{Subject: "u", Role: Admin}},
		{"scoped group with no site grants nothing", map[string]string{"sub": "u", GroupsClaim: "[operator:]"}, Identity{Subject: "u"}},
		{"unknown role in a scoped group", map[string]string{"sub": "u", GroupsClaim: "[root:ams1]"}, Identity{Subject: "u"}},
		{"verified email names the caller", map[string]string{"sub": "u", "email": "a@example.com", "email_verified": "true"}, Identity{Subject: "u", Email: "a@example.com"}},
		{"unverified email is ignored", map[string]string{"sub": "u", "email": "boss@example.com", "email_verified": "false"}, Identity{Subject: "u"}},
		{"email without email_verified is ignored", map[string]string{"sub": "u", "email": "boss@example.com"}, Identity{Subject: "u"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromClaims(tt.claims)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := FromClaims(map[string]string{GroupsClaim: "[admin]"})
	assert.ErrorIs(t, err, ErrNoIdentity, "no subject")
}

func TestIdentityScope(t *testing.T) {
	scoped := Identity{Subject: "u", Role: Viewer, Sites: map[string]Role{"ams1": Operator, "fra2": Admin}}
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"operator on its site", scoped.CanOn(Operator, "ams1"), true},
		{"operator elsewhere", scoped.CanOn(Operator, "lon1"), false},
		{"viewer elsewhere by the plain group", scoped.CanOn(Viewer, "lon1"), true},
		{"no site needs an unscoped role", scoped.CanOn(Operator, ""), false},
		{"admin on fra2", scoped.CanOn(Admin, "fra2"), true},
		{"not admin everywhere", scoped.Can(Admin), false},
		{"operator somewhere", scoped.CanSomewhere(Operator), true},
		{"nobody without groups", Identity{Subject: "x"}.CanSomewhere(Viewer), false},
		{"all of a job's sites in scope", scoped.CanOnAll(Operator, []string{"ams1", "fra2"}), true},
		{"one of a job's sites out of scope", scoped.CanOnAll(Operator, []string{"ams1", "lon1"}), false},
		{"a job's device without a site", scoped.CanOnAll(Operator, []string{"", "ams1"}), false},
		{"a job without recorded sites", scoped.CanOnAll(Operator, nil), false},
		{"a plain role sees a job without recorded sites", scoped.CanOnAll(Viewer, nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, tt.got) })
	}
	all, sites := scoped.Scope(Operator)
	assert.False(t, all)
	assert.Equal(t, []string{"ams1", "fra2"}, sites)
	all, _ = scoped.Scope(Viewer)
	assert.True(t, all)
	assert.Equal(t, Operator, scoped.RoleOn("ams1"))
	assert.Equal(t, Viewer, scoped.RoleOn("lon1"))
	assert.Equal(t, []string{"viewer", "operator:ams1", "admin:fra2"}, scoped.Groups())
	back, err := FromClaims(map[string]string{"sub": "u", GroupsClaim: `["viewer","operator:ams1","admin:fra2"]`})
	require.NoError(t, err)
	assert.Equal(t, scoped, back)
}
