package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// TestPatchAddressDropsCredential: a credential goes only to the host it was stored for. A PATCH
// that moves a device to another host or port drops its own secret and its profile unless the
// same request gives a new secret or names a profile again.
func TestPatchAddressDropsCredential(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	tests := []struct {
		name        string
		create      map[string]any
		patch       string
		wantCred    bool
		wantProfile string
		wantSecret  string
	}{
		{name: "new host drops the password", patch: `{"host":"203.0.113.7"}`},
		{name: "new port drops the password", patch: `{"port":2222}`},
		{name: "new host with a new password keeps that one", patch: `{"host":"203.0.113.7","password":"fresh-pw"}`, wantCred: true, wantSecret: "fresh-pw"},
		{name: "new host with only a passphrase drops it", patch: `{"host":"203.0.113.7","passphrase":"pp"}`},
		{name: "same host and port keep the password", patch: `{"host":"10.0.0.1","port":22,"name":"renamed"}`, wantCred: true, wantSecret: "s3cret-"},
		{name: "other fields keep the password", patch: `{"name":"renamed","tags":{"role":"edge"}}`, wantCred: true, wantSecret: "s3cret-"},
		{name: "new host drops the profile", create: map[string]any{"password": nil, "credential_profile": "lab"}, patch: `{"host":"203.0.113.7"}`},
		{name: "new host naming the profile again keeps it", create: map[string]any{"password": nil, "credential_profile": "lab"},
			patch: `{"host":"203.0.113.7","credential_profile":"lab"}`, wantProfile: "lab"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			id := "mv" + string(rune('a'+i))
			require.Equal(t, http.StatusCreated, e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON(id, tc.create))).Status)
			res := e.do(admin, "PATCH", "/v1/devices/"+id, "application/json", []byte(tc.patch))
			require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
			var d apiwire.Device
			res.JSON(t, &d)
			assert.Equal(t, tc.wantCred, d.HasCredential, "has_credential in the PATCH answer")
			assert.Equal(t, tc.wantProfile, d.CredentialProfile, "credential_profile in the PATCH answer")
			got := e.do(admin, "GET", "/v1/devices/"+id, "", nil)
			var stored apiwire.Device
			got.JSON(t, &stored)
			assert.Equal(t, tc.wantCred, stored.HasCredential, "has_credential when read again")
			c, err := e.secrets.Get(context.Background(), device.SecretName(id))
			if tc.wantSecret == "" {
				require.ErrorIs(t, err, device.ErrNotFound, "the secret must be deleted from the store")
				return
			}
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(c.Password, tc.wantSecret), "stored password")
		})
	}
}

// TestCredentialProfileLifecycle creates, reads, rotates and deletes a profile through the API;
// the secret never comes back, and a profile in use cannot be deleted.
func TestCredentialProfileLifecycle(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	body := `{"id":"core","username":"svc-net","allowed_sites":["ams1"],"allowed_tags":[{"role":"edge","env":"prod"}],"password":"first-secret-1"}`
	res := e.do(admin, "POST", "/v1/credential-profiles", "application/json", []byte(body))
	require.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)
	assert.Equal(t, "/v1/credential-profiles/core", res.Header.Get("Location"))
	var p apiwire.CredentialProfile
	res.JSON(t, &p)
	assert.Equal(t, apiwire.CredentialProfile{ID: "core", Username: "svc-net", AllowedSites: []string{"ams1"},
		AllowedTags: []map[string]string{{"role": "edge", "env": "prod"}}, HasSecret: true, Version: 1,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}, p)
	c, err := e.secrets.Get(context.Background(), device.ProfileSecretName("core"))
	require.NoError(t, err)
	assert.Equal(t, "first-secret-1", c.Password, "the secret is in the secret store")

	assert.Equal(t, http.StatusConflict, e.do(admin, "POST", "/v1/credential-profiles", "application/json", []byte(body)).Status, "same id twice")

	var list apiwire.CredentialProfileList
	res = e.do(admin, "GET", "/v1/credential-profiles", "", nil)
	require.Equal(t, http.StatusOK, res.Status)
	res.JSON(t, &list)
	ids := []string{}
	for _, it := range list.Items {
		ids = append(ids, it.ID)
	}
	assert.Equal(t, []string{"core", "lab"}, ids)

	res = e.do(admin, "PATCH", "/v1/credential-profiles/core", "application/json", []byte(`{"password":"second-secret-2","version":1}`))
	require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	res.JSON(t, &p)
	assert.Equal(t, int64(2), p.Version)
	c, err = e.secrets.Get(context.Background(), device.ProfileSecretName("core"))
	require.NoError(t, err)
	assert.Equal(t, "second-secret-2", c.Password, "rotated")
	assert.Equal(t, http.StatusConflict, e.do(admin, "PATCH", "/v1/credential-profiles/core", "application/json", []byte(`{"allowed_sites":[],"version":1}`)).Status, "stale version")

	require.Equal(t, http.StatusCreated, e.do(admin, "POST", "/v1/devices", "application/json",
		mustJSON(t, deviceJSON("user1", map[string]any{"password": nil, "credential_profile": "core"}))).Status)
	res = e.do(admin, "DELETE", "/v1/credential-profiles/core", "", nil)
	require.Equal(t, http.StatusConflict, res.Status, "%s", res.Body)
	var inUse apiwire.ProfileInUseBody
	res.JSON(t, &inUse)
	assert.Equal(t, "in_use", inUse.Error.Code)
	assert.Equal(t, []string{"user1"}, inUse.DeviceIDs)

	require.Equal(t, http.StatusNoContent, e.do(admin, "DELETE", "/v1/devices/user1", "", nil).Status)
	require.Equal(t, http.StatusNoContent, e.do(admin, "DELETE", "/v1/credential-profiles/core", "", nil).Status)
	assert.Equal(t, http.StatusNotFound, e.do(admin, "GET", "/v1/credential-profiles/core", "", nil).Status)
	_, err = e.secrets.Get(context.Background(), device.ProfileSecretName("core"))
	assert.ErrorIs(t, err, device.ErrNotFound, "the secret is deleted with the profile")
	e.assertNoSecrets("first-secret-1", "second-secret-2", "lab-secret")
}

