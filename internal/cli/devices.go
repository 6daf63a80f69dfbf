package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

func (a *app) devicesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "devices", Aliases: []string{"device"}, Short: "List, show, add, change, remove and import devices, and list a device's runs"}
	cmd.AddCommand(a.devicesList(), a.devicesGet(), a.devicesRuns(), a.devicesAdd(), a.devicesUpdate(), a.devicesSetJumpChain(), a.devicesRm(), a.devicesImport(), a.devicesAcceptHostKey())
	return cmd
}

// deviceFilter selects devices by GET /v1/devices filters.
type deviceFilter struct {
	tag, site, platform string
}

func (f deviceFilter) empty() bool { return f.tag == "" && f.site == "" && f.platform == "" }

func (f *deviceFilter) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.tag, "tag", "", "only devices with this tag: KEY or KEY=VALUE")
	cmd.Flags().StringVar(&f.site, "site", "", "only devices at this site")
	cmd.Flags().StringVar(&f.platform, "platform", "", "only devices of this platform")
}

// listDevices reads every page of GET /v1/devices with the filter.
func listDevices(ctx context.Context, c *Client, f deviceFilter) ([]apiwire.Device, error) {
	q := url.Values{"limit": {"1000"}}
	for k, v := range map[string]string{"tag": f.tag, "site": f.site, "platform": f.platform} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var all []apiwire.Device
	for {
		var page apiwire.DeviceList
		if err := c.Do(ctx, "GET", "/devices", q, nil, "", &page); err != nil {
			return nil, fmt.Errorf("list devices: %w", err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all, nil
		}
		q.Set("cursor", page.Next)
	}
}

func (a *app) devicesList() *cobra.Command {
	var f deviceFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List devices (every page), optionally filtered",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ds, err := listDevices(cmd.Context(), c, f)
			if err != nil {
				return err
			}
			if a.json {
				if ds == nil {
					ds = []apiwire.Device{}
				}
				return a.printJSON(ds)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tHOST\tPORT\tPLATFORM\tSITE\tTAGS")
			var pending []string
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Name, d.Host, d.Port, d.Platform, d.Site, formatTags(d.Tags))
				if d.PendingHostKey != nil {
					pending = append(pending, d.ID)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(pending) > 0 {
				fmt.Fprintf(a.io.Err, "warning: host key changed on %d of these devices; they refuse runs until an admin accepts the new key: %s\n"+
					"  see `netauto devices show ID`\n", len(pending), terminalSafeString(strings.Join(pending, ", ")))
			}
			return nil
		},
	}
	f.flags(cmd)
	return cmd
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ",")
}

func (a *app) devicesGet() *cobra.Command {
	return &cobra.Command{
		Use:     "show ID",
		Aliases: []string{"get"},
		Short:   "Show one device, with its pinned and any pending host key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var d apiwire.Device
			if err := c.Do(cmd.Context(), "GET", "/devices/"+url.PathEscape(args[0]), nil, nil, "", &d); err != nil {
				return fmt.Errorf("get device %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(d)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			printFields(tw, [][2]string{
				{"id", d.ID}, {"name", d.Name}, {"host", d.Host}, {"port", strconv.Itoa(d.Port)}, {"platform", d.Platform},
				{"username", d.Username}, {"auth_method", d.AuthMethod}, {"site", d.Site}, {"tags", formatTags(d.Tags)},
				{"credential_profile", d.CredentialProfile}, {"has_credential", strconv.FormatBool(d.HasCredential)},
				{"has_enable_secret", strconv.FormatBool(d.HasEnableSecret)}, {"jump_host_ids", strings.Join(d.JumpHostIDs, " > ")},
				{"trust_on_first_use", strconv.FormatBool(d.TrustOnFirstUse)}, {"legacy_algorithms", strconv.FormatBool(d.LegacyAlgorithms)},
				{"host_key", d.HostKey}, {"host_key_fingerprint", d.HostKeyFingerprint}, {"host_key_learned_at", formatTime(d.HostKeyLearnedAt)},
				{"version", strconv.FormatInt(d.Version, 10)},
				{"created_at", d.CreatedAt.Format(timeLayout)}, {"updated_at", d.UpdatedAt.Format(timeLayout)},
			})
			if p := d.PendingHostKey; p != nil {
				fmt.Fprintf(tw, "pending_host_key:\t%s (seen %s)\n", terminalSafeString(p.Fingerprint), p.SeenAt.Format(timeLayout))
			}
			if d.ChargedBytes != nil && d.StoredBytes != nil {
				fmt.Fprintf(tw, "charged_bytes:\t%d\nstored_bytes:\t%d\n", *d.ChargedBytes, *d.StoredBytes)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if p := d.PendingHostKey; p != nil {
				fmt.Fprintf(a.io.Out, "\nwarning: the device offered a different host key than the pinned one; runs are refused until an admin\n"+
					"checks the fingerprint with the device's owner and accepts it:\n  netauto devices accept-host-key %s --fingerprint %s\n",
					terminalSafeString(d.ID), terminalSafeString(p.Fingerprint))
			}
			return nil
		},
	}
}

