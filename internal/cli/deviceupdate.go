package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// devicesUpdate is `netauto devices update`: the reach of a device — its jump host chain and its
// enable secret — changed in place (PATCH), the rest of the device untouched.
func (a *app) devicesUpdate() *cobra.Command {
	var chain []string
	var direct, enableStdin, clearEnable bool
	var version int64
	cmd := &cobra.Command{
		Use:   "update ID [--jump-host J...] [--direct] [--enable-secret-stdin | --clear-enable-secret]",
		Short: "Change how a device is reached: its jump host chain and enable secret",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			var patch apiwire.DevicePatch
			var err error
			if patch.JumpHostIDs, err = chainFlags(chain, direct); err != nil {
				return err
			}
			switch {
			case enableStdin && clearEnable:
				return fmt.Errorf("--clear-enable-secret: give either it or --enable-secret-stdin")
			case enableStdin:
				s, err := readSecretLine(a.io.In)
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
			if patch.JumpHostIDs == nil && patch.EnableSecret == nil {
				return fmt.Errorf("nothing to change: give --jump-host, --direct, --enable-secret-stdin or --clear-enable-secret")
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
		return nil, fmt.Errorf("--direct: give either --direct or --jump-host, not both")
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
				return fmt.Errorf("nothing to set: give the chain with --jump-host (repeatable, in order) or clear it with --direct")
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
