package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// resource names one versioned admin resource of the API (credential profiles, jump hosts,
// webhooks) so its list, show, create, update and delete commands share their calls and messages.
type resource struct {
	path   string // the collection's route, "/jump-hosts"
	noun   string // one record in messages, "jump host"
	plural string // the collection in messages, "jump hosts"
}

// itemPath is the route of one record.
func (r resource) itemPath(id string) string { return r.path + "/" + url.PathEscape(id) }

// listCommand is `list`: every record, as JSON with --json, else a table of header and the lines
// rows writes, one a record.
func listCommand[L any](a *app, r resource, short, header string, rows func(tw io.Writer, l L)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var raw json.RawMessage
			if err := a.call(cmd, "GET", r.path, nil, &raw); err != nil {
				return fmt.Errorf("%s: %w", r.plural, err)
			}
			if a.json {
				return a.printJSON(raw)
			}
			var l L
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("decode %s: %w", r.plural, err)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, header)
			rows(tw, l)
			return tw.Flush()
		},
	}
}

// showCommand is `show ID`: one record, printed by print.
func (a *app) showCommand(r resource, short string, print func(json.RawMessage) error) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := a.call(cmd, "GET", r.itemPath(args[0]), nil, &raw); err != nil {
				return fmt.Errorf("%s %s: %w", r.noun, args[0], err)
			}
			return print(raw)
		},
	}
}

// deleteCommand is `delete ID`.
func (a *app) deleteCommand(r resource, short string) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.call(cmd, "DELETE", r.itemPath(args[0]), nil, nil); err != nil {
				return fmt.Errorf("delete %s %s: %w", r.noun, args[0], err)
			}
			fmt.Fprintf(a.io.Out, "deleted %s %s\n", r.noun, terminalSafeString(args[0]))
			return nil
		},
	}
}

// send sends a create or update body and prints the record the API answers with print; what
// names the step in the error ("create jump host x").
func (a *app) send(cmd *cobra.Command, method, path string, body any, what string, print func(json.RawMessage) error) error {
	var raw json.RawMessage
	if err := a.call(cmd, method, path, body, &raw); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return print(raw)
}

// patchVersion is update's --version for the patch: the version the record must still be at,
// nil when the flag is not given.
func patchVersion(cmd *cobra.Command) *int64 {
	if !cmd.Flags().Changed("version") {
		return nil
	}
	v, _ := cmd.Flags().GetInt64("version")
	return &v
}

// printFields prints name: value lines, aligned, every value made safe for a terminal.
func printFields(tw io.Writer, fields [][2]string) {
	for _, kv := range fields {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], terminalSafeString(kv[1]))
	}
}
