package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteRecord(t *testing.T) {
	tests := []struct {
		name           string
		status         int
		location, etag string
		body           string
	}{
		{name: "created", status: http.StatusCreated, location: "/v1/x/a", etag: `"3"`, body: `{"id":"a"}`},
		{name: "read has no location", status: http.StatusOK, etag: `"3"`, body: `{"id":"a"}`},
		{name: "deleted has no body or headers", status: http.StatusNoContent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeRecord(w, tc.status, "/v1/x/a", 3, map[string]string{"id": "a"})
			assert.Equal(t, tc.status, w.Code)
			assert.Equal(t, tc.location, w.Header().Get("Location"))
			assert.Equal(t, tc.etag, w.Header().Get("ETag"))
			if tc.body == "" {
				assert.Empty(t, w.Body.String())
			} else {
				assert.JSONEq(t, tc.body, w.Body.String())
			}
		})
	}
}

func TestPathRecordID(t *testing.T) {
	r := httptest.NewRequest("GET", "/v1/jump-hosts/x", nil)
	r.SetPathValue("id", "bad id!")
	_, err := pathRecordID(r, "jump host")
	var refused *refusedBody
	require.True(t, errors.As(err, &refused))
	assert.Equal(t, http.StatusBadRequest, refused.status)
	assert.Equal(t, "id", refused.body.Field)
	assert.Equal(t, "is not a valid jump host id", refused.body.Message)

	r.SetPathValue("id", "bastion-1")
	id, err := pathRecordID(r, "jump host")
	require.NoError(t, err)
	assert.Equal(t, "bastion-1", id)
}

func TestPatchBase(t *testing.T) {
	seven, eight := int64(7), int64(8)
	tests := []struct {
		name    string
		ifMatch string
		body    *int64
		want    *int64
		field   string
	}{
		{name: "neither", want: nil},
		{name: "body only", body: &seven, want: &seven},
		{name: "header only", ifMatch: `"8"`, want: &eight},
		{name: "header agrees", ifMatch: `"7"`, body: &seven, want: &seven},
		{name: "header differs", ifMatch: `"8"`, body: &seven, field: "version"},
		{name: "header not a version", ifMatch: `"x"`, field: "If-Match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("PATCH", "/v1/webhooks/a", nil)
			if tc.ifMatch != "" {
				r.Header.Set("If-Match", tc.ifMatch)
			}
			got, err := patchBase(r, tc.body, "webhook")
			if tc.field != "" {
				var refused *refusedBody
				require.True(t, errors.As(err, &refused))
				assert.Equal(t, http.StatusBadRequest, refused.status)
				assert.Equal(t, tc.field, refused.body.Field)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