// devicesRuns is `netauto devices runs`: a device's runs of every command, newest first.
func (a *app) devicesRuns() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "runs ID [--limit N]",
		Short: "A device's runs, every command, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			runs, err := a.runPages(cmd.Context(), "/devices/"+url.PathEscape(args[0])+"/runs", url.Values{}, limit, 200)
			if err != nil {
				return fmt.Errorf("runs of %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(runs)
			}
			tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tCREATED\tSTATUS\tREASON\tCHANGED\tBYTES\tJOB\tCOMMAND")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.CreatedAt.Format(time.RFC3339), r.Status, r.Reason,
					formatChanged(r.Changed), r.Bytes, r.JobID, terminalSafeString(r.Command))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many runs to list")
	return cmd
}

func (a *app) devicesAdd() *cobra.Command {
	var in apiwire.DeviceInput
	var tags []string
	var sec secretFlags
	var enableStdin bool
	cmd := &cobra.Command{
		Use:   "add --id ID --name NAME --host HOST --username USER [flags]",
		Short: "Create a device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if in.Tags, err = parseTags(tags); err != nil {
				return err
			}
			if err := sec.oneOnStdin(enableStdin); err != nil {
				return err
			}
			if in.Password, in.PrivateKey, in.Passphrase, _, err = sec.secret(a); err != nil {
				return err
			}
			if enableStdin {
				if in.EnableSecret, err = a.readSecret("enable secret"); err != nil {
					return fmt.Errorf("--enable-secret-stdin: %w", err)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var d apiwire.Device
			if err := c.Do(cmd.Context(), "POST", "/devices", nil, in, "", &d); err != nil {
				return fmt.Errorf("add device %s: %w", in.ID, err)
			}
			if a.json {
				return a.printJSON(d)
			}
			fmt.Fprintf(a.io.Out, "created %s (version %d)\n", d.ID, d.Version)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.ID, "id", "", "device id (letters, digits, . _ -)")
	for _, f := range deviceStringFlags {
		fl.StringVar(f.input(&in), f.name, "", f.usage)
	}
	for _, f := range deviceBoolFlags {
		fl.BoolVar(f.input(&in), f.name, false, f.usage)
	}
	fl.IntVar(&in.Port, "port", 0, "SSH port (default 22)")
	sec.registerSecret(cmd)
	fl.StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	fl.StringArrayVar(&in.JumpHostIDs, "jump-host", nil, "a jump host to go through, in order (repeatable, at most 3)")
	fl.BoolVar(&enableStdin, "enable-secret-stdin", false, "read the enable (privileged mode) secret from standard input")
	return cmd
}

// deviceStringFlags are the device fields `devices add` and `devices update` both take as a
// string flag of the same name: input is the field when creating, patch when changing. Secrets
// are not among them: they come from stdin or a file (secretFlags), never from an argument.
var deviceStringFlags = []struct {
	name, usage string
	input       func(*apiwire.DeviceInput) *string
	patch       func(*apiwire.DevicePatch) **string
}{
	{"name", "display name", func(in *apiwire.DeviceInput) *string { return &in.Name }, func(p *apiwire.DevicePatch) **string { return &p.Name }},
	{"host", "address or DNS name", func(in *apiwire.DeviceInput) *string { return &in.Host }, func(p *apiwire.DevicePatch) **string { return &p.Host }},
	{"platform", "platform, e.g. cisco_iosxe, arista_eos, linux", func(in *apiwire.DeviceInput) *string { return &in.Platform }, func(p *apiwire.DevicePatch) **string { return &p.Platform }},
	{"username", "SSH user", func(in *apiwire.DeviceInput) *string { return &in.Username }, func(p *apiwire.DevicePatch) **string { return &p.Username }},
	{"auth-method", "password, keyboard-interactive or private-key", func(in *apiwire.DeviceInput) *string { return &in.AuthMethod }, func(p *apiwire.DevicePatch) **string { return &p.AuthMethod }},
	{"credential-profile", "shared credential set instead of a password or key", func(in *apiwire.DeviceInput) *string { return &in.CredentialProfile }, func(p *apiwire.DevicePatch) **string { return &p.CredentialProfile }},
	{"site", "site", func(in *apiwire.DeviceInput) *string { return &in.Site }, func(p *apiwire.DevicePatch) **string { return &p.Site }},
	{"host-key", "pinned host key, authorized_keys form", func(in *apiwire.DeviceInput) *string { return &in.HostKey }, func(p *apiwire.DevicePatch) **string { return &p.HostKey }},
}

// deviceBoolFlags are the device's switches, taken by `devices add` and `devices update` alike
// (`--legacy-algorithms=false` turns one off).
var deviceBoolFlags = []struct {
	name, usage string
	input       func(*apiwire.DeviceInput) *bool
	patch       func(*apiwire.DevicePatch) **bool
}{
	{"trust-on-first-use", "pin the host key seen on first connect", func(in *apiwire.DeviceInput) *bool { return &in.TrustOnFirstUse }, func(p *apiwire.DevicePatch) **bool { return &p.TrustOnFirstUse }},
	{"legacy-algorithms", "allow legacy SSH algorithms", func(in *apiwire.DeviceInput) *bool { return &in.LegacyAlgorithms }, func(p *apiwire.DevicePatch) **bool { return &p.LegacyAlgorithms }},
}

func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("tag %q: want KEY=VALUE", t)
		}
		out[k] = v
	}
	return out, nil
}

