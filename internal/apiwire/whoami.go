package apiwire

// WhoAmI is the body of GET /v1/whoami: the caller as the API sees them, from the token's verified
// claims.
type WhoAmI struct {
	Subject string `json:"subject"`
	// Email is the token's email when it is verified; empty otherwise.
	Email string `json:"email,omitempty"`
	// Name is how the caller appears in requested_by and the audit trail.
	Name string `json:"name"`
	// Role is the most powerful role held everywhere (a plain group); empty when none.
	Role string `json:"role,omitempty"`
	// Roles lists every grant, most powerful first: a role everywhere (no sites), or a role on
	// the listed sites only.
	Roles []RoleGrant `json:"roles"`
	// Groups are the groups that grant exactly these roles, e.g. ["viewer", "operator:ams1"].
	Groups []string `json:"groups"`
}

// RoleGrant is one role and where it holds: everywhere when Sites is empty.
type RoleGrant struct {
	Role  string   `json:"role"`
	Sites []string `json:"sites,omitempty"`
}
