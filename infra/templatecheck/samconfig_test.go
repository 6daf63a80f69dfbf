package templatecheck_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// TestParseParameterOverridesLikeSAMCLI holds the Go port to SAM CLI: every want is what SAM CLI
// 1.164.0's CfnParameterOverridesType().convert([input]) returned for the input (nil: it failed).
func TestParseParameterOverridesLikeSAMCLI(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string]string
	}{
		{"unquoted cron is cut at its first space", "RetentionScheduleExpression=cron(0 0 * * ? *)", map[string]string{"RetentionScheduleExpression": "cron(0"}},
		{"double-quoted value", `RetentionScheduleExpression="cron(0 0 * * ? *)"`, map[string]string{"RetentionScheduleExpression": "cron(0 0 * * ? *)"}},
		{"single-quoted value", `RetentionScheduleExpression='cron(0 0 * * ? *)'`, map[string]string{"RetentionScheduleExpression": "cron(0 0 * * ? *)"}},
		{"unquoted five-field cron", "RetentionCron=30 3 * * 1-5", map[string]string{"RetentionCron": "30"}},
		{"quoted five-field cron", `RetentionCron="30 3 * * 1-5"`, map[string]string{"RetentionCron": "30 3 * * 1-5"}},
		{"two pairs", "A=1 B=2", map[string]string{"A": "1", "B": "2"}},
		{"mixed quoting", `A="x y" B='p q' C=r`, map[string]string{"A": "x y", "B": "p q", "C": "r"}},
		{"ParameterKey form", `ParameterKey=A,ParameterValue=1 ParameterKey=B,ParameterValue="two words"`, map[string]string{"A": "1", "B": "two words"}},
		{"ParameterKey form wins over Key=Value", "ParameterKey=A,ParameterValue=1 B=2", map[string]string{"A": "1"}},
		{"ParameterKey form later in the string", "A=1 ParameterKey=B,ParameterValue=2", map[string]string{"B": "2"}},
		{"escaped space", `A=a\ b`, map[string]string{"A": "a b"}},
		{"escaped double quotes", `A="a \"q\" b"`, map[string]string{"A": `a "q" b`}},
		{"escaped single quote", `A='it\'s'`, map[string]string{"A": "it's"}},
		{"single quote inside", "A=x'y", map[string]string{"A": "x'y"}},
		{"double quote inside ends the value", `A=x"y`, map[string]string{"A": "x"}},
		{"other escapes stay", `A=x\\y`, map[string]string{"A": `x\\y`}},
		{"quoted key", `"A"=1`, map[string]string{"A": "1"}},
		{"quoted key and value", `'A'='1'`, map[string]string{"A": "1"}},
		{"surrounding space", "  A=1   ", map[string]string{"A": "1"}},
		{"a tab does not separate", "A=1\tB=2", map[string]string{"A": "1\tB=2"}},
		{"empty quotes", `A=""`, map[string]string{"A": ""}},
		{"equals sign in the value", "A=b=c", map[string]string{"A": "b=c"}},
		{"value starting with equals", "A==1", map[string]string{"A": "=1"}},
		{"later pair wins", "A=1 A=2", map[string]string{"A": "2"}},
		{"comma", "A=,b", map[string]string{"A": ",b"}},
		{"text after closing quote is lost", `A="x"y`, map[string]string{"A": "x"}},
		{"word after quoted value is lost", `A="x" y`, map[string]string{"A": "x"}},
		{"empty value", "A=", nil},
		{"unterminated quote", `A="unterminated`, nil},
		{"lone quote", `A="`, nil},
		{"dash in key", "Key-Name=1", nil},
		{"no equals sign", "novalue", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := templatecheck.ParseParameterOverrides([]any{tc.in})
			if tc.want == nil {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "is not a valid format")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseParameterOverridesShapes(t *testing.T) {
	cases := []struct {
		name    string
		in      any
		want    map[string]string
		wantErr string
	}{
		{"one string", "A=1 B=2", map[string]string{"A": "1", "B": "2"}, ""},
		{"nested lists", []any{"A=1", []any{"B=2", []any{"C=3"}}}, map[string]string{"A": "1", "B": "2", "C": "3"}, ""},
		{"table", map[string]any{"A": "x y", "N": int64(5), "L": []any{"a", "", " b "}}, map[string]string{"A": "x y", "N": "5", "L": "a,b"}, ""},
		{"table with a boolean", map[string]any{"A": true}, nil, "A: value true (bool)"},
		{"list of numbers", []any{int64(1)}, nil, "is not a string, list or table"},
		{"file reference", "file://params.toml", nil, "file:// references are not followed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := templatecheck.ParseParameterOverrides(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestQuoteOverride checks that what QuoteOverride writes parses back to the value.
func TestQuoteOverride(t *testing.T) {
	cases := []struct {
		name, key, value string
		wantErr          string
	}{
		{"cron expression", "RetentionScheduleExpression", "cron(30 3 ? * MON-FRI *)", ""},
		{"five-field cron", "RetentionCron", "30 3 * * 1-5", ""},
		{"descriptor", "RetentionCron", "@daily", ""},
		{"single quote", "A", "it's", ""},
		{"empty", "A", "", ""},
		{"double quote", "A", `say "hi"`, "cannot be passed through SAM CLI unchanged"},
		{"backslash", "A", `a\b`, "cannot be passed through SAM CLI unchanged"},
		{"bad key", "A-B", "x", "must be letters and digits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			item, err := templatecheck.QuoteOverride(tc.key, tc.value)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			got, err := templatecheck.ParseParameterOverrides([]any{item})
			require.NoError(t, err)
			assert.Equal(t, map[string]string{tc.key: tc.value}, got)
		})
	}
}

// samconfigProblems runs every check on template src and samconfig content, and returns the
// samconfig check's problems.
func samconfigProblems(t *testing.T, src, samconfig string) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "samconfig.toml")
	require.NoError(t, os.WriteFile(path, []byte(samconfig), 0o600))
	tpl, err := templatecheck.Parse([]byte(src))
	require.NoError(t, err)
	var out []string
	for _, p := range templatecheck.Problems(templatecheck.Check(tpl, templatecheck.Options{Root: repoRoot(t), Samconfig: path})) {
		if p.Check == templatecheck.CheckSamconfig {
			out = append(out, p.Error())
		}
	}
	return out
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	require.NoError(t, err)
	return string(data)
}

func TestSamconfig(t *testing.T) {
	assert.Empty(t, samconfigProblems(t, readTemplate(t), readRepoFile(t, "samconfig.toml")))
}

// TestSamconfigCatches breaks samconfig.toml (or the template's parameter constraints) in one
// way per case and expects the samconfig check to name it.
func TestSamconfigCatches(t *testing.T) {
	old := readRepoFile(t, "infra/templatecheck/testdata/samconfig-unquoted-cron.toml")
	cases := []struct {
		name      string
		samconfig string // whole content; empty: samconfig.toml with the mutations
		mutations []mutation
		template  []mutation
		want      []string
	}{
		{name: "the samconfig.toml committed with an unquoted cron", samconfig: old, want: []string{
			`[default.deploy.parameters].parameter_overrides.RetentionScheduleExpression: SAM CLI passes "cron(0", which does not match AllowedPattern`,
			`[prod.deploy.parameters].parameter_overrides.RetentionScheduleExpression: SAM CLI passes "cron(0", not the "cron(0 0 * * ? *)" written`,
		}},
		{name: "unquoted five-field cron", mutations: []mutation{{`'RetentionCron="@daily"'`, `"RetentionCron=30 3 * * 1-5"`}},
			want: []string{`RetentionCron: SAM CLI passes "30", not the "30 3 * * 1-5" written`}},
		{name: "unknown parameter", mutations: []mutation{{`"Stage=dev"`, `"Stag=dev"`}},
			want: []string{`"Stag" is not a parameter of the template`}},
		{name: "not an allowed value", mutations: []mutation{{`"LogRetentionDays=14"`, `"LogRetentionDays=15"`}},
			want: []string{`LogRetentionDays: SAM CLI passes "15", which is not one of AllowedValues [1, 3, 5`}},
		{name: "below MinValue", mutations: []mutation{{`"ExecutorMaxConcurrency=10"`, `"ExecutorMaxConcurrency=1"`}},
			want: []string{`ExecutorMaxConcurrency: SAM CLI passes "1", which is less than MinValue 2`}},
		{name: "above MaxValue", mutations: []mutation{{`"ExecutorMaxConcurrency=50"`, `"ExecutorMaxConcurrency=5000"`}},
			want: []string{`[prod.deploy.parameters].parameter_overrides.ExecutorMaxConcurrency: SAM CLI passes "5000", which is more than MaxValue 1000`}},
		{name: "not a number", mutations: []mutation{{`"ExecutorMaxConcurrency=10"`, `"ExecutorMaxConcurrency=ten"`}},
			want: []string{`"ten", which is not a number`}},
		{name: "fails AllowedPattern", mutations: []mutation{{`"Stage=dev"`, `"Stage=Dev"`}},
			want: []string{`Stage: SAM CLI passes "Dev", which does not match AllowedPattern`}},
		{name: "longer than MaxLength", template: []mutation{{"    Default: dev\n", "    Default: dev\n    MaxLength: 3\n"}},
			want: []string{`[prod.deploy.parameters].parameter_overrides.Stage: SAM CLI passes "prod", which is longer than MaxLength 3`}},
		{name: "shorter than MinLength", template: []mutation{{"    Default: dev\n", "    Default: dev\n    MinLength: 4\n"}},
			want: []string{`[default.deploy.parameters].parameter_overrides.Stage: SAM CLI passes "dev", which is shorter than MinLength 4`}},
		{name: "an item SAM CLI rejects", mutations: []mutation{{`"Stage=dev",`, `"Stage=dev", "novalue",`}},
			want: []string{`SAM CLI rejects it: parameter override "novalue" is not a valid format`}},
		{name: "not TOML", mutations: []mutation{{"[default.global.parameters]", "[default.global.parameters"}},
			want: []string{"samconfig.toml: parse:"}},
	}
	base := readRepoFile(t, "samconfig.toml")
	tpl := readTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc := tc.samconfig
			if sc == "" {
				sc = applyTo(t, "samconfig.toml", base, tc.mutations)
			}
			got := samconfigProblems(t, apply(t, tpl, tc.template), sc)
			require.NotEmpty(t, got, "the samconfig check passed a samconfig broken by %q", tc.name)
			for _, w := range tc.want {
				assert.Contains(t, strings.Join(got, "\n"), w)
			}
		})
	}
}

// applyTo replaces the first occurrence of each mutation's old text in src, a copy of file.
func applyTo(t *testing.T, file, src string, ms []mutation) string {
	t.Helper()
	for _, m := range ms {
		require.Contains(t, src, m.old, "mutation target not in %s; update the test", file)
		src = strings.Replace(src, m.old, m.new, 1)
	}
	return src
}
