package api_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// TestCredentialBoundToAddress: a device's own credential is stored with the address it is for
// (Credential.For), by create, import and a change of host that brings a new password, so an
// executor holding the device as it was before never sends it the new one.
func TestCredentialBoundToAddress(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	steps := []struct {
		name, method, path, body string
		id, wantFor              string
	}{
		{name: "create", method: "POST", path: "/v1/devices", body: `{"id":"cb-1","name":"n","host":"192.0.2.31","platform":"cisco_ios","username":"u","password":"pw-1"}`, id: "cb-1", wantFor: "192.0.2.31:22"},
		{name: "import", method: "POST", path: "/v1/devices/import", body: `[{"id":"cb-2","name":"n","host":"192.0.2.32","port":2222,"platform":"cisco_ios","username":"u","password":"pw-2"}]`, id: "cb-2", wantFor: "192.0.2.32:2222"},
		{name: "a new host with a new password", method: "PATCH", path: "/v1/devices/cb-1", body: `{"host":"2001:db8::7","password":"pw-3"}`, id: "cb-1", wantFor: "[2001:db8::7]:22"},
		{name: "a new password alone", method: "PATCH", path: "/v1/devices/cb-2", body: `{"password":"pw-4"}`, id: "cb-2", wantFor: "192.0.2.32:2222"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := e.do(admin, st.method, st.path, "application/json", []byte(st.body))
			require.Less(t, r.Status, 300, "%s", r.Body)
			c, err := e.secrets.Get(t.Context(), device.SecretName(st.id))
			require.NoError(t, err)
			assert.Equal(t, st.wantFor, c.For, "the address %s's credential is for", st.id)
		})
	}
	e.assertNoSecrets("pw-1", "pw-2", "pw-3", "pw-4")
}
