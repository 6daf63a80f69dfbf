package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func retentionEnv(extra map[string]string) map[string]string {
	m := map[string]string{"NET_AUTO_RUNS_TABLE": "runs", "NET_AUTO_JOBS_TABLE": "jobs", "NET_AUTO_AUDIT_TABLE": "audit"}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestLoadRetention(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantErr   string
		wantDays  int
		wantBytes int64
		wantCron  string
	}{
		{name: "defaults", env: retentionEnv(nil), wantDays: 30, wantCron: "@daily"},
		{name: "hourly cron", env: retentionEnv(map[string]string{EnvRetentionCron: "@hourly"}), wantDays: 30, wantCron: "@hourly"},
		{name: "five-field cron", env: retentionEnv(map[string]string{EnvRetentionCron: "30 3 * * 1-5"}), wantDays: 30, wantCron: "30 3 * * 1-5"},
		{name: "cron with four fields", env: retentionEnv(map[string]string{EnvRetentionCron: "0 3 * *"}), wantErr: EnvRetentionCron},
		{name: "cron out of range", env: retentionEnv(map[string]string{EnvRetentionCron: "0 25 * * *"}), wantErr: EnvRetentionCron},
		{name: "cron unknown descriptor", env: retentionEnv(map[string]string{EnvRetentionCron: "@sometimes"}), wantErr: EnvRetentionCron},
		{name: "cron both day fields", env: retentionEnv(map[string]string{EnvRetentionCron: "0 3 1 * 1"}), wantErr: EnvRetentionCron},
		{name: "cron seconds rate", env: retentionEnv(map[string]string{EnvRetentionCron: "@every 10s"}), wantErr: EnvRetentionCron},
		{name: "explicit days and bytes", env: retentionEnv(map[string]string{EnvRunMaxDays: "7", EnvRunMaxBytes: "1048576"}), wantDays: 7, wantBytes: 1 << 20},
		{name: "infinity disables age", env: retentionEnv(map[string]string{EnvRunMaxDays: "infinity"}), wantDays: 0},
		{name: "zero disables age", env: retentionEnv(map[string]string{EnvRunMaxDays: "0"}), wantDays: 0},
		{name: "negative days", env: retentionEnv(map[string]string{EnvRunMaxDays: "-1"}), wantErr: EnvRunMaxDays},
		{name: "words for days", env: retentionEnv(map[string]string{EnvRunMaxDays: "thirty"}), wantErr: EnvRunMaxDays},
		{name: "zero bytes", env: retentionEnv(map[string]string{EnvRunMaxBytes: "0"}), wantErr: EnvRunMaxBytes},
		{name: "bytes with unit", env: retentionEnv(map[string]string{EnvRunMaxBytes: "10MB"}), wantErr: EnvRunMaxBytes},
		{name: "missing table", env: map[string]string{"NET_AUTO_JOBS_TABLE": "jobs", "NET_AUTO_AUDIT_TABLE": "audit"}, wantErr: "NET_AUTO_RUNS_TABLE: required"},
		{name: "bad log level", env: retentionEnv(map[string]string{EnvLogLevel: "loud"}), wantErr: EnvLogLevel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(Retention, env(tc.env))
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr, "Load's error names the variable")
				return
			}
			require.NoError(t, err, "Load")
			assert.Equal(t, tc.wantDays, c.RunMaxDays, "RunMaxDays")
			assert.Equal(t, tc.wantBytes, c.RunMaxBytes, "RunMaxBytes")
			if tc.wantCron != "" {
				assert.Equal(t, tc.wantCron, c.RetentionCron, "RetentionCron")
			}
			assert.Equal(t, "runs", c.Tables["RunsTable"], "the runs table")
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load(API, env(map[string]string{EnvBatchSize: "51"}))
	require.Error(t, err, "Load accepted an empty environment")
	for _, want := range []string{"NET_AUTO_DEVICES_TABLE", "NET_AUTO_BULK_QUEUE_URL", EnvBatchSize} {
		assert.ErrorContains(t, err, want, "the error names %s", want)
	}
}

func TestEveryFunctionHasVars(t *testing.T) {
	for _, fn := range Functions() {
		seen := map[string]bool{}
		for _, v := range Vars(fn) {
			assert.False(t, seen[v.Name], "%s lists %s twice", fn, v.Name)
			seen[v.Name] = true
			assert.NotEmpty(t, v.Doc, "%s: %s has no doc", fn, v.Name)
		}
		assert.True(t, seen[EnvLogLevel], "%s does not read %s", fn, EnvLogLevel)
	}
}

