package sshexec

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTargetLogsNoSecret logs a target with a jump host through slog's JSON and text handlers:
// where it goes shows, no secret of it or its hop does.
func TestTargetLogsNoSecret(t *testing.T) {
	hop := Hop{ID: "bastion", Host: "192.0.2.9", Username: "jump", Password: "hop-pw-577", PrivateKeyPEM: []byte("hop-key-215"), Passphrase: "hop-pp-664"}
	tg := Target{Host: "192.0.2.1", Port: 22, Username: "ops", Password: "pw-2718", PrivateKeyPEM: []byte("key-3141"), Passphrase: "pp-1618",
		EnableSecret: "en-1414", JumpHosts: []Hop{hop}}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("run", "target", tg, "hop", hop)
	}
	for _, secret := range []string{"pw-2718", "pp-1618", "en-1414", "hop-pw-577", "hop-pp-664"} {
		assert.NotContains(t, buf.String(), secret, "a secret in:\n%s", buf.String())
	}
	// A key is bytes, which the JSON handler writes in base64 and the text handler as numbers.
	for _, key := range [][]byte{tg.PrivateKeyPEM, hop.PrivateKeyPEM} {
		for _, form := range []string{string(key), base64.StdEncoding.EncodeToString(key), fmt.Sprint(key)} {
			assert.NotContains(t, buf.String(), form, "a private key in:\n%s", buf.String())
		}
	}
	assert.Contains(t, buf.String(), "192.0.2.1", "the target's host")
	assert.Contains(t, buf.String(), "bastion", "the hop's id")
}
