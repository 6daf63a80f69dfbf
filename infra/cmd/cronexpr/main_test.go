package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
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
			require.Equal(t, c.wantCode, code, "exit code (stderr %q)", errb.String())
			assert.Equal(t, c.wantOut, out.String(), "stdout")
			if c.wantErr != "" {
				assert.Contains(t, errb.String(), c.wantErr, "stderr")
			}
		})
	}
}

// TestSamconfigCopy runs cronexpr -samconfig on samconfig contents and checks what SAM CLI would
// read from the copy (templatecheck's port of its parser), or the refusal.
func TestSamconfigCopy(t *testing.T) {
	t.Parallel()
	repoSamconfig, err := os.ReadFile(filepath.Join("..", "..", "..", "samconfig.toml"))
	require.NoError(t, err)
	const unquoted = `[default.deploy.parameters]
parameter_overrides = [
  "Stage=dev",
  "RetentionCron=@daily",
  "RetentionScheduleExpression=rate(1 day)",
]
[prod.deploy.parameters]
parameter_overrides = ["Stage=prod", "RetentionCron=@daily", "RetentionScheduleExpression=cron(0 0 * * ? *)"]
`
	cases := []struct {
		name     string
		src      string
		cron     string
		wantCode int
		want     map[string]string // every environment's overrides SAM CLI reads
		wantErr  string
	}{
		{name: "the repository's samconfig.toml, five-field cron", src: string(repoSamconfig), cron: "30 3 * * 1-5",
			want: map[string]string{"RetentionCron": "30 3 * * 1-5", "RetentionScheduleExpression": "cron(30 3 ? * MON-FRI *)"}},
		{name: "the repository's samconfig.toml, default", src: string(repoSamconfig),
			want: map[string]string{"RetentionCron": "@daily", "RetentionScheduleExpression": "cron(0 0 * * ? *)"}},
		{name: "unquoted overrides are rewritten quoted", src: unquoted, cron: "15 2 * * *",
			want: map[string]string{"Stage": "", "RetentionCron": "15 2 * * *", "RetentionScheduleExpression": "cron(15 2 * * ? *)"}},
		{name: "no overrides to replace", src: "[default]\n", cron: "@hourly", wantCode: 1,
			wantErr: "sets no RetentionCron / RetentionScheduleExpression override to replace"},
		{name: "an override it cannot rewrite", src: `[default.deploy.parameters]
parameter_overrides = ["Stage=dev RetentionCron=@daily", "RetentionScheduleExpression=rate(1 day)"]
`, cron: "30 3 * * 1-5", wantCode: 1,
			wantErr: `[default.deploy.parameters] SAM CLI would read RetentionCron as "@daily", not "30 3 * * 1-5"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			in, out := filepath.Join(dir, "in.toml"), filepath.Join(dir, "out.toml")
			require.NoError(t, os.WriteFile(in, []byte(tc.src), 0o644))
			var stdout, stderr bytes.Buffer
			env := map[string]string{"NET_AUTO_RETENTION_CRON": tc.cron}
			code := run([]string{"-samconfig", in, "-o", out}, func(k string) string { return env[k] }, &stdout, &stderr)
			require.Equal(t, tc.wantCode, code, "stderr: %s", stderr.String())
			if tc.wantCode != 0 {
				assert.Contains(t, stderr.String(), tc.wantErr)
				assert.NoFileExists(t, out)
				return
			}
			data, err := os.ReadFile(out)
			require.NoError(t, err)
			var doc map[string]map[string]map[string]map[string]any
			_, err = toml.Decode(string(data), &doc)
			require.NoError(t, err)
			envs := 0
			for env, cmds := range doc {
				po, ok := cmds["deploy"]["parameters"]["parameter_overrides"]
				if !ok {
					continue
				}
				envs++
				got, err := templatecheck.ParseParameterOverrides(po)
				require.NoError(t, err, env)
				for k, v := range tc.want {
					if v != "" {
						assert.Equal(t, v, got[k], "%s: %s", env, k)
					}
				}
			}
			assert.Equal(t, 2, envs, "both environments are in the copy")
		})
	}
}

// TestSamconfigCopyPassesTemplateCheck checks that the copy make deploy hands sam deploy passes
// the template's samconfig check for a schedule with spaces in both parameters.
func TestSamconfigCopyPassesTemplateCheck(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "..")
	out := filepath.Join(t.TempDir(), "samconfig.deploy.toml")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-samconfig", filepath.Join(root, "samconfig.toml"), "-o", out, "0 4 * * 0"}, func(string) string { return "" }, &stdout, &stderr)
	require.Zero(t, code, stderr.String())
	tpl, err := templatecheck.ParseFile(filepath.Join(root, "template.yaml"))
	require.NoError(t, err)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.Empty(t, templatecheck.CheckSamconfigData(tpl, data))
	assert.Contains(t, string(data), `'RetentionCron="0 4 * * 0"'`)
}