func TestLoadSecretsPrefix(t *testing.T) {
	executorEnv := func(prefix string) map[string]string {
		m := map[string]string{
			"NET_AUTO_DEVICES_TABLE": "d", "NET_AUTO_RUNS_TABLE": "r", "NET_AUTO_JOBS_TABLE": "j", "NET_AUTO_SAVED_JOBS_TABLE": "s", "NET_AUTO_WEBHOOKS_TABLE": "w", "NET_AUTO_AUDIT_TABLE": "a",
			"NET_AUTO_CONNECTIONS_TABLE": "c", "NET_AUTO_BULK_QUEUE_URL": "q", "NET_AUTO_BULK_DLQ_URL": "dlq",
		}
		if prefix != "" {
			m[EnvSecretsPrefix] = prefix
		}
		return m
	}
	tests := []struct {
		name    string
		prefix  string
		want    string
		wantErr bool
	}{
		{name: "unset is the local default", want: "netauto/"},
		{name: "stack scoped", prefix: "netauto/netauto-dev/", want: "netauto/netauto-dev/"},
		{name: "no trailing slash", prefix: "netauto/netauto-dev", wantErr: true},
		{name: "leading slash", prefix: "/netauto/", wantErr: true},
		{name: "empty segment", prefix: "netauto//", wantErr: true},
		{name: "space", prefix: "netauto/my stack/", wantErr: true},
		{name: "wildcard", prefix: "netauto/*/", wantErr: true},
		{name: "too long", prefix: strings.Repeat("a", MaxSecretsPrefixLen) + "/", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, fn := range []Function{API, Executor} {
				env := executorEnv(tc.prefix)
				c, err := Load(fn, func(k string) string {
					if fn == API && k == "NET_AUTO_BULK_DLQ_URL" {
						return ""
					}
					return env[k]
				})
				if tc.wantErr {
					require.Error(t, err, "%s accepted %q", fn, tc.prefix)
					assert.ErrorContains(t, err, EnvSecretsPrefix, fn)
					assert.ErrorContains(t, err, "ending in a slash", fn)
					continue
				}
				require.NoError(t, err, fn)
				assert.Equal(t, tc.want, c.SecretsPrefix, fn)
			}
		})
	}
}

func TestLoadAuditMaxDays(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    int
		wantErr bool
	}{
		{name: "default", want: DefaultAuditMaxDays},
		{name: "days", value: "90", want: 90},
		{name: "infinity keeps forever", value: "infinity", want: 0},
		{name: "negative", value: "-1", wantErr: true},
		{name: "words", value: "a year", wantErr: true},
		{name: "too many", value: "36501", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(Retention, env(retentionEnv(map[string]string{EnvAuditMaxDays: tc.value})))
			if tc.wantErr {
				require.ErrorContains(t, err, EnvAuditMaxDays)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.AuditMaxDays)
			assert.Equal(t, "audit", c.Tables["AuditTable"])
		})
	}
}

func TestLoadMaxRunningJobs(t *testing.T) {
	apiEnv := func(extra map[string]string) map[string]string {
		m := map[string]string{
			"NET_AUTO_DEVICES_TABLE": "d", "NET_AUTO_RUNS_TABLE": "r", "NET_AUTO_JOBS_TABLE": "j", "NET_AUTO_SAVED_JOBS_TABLE": "s", "NET_AUTO_WEBHOOKS_TABLE": "w", "NET_AUTO_AUDIT_TABLE": "a",
			"NET_AUTO_BULK_QUEUE_URL": "q",
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name          string
		env           map[string]string
		wantOp, wantA int
		wantErr       []string
	}{
		{name: "defaults", wantOp: 10, wantA: 50},
		{name: "both set", env: map[string]string{EnvMaxRunningJobsOperator: "3", EnvMaxRunningJobsAdmin: "1000"}, wantOp: 3, wantA: 1000},
		{name: "operator zero", env: map[string]string{EnvMaxRunningJobsOperator: "0"}, wantErr: []string{EnvMaxRunningJobsOperator}},
		{name: "admin over 1000", env: map[string]string{EnvMaxRunningJobsAdmin: "1001"}, wantErr: []string{EnvMaxRunningJobsAdmin}},
		{name: "words", env: map[string]string{EnvMaxRunningJobsOperator: "ten"}, wantErr: []string{EnvMaxRunningJobsOperator}},
		{name: "a job devices limit keeps its own range", env: map[string]string{EnvMaxJobDevicesOperator: "1001", EnvMaxRunningJobsOperator: "1001"},
			wantErr: []string{EnvMaxRunningJobsOperator}},
		{name: "both bad, both named", env: map[string]string{EnvMaxRunningJobsOperator: "-1", EnvMaxRunningJobsAdmin: "5.5"},
			wantErr: []string{EnvMaxRunningJobsOperator, EnvMaxRunningJobsAdmin}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(API, env(apiEnv(tc.env)))
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				for _, want := range tc.wantErr {
					assert.ErrorContains(t, err, want)
				}
				assert.ErrorContains(t, err, "must be a whole number from 1 to 1000")
				assert.NotContains(t, err.Error(), EnvMaxJobDevicesOperator, "1001 devices per job is allowed")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantOp, c.MaxRunningJobsOperator)
			assert.Equal(t, tc.wantA, c.MaxRunningJobsAdmin)
		})
	}
}

