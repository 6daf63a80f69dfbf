package cli

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
)

func TestAPIErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  APIError
		want string
	}{
		{name: "field", err: APIError{Status: 400, Code: "invalid", Field: "port", Message: "must be from 1 to 65535",
			Details: []apiwire.FieldError{{Field: "port", Message: "must be from 1 to 65535"}}},
			want: "port: must be from 1 to 65535 (invalid)"},
		{name: "details", err: APIError{Status: 400, Code: "invalid", Field: "body", Message: "2 problems",
			Details: []apiwire.FieldError{{Field: "host", Message: "required"}, {Field: "port", Message: "too big"}}},
			want: "body: 2 problems (invalid)\n  host: required\n  port: too big"},
		{name: "unknown devices", err: APIError{Status: 422, Code: "unknown_devices", Field: "device_ids", Message: "1 devices are not in the inventory", UnknownIDs: []string{"r9"}},
			want: "device_ids: 1 devices are not in the inventory (unknown_devices)\n  unknown devices: r9"},
		{name: "unauthorized", err: APIError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "token expired"},
			want: "token expired (unauthorized)\n  the token is missing, expired or invalid: pass --token, set NET_AUTO_TOKEN or run `netauto login`"},
		{name: "no message", err: APIError{Status: 502}, want: "Bad Gateway"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
		})
	}
}

func TestImportContentType(t *testing.T) {
	tests := []struct {
		name, file, format, want string
		wantErr                  bool
	}{
		{name: "json by extension", file: "a.JSON", want: "application/json"},
		{name: "csv by extension", file: "dir/a.csv", want: "text/csv"},
		{name: "flag wins", file: "a.json", format: "csv", want: "text/csv"},
		{name: "stdin needs a format", file: "-", wantErr: true},
		{name: "unknown", file: "a.yaml", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := importContentType(tc.file, tc.format)
			if tc.wantErr {
				assert.Error(t, err, "importContentType(%q, %q)", tc.file, tc.format)
			} else {
				assert.NoError(t, err, "importContentType(%q, %q)", tc.file, tc.format)
			}
			assert.Equal(t, tc.want, got, "importContentType(%q, %q)", tc.file, tc.format)
		})
	}
}

func TestJobOptions(t *testing.T) {
	tests := []struct {
		name  string
		flags jobFlags
		want  apiwire.BulkOptions
		// sent is the request body's options as JSON; absent when every option is the default.
		sent string
	}{
		{name: "none", flags: jobFlags{}, want: apiwire.BulkOptions{}, sent: `{"command":"c","device_ids":["d"]}`},
		{name: "timeout rounds up", flags: jobFlags{timeout: 1500 * time.Millisecond}, want: apiwire.BulkOptions{TimeoutS: 2},
			sent: `{"command":"c","device_ids":["d"],"options":{"timeout_s":2}}`},
		{name: "all", flags: jobFlags{timeout: time.Minute, maxConcurrency: 5, maxErrors: "10%"},
			want: apiwire.BulkOptions{TimeoutS: 60, MaxConcurrency: 5, MaxErrors: "10%"},
			sent: `{"command":"c","device_ids":["d"],"options":{"timeout_s":60,"max_concurrency":5,"max_errors":"10%"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.flags.options()
			assert.Equal(t, tc.want, got)
			body, err := json.Marshal(apiwire.BulkRequest{Command: "c", DeviceIDs: []string{"d"}, Options: got})
			require.NoError(t, err)
			assert.JSONEq(t, tc.sent, string(body))
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		name    string
		tags    []string
		want    map[string]string
		wantErr bool
	}{
		{name: "none", tags: nil, want: nil},
		{name: "value with =", tags: []string{"role=core", "env=prod=1"}, want: map[string]string{"role": "core", "env": "prod=1"}},
		{name: "no =", tags: []string{"role"}, wantErr: true},
		{name: "empty key", tags: []string{"=v"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTags(tc.tags)
			if tc.wantErr {
				assert.Error(t, err, "parseTags(%q)", tc.tags)
				return
			}
			require.NoError(t, err, "parseTags(%q)", tc.tags)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFormatCounts(t *testing.T) {
	tests := []struct {
		name   string
		counts map[string]int
		want   string
	}{
		{name: "display order, zeros left out", counts: map[string]int{"failed": 1, "succeeded": 3, "queued": 0}, want: "succeeded 3 · failed 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, formatCounts(tc.counts))
		})
	}
}
