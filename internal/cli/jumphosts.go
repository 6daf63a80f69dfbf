package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// jumpHostFlags are the fields create and update share.
type jumpHostFlags struct {
	host, username, authMethod, hostKey string
	port                                int
	tofu                                bool
	secretFlags
}

func (j *jumpHostFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&j.host, "host", "", "address or DNS name")
	f.IntVar(&j.port, "port", 0, "SSH port (default 22)")
	f.StringVar(&j.username, "username", "", "SSH user on the jump host")
	f.StringVar(&j.authMethod, "auth-method", "", "password, keyboard-interactive or private-key (default: from the secret)")
	f.StringVar(&j.hostKey, "host-key", "", "pinned host key, authorized_keys form")
	f.BoolVar(&j.tofu, "trust-on-first-use", false, "pin the host key seen on the first connection")
	j.registerSecret(cmd)
}

// jumpHostsCommand is `netauto jump-hosts`: the SSH bastions devices are reached through (admin).
func (a *app) jumpHostsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "jump-hosts", Aliases: []string{"jump-host"}, Short: "Manage jump hosts, the bastions devices are reached through (admin)"}
	r := resource{path: "/jump-hosts", noun: "jump host", plural: "jump hosts"}
	list := listCommand(a, r, "Every jump host", "ID\tHOST\tPORT\tUSERNAME\tHOST KEY\tCREDENTIAL\tVERSION",
		func(tw io.Writer, l apiwire.JumpHostList) {
			for _, h := range l.Items {
				key := h.HostKeyFingerprint
				switch {
				case h.PendingHostKey != nil:
					key = "PENDING " + h.PendingHostKey.Fingerprint
				case key == "" && h.TrustOnFirstUse:
					key = "(learn on first use)"
				case key == "":
					key = "(none)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\n", terminalSafeString(h.ID), terminalSafeString(h.Host), h.Port,
					terminalSafeString(h.Username), terminalSafeString(key), secretState(h.HasCredential), h.Version)
			}
		})
	show := a.showCommand(r, "One jump host (never its credential), with its pinned and any pending host key", a.printJumpHost)
	var cf jumpHostFlags
	create := &cobra.Command{
		Use:   "create ID --host HOST --username U (--password-stdin | --private-key-file PATH) [--host-key KEY | --trust-on-first-use]",
		Short: "Create a jump host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := apiwire.JumpHostInput{ID: args[0], Host: cf.host, Port: cf.port, Username: cf.username, AuthMethod: cf.authMethod,
				HostKey: cf.hostKey, TrustOnFirstUse: cf.tofu}
			var err error
			if in.Password, in.PrivateKey, in.Passphrase, err = cf.requiredSecret(a); err != nil {
				return err
			}
			return a.send(cmd, "POST", r.path, in, "create jump host "+args[0], a.printJumpHost)
		},
	}
	cf.register(create)
	var uf jumpHostFlags
	update := &cobra.Command{
		Use:   "update ID [--host H] [--port N] [--username U] [--host-key KEY] [--password-stdin | --private-key-file PATH]",
		Short: "Change a jump host; a new password or key replaces its credential, a new host or port drops it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var patch apiwire.JumpHostPatch
			for name, dst := range map[string]**string{"host": &patch.Host, "username": &patch.Username, "auth-method": &patch.AuthMethod, "host-key": &patch.HostKey} {
				if fl.Changed(name) {
					v, _ := fl.GetString(name)
					*dst = &v
				}
			}
			if fl.Changed("port") {
				patch.Port = &uf.port
			}
			if fl.Changed("trust-on-first-use") {
				patch.TrustOnFirstUse = &uf.tofu
			}
			if err := uf.patchSecret(a, &patch.Password, &patch.PrivateKey, &patch.Passphrase); err != nil {
				return err
			}
			patch.Version = patchVersion(cmd)
			if patch == (apiwire.JumpHostPatch{Version: patch.Version}) {
				return fmt.Errorf("nothing to change: give --host, --port, --username, --auth-method, --host-key, --trust-on-first-use or a new secret")
			}
			return a.send(cmd, "PATCH", r.itemPath(args[0]), patch, "update jump host "+args[0], a.printJumpHost)
		},
	}
	uf.register(update)
	update.Flags().Int64("version", 0, "fail if the jump host is no longer at this version")
	del := a.deleteCommand(r, "Delete a jump host no device's chain names")
	var fingerprint string
	accept := &cobra.Command{
		Use:   "accept-host-key ID --fingerprint SHA256:...",
		Short: "Pin the host key a jump host offered instead of its pinned one",
		Long: "Pin the jump host's pending host key, the one `netauto jump-hosts show ID` lists as pending_host_key.\n" +
			"Until then every device behind it ends host_key_mismatch (jump_host_key_mismatch) and nothing is sent through it.\n" +
			"Check the fingerprint with the bastion's owner first: a changed key can mean a man in the middle.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fingerprint = strings.TrimSpace(fingerprint)
			if fingerprint == "" {
				return fmt.Errorf("--fingerprint is required: the pending key's SHA256:... fingerprint, as `netauto jump-hosts show %s` prints it", args[0])
			}
			var raw json.RawMessage
			err := a.call(cmd, "POST", r.itemPath(args[0])+"/host-key/accept", apiwire.HostKeyAccept{Fingerprint: fingerprint}, &raw)
			if isStatus(err, http.StatusConflict) {
				return fmt.Errorf("accept host key of jump host %s: %w\n  run `netauto jump-hosts show %s` to see the pending key", args[0], err, args[0])
			}
			if err != nil {
				return fmt.Errorf("accept host key of jump host %s: %w", args[0], err)
			}
			return a.printJumpHost(raw)
		},
	}
	accept.Flags().StringVar(&fingerprint, "fingerprint", "", "the pending key's fingerprint, SHA256:... (required)")
	cmd.AddCommand(list, show, create, update, del, accept)
	return cmd
}

// printJumpHost prints one jump host answer, as JSON with --json, and warns of a pending key.
func (a *app) printJumpHost(raw json.RawMessage) error {
	if a.json {
		return a.printJSON(raw)
	}
	var h apiwire.JumpHost
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("decode jump host: %w", err)
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	printFields(tw, [][2]string{
		{"id", h.ID}, {"host", h.Host}, {"port", strconv.Itoa(h.Port)}, {"username", h.Username}, {"auth_method", h.AuthMethod},
		{"credential", secretState(h.HasCredential)}, {"trust_on_first_use", strconv.FormatBool(h.TrustOnFirstUse)},
		{"host_key_fingerprint", h.HostKeyFingerprint}, {"host_key_learned_at", formatTime(h.HostKeyLearnedAt)},
		{"version", strconv.FormatInt(h.Version, 10)}, {"updated_at", h.UpdatedAt.Format(timeLayout)},
	})
	if p := h.PendingHostKey; p != nil {
		fmt.Fprintf(tw, "pending_host_key:\t%s (seen %s)\n", terminalSafeString(p.Fingerprint), p.SeenAt.Format(timeLayout))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if p := h.PendingHostKey; p != nil {
		fmt.Fprintf(a.io.Out, "\nwarning: the jump host offered a different host key than the pinned one; its devices are refused until an\n"+
			"admin checks the fingerprint and accepts it:\n  netauto jump-hosts accept-host-key %s --fingerprint %s\n",
			terminalSafeString(h.ID), terminalSafeString(p.Fingerprint))
	}
	return nil
}
