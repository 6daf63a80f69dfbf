package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// webhookFlags are the fields create and update share. The URL is a secret: --url-stdin keeps it
// out of the shell's history and the process list.
type webhookFlags struct {
	name, url, format string
	urlStdin          bool
	events, cidrs     []string
}

func (w *webhookFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&w.name, "name", "", "what people call the webhook")
	f.StringVar(&w.url, "url", "", "where to POST (a secret: prefer --url-stdin)")
	f.BoolVar(&w.urlStdin, "url-stdin", false, "read the URL from standard input")
	f.StringArrayVar(&w.events, "event", nil, `an event to deliver: "Job Finished", "Output Changed" or "Host Key Mismatch" (repeatable; none: all)`)
	f.StringVar(&w.format, "format", "", "json (the whole event) or slack ({\"text\": ...})")
	f.StringArrayVar(&w.cidrs, "allow-cidr", nil, "a private range the webhook may reach, e.g. 10.1.2.0/24 (repeatable); http only to these")
}

// readURL returns the URL the flags give, "" when none.
func (w *webhookFlags) readURL(a *app) (string, error) {
	if w.urlStdin && w.url != "" {
		return "", fmt.Errorf("--url-stdin: give the URL either way, not both")
	}
	if w.urlStdin {
		u, err := a.readSecret("webhook URL")
		if err != nil {
			return "", fmt.Errorf("--url-stdin: %w", err)
		}
		return strings.TrimSpace(u), nil
	}
	return w.url, nil
}

