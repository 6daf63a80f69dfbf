package main

import (
	"bytes"
	"os"
	"path/filepath"
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

func TestSamconfigCopy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.toml"), filepath.Join(dir, "out.toml")
	src := `[default.deploy.parameters]
parameter_overrides = [
  "Stage=dev",
  "RetentionCron=@daily",
  "RetentionScheduleExpression=rate(1 day)",
]
[prod.deploy.parameters]
parameter_overrides = ["Stage=prod", "RetentionCron=@daily", "RetentionScheduleExpression=rate(1 day)"]
`
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := map[string]string{"NET_AUTO_RETENTION_CRON": "30 3 * * 1-5"}
	if code := run([]string{"-samconfig", in, "-o", out}, func(k string) string { return env[k] }, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Stage=dev"`, `"Stage=prod"`, `"RetentionCron=30 3 * * 1-5"`, `"RetentionScheduleExpression=cron(30 3 ? * MON-FRI *)"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("copy lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "rate(1 day)") || strings.Count(string(got), "RetentionScheduleExpression=cron") != 2 {
		t.Errorf("not every environment was rewritten:\n%s", got)
	}
	if err := os.WriteFile(in, []byte("[default]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"-samconfig", in, "-o", out}, func(string) string { return "" }, &stdout, &stderr); code != 1 {
		t.Errorf("a samconfig without the overrides: exit %d, want 1", code)
	}
}