func (a *app) devicesRm() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID...",
		Aliases: []string{"delete"},
		Short:   "Delete devices and their credentials",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := c.Do(cmd.Context(), "DELETE", "/devices/"+url.PathEscape(id), nil, nil, "", nil); err != nil {
					return fmt.Errorf("delete device %s: %w", id, err)
				}
				if !a.json {
					fmt.Fprintf(a.io.Out, "deleted %s\n", id)
				}
			}
			if a.json {
				return a.printJSON(map[string]any{"deleted": args})
			}
			return nil
		},
	}
}

func (a *app) devicesImport() *cobra.Command {
	var format, mode string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Create many devices from a JSON array or a CSV file (by extension or --format)",
		Long: `Create many devices at once with POST /v1/devices/import.

FILE is a JSON array of devices or CSV with a header row (id,name,host,port,platform,username,
auth_method,site,tags,...; tags as k=v;k2=v2). "-" reads standard input (give --format).
--mode atomic (default) writes nothing unless every row is good; --mode per-row writes the
good rows. The exit code is 2 when any row was rejected.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ct, err := importContentType(args[0], format)
			if err != nil {
				return err
			}
			var data []byte
			if args[0] == "-" {
				data, err = readAll(a.io.In)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", args[0], err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var res apiwire.ImportResult
			err = c.Do(cmd.Context(), "POST", "/devices/import", url.Values{"mode": {mode}}, data, ct, &res)
			var ie *ImportError
			if asImportError(err, &ie) {
				res = ie.Result
				a.printImport(res)
				return &exitError{code: ExitFailed, msg: fmt.Sprintf("import: %d of %d rows rejected, nothing written (%s)", res.Failed, len(res.Rows), ie.Code)}
			}
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			a.printImport(res)
			if res.Failed > 0 {
				return &exitError{code: ExitFailed, msg: fmt.Sprintf("import: %d rows rejected", res.Failed)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "json or csv (default: by the file's extension)")
	cmd.Flags().StringVar(&mode, "mode", "atomic", "atomic or per-row")
	return cmd
}

func importContentType(file, format string) (string, error) {
	if format == "" {
		format = strings.TrimPrefix(strings.ToLower(filepath.Ext(file)), ".")
	}
	switch strings.ToLower(format) {
	case "json":
		return "application/json", nil
	case "csv":
		return "text/csv", nil
	}
	return "", fmt.Errorf("import %s: unknown format %q: name a .json or .csv file or pass --format json|csv", file, format)
}

func (a *app) printImport(res apiwire.ImportResult) {
	if a.json {
		_ = a.printJSON(res)
		return
	}
	fmt.Fprintf(a.io.Out, "created %d, rejected %d (mode %s)\n", res.Created, res.Failed, res.Mode)
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	header := false
	for _, r := range res.Rows {
		if r.Status == "created" {
			continue
		}
		if !header {
			fmt.Fprintln(tw, "ROW\tID\tSTATUS\tPROBLEM")
			header = true
		}
		var probs []string
		for _, e := range r.Errors {
			probs = append(probs, e.Field+": "+e.Message)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", r.Row, r.ID, r.Status, strings.Join(probs, "; "))
	}
	_ = tw.Flush()
}