// webhooksCommand is `netauto webhooks`: where NetAuto's events are POSTed (admin).
func (a *app) webhooksCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "webhooks", Aliases: []string{"webhook"}, Short: "Manage webhooks: signed HTTP POSTs of NetAuto's events (admin)"}
	r := resource{path: "/webhooks", noun: "webhook", plural: "webhooks"}
	list := listCommand(a, r, "Every webhook (never its URL or signing secret)", "ID\tNAME\tENDPOINT\tEVENTS\tFORMAT\tSTATE",
		func(tw io.Writer, l apiwire.WebhookList) {
			for _, h := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", terminalSafeString(h.ID), terminalSafeString(h.Name), terminalSafeString(h.Endpoint),
					terminalSafeString(eventsText(h.Events)), h.Format, terminalSafeString(webhookState(h)))
			}
		})
	show := a.showCommand(r, "One webhook", a.printWebhook)
	var cf webhookFlags
	var disabled bool
	create := &cobra.Command{
		Use:   "create --name NAME (--url-stdin | --url URL) [--event E...] [--format json|slack] [--allow-cidr CIDR...]",
		Short: "Create a webhook; prints its signing secret, this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := cf.readURL(a)
			if err != nil {
				return err
			}
			if u == "" {
				return fmt.Errorf("a URL is required: --url-stdin or --url")
			}
			in := apiwire.WebhookInput{Name: cf.name, URL: u, Events: cf.events, Format: cf.format, AllowPrivateCIDRs: cf.cidrs}
			if disabled {
				off := false
				in.Enabled = &off
			}
			return a.send(cmd, "POST", r.path, in, "create webhook", a.printWebhook)
		},
	}
	cf.register(create)
	create.Flags().BoolVar(&disabled, "disabled", false, "create it disabled")
	var uf webhookFlags
	var enable, disable, noEvents, noCIDRs, rotateSecret bool
	update := &cobra.Command{
		Use:   "update ID [--name N] [(--url-stdin | --url URL) --rotate-secret] [--event E... | --all-events] [--format F] [--allow-cidr C... | --no-allow-cidr] [--enable | --disable] [--rotate-secret]",
		Short: "Change a webhook; --enable clears its disabled reason and failure count",
		Long: `Change a webhook. A new URL needs --rotate-secret: the receiver at the old URL knows the
signing secret, so the new URL gets a new one, printed this once for the new receiver.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var patch apiwire.WebhookPatch
			if fl.Changed("name") {
				patch.Name = &uf.name
			}
			if fl.Changed("format") {
				patch.Format = &uf.format
			}
			u, err := uf.readURL(a)
			if err != nil {
				return err
			}
			if u != "" {
				patch.URL = &u
			}
			switch {
			case noEvents && fl.Changed("event"):
				return fmt.Errorf("--all-events and --event: give one")
			case noEvents:
				patch.Events = &[]string{}
			case fl.Changed("event"):
				patch.Events = &uf.events
			}
			switch {
			case noCIDRs && fl.Changed("allow-cidr"):
				return fmt.Errorf("--no-allow-cidr and --allow-cidr: give one")
			case noCIDRs:
				patch.AllowPrivateCIDRs = &[]string{}
			case fl.Changed("allow-cidr"):
				patch.AllowPrivateCIDRs = &uf.cidrs
			}
			switch {
			case enable && disable:
				return fmt.Errorf("--enable and --disable: give one")
			case enable || disable:
				patch.Enabled = &enable
			}
			patch.Version = patchVersion(cmd)
			if rotateSecret {
				patch.RotateSecret = &rotateSecret
			}
			if patch == (apiwire.WebhookPatch{Version: patch.Version}) {
				return fmt.Errorf("nothing to change: give --name, --url(-stdin), --event, --all-events, --format, --allow-cidr, --no-allow-cidr, --enable, --disable or --rotate-secret")
			}
			return a.send(cmd, "PATCH", r.itemPath(args[0]), patch, "update webhook "+args[0], a.printWebhook)
		},
	}
	uf.register(update)
	fu := update.Flags()
	fu.Int64("version", 0, "fail if the webhook is no longer at this version")
	fu.BoolVar(&enable, "enable", false, "enable it (clears the disabled reason and the failure count)")
	fu.BoolVar(&disable, "disable", false, "disable it")
	fu.BoolVar(&noEvents, "all-events", false, "deliver every event (clear the filter)")
	fu.BoolVar(&noCIDRs, "no-allow-cidr", false, "allow no private range")
	fu.BoolVar(&rotateSecret, "rotate-secret", false, "give it a new signing secret, printed this once (required with a new URL)")
	del := a.deleteCommand(r, "Delete a webhook, its URL and its signing secret")
	rotate := &cobra.Command{
		Use:   "rotate-secret ID",
		Short: "Give a webhook a new signing secret; prints it, this once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := a.call(cmd, "POST", r.itemPath(args[0])+"/rotate-secret", nil, &raw); err != nil {
				return fmt.Errorf("rotate secret of webhook %s: %w", args[0], err)
			}
			return a.printWebhook(raw)
		},
	}
	test := &cobra.Command{
		Use:   "test ID",
		Short: "Send a webhook a test event now and print the attempt",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var raw json.RawMessage
			if err := a.call(cmd, "POST", r.itemPath(args[0])+"/test", nil, &raw); err != nil {
				return fmt.Errorf("test webhook %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(raw)
			}
			var d apiwire.WebhookDelivery
			if err := json.Unmarshal(raw, &d); err != nil {
				return fmt.Errorf("decode attempt: %w", err)
			}
			fmt.Fprintf(a.io.Out, "%s: %s in %d ms\n", d.Outcome, terminalSafeString(attemptResult(d)), d.DurationMS)
			if d.Outcome != "delivered" {
				return fmt.Errorf("test webhook %s: the receiver did not take it", args[0])
			}
			return nil
		},
	}
	var limit int
	var cursor string
	deliveries := &cobra.Command{
		Use:   "deliveries ID [--limit N] [--cursor C]",
		Short: "The webhook's delivery log, newest first (kept 30 days)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			path := r.itemPath(args[0]) + "/deliveries"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var raw json.RawMessage
			if err := a.call(cmd, "GET", path, nil, &raw); err != nil {
				return fmt.Errorf("deliveries of webhook %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(raw)
			}
			var l apiwire.WebhookDeliveryList
			if err := json.Unmarshal(raw, &l); err != nil {
				return fmt.Errorf("decode deliveries: %w", err)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tEVENT\tEVENT ID\tATTEMPT\tOUTCOME\tRESULT\tMS")
			for _, d := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\n", d.At.Format(timeLayout), terminalSafeString(d.DetailType), terminalSafeString(d.EventID),
					d.Attempt, d.Outcome, terminalSafeString(attemptResult(d)), d.DurationMS)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if l.Next != "" {
				fmt.Fprintf(a.io.Out, "\nmore: netauto webhooks deliveries %s --cursor %s\n", terminalSafeString(args[0]), l.Next)
			}
			return nil
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 0, "attempts per page, 1-200 (default 50)")
	deliveries.Flags().StringVar(&cursor, "cursor", "", "the next page's cursor, as the previous page printed it")
	cmd.AddCommand(list, show, create, update, del, rotate, test, deliveries)
	return cmd
}

func eventsText(events []string) string {
	if len(events) == 0 {
		return "all"
	}
	return strings.Join(events, ", ")
}

func webhookState(h apiwire.Webhook) string {
	if h.Enabled {
		return "enabled"
	}
	return "disabled: " + h.DisabledReason
}

// attemptResult is an attempt's status code or error.
func attemptResult(d apiwire.WebhookDelivery) string {
	if d.StatusCode != 0 && d.Error == "" {
		return "HTTP " + strconv.Itoa(d.StatusCode)
	}
	if d.StatusCode != 0 {
		return "HTTP " + strconv.Itoa(d.StatusCode) + ": " + d.Error
	}
	return d.Error
}

// printWebhook prints one webhook answer, as JSON with --json, and its signing secret when the
// answer carries one (create, rotate-secret, update --rotate-secret), with a note that it is shown
// once.
func (a *app) printWebhook(raw json.RawMessage) error {
	if a.json {
		return a.printJSON(raw)
	}
	var h apiwire.WebhookCreated
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("decode webhook: %w", err)
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	printFields(tw, [][2]string{
		{"id", h.ID}, {"name", h.Name}, {"endpoint", h.Endpoint}, {"events", eventsText(h.Events)}, {"format", h.Format},
		{"state", webhookState(h.Webhook)}, {"allow_private_cidrs", strings.Join(h.AllowPrivateCIDRs, ", ")},
		{"failed_deliveries", strconv.Itoa(h.FailedDeliveries)}, {"version", strconv.FormatInt(h.Version, 10)}, {"updated_at", h.UpdatedAt.Format(timeLayout)},
	})
	if err := tw.Flush(); err != nil {
		return err
	}
	if h.SigningSecret != "" {
		fmt.Fprintf(a.io.Out, "\nsigning secret (shown this once; the receiver verifies X-NetAuto-Signature with it, see docs/webhooks.md):\n  %s\n", terminalSafeString(h.SigningSecret))
	}
	return nil
}
