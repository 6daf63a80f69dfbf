package device_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/netauto/netauto/internal/device"
)

// TestCredentialNeverFormatted logs and formats a credential every way a careless line might,
// through slog's JSON and text handlers and fmt: no secret comes out.
func TestCredentialNeverFormatted(t *testing.T) {
	c := device.Credential{Password: "pw-2718", PrivateKey: "-----BEGIN KEY-----k-3141", Passphrase: "pp-1618", EnableSecret: "en-1414"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("json", "cred", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("text", "cred", c)
	fmt.Fprintf(&buf, "%v %+v %#v %s\n", c, c, c, c)
	for _, secret := range []string{c.Password, c.PrivateKey, c.Passphrase, c.EnableSecret} {
		assert.NotContains(t, buf.String(), secret, "a secret in:\n%s", buf.String())
	}
}
