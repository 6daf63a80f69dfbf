package cli

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// devicesUpdate is `netauto devices update`: the fields given changed in place (PATCH), the rest
// of the device untouched: its address, platform, login, credential, tags, site, host key
// settings, jump host chain and enable secret.
func (a *app) devicesUpdate() *cobra.Command {
	var chain, tags []string
	var direct, clearTags, enableStdin, clearEnable bool
	var sec secretFlags
	var port int
	var version int64
	strs := make([]string, len(deviceStringFlags))
	bools := make([]bool, len(deviceBoolFlags))
	cmd := &cobra.Command{
		Use:   "update ID [--name N] [--host H] [--port P] [--password-stdin | --private-key-file F] [--tag K=V...] [--jump-host J... | --direct] [flags]",
		Short: "Change a device in place: only the fields given",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var patch apiwire.DevicePatch
			for i, f := range deviceStringFlags {
				if fl.Changed(f.name) {
					*f.patch(&patch) = &strs[i]
				}
			}
			for i, f := range deviceBoolFlags {
				if fl.Changed(f.name) {
					*f.patch(&patch) = &bools[i]
				}
			}
			if fl.Changed("port") {
				patch.Port = &port
			}
			switch {
			case clearTags && len(tags) > 0:
				return errors.New("--clear-tags: give either it or --tag")
			case clearTags:
				patch.Tags = &map[string]string{}
			case len(tags) > 0:
				m, err := parseTags(tags)
				if err != nil {
					return err
				}
				patch.Tags = &m
			}
			var err error
			if patch.JumpHostIDs, err = chainFlags(chain, direct); err != nil {
				return err
			}
			if enableStdin && clearEnable {
				return errors.New("--clear-enable-secret: give either it or --enable-secret-stdin")
			}
			if err := sec.oneOnStdin(enableStdin); err != nil {
				return err
			}
			if err := sec.patchSecret(a, &patch.Password, &patch.PrivateKey, &patch.Passphrase); err != nil {
				return err
			}
			switch {
			case enableStdin:
				s, err := a.readSecret("enable secret")
				if err != nil {
					return fmt.Errorf("--enable-secret-stdin: %w", err)
				}
				patch.EnableSecret = &s
			case clearEnable:
				patch.EnableSecret = new(string)
			}
			if fl.Changed("version") {
				patch.Version = &version
			}
			if patch == (apiwire.DevicePatch{Version: patch.Version}) {
				return errors.New("nothing to change: give the fields to change (see `netauto devices update --help`)")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var d apiwire.Device
			if err := c.Do(cmd.Context(), "PATCH", "/devices/"+url.PathEscape(args[0]), nil, patch, "", &d); err != nil {
				return fmt.Errorf("update device %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(d)
			}
			fmt.Fprintf(a.io.Out, "updated %s (version %d)\n", terminalSafeString(d.ID), d.Version)
			return nil
		},
	}
	fl := cmd.Flags()
	for i, f := range deviceStringFlags {
		fl.StringVar(&strs[i], f.name, "", f.usage)
	}
	for i, f := range deviceBoolFlags {
		fl.BoolVar(&bools[i], f.name, false, f.usage)
	}
	fl.IntVar(&port, "port", 0, "SSH port")
	sec.registerSecret(cmd)
	fl.StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable); replaces every tag")
	fl.BoolVar(&clearTags, "clear-tags", false, "remove every tag")
	fl.StringArrayVar(&chain, "jump-host", nil, "a jump host to go through, in order (repeatable, at most 3); replaces the chain")
	fl.BoolVar(&direct, "direct", false, "connect directly: clear the jump host chain")
	fl.BoolVar(&enableStdin, "enable-secret-stdin", false, "read the enable (privileged mode) secret from standard input")
	fl.BoolVar(&clearEnable, "clear-enable-secret", false, "remove the device's own enable secret")
	fl.Int64Var(&version, "version", 0, "fail if the device is no longer at this version")
	return cmd
}

// chainFlags is the jump host chain --jump-host (in order) and --direct (empty) give, nil when
// neither is given.
func chainFlags(chain []string, direct bool) (*[]string, error) {
	switch {
	case direct && len(chain) > 0:
		return nil, errors.New("--direct: give either --direct or --jump-host, not both")
	case direct:
		return &[]string{}, nil
	case len(chain) > 0:
		return &chain, nil
	}
	return nil, nil
}

// devicesSetJumpChain is `netauto devices set-jump-chain`: one jump host chain set on (or
// cleared from) many devices at once, all or nothing (POST /v1/devices/bulk-update).
func (a *app) devicesSetJumpChain() *cobra.Command {
	var chain []string
	var direct bool
	cmd := &cobra.Command{
		Use:   "set-jump-chain (--jump-host J... | --direct) ID...",
		Short: "Set or clear the jump host chain of many devices at once (all or nothing, up to 100)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var set apiwire.DeviceBulkSet
			var err error
			if set.JumpHostIDs, err = chainFlags(chain, direct); err != nil {
				return err
			}
			if set.JumpHostIDs == nil {
				return errors.New("nothing to set: give the chain with --jump-host (repeatable, in order) or clear it with --direct")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var out apiwire.DeviceBulkUpdated
			body := apiwire.DeviceBulkUpdate{DeviceIDs: args, Set: set}
			if err := c.Do(cmd.Context(), "POST", "/devices/bulk-update", nil, body, "", &out); err != nil {
				return fmt.Errorf("set the jump host chain of %d devices: %w", len(args), err)
			}
			if a.json {
				return a.printJSON(out)
			}
			if direct {
				fmt.Fprintf(a.io.Out, "cleared the jump host chain of %d devices\n", out.Updated)
				return nil
			}
			fmt.Fprintf(a.io.Out, "set the jump host chain of %d devices: %s\n", out.Updated, terminalSafeString(strings.Join(chain, " → ")))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&chain, "jump-host", nil, "a jump host to go through, in order (repeatable, at most 3)")
	fl.BoolVar(&direct, "direct", false, "connect directly: clear the devices' jump host chains")
	return cmd
}