// TestCredentialProfileRoles: only admins on every site reach the profiles.
func TestCredentialProfileRoles(t *testing.T) {
	e := newEnv(t)
	scoped, err := e.signer.Issue(auth.TokenSpec{Subject: "site-admin", Email: "sa@example.com", Groups: []string{"admin:ams1"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		token  string
		status int
	}{
		{"viewer", e.tokens[auth.Viewer], http.StatusForbidden},
		{"operator", e.tokens[auth.Operator], http.StatusForbidden},
		{"admin of one site", scoped, http.StatusForbidden},
		{"no token", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			for _, r := range []struct{ method, path, body string }{
				{"GET", "/v1/credential-profiles", ""},
				{"POST", "/v1/credential-profiles", `{"id":"x","allowed_sites":["*"],"password":"pw"}`},
				{"GET", "/v1/credential-profiles/lab", ""},
				{"PATCH", "/v1/credential-profiles/lab", `{"password":"stolen"}`},
				{"DELETE", "/v1/credential-profiles/lab", ""},
			} {
				res := e.do(tc.token, r.method, r.path, "application/json", []byte(r.body))
				assert.Equal(t, tc.status, res.Status, "%s %s: %s", r.method, r.path, res.Body)
			}
		})
	}
	c, err := e.secrets.Get(context.Background(), device.ProfileSecretName("lab"))
	require.NoError(t, err)
	assert.Equal(t, "lab-secret", c.Password, "nothing changed")
}

// TestCredentialProfileBadInput: each malformed profile is refused naming the field, and nothing
// is stored.
func TestCredentialProfileBadInput(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	for _, tc := range []struct{ name, body, field string }{
		{"no secret", `{"id":"p1","allowed_sites":["*"]}`, "password"},
		{"password and key", `{"id":"p1","password":"a","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----"}`, "private_key"},
		{"not a key", `{"id":"p1","private_key":"hello"}`, "private_key"},
		{"passphrase without key", `{"id":"p1","password":"a","passphrase":"b"}`, "passphrase"},
		{"bad id", `{"id":"../x","password":"a"}`, "id"},
		{"no id", `{"password":"a"}`, "id"},
		{"empty tag set", `{"id":"p1","password":"a","allowed_tags":[{}]}`, "allowed_tags[0]"},
		{"bad tag key", `{"id":"p1","password":"a","allowed_tags":[{"a b":"c"}]}`, "allowed_tags[0]"},
		{"empty site", `{"id":"p1","password":"a","allowed_sites":[""]}`, "allowed_sites[0]"},
		{"control character in site", `{"id":"p1","password":"a","allowed_sites":["a\u0007"]}`, "allowed_sites[0]"},
		{"username with a space", `{"id":"p1","password":"a","username":"a b"}`, "username"},
		{"unknown field", `{"id":"p1","password":"a","secret":"x"}`, "secret"},
		{"tags as a map", `{"id":"p1","password":"a","allowed_tags":{"role":"core"}}`, "allowed_tags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			res := e.do(admin, "POST", "/v1/credential-profiles", "application/json", []byte(tc.body))
			require.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
			var eb errorBody
			res.JSON(t, &eb)
			assert.Equal(t, tc.field, eb.Error.Field, "%s", res.Body)
			assert.Equal(t, http.StatusNotFound, e.do(admin, "GET", "/v1/credential-profiles/p1", "", nil).Status, "nothing stored")
		})
	}
	res := e.do(admin, "PATCH", "/v1/credential-profiles/lab", "application/json", []byte(`{"allowed_tags":[{}],"password":"never-stored"}`))
	require.Equal(t, http.StatusBadRequest, res.Status)
	c, err := e.secrets.Get(context.Background(), device.ProfileSecretName("lab"))
	require.NoError(t, err)
	assert.Equal(t, "lab-secret", c.Password, "a refused PATCH rotates nothing")
}

