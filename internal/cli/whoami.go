package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// whoamiCommand is `netauto whoami`: the caller and their roles as the API sees the token.
func (a *app) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Who the API takes you for, and your roles with where they hold",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var me apiwire.WhoAmI
			if err := c.Do(cmd.Context(), "GET", "/whoami", nil, nil, "", &me); err != nil {
				return fmt.Errorf("whoami: %w", err)
			}
			if a.json {
				return a.printJSON(me)
			}
			return printWhoAmI(a.io.Out, me)
		},
	}
}

// printWhoAmI writes the caller's name, subject, verified email and roles, one grant a line.
func printWhoAmI(w io.Writer, me apiwire.WhoAmI) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	email := me.Email
	if email == "" {
		email = "(none verified)"
	}
	fmt.Fprintf(tw, "name:\t%s\nsubject:\t%s\nemail:\t%s\n", terminalSafeString(me.Name), terminalSafeString(me.Subject), terminalSafeString(email))
	if len(me.Roles) == 0 {
		fmt.Fprintln(tw, "role:\tnone")
	}
	for i, g := range me.Roles {
		label := ""
		if i == 0 {
			label = "role:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, describeGrant(g))
	}
	return tw.Flush()
}

// describeGrants reads grants on one line: "operator on ams1, fra2; viewer", or "no role".
func describeGrants(grants []apiwire.RoleGrant) string {
	if len(grants) == 0 {
		return "no role"
	}
	parts := make([]string, len(grants))
	for i, g := range grants {
		parts[i] = describeGrant(g)
	}
	return strings.Join(parts, "; ")
}

// describeGrant reads a grant as "admin" (everywhere) or "operator on ams1, fra2".
func describeGrant(g apiwire.RoleGrant) string {
	if len(g.Sites) == 0 {
		return terminalSafeString(g.Role)
	}
	return terminalSafeString(g.Role + " on " + strings.Join(g.Sites, ", "))
}
