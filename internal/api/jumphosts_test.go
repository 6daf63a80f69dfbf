package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/jumphost"
)

// The jump host routes need admin on every site, like the credential profiles.
func init() {
	for _, route := range []string{
		"GET /v1/jump-hosts", "POST /v1/jump-hosts", "GET /v1/jump-hosts/{id}", "PATCH /v1/jump-hosts/{id}",
		"DELETE /v1/jump-hosts/{id}", "POST /v1/jump-hosts/{id}/host-key/accept",
	} {
		scopeCases[route] = globalOnly
	}
}

// createJumpHost creates jump host id as admin, with overrides of a valid body.
func createJumpHost(e *env, id string, overrides map[string]any) apiwire.JumpHost {
	e.t.Helper()
	body := map[string]any{"id": id, "host": "192.0.2.30", "port": 2222, "username": "hop", "password": "hop-secret-" + id}
	for k, v := range overrides {
		if v == nil {
			delete(body, k)
			continue
		}
		body[k] = v
	}
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/jump-hosts", "application/json", mustJSON(e.t, body))
	require.Equal(e.t, http.StatusCreated, r.Status, "create jump host %s: %s", id, r.Body)
	var h apiwire.JumpHost
	r.JSON(e.t, &h)
	return h
}

// pendJumpHostKey records a fresh key as jump host id's pending host key, as a run refused by a
// changed key does.
func pendJumpHostKey(e *env, id string) device.PendingHostKey {
	e.t.Helper()
	key := freshHostKey(e.t)
	require.NoError(e.t, e.jumpHosts.RecordPendingHostKey(context.Background(), id, key))
	p, err := device.NewPendingHostKey(key, time.Now())
	require.NoError(e.t, err)
	return p
}

func TestJumpHostLifecycle(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	ctx := context.Background()

	h := createJumpHost(e, "bastion", map[string]any{"trust_on_first_use": true})
	assert.Equal(t, "bastion", h.ID)
	assert.Equal(t, 2222, h.Port)
	assert.Equal(t, "password", h.AuthMethod)
	assert.True(t, h.HasCredential)
	assert.True(t, h.TrustOnFirstUse)
	c, err := e.secrets.Get(ctx, jumphost.SecretName("bastion"))
	require.NoError(t, err)
	assert.Equal(t, "hop-secret-bastion", c.Password, "the credential is in the secret store")

	r := e.do(admin, "POST", "/v1/jump-hosts", "application/json", []byte(`{"id":"bastion","host":"192.0.2.1","username":"u","password":"p"}`))
	assert.Equal(t, http.StatusConflict, r.Status, "same id twice")

	r = e.do(admin, "GET", "/v1/jump-hosts", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	var list apiwire.JumpHostList
	r.JSON(t, &list)
	require.Len(t, list.Items, 1)
	r = e.do(admin, "GET", "/v1/jump-hosts/bastion", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, `"1"`, r.Header.Get("ETag"))

	// A device names it in its chain; an unknown id, a repeated one or a fourth hop are refused.
	createJumpHost(e, "inner", nil)
	r = e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("behind", map[string]any{"jump_host_ids": []string{"bastion", "inner"}})))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	var d apiwire.Device
	r.JSON(t, &d)
	assert.Equal(t, []string{"bastion", "inner"}, d.JumpHostIDs, "the chain in order")

	// Rotation: the new password replaces the credential.
	r = e.do(admin, "PATCH", "/v1/jump-hosts/bastion", "application/json", []byte(`{"password":"rotated-secret","version":1}`))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	c, err = e.secrets.Get(ctx, jumphost.SecretName("bastion"))
	require.NoError(t, err)
	assert.Equal(t, "rotated-secret", c.Password)
	assert.Equal(t, http.StatusConflict, e.do(admin, "PATCH", "/v1/jump-hosts/bastion", "application/json", []byte(`{"username":"x","version":1}`)).Status, "stale version")

	// A new address drops the credential: it goes only to the host it was stored for.
	r = e.do(admin, "PATCH", "/v1/jump-hosts/bastion", "application/json", []byte(`{"host":"192.0.2.99"}`))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	h = apiwire.JumpHost{}
	r.JSON(t, &h)
	assert.False(t, h.HasCredential, "host change drops the credential")
	_, err = e.secrets.Get(ctx, jumphost.SecretName("bastion"))
	assert.ErrorIs(t, err, device.ErrNotFound, "the secret is deleted")
	r = e.do(admin, "PATCH", "/v1/jump-hosts/bastion", "application/json", []byte(`{"port":2200,"password":"for-the-new-port"}`))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	r.JSON(t, &h)
	assert.True(t, h.HasCredential, "a credential given with the new port is kept")

	// Delete is refused while a device names it, and says how many do.
	r = e.do(admin, "DELETE", "/v1/jump-hosts/inner", "", nil)
	require.Equal(t, http.StatusConflict, r.Status)
	var inUse apiwire.JumpHostInUseBody
	r.JSON(t, &inUse)
	assert.Equal(t, "jump_host_in_use", inUse.Error.Code)
	assert.Equal(t, 1, inUse.DeviceCount)
	assert.Equal(t, []string{"behind"}, inUse.DeviceIDs)
	assert.Contains(t, inUse.Error.Message, "1 device uses")

	r = e.do(admin, "PATCH", "/v1/devices/behind", "application/json", []byte(`{"jump_host_ids":["bastion"]}`))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Equal(t, http.StatusNoContent, e.do(admin, "DELETE", "/v1/jump-hosts/inner", "", nil).Status)
	assert.Equal(t, http.StatusNotFound, e.do(admin, "GET", "/v1/jump-hosts/inner", "", nil).Status)
	_, err = e.secrets.Get(ctx, jumphost.SecretName("inner"))
	assert.ErrorIs(t, err, device.ErrNotFound, "the secret goes with it")
	r = e.do(admin, "PATCH", "/v1/devices/behind", "application/json", []byte(`{"jump_host_ids":[]}`))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var direct apiwire.Device
	r.JSON(t, &direct)
	assert.Empty(t, direct.JumpHostIDs, "an empty chain is a direct connection")

	e.assertNoSecrets("hop-secret-bastion", "hop-secret-inner", "rotated-secret", "for-the-new-port")
}

