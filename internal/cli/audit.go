package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// auditCommand is `netauto audit`: the audit trail newest first (admin), one page, with the
// next page's cursor printed when there is one.
func (a *app) auditCommand() *cobra.Command {
	var actor, action, target, since, cursor string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit trail, newest first (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"actor": actor, "action": action, "target": target, "cursor": cursor} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				q.Set("since", t.UTC().Format(time.RFC3339))
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), "GET", "/audit", q, nil, "", &raw); err != nil {
				return fmt.Errorf("audit: %w", err)
			}
			if a.json {
				return a.printJSON(raw)
			}
			var l apiwire.AuditList
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("decode audit entries: %w", err)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tOUTCOME\tREASON\tDETAIL")
			for _, e := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.RFC3339), terminalSafeString(e.Actor), terminalSafeString(e.Action),
					terminalSafeString(e.Target), e.Outcome, terminalSafeString(e.Reason), terminalSafeString(detailString(e.Detail)))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if l.Next != "" {
				fmt.Fprintf(a.io.Out, "more: netauto audit --cursor %s\n", l.Next)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&actor, "actor", "", "only entries of this actor (an email, or system:executor, system:watchdog, system:retention)")
	f.StringVar(&action, "action", "", "only this action, e.g. device.update, run.create, job.cancel")
	f.StringVar(&target, "target", "", "only entries about this device, job or run id")
	f.StringVar(&since, "since", "", "only entries at or after this time: RFC 3339 (2026-12-01T00:00:00Z) or a duration back from now (24h)")
	f.IntVar(&limit, "limit", 0, "entries per page, 1-500 (default 50)")
	f.StringVar(&cursor, "cursor", "", "the next page, as a previous page printed it")
	return cmd
}

// parseSince reads --since: an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-12-01T00:00:00Z) or a duration such as 24h", s)
}

// detailString prints an entry's detail as sorted key=value pairs.
func detailString(d map[string]string) string {
	parts := make([]string, 0, len(d))
	for k, v := range d {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
