package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/netauto/netauto/internal/apiwire"
)

// secretFlags ask for a login secret. Secrets never come from a flag value: the password and
// passphrase are read from stdin, the private key from a file.
type secretFlags struct {
	passwordStdin  bool
	keyFile        string
	passphraseStdn bool
}

func (p *secretFlags) registerSecret(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&p.passwordStdin, "password-stdin", false, "read the password from stdin")
	f.StringVar(&p.keyFile, "private-key-file", "", "read the private key (PEM) from this file")
	f.BoolVar(&p.passphraseStdn, "passphrase-stdin", false, "read the private key's passphrase from stdin")
}

// profileFlags are the flags create and update share.
type profileFlags struct {
	username string
	sites    []string
	tags     []string
	secretFlags
}

func (p *profileFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&p.username, "username", "", "the SSH user name")
	f.StringArrayVar(&p.sites, "allowed-site", nil, "a site whose devices may use the profile (repeatable)")
	f.StringArrayVar(&p.tags, "allowed-tag", nil, "k=v: devices with this tag may use the profile (repeatable; k=v,k2=v2 requires both)")
	p.registerSecret(cmd)
}

// secret reads the password or private key (and passphrase) the flags name; set is false when
// no secret was asked for.
func (p *secretFlags) secret(a *app) (password, key, passphrase string, set bool, err error) {
	if p.passwordStdin && (p.keyFile != "" || p.passphraseStdn) {
		return "", "", "", false, errors.New("--password-stdin: give either a password or a private key, not both")
	}
	if p.passphraseStdn && p.keyFile == "" {
		return "", "", "", false, errors.New("--passphrase-stdin: needs --private-key-file")
	}
	if p.passphraseStdn && p.keyFile == "-" {
		return "", "", "", false, errors.New("--passphrase-stdin: stdin carries the key (--private-key-file -); give the key in a file")
	}
	switch {
	case p.passwordStdin:
		pw, err := a.readSecret("password")
		if err != nil {
			return "", "", "", false, fmt.Errorf("--password-stdin: %w", err)
		}
		return pw, "", "", true, nil
	case p.keyFile != "":
		data, err := a.readFileArg(p.keyFile)
		if err != nil {
			return "", "", "", false, fmt.Errorf("--private-key-file: %w", err)
		}
		if p.passphraseStdn {
			if passphrase, err = a.readSecret("passphrase"); err != nil {
				return "", "", "", false, fmt.Errorf("--passphrase-stdin: %w", err)
			}
		}
		return "", string(data), passphrase, true, nil
	}
	return "", "", "", false, nil
}

// oneOnStdin refuses a second secret on stdin beside the enable secret: stdin carries one.
func (p *secretFlags) oneOnStdin(enableStdin bool) error {
	if enableStdin && (p.passwordStdin || p.passphraseStdn || p.keyFile == "-") {
		return errors.New("--enable-secret-stdin: stdin carries one secret; set the enable secret in a second `netauto devices update`")
	}
	return nil
}

// requiredSecret is secret for create, where a password or private key must be given.
func (p *secretFlags) requiredSecret(a *app) (password, key, passphrase string, err error) {
	password, key, passphrase, set, err := p.secret(a)
	if err != nil {
		return "", "", "", err
	}
	if !set {
		return "", "", "", errors.New("a secret is required: --password-stdin or --private-key-file")
	}
	return password, key, passphrase, nil
}

// patchSecret is secret for update: it sets the patch's private key (and passphrase, if given) or
// its password, and leaves all three nil when no secret was asked for.
func (p *secretFlags) patchSecret(a *app, password, key, passphrase **string) error {
	pw, k, pass, set, err := p.secret(a)
	switch {
	case err != nil:
		return err
	case !set:
	case k != "":
		*key = &k
		if pass != "" {
			*passphrase = &pass
		}
	default:
		*password = &pw
	}
	return nil
}

// readSecret reads a secret from stdin: at a terminal after asking for what on stderr, without
// echo; otherwise the whole of stdin less one trailing newline (spaces are the secret's own). An
// empty secret is an error.
func (a *app) readSecret(what string) (string, error) {
	if f, ok := a.io.In.(*os.File); ok && isTerminal(f) {
		fmt.Fprintf(a.io.Err, "%s: ", what)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.io.Err)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		if len(b) == 0 {
			return "", fmt.Errorf("the %s is empty", what)
		}
		return string(b), nil
	}
	data, err := readAll(a.io.In)
	if err != nil {
		return "", fmt.Errorf("read stdin: %w", err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if s == "" {
		return "", errors.New("stdin is empty")
	}
	return s, nil
}

// parseAllowedTags reads --allowed-tag values: each is k=v[,k=v...], one tag set a device must
// carry all of.
func parseAllowedTags(vals []string) ([]map[string]string, error) {
	out := make([]map[string]string, 0, len(vals))
	for _, v := range vals {
		set := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("--allowed-tag %q: want key=value", v)
			}
			set[strings.TrimSpace(k)] = strings.TrimSpace(val)
		}
		out = append(out, set)
	}
	return out, nil
}