// TestJumpHostBadInput: every refusal names the field and the rule, and nothing is stored.
func TestJumpHostBadInput(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	createJumpHost(e, "hop1", nil)
	createJumpHost(e, "hop2", nil)
	createJumpHost(e, "hop3", nil)
	createJumpHost(e, "hop4", nil)
	cases := []struct {
		name, body, field string
	}{
		{"no credential", `{"id":"j","host":"192.0.2.1","username":"u"}`, "password"},
		{"key method without key", `{"id":"j","host":"192.0.2.1","username":"u","auth_method":"private-key","password":"p"}`, "private_key"},
		{"bad host", `{"id":"j","host":"not a host!","username":"u","password":"p"}`, "host"},
		{"bad port", `{"id":"j","host":"192.0.2.1","port":70000,"username":"u","password":"p"}`, "port"},
		{"no username", `{"id":"j","host":"192.0.2.1","password":"p"}`, "username"},
		{"bad id", `{"id":"-j","host":"192.0.2.1","username":"u","password":"p"}`, "id"},
		{"bad host key", `{"id":"j","host":"192.0.2.1","username":"u","password":"p","host_key":"ssh-ed25519 nope"}`, "host_key"},
		{"passphrase without key", `{"id":"j","host":"192.0.2.1","username":"u","password":"p","passphrase":"x"}`, "passphrase"},
		{"unknown field", `{"id":"j","host":"192.0.2.1","username":"u","password":"p","jump":"x"}`, "jump"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(admin, "POST", "/v1/jump-hosts", "application/json", []byte(tc.body))
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, tc.field, eb.Error.Field, eb.Error.Message)
			assert.NotEmpty(t, eb.Error.Message)
			assert.Equal(t, http.StatusNotFound, e.do(admin, "GET", "/v1/jump-hosts/j", "", nil).Status, "nothing stored")
		})
	}
	chains := []struct {
		name  string
		chain []string
		rule  string
	}{
		{"unknown", []string{"hop1", "nope"}, `names no jump host "nope"`},
		{"repeated", []string{"hop1", "hop1"}, "twice"},
		{"too long", []string{"hop1", "hop2", "hop3", "hop4"}, "at most 3"},
		{"bad id", []string{"/x"}, "must be a jump host id"},
	}
	for _, tc := range chains {
		t.Run("chain "+tc.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("dev-"+tc.name[:3], map[string]any{"jump_host_ids": tc.chain})))
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, "jump_host_ids", eb.Error.Field)
			assert.Contains(t, eb.Error.Message, tc.rule)
		})
	}
	seedDevice(e, "plain")
	r := e.do(admin, "PATCH", "/v1/devices/plain", "application/json", []byte(`{"jump_host_ids":["gone"]}`))
	require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "jump_host_ids", eb.Error.Field)
}

