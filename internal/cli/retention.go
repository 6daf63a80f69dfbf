package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

func (a *app) retentionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "retention", Short: "Show retention settings and purge runs now"}
	show := &cobra.Command{
		Use:   "show",
		Short: "Retention settings and the last purge report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), "GET", "/retention", nil, nil, "", &raw); err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			if a.json {
				return a.printJSON(raw)
			}
			var v apiwire.RetentionView
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("decode retention: %w", err)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "max_days:\t%d\nmax_bytes:\t%d\ncron:\t%s\nschedule:\t%s\n", v.Settings.MaxDays, v.Settings.MaxBytes, v.Settings.Cron, v.Settings.Schedule)
			if v.ChargedBytes != nil && v.StoredBytes != nil {
				fmt.Fprintf(tw, "charged_bytes:\t%d\nstored_bytes:\t%d\n", *v.ChargedBytes, *v.StoredBytes)
				if v.TotalsAsOf != nil {
					fmt.Fprintf(tw, "totals_as_of:\t%s (the last purge; runs since are not in the totals)\n", v.TotalsAsOf.UTC().Format(time.RFC3339))
				} else {
					fmt.Fprintln(tw, "totals_as_of:\tnone yet (the first purge folds the totals)")
				}
			}
			if v.LastReport == nil {
				fmt.Fprintln(tw, "last purge:\tnone yet")
			} else {
				printReport(tw, *v.LastReport)
			}
			return tw.Flush()
		},
	}
	purge := &cobra.Command{
		Use:   "purge",
		Short: "Run the retention purge now (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), "POST", "/retention/purge", nil, nil, "", &raw); err != nil {
				return fmt.Errorf("retention purge: %w", err)
			}
			if a.json {
				return a.printJSON(raw)
			}
			var r apiwire.RetentionReport
			if err := json.Unmarshal(raw, &r); err != nil {
				return fmt.Errorf("decode purge report: %w", err)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			printReport(tw, r)
			return tw.Flush()
		},
	}
	cmd.AddCommand(show, purge)
	return cmd
}

func printReport(tw *tabwriter.Writer, r apiwire.RetentionReport) {
	fmt.Fprintf(tw, "last purge:\t%s → %s (%s), complete %t\n",
		r.StartedAt.Format(time.RFC3339Nano), r.FinishedAt.Format(time.RFC3339Nano), r.Trigger, r.Complete)
	if r.Age != nil {
		fmt.Fprintf(tw, "by age:\t%d runs deleted, %d bytes freed, %d skipped\n", r.Age.RunsDeleted, r.Age.BytesFreed, r.Age.RunsSkipped)
	}
	if r.Bytes != nil {
		fmt.Fprintf(tw, "by bytes:\t%d runs deleted, %d bytes freed, %d skipped\n", r.Bytes.RunsDeleted, r.Bytes.BytesFreed, r.Bytes.RunsSkipped)
	}
	if r.Error != "" {
		fmt.Fprintf(tw, "error:\t%s\n", r.Error)
	}
}
