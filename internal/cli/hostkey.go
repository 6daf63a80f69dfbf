package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/netauto/netauto/internal/apiwire"
)

// timeLayout is how device times are printed.
const timeLayout = "2006-01-02 15:04:05Z07:00"

// formatTime prints t, or "" when it is not set.
func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(timeLayout)
}

// devicesAcceptHostKey is `netauto devices accept-host-key ID --fingerprint SHA256:...`: pin the
// key a device offered instead of its pinned one. The fingerprint must be the pending key's, so
// the admin accepts exactly the key they checked.
func (a *app) devicesAcceptHostKey() *cobra.Command {
	var fingerprint string
	cmd := &cobra.Command{
		Use:   "accept-host-key ID --fingerprint SHA256:...",
		Short: "Pin the host key a device offered instead of its pinned one (admin)",
		Long: "Pin the device's pending host key, the one `netauto devices show ID` lists as pending_host_key.\n" +
			"Check the fingerprint with the device's owner first: a changed key can mean a man in the middle.\n" +
			"The API answers 409 host_key_not_pending when nothing is pending or the fingerprint differs.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fingerprint = strings.TrimSpace(fingerprint)
			if fingerprint == "" {
				return fmt.Errorf("--fingerprint is required: the pending key's SHA256:... fingerprint, as `netauto devices show %s` prints it", args[0])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var d apiwire.Device
			body := apiwire.HostKeyAccept{Fingerprint: fingerprint}
			if err := c.Do(cmd.Context(), "POST", "/devices/"+url.PathEscape(args[0])+"/host-key/accept", nil, body, "", &d); err != nil {
				if isStatus(err, http.StatusConflict) {
					return fmt.Errorf("accept host key of %s: %w\n  run `netauto devices show %s` to see the pending key", args[0], err, args[0])
				}
				return fmt.Errorf("accept host key of %s: %w", args[0], err)
			}
			if a.json {
				return a.printJSON(d)
			}
			fmt.Fprintf(a.io.Out, "pinned host key %s on %s (version %d)\n", terminalSafeString(d.HostKeyFingerprint), terminalSafeString(d.ID), d.Version)
			return nil
		},
	}
	cmd.Flags().StringVar(&fingerprint, "fingerprint", "", "the pending key's fingerprint, SHA256:... (required)")
	return cmd
}
