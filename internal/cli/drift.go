package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

func (a *app) diffCommand() *cobra.Command {
	var raw bool
	var context int
	cmd := &cobra.Command{
		Use:   "diff RUN [NEW_RUN]",
		Short: "What changed in a run's output: against its previous run, or from RUN to NEW_RUN",
		Long: "With one run: what changed since the previous successful run of its command on its device.\n" +
			"With two: what changed from the first to the second. Noise lines (timestamps, uptimes, ...;\n" +
			"see `netauto platforms filters`) are left out unless --raw. Prints a unified diff, nothing\n" +
			"when there is no change (--json: the hunks).",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			newRun, q := args[0], url.Values{}
			if len(args) == 2 {
				newRun = args[1]
				q.Set("against", args[0])
			}
			if raw {
				q.Set("raw", "1")
			}
			if cmd.Flags().Changed("context") {
				q.Set("context", strconv.Itoa(context))
			}
			path := "/runs/" + url.PathEscape(newRun) + "/diff"
			if a.json {
				q.Set("format", "json")
				var d json.RawMessage
				if err := c.Do(cmd.Context(), "GET", path, q, nil, "", &d); err != nil {
					return fmt.Errorf("diff %s: %w", newRun, err)
				}
				return a.printJSON(d)
			}
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			resp, err := c.DoRaw(cmd.Context(), "GET", path)
			if err != nil {
				return fmt.Errorf("diff %s: %w", newRun, err)
			}
			defer resp.Body.Close()
			// A diff is device output: written terminal-safe, like run output.
			out := newTerminalSafe(a.io.Out)
			if _, err := io.Copy(out, resp.Body); err != nil {
				return fmt.Errorf("read diff of %s: %w", newRun, err)
			}
			if err := out.Close(); err != nil {
				return fmt.Errorf("write diff: %w", err)
			}
			if resp.Header.Get("X-Diff-Changed") == "false" {
				fmt.Fprintf(a.io.Err, "no change from %s to %s\n", resp.Header.Get("X-Diff-Against"), newRun)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, "compare every line, noise lines included")
	cmd.Flags().IntVar(&context, "context", 3, "lines of context around each change (0-20)")
	return cmd
}

func (a *app) historyCommand() *cobra.Command {
	var command string
	var limit int
	cmd := &cobra.Command{
		Use:   "history DEVICE --command COMMAND",
		Short: "A device's runs of one command, newest first, with what changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if command == "" {
				return errors.New("--command is required: the command whose runs to list")
			}
			q := url.Values{"command": {command}}
			runs, err := a.runPages(cmd.Context(), "/devices/"+url.PathEscape(args[0])+"/history", q, limit, 200)
			if err != nil {
				return fmt.Errorf("history of %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(runs)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tCREATED\tSTATUS\tCHANGED\tBYTES\tSHA256")
			for _, r := range runs {
				sum := r.ContentSHA256
				if len(sum) > 12 {
					sum = sum[:12]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.CreatedAt.Format(time.RFC3339), r.Status, formatChanged(r.Changed), r.Bytes, sum)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&command, "command", "", "the command, exactly as it was run (required)")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs to list")
	return cmd
}

// runPages reads runs from a newest-first run list (GET path with q), page after page of at
// most pageMax, until it has limit of them or the list ends.
func (a *app) runPages(ctx context.Context, path string, q url.Values, limit, pageMax int) ([]apiwire.Run, error) {
	if limit < 1 {
		return nil, errors.New("--limit must be at least 1")
	}
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	runs := []apiwire.Run{}
	for cursor := ""; len(runs) < limit; {
		q.Set("limit", strconv.Itoa(min(pageMax, limit-len(runs))))
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page apiwire.RunList
		if err := c.Do(ctx, "GET", path, q, nil, "", &page); err != nil {
			return nil, err
		}
		runs = append(runs, page.Items...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	return runs, nil
}

// formatChanged is a run's changed flag for a table: "-" when it has none (a first run, or one
// that did not succeed).
func formatChanged(changed *bool) string {
	if changed == nil {
		return "-"
	}
	return strconv.FormatBool(*changed)
}

func (a *app) platformsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "platforms", Short: "Platform profiles and the noise filters drift leaves out"}
	get := func(cmd *cobra.Command) ([]apiwire.Platform, json.RawMessage, error) {
		c, err := a.client()
		if err != nil {
			return nil, nil, err
		}
		var raw json.RawMessage
		if err := c.Do(cmd.Context(), "GET", "/platforms", nil, nil, "", &raw); err != nil {
			return nil, nil, fmt.Errorf("platforms: %w", err)
		}
		var l apiwire.PlatformList
		if err := json.Unmarshal(raw, &l); err != nil {
			return nil, nil, fmt.Errorf("decode platforms: %w", err)
		}
		return l.Items, raw, nil
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "The platforms with their modes and how many noise filters each has",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			items, raw, err := get(cmd)
			if err != nil {
				return err
			}
			if a.json {
				return a.printJSON(raw)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tMODE\tBUILT-IN FILTERS\tADMIN FILTERS\tDESCRIPTION")
			for _, p := range items {
				builtin := 0
				for _, f := range p.NoiseFilters {
					if f.Builtin {
						builtin++
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", p.Name, p.Mode, builtin, len(p.NoiseFilters)-builtin, p.Description)
			}
			return tw.Flush()
		},
	}
	filters := &cobra.Command{
		Use:   "filters PLATFORM",
		Short: "A platform's noise filters, built-in ones first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			items, _, err := get(cmd)
			if err != nil {
				return err
			}
			for _, p := range items {
				if p.Name != args[0] {
					continue
				}
				if a.json {
					return a.printJSON(p.NoiseFilters)
				}
				tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SOURCE\tCOMMAND\tPATTERN\tDESCRIPTION")
				for _, f := range p.NoiseFilters {
					src, on := "admin", f.Command
					if f.Builtin {
						src = "built-in"
					}
					if on == "" {
						on = "(every command)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", src, on, f.Pattern, f.Description)
				}
				return tw.Flush()
			}
			return fmt.Errorf("no platform %q (netauto platforms list names them)", args[0])
		},
	}
	var file string
	set := &cobra.Command{
		Use:   "set-filters PLATFORM --file FILE",
		Short: "Replace the noise filters admins added to a platform (admin)",
		Long: "FILE (- for stdin) holds {\"filters\":[{\"pattern\":\"^! Site banner \\\\d+$\",\"command\":\"^show run\",\"description\":\"...\"}]}\n" +
			"or just the list; an empty list removes the platform's admin filters. Built-in filters stay.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return errors.New("--file is required (- for stdin)")
			}
			data, err := a.readFileArg(file)
			if err != nil {
				return fmt.Errorf("read filters: %w", err)
			}
			var body apiwire.NoiseFilterUpdate
			if err := json.Unmarshal(data, &body.Filters); err != nil {
				if err := json.Unmarshal(data, &body); err != nil {
					return fmt.Errorf("read filters: %s is neither {\"filters\":[...]} nor a list: %w", file, err)
				}
			}
			if body.Filters == nil {
				body.Filters = []apiwire.NoiseFilterInput{}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var p apiwire.Platform
			if err := c.Do(cmd.Context(), "PUT", "/platforms/"+url.PathEscape(args[0])+"/filters", nil, body, "", &p); err != nil {
				return fmt.Errorf("set filters of %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(p)
			}
			admin := 0
			for _, f := range p.NoiseFilters {
				if !f.Builtin {
					admin++
				}
			}
			fmt.Fprintf(a.io.Out, "%s: %d admin filters (and %d built-in)\n", p.Name, admin, len(p.NoiseFilters)-admin)
			return nil
		},
	}
	set.Flags().StringVar(&file, "file", "", "JSON file with the filters (- for stdin)")
	cmd.AddCommand(list, filters, set)
	return cmd
}