// TestDeviceMayNameOnlyAllowedProfiles: create, PATCH and import refuse a profile the device's
// site and tags are not allowed, and an unknown one, naming credential_profile and the rule.
func TestDeviceMayNameOnlyAllowedProfiles(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	require.Equal(t, http.StatusCreated, e.do(admin, "POST", "/v1/credential-profiles", "application/json",
		[]byte(`{"id":"ams","allowed_sites":["ams1"],"allowed_tags":[{"role":"lab"}],"password":"ams-secret"}`)).Status)
	for _, tc := range []struct {
		name      string
		overrides map[string]any
		status    int
		message   string
	}{
		{"site allowed", map[string]any{"site": "ams1"}, http.StatusCreated, ""},
		{"tags allowed", map[string]any{"site": "fra1", "tags": map[string]string{"role": "lab", "x": "y"}}, http.StatusCreated, ""},
		{"other site", map[string]any{"site": "fra1"}, http.StatusBadRequest, "not allowed for this device"},
		{"no site", map[string]any{"site": ""}, http.StatusBadRequest, "not allowed for this device"},
		{"tag value differs", map[string]any{"site": "fra1", "tags": map[string]string{"role": "core"}}, http.StatusBadRequest, "not allowed"},
		{"unknown profile", map[string]any{"credential_profile": "nope"}, http.StatusBadRequest, "no credential profile is named"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			id := strings.ReplaceAll(tc.name, " ", "-")
			over := map[string]any{"password": nil, "credential_profile": "ams"}
			for k, v := range tc.overrides {
				over[k] = v
			}
			res := e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON(id, over)))
			require.Equal(t, tc.status, res.Status, "%s", res.Body)
			if tc.status != http.StatusCreated {
				var eb errorBody
				res.JSON(t, &eb)
				assert.Equal(t, "credential_profile", eb.Error.Field)
				assert.Contains(t, eb.Error.Message, tc.message)
				assert.Equal(t, http.StatusNotFound, e.do(admin, "GET", "/v1/devices/"+id, "", nil).Status, "nothing created")
			}
		})
	}
	t.Run("patch that moves the device out of the profile's sites", func(t *testing.T) {
		e := e.forT(t)
		res := e.do(admin, "PATCH", "/v1/devices/site-allowed", "application/json", []byte(`{"site":"fra1"}`))
		require.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
		var eb errorBody
		res.JSON(t, &eb)
		assert.Equal(t, "credential_profile", eb.Error.Field)
		var d apiwire.Device
		e.do(admin, "GET", "/v1/devices/site-allowed", "", nil).JSON(t, &d)
		assert.Equal(t, "ams1", d.Site, "nothing changed")
	})
	t.Run("patch naming a profile not allowed", func(t *testing.T) {
		e := e.forT(t)
		require.Equal(t, http.StatusCreated, e.do(admin, "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("own", map[string]any{"site": "fra1"}))).Status)
		res := e.do(admin, "PATCH", "/v1/devices/own", "application/json", []byte(`{"credential_profile":"ams"}`))
		require.Equal(t, http.StatusBadRequest, res.Status, "%s", res.Body)
		c, err := e.secrets.Get(context.Background(), device.SecretName("own"))
		require.NoError(t, err, "the device keeps its own secret")
		assert.Equal(t, "s3cret-own", c.Password)
	})
	t.Run("import", func(t *testing.T) {
		e := e.forT(t)
		rows := []map[string]any{
			deviceJSON("imp-ok", map[string]any{"password": nil, "credential_profile": "ams", "site": "ams1"}),
			deviceJSON("imp-bad", map[string]any{"password": nil, "credential_profile": "ams", "site": "fra1"}),
		}
		res := e.do(admin, "POST", "/v1/devices/import?mode=per-row", "application/json", mustJSON(t, rows))
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
		var ir apiwire.ImportResult
		res.JSON(t, &ir)
		require.Len(t, ir.Rows, 2)
		assert.Equal(t, device.RowCreated, ir.Rows[0].Status)
		assert.Equal(t, device.RowInvalid, ir.Rows[1].Status)
		require.NotEmpty(t, ir.Rows[1].Errors)
		assert.Equal(t, "credential_profile", ir.Rows[1].Errors[0].Field)
	})
	e.assertNoSecrets("ams-secret")
}
