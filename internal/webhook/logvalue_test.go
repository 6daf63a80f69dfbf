package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/webhook"
)

// TestSecretNeverFormatted: a webhook's URL and signing secret stay out of logs and formatting,
// and its JSON form (what the secret store keeps) still holds both.
func TestSecretNeverFormatted(t *testing.T) {
	s := webhook.Secret{URL: "https://hooks.example.com/T0/B1/xyz-secret-path", SigningSecret: "sig-9876"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("json", "secret", s)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("text", "secret", s)
	fmt.Fprintf(&buf, "%v %+v %#v %s\n", s, s, s, s)
	for _, secret := range []string{"xyz-secret-path", "sig-9876"} {
		assert.NotContains(t, buf.String(), secret, "a secret in:\n%s", buf.String())
	}
	data, err := json.Marshal(s)
	require.NoError(t, err)
	var back webhook.Secret
	require.NoError(t, json.Unmarshal(data, &back))
	assert.Equal(t, s, back, "the stored form round-trips")
}