// credentialProfilesCommand is `netauto credential-profiles`: the shared SSH credentials and the
// devices allowed to use them (admin).
func (a *app) credentialProfilesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "credential-profiles", Aliases: []string{"profiles"}, Short: "Manage credential profiles (admin)"}
	r := resource{path: "/credential-profiles", noun: "credential profile", plural: "credential profiles"}
	list := listCommand(a, r, "Every credential profile", "ID\tUSERNAME\tALLOWED SITES\tALLOWED TAGS\tSECRET\tVERSION",
		func(tw io.Writer, l apiwire.CredentialProfileList) {
			for _, p := range l.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", terminalSafeString(p.ID), terminalSafeString(p.Username),
					terminalSafeString(strings.Join(p.AllowedSites, ",")), terminalSafeString(tagSetsString(p.AllowedTags)), secretState(p.HasSecret), p.Version)
			}
		})
	show := a.showCommand(r, "One credential profile (never its secret)", a.printProfile)
	var cf profileFlags
	create := &cobra.Command{
		Use:   "create ID --username U (--password-stdin | --private-key-file PATH) [--allowed-site S...] [--allowed-tag k=v...]",
		Short: "Create a credential profile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := apiwire.CredentialProfileInput{ID: args[0], Username: cf.username, AllowedSites: cf.sites}
			tags, err := parseAllowedTags(cf.tags)
			if err != nil {
				return err
			}
			if len(tags) > 0 {
				in.AllowedTags = tags
			}
			if in.Password, in.PrivateKey, in.Passphrase, err = cf.requiredSecret(a); err != nil {
				return err
			}
			return a.send(cmd, "POST", r.path, in, "create credential profile "+args[0], a.printProfile)
		},
	}
	cf.register(create)
	var uf profileFlags
	var clearSites, clearTags bool
	update := &cobra.Command{
		Use:   "update ID [--username U] [--allowed-site S...] [--allowed-tag k=v...] [--password-stdin | --private-key-file PATH]",
		Short: "Change a credential profile; a new password or key replaces the secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var patch apiwire.CredentialProfilePatch
			if fl.Changed("username") {
				patch.Username = &uf.username
			}
			if fl.Changed("allowed-site") || clearSites {
				sites := slices.Clone(uf.sites)
				if sites == nil {
					sites = []string{}
				}
				patch.AllowedSites = &sites
			}
			if fl.Changed("allowed-tag") || clearTags {
				tags, err := parseAllowedTags(uf.tags)
				if err != nil {
					return err
				}
				patch.AllowedTags = &tags
			}
			if err := uf.patchSecret(a, &patch.Password, &patch.PrivateKey, &patch.Passphrase); err != nil {
				return err
			}
			patch.Version = patchVersion(cmd)
			if patch == (apiwire.CredentialProfilePatch{Version: patch.Version}) {
				return errors.New("nothing to change: give --username, --allowed-site, --allowed-tag, --clear-sites, --clear-tags or a new secret")
			}
			return a.send(cmd, "PATCH", r.itemPath(args[0]), patch, "update credential profile "+args[0], a.printProfile)
		},
	}
	uf.register(update)
	update.Flags().BoolVar(&clearSites, "clear-sites", false, "allow no site (with no --allowed-site)")
	update.Flags().BoolVar(&clearTags, "clear-tags", false, "allow no tag set (with no --allowed-tag)")
	update.Flags().Int64("version", 0, "fail if the profile is no longer at this version")
	del := a.deleteCommand(r, "Delete a credential profile no device uses")
	cmd.AddCommand(list, show, create, update, del)
	return cmd
}

// call sends one API request with the invocation's client.
func (a *app) call(cmd *cobra.Command, method, path string, body, out any) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return c.Do(cmd.Context(), method, path, nil, body, "", out)
}

// printProfile prints one profile answer, as JSON with --json.
func (a *app) printProfile(raw json.RawMessage) error {
	if a.json {
		return a.printJSON(raw)
	}
	var p apiwire.CredentialProfile
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("decode credential profile: %w", err)
	}
	tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nusername:\t%s\nallowed sites:\t%s\nallowed tags:\t%s\nsecret:\t%s\nversion:\t%d\nupdated:\t%s\n",
		terminalSafeString(p.ID), terminalSafeString(p.Username), terminalSafeString(strings.Join(p.AllowedSites, ",")),
		terminalSafeString(tagSetsString(p.AllowedTags)), secretState(p.HasSecret), p.Version, p.UpdatedAt.Format(time.RFC3339))
	return tw.Flush()
}

// tagSetsString prints tag sets as "k=v,k2=v2; k3=v3", keys sorted.
func tagSetsString(sets []map[string]string) string {
	parts := make([]string, 0, len(sets))
	for _, s := range sets {
		parts = append(parts, strings.ReplaceAll(detailString(s), " ", ","))
	}
	return strings.Join(parts, "; ")
}

func secretState(has bool) string {
	if has {
		return "set"
	}
	return "none"
}
