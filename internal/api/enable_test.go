package api_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// TestDeviceEnableSecret: the enable secret is write-only, stored with the device's secret, kept
// across a change of the login and the login across a change of it, and dropped with the address.
func TestDeviceEnableSecret(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	ctx := context.Background()
	stored := func(id string) device.Credential {
		t.Helper()
		c, err := e.secrets.Get(ctx, device.SecretName(id))
		require.NoError(t, err)
		return c
	}
	dev := func(r response) apiwire.Device {
		t.Helper()
		require.Less(t, r.Status, 300, "%s", r.Body)
		var d apiwire.Device
		r.JSON(t, &d)
		return d
	}

	d := dev(e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("en1", map[string]any{"enable_secret": "enable-one"}))))
	assert.True(t, d.HasEnableSecret)
	assert.True(t, d.HasCredential)
	at := net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) // the address the secret is for
	assert.Equal(t, at, stored("en1").For)
	assert.Equal(t, "enable-one", stored("en1").EnableSecret)
	assert.Equal(t, "s3cret-en1", stored("en1").Password)

	d = dev(e.do(admin, "PATCH", "/v1/devices/en1", "application/json", []byte(`{"password":"login-two"}`)))
	assert.True(t, d.HasEnableSecret, "a new login keeps the enable secret")
	assert.Equal(t, device.Credential{Password: "login-two", EnableSecret: "enable-one", For: at}, stored("en1"))

	d = dev(e.do(admin, "PATCH", "/v1/devices/en1", "application/json", []byte(`{"enable_secret":"enable-three"}`)))
	assert.True(t, d.HasCredential, "a new enable secret keeps the login")
	assert.Equal(t, device.Credential{Password: "login-two", EnableSecret: "enable-three", For: at}, stored("en1"))

	d = dev(e.do(admin, "PATCH", "/v1/devices/en1", "application/json", []byte(`{"enable_secret":""}`)))
	assert.False(t, d.HasEnableSecret, "an empty enable secret removes it")
	assert.Equal(t, device.Credential{Password: "login-two", For: at}, stored("en1"))

	dev(e.do(admin, "PATCH", "/v1/devices/en1", "application/json", []byte(`{"enable_secret":"enable-four"}`)))
	d = dev(e.do(admin, "PATCH", "/v1/devices/en1", "application/json", []byte(`{"host":"192.0.2.77"}`)))
	assert.False(t, d.HasEnableSecret, "a new address drops the enable secret too")
	assert.False(t, d.HasCredential)
	_, err := e.secrets.Get(ctx, device.SecretName("en1"))
	assert.ErrorIs(t, err, device.ErrNotFound)

	// A device that logs in with a profile may still carry its own enable secret.
	d = dev(e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("en2", map[string]any{
		"password": nil, "credential_profile": "lab", "enable_secret": "own-enable"}))))
	assert.False(t, d.HasCredential)
	assert.True(t, d.HasEnableSecret)
	at2 := net.JoinHostPort(d.Host, strconv.Itoa(d.Port))
	assert.Equal(t, device.Credential{EnableSecret: "own-enable", For: at2}, stored("en2"))
	d = dev(e.do(admin, "PATCH", "/v1/devices/en2", "application/json", []byte(`{"site":"fra1"}`)))
	assert.True(t, d.HasEnableSecret, "an unrelated change keeps it")

	r := e.do(admin, "PATCH", "/v1/devices/en2", "application/json", mustJSON(t, map[string]string{"enable_secret": strings.Repeat("x", 2000)}))
	require.Equal(t, http.StatusBadRequest, r.Status)
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "enable_secret", eb.Error.Field)
	assert.Equal(t, device.Credential{EnableSecret: "own-enable", For: at2}, stored("en2"), "a refused change changes nothing")

	e.assertNoSecrets("enable-one", "login-two", "enable-three", "enable-four", "own-enable")
}

// TestProfileEnableSecret: a credential profile's enable secret is write-only and each part of
// its secret can change without the other.
func TestProfileEnableSecret(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	ctx := context.Background()
	stored := func() device.Credential {
		t.Helper()
		c, err := e.secrets.Get(ctx, device.ProfileSecretName("priv"))
		require.NoError(t, err)
		return c
	}
	prof := func(r response) apiwire.CredentialProfile {
		t.Helper()
		require.Less(t, r.Status, 300, "%s", r.Body)
		var p apiwire.CredentialProfile
		r.JSON(t, &p)
		return p
	}
	p := prof(e.do(admin, "POST", "/v1/credential-profiles", "application/json",
		[]byte(`{"id":"priv","allowed_sites":["*"],"password":"prof-login","enable_secret":"prof-enable"}`)))
	assert.True(t, p.HasEnable)
	assert.Equal(t, device.Credential{Password: "prof-login", EnableSecret: "prof-enable"}, stored())

	prof(e.do(admin, "PATCH", "/v1/credential-profiles/priv", "application/json", []byte(`{"password":"prof-login-2"}`)))
	assert.Equal(t, device.Credential{Password: "prof-login-2", EnableSecret: "prof-enable"}, stored(), "rotation keeps the enable secret")
	prof(e.do(admin, "PATCH", "/v1/credential-profiles/priv", "application/json", []byte(`{"enable_secret":"prof-enable-2"}`)))
	assert.Equal(t, device.Credential{Password: "prof-login-2", EnableSecret: "prof-enable-2"}, stored(), "a new enable secret keeps the login")
	p = prof(e.do(admin, "PATCH", "/v1/credential-profiles/priv", "application/json", []byte(`{"enable_secret":""}`)))
	assert.False(t, p.HasEnable)
	assert.Equal(t, device.Credential{Password: "prof-login-2"}, stored())
	e.assertNoSecrets("prof-login", "prof-enable", "prof-enable-2")
}