// TestLoadUserPoolID: the api and the scheduler take a Cognito user pool id, unset means no
// owner check, and anything else is refused naming the variable.
func TestLoadUserPoolID(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		want    string
		wantErr bool
	}{
		{name: "unset: no owner check"},
		{name: "a pool id", value: "eu-west-1_AbC123", want: "eu-west-1_AbC123"},
		{name: "no underscore", value: "eu-west-1", wantErr: true},
		{name: "an ARN", value: "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbC123", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, fn := range []Function{API, Scheduler} {
				env := map[string]string{
					"NET_AUTO_DEVICES_TABLE": "d", "NET_AUTO_RUNS_TABLE": "r", "NET_AUTO_JOBS_TABLE": "j", "NET_AUTO_SAVED_JOBS_TABLE": "s",
					"NET_AUTO_AUDIT_TABLE": "a", "NET_AUTO_BULK_QUEUE_URL": "q", EnvUserPoolID: tc.value,
				}
				c, err := Load(fn, func(k string) string { return env[k] })
				if tc.wantErr {
					require.Error(t, err, fn)
					assert.ErrorContains(t, err, EnvUserPoolID, fn)
					continue
				}
				require.NoError(t, err, fn)
				assert.Equal(t, tc.want, c.UserPoolID, fn)
			}
		})
	}
}

// TestLoadWebhookAllowLoopback: only the api and the notifier read the local-only switch, only
// "1" sets it, and no function declares it among the variables the template must set.
func TestLoadWebhookAllowLoopback(t *testing.T) {
	notifierEnv := func(v string) map[string]string {
		return map[string]string{"NET_AUTO_WEBHOOKS_TABLE": "w", "NET_AUTO_WEBHOOK_QUEUE_URL": "q", "NET_AUTO_AUDIT_TABLE": "a", EnvWebhookAllowLoopback: v}
	}
	for _, tc := range []struct {
		name    string
		value   string
		want    bool
		wantErr bool
	}{
		{name: "unset: as in AWS", value: "", want: false},
		{name: "0", value: "0", want: false},
		{name: "1: a local stack", value: "1", want: true},
		{name: "anything else", value: "yes", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(Notifier, env(notifierEnv(tc.value)))
			if tc.wantErr {
				require.ErrorContains(t, err, EnvWebhookAllowLoopback)
				assert.ErrorContains(t, err, "must be 1 (a local stack only) or unset")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.WebhookAllowLoopback)
		})
	}
	for _, fn := range Functions() {
		assert.False(t, slices.ContainsFunc(Vars(fn), func(v Var) bool { return slices.Contains(LocalOnlyVars(), v.Name) }),
			"the %s function declares a local-only variable, which the template would have to set", fn)
	}
}

func TestLoadEventBus(t *testing.T) {
	watchdogEnv := func(bus string) map[string]string {
		m := map[string]string{"NET_AUTO_RUNS_TABLE": "r", "NET_AUTO_JOBS_TABLE": "j", "NET_AUTO_AUDIT_TABLE": "a", "NET_AUTO_BULK_QUEUE_URL": "q", "NET_AUTO_CONNECTIONS_TABLE": "c", "NET_AUTO_DEVICES_TABLE": "d"}
		if bus != "" {
			m[EnvEventBus] = bus
		}
		return m
	}
	tests := []struct {
		name    string
		value   string
		want    string
		wantErr bool
	}{
		{name: "unset sends nothing", value: "", want: ""},
		{name: "off sends nothing", value: "off", want: ""},
		{name: "the default bus", value: "default", want: "default"},
		{name: "a custom bus", value: "netauto-prod.events", want: "netauto-prod.events"},
		{name: "another account's bus", value: "arn:aws:events:eu-west-1:123456789012:event-bus/central", want: "arn:aws:events:eu-west-1:123456789012:event-bus/central"},
		{name: "spaces", value: "my bus", wantErr: true},
		{name: "not an events ARN", value: "arn:aws:sqs:eu-west-1:123456789012:q", wantErr: true},
		{name: "too long", value: strings.Repeat("b", 257), wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(Watchdog, env(watchdogEnv(tc.value)))
			if tc.wantErr {
				require.ErrorContains(t, err, EnvEventBus)
				assert.ErrorContains(t, err, "must be off, an EventBridge bus name")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, c.EventBus)
		})
	}
	for _, fn := range []Function{API, Scheduler, Executor, Watchdog} {
		assert.True(t, slices.ContainsFunc(Vars(fn), func(v Var) bool { return v.Name == EnvEventBus }), "the %s function ends jobs or meets host keys: it sends events", fn)
	}
}
