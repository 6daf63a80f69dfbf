package api

import (
	"maps"
	"net/http"
	"slices"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
)

// grantOrder lists the roles from the most powerful down, the order of WhoAmI.Roles. A role held
// everywhere never also appears on a site: a site grant is kept only when it is more.
var grantOrder = []auth.Role{auth.Admin, auth.Operator, auth.Viewer}

// whoAmI answers the caller's own identity and roles, so the UI and the CLI show what the API
// enforces rather than what they read from the token themselves.
func (s *Server) whoAmI(w http.ResponseWriter, _ *http.Request, id auth.Identity) {
	WriteJSON(w, http.StatusOK, whoAmIToWire(id))
}

func whoAmIToWire(id auth.Identity) apiwire.WhoAmI {
	out := apiwire.WhoAmI{Subject: id.Subject, Email: id.Email, Name: id.Name(), Role: string(id.Role),
		Roles: []apiwire.RoleGrant{}, Groups: id.Groups()}
	if out.Groups == nil {
		out.Groups = []string{}
	}
	for _, r := range grantOrder {
		if id.Role == r {
			out.Roles = append(out.Roles, apiwire.RoleGrant{Role: string(r)})
		}
		var sites []string
		for _, site := range slices.Sorted(maps.Keys(id.Sites)) {
			if id.Sites[site] == r {
				sites = append(sites, site)
			}
		}
		if len(sites) > 0 {
			out.Roles = append(out.Roles, apiwire.RoleGrant{Role: string(r), Sites: sites})
		}
	}
	return out
}
