package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
)

// TestBulkUpdateJumpChains sets one chain on several devices at once, then clears it: every
// named device gets it, in order, with a new version; the others keep theirs; one audit entry
// per request names the devices and the chain.
func TestBulkUpdateJumpChains(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	for _, id := range []string{"edge-1", "edge-2", "core-1"} {
		seedDevice(e, id)
	}
	createJumpHost(e, "bastion", nil)
	createJumpHost(e, "inner", nil)
	ctx := context.Background()
	before, err := e.store.Get(ctx, "edge-1")
	require.NoError(t, err)

	e.audit.Reset()
	r := e.do(admin, "POST", "/v1/devices/bulk-update", "application/json",
		[]byte(`{"device_ids":["edge-2","edge-1"],"set":{"jump_host_ids":["bastion","inner"]}}`))
	require.Equal(t, http.StatusOK, r.Status, "bulk update: %s", r.Body)
	var out apiwire.DeviceBulkUpdated
	r.JSON(t, &out)
	assert.Equal(t, 2, out.Updated)
	require.Len(t, out.Items, 2)
	assert.Equal(t, []string{"edge-2", "edge-1"}, []string{out.Items[0].ID, out.Items[1].ID}, "items in the order of device_ids")
	for _, id := range []string{"edge-1", "edge-2"} {
		d, err := e.store.Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, []string{"bastion", "inner"}, d.JumpHostIDs, "%s: stored chain", id)
	}
	d, err := e.store.Get(ctx, "edge-1")
	require.NoError(t, err)
	assert.Equal(t, before.Version+1, d.Version, "a new version")
	assert.Equal(t, before.HasCredential, d.HasCredential, "the credential stays")
	c, err := e.secrets.Get(ctx, device.SecretName("edge-1"))
	require.NoError(t, err)
	assert.Equal(t, "s3cret-edge-1", c.Password, "the stored secret stays")
	other, err := e.store.Get(ctx, "core-1")
	require.NoError(t, err)
	assert.Empty(t, other.JumpHostIDs, "a device not named keeps its chain")
	entries := e.audit.Entries()
	require.Len(t, entries, 1, "one audit entry")
	assert.Equal(t, "device.bulk_update", entries[0].Action)
	assert.Equal(t, map[string]string{"devices": "2", "device_ids": "edge-2,edge-1", "jump_host_ids": "bastion,inner"}, entries[0].Detail)

	r = e.do(admin, "POST", "/v1/devices/bulk-update", "application/json", []byte(`{"device_ids":["edge-1"],"set":{"jump_host_ids":[]}}`))
	require.Equal(t, http.StatusOK, r.Status, "clear: %s", r.Body)
	d, err = e.store.Get(ctx, "edge-1")
	require.NoError(t, err)
	assert.Empty(t, d.JumpHostIDs, "cleared")
	d, err = e.store.Get(ctx, "edge-2")
	require.NoError(t, err)
	assert.Equal(t, []string{"bastion", "inner"}, d.JumpHostIDs, "the other device keeps its chain")

	r = e.do(e.tokens[auth.Operator], "POST", "/v1/devices/bulk-update", "application/json", []byte(`{"device_ids":["edge-1"],"set":{"jump_host_ids":["bastion"]}}`))
	wantStatus(t, r, http.StatusForbidden, "forbidden", "an operator")
}

// TestBulkUpdateRejects: every bad request answers 400 naming the field and the rule (and the
// ids that name no device), and changes nothing.
func TestBulkUpdateRejects(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[auth.Admin]
	seedDevice(e, "edge-1")
	seedDevice(e, "edge-2")
	createJumpHost(e, "bastion", nil)
	many := make([]string, device.MaxBulkUpdate+1)
	for i := range many {
		many[i] = fmt.Sprintf("d-%d", i)
	}
	cases := []struct {
		name    string
		body    string
		field   string
		message string
		unknown []string
	}{
		{"not json", `{`, "", "", nil},
		{"no set", `{"device_ids":["edge-1"]}`, "set", "must set something", nil},
		{"set nothing", `{"device_ids":["edge-1"],"set":{}}`, "set", "must set something", nil},
		{"set another field", `{"device_ids":["edge-1"],"set":{"name":"x"}}`, "name", "", nil},
		{"unknown member", `{"device_ids":["edge-1"],"set":{"jump_host_ids":[]},"force":true}`, "force", "", nil},
		{"no ids", `{"device_ids":[],"set":{"jump_host_ids":[]}}`, "device_ids", "at least one", nil},
		{"too many ids", string(mustJSON(t, map[string]any{"device_ids": many, "set": map[string]any{"jump_host_ids": []string{}}})), "device_ids", "at most 100", nil},
		{"invalid id", `{"device_ids":["edge-1","bad id"],"set":{"jump_host_ids":[]}}`, "device_ids[1]", "not a valid device id", nil},
		{"repeated id", `{"device_ids":["edge-1","edge-1"],"set":{"jump_host_ids":[]}}`, "device_ids[1]", "repeats", nil},
		{"chain too long", `{"device_ids":["edge-1"],"set":{"jump_host_ids":["a","b","c","d"]}}`, "set.jump_host_ids", "at most 3", nil},
		{"hop twice", `{"device_ids":["edge-1"],"set":{"jump_host_ids":["bastion","bastion"]}}`, "set.jump_host_ids", "twice", nil},
		{"hop not a jump host", `{"device_ids":["edge-1"],"set":{"jump_host_ids":["bastion","nowhere"]}}`, "set.jump_host_ids", `"nowhere"`, nil},
		{"unknown devices", `{"device_ids":["edge-1","ghost-1","edge-2","ghost-2"],"set":{"jump_host_ids":["bastion"]}}`, "device_ids", "ghost-1, ghost-2", []string{"ghost-1", "ghost-2"}},
	}
	before := e.snapshot()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.forT(t)
			r := e.do(admin, "POST", "/v1/devices/bulk-update", "application/json", []byte(tc.body))
			require.Equal(t, http.StatusBadRequest, r.Status, "body %s", r.Body)
			var eb apiwire.DeviceBulkRejected
			r.JSON(t, &eb)
			if tc.field != "" {
				assert.Equal(t, tc.field, eb.Error.Field, "field")
			}
			assert.Contains(t, eb.Error.Message, tc.message, "message")
			assert.Equal(t, tc.unknown, eb.UnknownIDs, "unknown_ids")
			e.assertUnchanged(before)
		})
	}
	// The body is bounded like every other.
	r := e.do(admin, "POST", "/v1/devices/bulk-update", "application/json",
		[]byte(`{"device_ids":["`+strings.Repeat("x", 2<<20)+`"],"set":{"jump_host_ids":[]}}`))
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status, "an oversized body")
	e.assertUnchanged(before)
}
