package api_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

func freshHostKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
}

func TestAcceptHostKey(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	pinned, offered := freshHostKey(t), freshHostKey(t)
	r := e.do(e.tokens[auth.Admin], http.MethodPost, "/v1/devices", "application/json",
		mustJSON(t, deviceJSON("r1", map[string]any{"host_key": pinned, "trust_on_first_use": true})))
	require.Equal(t, http.StatusCreated, r.Status, "create: %s", r.Body)
	p, err := device.NewPendingHostKey(offered, time.Now())
	require.NoError(t, err)
	accept := func(role auth.Role, id, body string) response {
		return e.do(e.tokens[role], http.MethodPost, "/v1/devices/"+id+"/host-key/accept", "application/json", []byte(body))
	}
	fpBody := `{"fingerprint":"` + p.Fingerprint + `"}`

	r = accept(auth.Admin, "r1", fpBody)
	require.Equal(t, http.StatusConflict, r.Status, "accept with nothing pending: %s", r.Body)
	var eb errorBody
	r.JSON(t, &eb)
	assert.Equal(t, "host_key_not_pending", eb.Error.Code)
	assert.Equal(t, "fingerprint", eb.Error.Field)

	require.NoError(t, e.store.SetPendingHostKey(ctx, "r1", p))
	var got apiwire.Device
	r = e.do(e.tokens[auth.Viewer], http.MethodGet, "/v1/devices/r1", "", nil)
	require.Equal(t, http.StatusOK, r.Status)
	r.JSON(t, &got)
	require.NotNil(t, got.PendingHostKey, "GET shows the pending key")
	assert.Equal(t, apiwire.PendingHostKey{Key: p.Key, Fingerprint: p.Fingerprint, SeenAt: p.SeenAt}, *got.PendingHostKey)
	assert.Equal(t, device.HostKeyFingerprint(pinned), got.HostKeyFingerprint, "pinned key's fingerprint")

	before := e.snapshot()
	refused := []struct {
		name   string
		role   auth.Role
		id     string
		body   string
		status int
		field  string
	}{
		{"operator", auth.Operator, "r1", fpBody, http.StatusForbidden, ""},
		{"another fingerprint", auth.Admin, "r1", `{"fingerprint":"` + device.HostKeyFingerprint(pinned) + `"}`, http.StatusConflict, "fingerprint"},
		{"not a fingerprint", auth.Admin, "r1", `{"fingerprint":"MD5:aa:bb"}`, http.StatusBadRequest, "fingerprint"},
		{"no fingerprint", auth.Admin, "r1", `{}`, http.StatusBadRequest, "fingerprint"},
		{"unknown field", auth.Admin, "r1", `{"fingerprint":"` + p.Fingerprint + `","key":"x"}`, http.StatusBadRequest, "key"},
		{"not JSON", auth.Admin, "r1", `fingerprint`, http.StatusBadRequest, ""},
		{"unknown device", auth.Admin, "nope", fpBody, http.StatusNotFound, "id"},
		{"bad device id", auth.Admin, "bad%20id", fpBody, http.StatusBadRequest, "id"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			e := e.forT(t)
			r := accept(tt.role, tt.id, tt.body)
			require.Equal(t, tt.status, r.Status, "body %s", r.Body)
			if tt.field != "" {
				var eb errorBody
				r.JSON(t, &eb)
				assert.Equal(t, tt.field, eb.Error.Field, "error field")
			}
			e.assertUnchanged(before)
		})
	}

	r = accept(auth.Admin, "r1", fpBody)
	require.Equal(t, http.StatusOK, r.Status, "accept: %s", r.Body)
	got = apiwire.Device{}
	r.JSON(t, &got)
	assert.Equal(t, offered, got.HostKey, "the pending key is pinned")
	assert.Nil(t, got.PendingHostKey, "nothing pending")
	require.NotNil(t, got.HostKeyLearnedAt, "learned time")
	assert.Equal(t, strconv.Quote(strconv.FormatInt(got.Version, 10)), r.Header.Get("ETag"))
	assert.Contains(t, e.logs.String(), `"action":"host_key.accept"`, "the accept is audited")

	r = accept(auth.Admin, "r1", fpBody)
	assert.Equal(t, http.StatusConflict, r.Status, "a second accept finds nothing pending")
}