// TestJumpHostChainImport: JSON and CSV imports set chains; a row naming an unknown jump host is
// refused by name and an atomic import writes nothing.
func TestJumpHostChainImport(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	createJumpHost(e, "edge", nil)
	createJumpHost(e, "core", nil)

	rows := []any{
		deviceJSON("imp-a", map[string]any{"jump_host_ids": []string{"edge", "core"}}),
		deviceJSON("imp-b", map[string]any{"jump_host_ids": []string{"missing"}}),
	}
	r := e.do(admin, "POST", "/v1/devices/import", "application/json", mustJSON(t, rows))
	require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	assert.Contains(t, string(r.Body), `names no jump host \"missing\"`)
	assert.Equal(t, http.StatusNotFound, e.do(admin, "GET", "/v1/devices/imp-a", "", nil).Status, "atomic: nothing written")

	csv := "id,name,host,username,password,jump_host_ids\nimp-c,c,192.0.2.40,u,pw-c,edge;core\nimp-d,d,192.0.2.41,u,pw-d,core\n"
	r = e.do(admin, "POST", "/v1/devices/import", "text/csv", []byte(csv))
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	for id, want := range map[string][]string{"imp-c": {"edge", "core"}, "imp-d": {"core"}} {
		r = e.do(admin, "GET", "/v1/devices/"+id, "", nil)
		require.Equal(t, http.StatusOK, r.Status)
		var d apiwire.Device
		r.JSON(t, &d)
		assert.Equal(t, want, d.JumpHostIDs, id)
	}
}

// TestAcceptJumpHostKey: a pending key is pinned only by its own fingerprint, and a changed key
// offered since is not accepted by the old one.
func TestAcceptJumpHostKey(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	createJumpHost(e, "hk", map[string]any{"host_key": freshHostKey(t)})
	accept := func(fp string) response {
		return e.do(admin, "POST", "/v1/jump-hosts/hk/host-key/accept", "application/json", []byte(`{"fingerprint":"`+fp+`"}`))
	}
	none := pendJumpHostKey(e, "hk")
	newer := pendJumpHostKey(e, "hk")
	r := accept(none.Fingerprint)
	require.Equal(t, http.StatusConflict, r.Status, "the older key is no longer pending: %s", r.Body)
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "host_key_not_pending", eb.Error.Code)

	r = e.do(admin, "GET", "/v1/jump-hosts/hk", "", nil)
	var h apiwire.JumpHost
	r.JSON(t, &h)
	require.NotNil(t, h.PendingHostKey)
	assert.Equal(t, newer.Fingerprint, h.PendingHostKey.Fingerprint)

	r = accept(newer.Fingerprint)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	h = apiwire.JumpHost{}
	r.JSON(t, &h)
	assert.Equal(t, newer.Key, h.HostKey)
	assert.Equal(t, newer.Fingerprint, h.HostKeyFingerprint)
	assert.Nil(t, h.PendingHostKey)
	assert.NotNil(t, h.HostKeyLearnedAt)
	assert.Equal(t, http.StatusConflict, accept(newer.Fingerprint).Status, "nothing pending any more")
	assert.Equal(t, http.StatusBadRequest, accept("SHA256:short").Status, "not a fingerprint")
	assert.Equal(t, http.StatusNotFound, e.do(admin, "POST", "/v1/jump-hosts/none/host-key/accept", "application/json", []byte(`{"fingerprint":"`+newer.Fingerprint+`"}`)).Status)
}
