package cli

import (
	"net/http"
	"testing"
	"time"
)

func TestAPIErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  APIError
		want string
	}{
		{name: "field", err: APIError{Status: 400, Code: "invalid", Field: "port", Message: "must be from 1 to 65535",
			Details: []FieldError{{Field: "port", Message: "must be from 1 to 65535"}}},
			want: "port: must be from 1 to 65535 (invalid)"},
		{name: "details", err: APIError{Status: 400, Code: "invalid", Field: "body", Message: "2 problems",
			Details: []FieldError{{Field: "host", Message: "required"}, {Field: "port", Message: "too big"}}},
			want: "body: 2 problems (invalid)\n  host: required\n  port: too big"},
		{name: "unknown devices", err: APIError{Status: 422, Code: "unknown_devices", Field: "device_ids", Message: "1 devices are not in the inventory", UnknownIDs: []string{"r9"}},
			want: "device_ids: 1 devices are not in the inventory (unknown_devices)\n  unknown devices: r9"},
		{name: "unauthorized", err: APIError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "token expired"},
			want: "token expired (unauthorized)\n  the token is missing, expired or invalid: pass --token, set NET_AUTO_TOKEN or run `netauto login`"},
		{name: "no message", err: APIError{Status: 502}, want: "Bad Gateway"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
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
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("importContentType(%q, %q) = %q, %v", tc.file, tc.format, got, err)
			}
		})
	}
}

func TestJobOptions(t *testing.T) {
	tests := []struct {
		name  string
		flags jobFlags
		want  *Options
	}{
		{name: "none", flags: jobFlags{}, want: nil},
		{name: "timeout rounds up", flags: jobFlags{timeout: 1500 * time.Millisecond}, want: &Options{TimeoutS: 2}},
		{name: "all", flags: jobFlags{timeout: time.Minute, maxConcurrency: 5, maxErrors: "10%"}, want: &Options{TimeoutS: 60, MaxConcurrency: 5, MaxErrors: "10%"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.flags.options()
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Errorf("options() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseTagsAndCounts(t *testing.T) {
	tags, err := parseTags([]string{"role=core", "env=prod=1"})
	if err != nil || tags["role"] != "core" || tags["env"] != "prod=1" {
		t.Errorf("parseTags = %v, %v", tags, err)
	}
	if _, err := parseTags([]string{"role"}); err == nil {
		t.Error("parseTags accepted a tag without =")
	}
	if got := formatCounts(map[string]int{"failed": 1, "succeeded": 3, "queued": 0}); got != "succeeded 3 · failed 1" {
		t.Errorf("formatCounts = %q", got)
	}
}
