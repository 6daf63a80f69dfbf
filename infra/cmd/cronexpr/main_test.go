package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "default", wantOut: "cron(0 0 * * ? *)\n"},
		{name: "from the environment", env: map[string]string{"NET_AUTO_RETENTION_CRON": "@hourly"}, wantOut: "cron(0 * * * ? *)\n"},
		{name: "argument wins", args: []string{"15 2 * * *"}, env: map[string]string{"NET_AUTO_RETENTION_CRON": "@hourly"}, wantOut: "cron(15 2 * * ? *)\n"},
		{name: "invalid names the variable", args: []string{"61 * * * *"}, wantCode: 2, wantErr: "NET_AUTO_RETENTION_CRON"},
		{name: "too many arguments", args: []string{"@daily", "@hourly"}, wantCode: 2, wantErr: "usage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := run(c.args, func(k string) string { return c.env[k] }, &out, &errb)
			if code != c.wantCode {
				t.Fatalf("exit %d, want %d (stderr %q)", code, c.wantCode, errb.String())
			}
			if out.String() != c.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), c.wantOut)
			}
			if c.wantErr != "" && !strings.Contains(errb.String(), c.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), c.wantErr)
			}
		})
	}
}
