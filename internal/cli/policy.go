package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// policyCommand is `netauto policy`: show, replace and try the command policy.
func (a *app) policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Show, replace and check the command policy"}
	cmd.AddCommand(a.policyShowCommand(), a.policySetCommand(), a.policyCheckCommand())
	return cmd
}

func (a *app) policyShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "The rules in force and their version (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), "GET", "/policy", nil, nil, "", &raw); err != nil {
				return fmt.Errorf("policy: %w", err)
			}
			return a.showPolicy(raw)
		},
	}
}

// showPolicy prints a policy answer, as JSON with --json.
func (a *app) showPolicy(raw json.RawMessage) error {
	if a.json {
		return a.printJSON(raw)
	}
	var p apiwire.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("decode policy: %w", err)
	}
	return printPolicy(a.io.Out, p)
}

// printPolicy writes the version line and the rules table.
func printPolicy(w io.Writer, p apiwire.Policy) error {
	head := fmt.Sprintf("version %d", p.Version)
	if p.Default {
		head += " (built-in defaults)"
	}
	if p.UpdatedAt != nil {
		head += ", updated " + p.UpdatedAt.Format(time.RFC3339)
		if p.UpdatedBy != "" {
			head += " by " + terminalSafeString(p.UpdatedBy)
		}
	}
	fmt.Fprintln(w, head)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tEFFECT\tROLES\tPLATFORMS\tPATTERN\tREASON")
	for _, r := range p.Rules {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", terminalSafeString(r.ID), terminalSafeString(r.Effect),
			orAny(r.Roles), orAny(r.Platforms), terminalSafeString(r.Pattern), terminalSafeString(r.Reason))
	}
	return tw.Flush()
}

// orAny joins a rule's list, or says "*" when the rule applies to all.
func orAny(l []string) string {
	if len(l) == 0 {
		return "*"
	}
	return terminalSafeString(strings.Join(l, ","))
}

func (a *app) policySetCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "set -f rules.json",
		Short: "Replace the whole policy (admin)",
		Long: "Replace the whole policy with the rules of a JSON file: {\"rules\": [...], \"version\": N}, as\n" +
			"`netauto policy show --json` prints it, or a bare list of rules. The version is the one the change\n" +
			"replaces; without it the current version is read first. A conflict means someone else changed the\n" +
			"policy since that version.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return fmt.Errorf("-f/--file is required: a JSON file of rules (- for stdin)")
			}
			data, err := a.readFileArg(file)
			if err != nil {
				return err
			}
			up, err := parsePolicyFile(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if up.Version == nil {
				var cur apiwire.Policy
				if err := c.Do(cmd.Context(), "GET", "/policy", nil, nil, "", &cur); err != nil {
					return fmt.Errorf("read current policy: %w", err)
				}
				up.Version = &cur.Version
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), "PUT", "/policy", nil, up, "", &raw); err != nil {
				if isStatus(err, http.StatusConflict) {
					return fmt.Errorf("set policy: someone else changed the policy since version %d; run `netauto policy show` and apply your change again: %w", *up.Version, err)
				}
				return fmt.Errorf("set policy: %w", err)
			}
			return a.showPolicy(raw)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "JSON file of the rules (- reads stdin)")
	return cmd
}

// parsePolicyFile reads a policy file: an object with rules (and optionally version), or a bare
// list of rules.
func parsePolicyFile(data []byte) (apiwire.PolicyUpdate, error) {
	var up apiwire.PolicyUpdate
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(data, &up.Rules); err != nil {
			return up, fmt.Errorf("decode rules: %w", err)
		}
		return up, nil
	}
	var doc struct {
		Rules   *[]apiwire.PolicyRule `json:"rules"`
		Version *int64                `json:"version"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return up, fmt.Errorf("decode policy: %w", err)
	}
	if doc.Rules == nil {
		return up, fmt.Errorf("rules: is required: the whole rule list")
	}
	up.Rules, up.Version = *doc.Rules, doc.Version
	return up, nil
}

// readFileArg reads a file named by a flag; "-" reads stdin.
func (a *app) readFileArg(name string) ([]byte, error) {
	if name == "-" {
		data, err := readAll(a.io.In)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return data, nil
}

func (a *app) policyCheckCommand() *cobra.Command {
	var commands []string
	var devices []string
	cmd := &cobra.Command{
		Use:   "check --command CMD [--command CMD...] --device ID [--device ID...]",
		Short: "Whether you may run a command (or a sequence) on devices, and which rule decides",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(commands) == 0 || strings.TrimSpace(commands[0]) == "" {
				return fmt.Errorf("--command is required")
			}
			if len(devices) == 0 {
				return fmt.Errorf("--device is required: at least one device id")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			body := apiwire.PolicyCheckRequest{DeviceIDs: devices}
			if len(commands) == 1 {
				body.Command = commands[0]
			} else {
				for _, c := range commands {
					body.Commands = append(body.Commands, apiwire.CommandItem{Command: c})
				}
			}
			if err := c.Do(cmd.Context(), "POST", "/policy/check", nil, body, "", &raw); err != nil {
				return fmt.Errorf("policy check: %w", err)
			}
			var pc apiwire.PolicyCheck
			if err := json.Unmarshal(raw, &pc); err != nil {
				return fmt.Errorf("decode policy check: %w", err)
			}
			if a.json {
				if err := a.printJSON(raw); err != nil {
					return err
				}
			} else if err := printPolicyCheck(a.io.Out, pc); err != nil {
				return err
			}
			if !pc.Allowed {
				return &exitError{code: ExitFailed}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&commands, "command", nil, "the command to check (repeat it to check a sequence, every command of it)")
	f.StringArrayVar(&devices, "device", nil, "a device id (repeatable)")
	return cmd
}

// printPolicyCheck writes one verdict per device.
func printPolicyCheck(w io.Writer, pc apiwire.PolicyCheck) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tVERDICT\tRULE\tREASON")
	for _, v := range pc.Devices {
		verdict := "allowed"
		if !v.Allowed {
			verdict = "denied"
		}
		reason := v.Reason
		if v.Field != "" {
			reason = v.Field + ": " + reason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", terminalSafeString(v.DeviceID), verdict, terminalSafeString(v.Rule), terminalSafeString(reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "policy version %d: allowed on all devices: %t\n", pc.Version, pc.Allowed)
	return err
}
