// Package config reads NetAuto's configuration from environment variables. Each function declares
// the variables it reads (Vars), so the template test can check that template.yaml sets every one,
// and Load fails fast with a message naming the variable and the rule it broke.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"

	"github.com/netauto/netauto/internal/cronexpr"
	"github.com/netauto/netauto/internal/resources"
)

// Function names one of NetAuto's Lambda functions.
type Function string

// The functions, named as their folders under functions/.
const (
	API       Function = "api"
	WS        Function = "ws"
	Executor  Function = "executor"
	Retention Function = "retention"
	// Watchdog ends bulk jobs whose queue messages were lost (EventBridge, every 5 minutes).
	Watchdog Function = "watchdog"
	// Scheduler starts saved jobs whose schedules are due (EventBridge, every minute).
	Scheduler Function = "scheduler"
	// Notifier fans NetAuto's EventBridge events out to webhooks and delivers them (EventBridge
	// rule and the webhook queue).
	Notifier Function = "notifier"
)

// Functions lists every function.
func Functions() []Function {
	return []Function{API, WS, Executor, Retention, Watchdog, Scheduler, Notifier}
}

// Variable names that are not resource names.
const (
	EnvLogLevel   = "NET_AUTO_LOG_LEVEL"
	EnvRunMaxDays = "NET_AUTO_RUN_MAX_DAYS"
	// EnvAuditMaxDays is how long audit entries are kept (their TTL).
	EnvAuditMaxDays  = "NET_AUTO_AUDIT_MAX_DAYS"
	EnvRunMaxBytes   = "NET_AUTO_RUN_MAX_BYTES"
	EnvRetentionCron = "NET_AUTO_RETENTION_CRON"
	EnvBatchSize     = "NET_AUTO_BATCH_SIZE"
	// EnvMaxJobDevicesOperator and EnvMaxJobDevicesAdmin bound the devices of one job by the
	// caller's role.
	EnvMaxJobDevicesOperator = "NET_AUTO_MAX_JOB_DEVICES_OPERATOR"
	EnvMaxJobDevicesAdmin    = "NET_AUTO_MAX_JOB_DEVICES_ADMIN"
	// EnvMaxRunningJobsOperator and EnvMaxRunningJobsAdmin bound the unfinished jobs one
	// requester may have, by the caller's role.
	EnvMaxRunningJobsOperator = "NET_AUTO_MAX_RUNNING_JOBS_OPERATOR"
	EnvMaxRunningJobsAdmin    = "NET_AUTO_MAX_RUNNING_JOBS_ADMIN"
	EnvOutputCapBytes         = "NET_AUTO_OUTPUT_CAP_BYTES"
	EnvJumpMaxChannels        = "NET_AUTO_JUMP_MAX_CHANNELS"
	EnvWSEndpoint             = "NET_AUTO_WS_ENDPOINT"
	EnvSecrets                = "NET_AUTO_SECRETS"
	// EnvEventBus names the EventBridge bus NetAuto's events go to (internal/notify); unset or
	// "off" sends none.
	EnvEventBus = "NET_AUTO_EVENT_BUS"
	// EnvSecretsPrefix is the Secrets Manager name prefix of the stack's credentials; the template
	// sets it to netauto/<stack name>/ and grants the functions that prefix only.
	EnvSecretsPrefix = "NET_AUTO_SECRETS_PREFIX"
	// Live progress: the ws function checks the token on $connect itself.
	EnvJWTIssuer   = "NET_AUTO_JWT_ISSUER"
	EnvJWTAudience = "NET_AUTO_JWT_AUDIENCE"
	EnvJWKSURL     = "NET_AUTO_JWKS_URL"
	// EnvUserPoolID is the Cognito user pool asked about saved jobs' owners before each start;
	// unset: no identity provider is asked.
	EnvUserPoolID = "NET_AUTO_USER_POOL_ID"
	// EnvUIURL is the UI's origin, which Slack-format webhook messages link to.
	EnvUIURL = "NET_AUTO_UI_URL"
	// EnvWebhookAllowLoopback, "1" on a local stack only, lets webhooks allow and reach loopback
	// ranges; in AWS loopback is the Lambda sandbox's Runtime API. The template never sets it
	// (LocalOnlyVars), so it is not among any function's Vars.
	EnvWebhookAllowLoopback = "NET_AUTO_WEBHOOK_ALLOW_LOOPBACK"
)

// LocalOnlyVars are variables the api and notifier functions read that only a local stack may
// set: the template check refuses them in template.yaml.
func LocalOnlyVars() []string { return []string{EnvWebhookAllowLoopback} }

// Defaults.
const (
	DefaultRunMaxDays    = 30
	DefaultAuditMaxDays  = 365
	DefaultRetentionCron = "@daily"
	DefaultBatchSize     = 50
	// DefaultMaxJobDevicesOperator and DefaultMaxJobDevicesAdmin are the per-role device limits
	// of a job; MaxJobDevices is the most any request may name.
	DefaultMaxJobDevicesOperator = 1000
	DefaultMaxJobDevicesAdmin    = 10000
	MaxJobDevices                = 20000
	// DefaultMaxRunningJobsOperator and DefaultMaxRunningJobsAdmin are the per-role limits of
	// unfinished jobs per requester; MaxRunningJobs is the highest either may be set to.
	DefaultMaxRunningJobsOperator = 10
	DefaultMaxRunningJobsAdmin    = 50
	MaxRunningJobs                = 1000
	MaxBatchSize                  = 50
	DefaultOutputCapBytes         = 1 << 20
	// DefaultJumpMaxChannels bounds the device connections one batch runs through one jump host.
	DefaultJumpMaxChannels = 50
	// MaxJumpMaxChannels is as many as a batch has devices.
	MaxJumpMaxChannels = MaxBatchSize
	// DefaultSecretsPrefix is the Secrets Manager name prefix when NET_AUTO_SECRETS_PREFIX is unset.
	DefaultSecretsPrefix = "netauto/"
	// MaxSecretsPrefixLen leaves room in Secrets Manager's 512-character names for the longest
	// credential name (256 characters).
	MaxSecretsPrefixLen = 256
)

// secretsPrefixPattern is one or more Secrets Manager name segments, each followed by a slash.
var secretsPrefixPattern = regexp.MustCompile(`^([A-Za-z0-9_+=.@-]+/)+$`)

// userPoolPattern is a Cognito user pool id: <region>_<id>.
var userPoolPattern = regexp.MustCompile(`^[\w-]+_[0-9a-zA-Z]+$`)

// Var describes one environment variable a function reads.
type Var struct {
	Name     string
	Required bool
	Doc      string
}

// eventBusPattern is an EventBridge bus name, or a bus's ARN (another account's bus).
var eventBusPattern = regexp.MustCompile(`^([/.\-_A-Za-z0-9]{1,256}|arn:aws[a-z-]*:events:[a-z0-9-]+:[0-9]{12}:event-bus/[/.\-_A-Za-z0-9]{1,256})$`)

var (
	eventBusVar      = Var{Name: EnvEventBus, Doc: "EventBridge bus (name or ARN) of the Job Finished, Output Changed and Host Key Mismatch events (docs/events.md); unset or off sends none"}
	secretsVar       = Var{Name: EnvSecrets, Doc: "where device credentials live: secretsmanager (default) or file:DIR (local development)"}
	secretsPrefixVar = Var{Name: EnvSecretsPrefix, Doc: "Secrets Manager name prefix of the credentials, e.g. netauto/<stack>/ (default netauto/)"}
)

var uiURLVar = Var{Name: EnvUIURL, Doc: "the UI's origin (https://...), which Slack-format webhook messages link to; unset shows the page's path only"}

var common = []Var{
	{Name: EnvLogLevel, Doc: "log level: debug, info, warn or error (default info)"},
}

// Vars returns the variables fn reads, resource names first.
func Vars(fn Function) []Var {
	table := func(id string) Var {
		t, _ := resources.TableByID(id)
		return Var{Name: t.EnvVar, Required: true, Doc: "name of the " + id}
	}
	queue := func(id string) Var {
		q, _ := resources.QueueByID(id)
		return Var{Name: q.EnvVar, Required: true, Doc: "URL of the " + id}
	}
	retention := []Var{
		{Name: EnvRunMaxDays, Doc: "days a run is kept; 0 or infinity keeps runs forever (default 30)"},
		{Name: EnvRunMaxBytes, Doc: "bytes of output kept per device; unset means no cap"},
		{Name: EnvRetentionCron, Doc: "purge schedule (UTC): 5-field cron, @daily, @hourly, @weekly, @monthly or @every <minutes> (default @daily)"},
	}
	auditVars := []Var{table(resources.AuditTable),
		{Name: EnvAuditMaxDays, Doc: "days an audit entry is kept; 0 or infinity keeps entries forever (default 365)"}}
	var vs []Var
	switch fn {
	case API, Scheduler: // the scheduler starts saved jobs through the API server's own start
		vs = []Var{table(resources.DevicesTable), table(resources.RunsTable), table(resources.JobsTable), table(resources.SavedJobsTable), queue(resources.BulkQueue),
			{Name: EnvBatchSize, Doc: "devices per bulk batch message, 1-50 (default 50)"}, secretsVar, secretsPrefixVar,
			{Name: EnvMaxJobDevicesOperator, Doc: "most devices in one job requested by an operator, 1-20000 (default 1000)"},
			{Name: EnvMaxJobDevicesAdmin, Doc: "most devices in one job requested by an admin, 1-20000 (default 10000)"},
			{Name: EnvMaxRunningJobsOperator, Doc: "most unfinished jobs (runs included) one requester may have when an operator asks, 1-1000 (default 10)"},
			{Name: EnvMaxRunningJobsAdmin, Doc: "the same when an admin asks, 1-1000 (default 50)"},
			{Name: EnvUserPoolID, Doc: "Cognito user pool (<region>_<id>) asked whether a saved job's owner is still enabled and holds their roles before each start; unset: not asked"},
			eventBusVar}
		vs = append(vs, retention...)
		if fn == API {
			vs = append(vs, apiPushVars()...)
			vs = append(vs, webhooksVar(), uiURLVar)
		}
	case Notifier:
		vs = []Var{table(resources.WebhooksTable), queue(resources.WebhookQueue), secretsVar, secretsPrefixVar, uiURLVar}
	case WS:
		vs = []Var{table(resources.ConnectionsTable), table(resources.JobsTable)}
		vs = append(vs, liveVars...)
	case Executor:
		vs = []Var{table(resources.DevicesTable), table(resources.RunsTable), table(resources.JobsTable), table(resources.ConnectionsTable),
			queue(resources.BulkQueue), queue(resources.BulkDLQ),
			{Name: EnvWSEndpoint, Doc: "the WebSocket API's management endpoint for PostToConnection"},
			{Name: EnvOutputCapBytes, Doc: "output bytes stored per run before it is truncated (default 1048576)"},
			{Name: EnvJumpMaxChannels, Doc: "device connections a batch runs at once through one jump host (default 50)"},
			{Name: EnvRunMaxDays, Doc: "days a run is kept, for its TTL attribute (default 30)"}, secretsVar, secretsPrefixVar, eventBusVar}
	case Retention:
		vs = []Var{table(resources.RunsTable), table(resources.JobsTable)}
		vs = append(vs, retention...)
	case Watchdog:
		vs = []Var{table(resources.RunsTable), table(resources.JobsTable), table(resources.ConnectionsTable), table(resources.DevicesTable), queue(resources.BulkQueue),
			{Name: EnvWSEndpoint, Doc: "the WebSocket API's management endpoint for PostToConnection"}, secretsVar, secretsPrefixVar, eventBusVar}
	}
	if fn != WS { // every function that acts writes the audit trail
		vs = append(vs, auditVars...)
	}
	return append(vs, common...)
}

// liveVars are the ws function's token and push settings.
var liveVars = []Var{
	{Name: EnvJWTIssuer, Required: true, Doc: "issuer the ws function requires of a $connect token (the Cognito user pool's URL in AWS)"},
	{Name: EnvJWTAudience, Required: true, Doc: "audience (client ID) the ws function requires of a $connect token"},
	{Name: EnvJWKSURL, Doc: "where the issuer's signing keys are (default: the issuer's /.well-known/jwks.json)"},
	{Name: EnvWSEndpoint, Doc: "the WebSocket API's management endpoint (default: https://<domainName>/<stage> of the event)"},
}

// webhooksVar is the api function's webhooks table: their registry and test deliveries.
func webhooksVar() Var {
	t, _ := resources.TableByID(resources.WebhooksTable)
	return Var{Name: t.EnvVar, Doc: "name of the WebhooksTable; unset: /v1/webhooks answers 503"}
}

// apiPushVars let the api function push the progress it records itself (cancel, failed
// enqueue); without them it pushes nothing.
func apiPushVars() []Var {
	t, _ := resources.TableByID(resources.ConnectionsTable)
	return []Var{
		{Name: t.EnvVar, Doc: "name of the ConnectionsTable, to push progress the api records (cancel)"},
		{Name: EnvWSEndpoint, Doc: "the WebSocket API's management endpoint for PostToConnection"},
	}
}

// Config is the parsed configuration of one function.
type Config struct {
	// Tables maps a table's logical ID to its name.
	Tables map[string]string
	// Queues maps a queue's logical ID to its URL.
	Queues map[string]string
	// RunMaxDays is the age limit of runs; 0 means no limit.
	RunMaxDays int
	// AuditMaxDays is how long audit entries are kept; 0 means forever.
	AuditMaxDays int
	// RunMaxBytes is the per-device output cap; 0 means no cap.
	RunMaxBytes int64
	// RetentionCron is the purge schedule as given.
	RetentionCron string
	// BatchSize is the number of devices per bulk message.
	BatchSize int
	// MaxJobDevicesOperator and MaxJobDevicesAdmin bound a job's devices by the caller's role.
	MaxJobDevicesOperator, MaxJobDevicesAdmin int
	// MaxRunningJobsOperator and MaxRunningJobsAdmin bound a requester's unfinished jobs by the
	// caller's role.
	MaxRunningJobsOperator, MaxRunningJobsAdmin int
	// OutputCapBytes is the per-run output cap.
	OutputCapBytes int64
	// JumpMaxChannels bounds the channels a batch opens at once through one jump host.
	JumpMaxChannels int
	// WSEndpoint is the WebSocket management endpoint.
	WSEndpoint string
	// JWTIssuer, JWTAudience and JWKSURL check WebSocket $connect tokens.
	JWTIssuer, JWTAudience, JWKSURL string
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// SecretsDir is set when credentials live in files (NET_AUTO_SECRETS=file:DIR); empty means
	// AWS Secrets Manager.
	SecretsDir string
	// SecretsPrefix starts every Secrets Manager name of the credentials (ends with a slash).
	SecretsPrefix string
	// UserPoolID is the Cognito user pool asked about saved jobs' owners; empty: none is.
	UserPoolID string
	// UIURL is the UI's origin, for links in webhook messages; empty when unknown.
	UIURL string
	// EventBus is the EventBridge bus events go to; empty sends none.
	EventBus string
	// WebhookAllowLoopback is set on a local stack only (NET_AUTO_WEBHOOK_ALLOW_LOOPBACK=1):
	// webhooks may allow and reach loopback ranges.
	WebhookAllowLoopback bool
}

// Load reads fn's variables through getenv (os.Getenv in production) and validates them, joining
// every problem into one error that names each variable.
func Load(fn Function, getenv func(string) string) (Config, error) {
	c := Config{
		Tables: map[string]string{}, Queues: map[string]string{},
		RunMaxDays: DefaultRunMaxDays, AuditMaxDays: DefaultAuditMaxDays, RetentionCron: DefaultRetentionCron,
		BatchSize: DefaultBatchSize, OutputCapBytes: DefaultOutputCapBytes, LogLevel: slog.LevelInfo, JumpMaxChannels: DefaultJumpMaxChannels,
		MaxJobDevicesOperator: DefaultMaxJobDevicesOperator, MaxJobDevicesAdmin: DefaultMaxJobDevicesAdmin,
		MaxRunningJobsOperator: DefaultMaxRunningJobsOperator, MaxRunningJobsAdmin: DefaultMaxRunningJobsAdmin,
		SecretsPrefix: DefaultSecretsPrefix,
	}
	var errs []error
	bad := func(name, value, rule string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", name, value, rule))
	}
	for _, v := range Vars(fn) {
		raw := strings.TrimSpace(getenv(v.Name))
		if raw == "" {
			if v.Required {
				errs = append(errs, fmt.Errorf("%s: required but not set", v.Name))
			}
			continue
		}
		switch v.Name {
		case EnvLogLevel:
			if err := c.LogLevel.UnmarshalText([]byte(raw)); err != nil {
				bad(v.Name, raw, "must be debug, info, warn or error")
			}
		case EnvRunMaxDays, EnvAuditMaxDays:
			n, ok := parseDays(raw)
			switch {
			case !ok:
				bad(v.Name, raw, "must be a whole number of days from 0 to 36500, or infinity")
			case v.Name == EnvRunMaxDays:
				c.RunMaxDays = n
			default:
				c.AuditMaxDays = n
			}
		case EnvRunMaxBytes:
			if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n < 1 {
				bad(v.Name, raw, "must be a positive whole number of bytes (unset for no cap)")
			} else {
				c.RunMaxBytes = n
			}
		case EnvRetentionCron:
			if err := cronexpr.Validate(raw); err != nil {
				bad(v.Name, raw, "must be a 5-field cron (UTC) or @daily/@hourly/@weekly/@monthly/@every <minutes>: "+err.Error())
			} else {
				c.RetentionCron = raw
			}
		case EnvMaxJobDevicesOperator, EnvMaxJobDevicesAdmin, EnvMaxRunningJobsOperator, EnvMaxRunningJobsAdmin:
			// Per-role limits: each variable, the field it sets and its highest value.
			limits := map[string]struct {
				to  *int
				max int
			}{
				EnvMaxJobDevicesOperator: {&c.MaxJobDevicesOperator, MaxJobDevices}, EnvMaxJobDevicesAdmin: {&c.MaxJobDevicesAdmin, MaxJobDevices},
				EnvMaxRunningJobsOperator: {&c.MaxRunningJobsOperator, MaxRunningJobs}, EnvMaxRunningJobsAdmin: {&c.MaxRunningJobsAdmin, MaxRunningJobs},
			}
			l := limits[v.Name]
			if n, err := strconv.Atoi(raw); err != nil || n < 1 || n > l.max {
				bad(v.Name, raw, fmt.Sprintf("must be a whole number from 1 to %d", l.max))
			} else {
				*l.to = n
			}
		case EnvBatchSize:
			if n, err := strconv.Atoi(raw); err != nil || n < 1 || n > MaxBatchSize {
				bad(v.Name, raw, fmt.Sprintf("must be a whole number from 1 to %d", MaxBatchSize))
			} else {
				c.BatchSize = n
			}
		case EnvJumpMaxChannels:
			if n, err := strconv.Atoi(raw); err != nil || n < 1 || n > MaxJumpMaxChannels {
				bad(v.Name, raw, fmt.Sprintf("must be a whole number from 1 to %d", MaxJumpMaxChannels))
			} else {
				c.JumpMaxChannels = n
			}
		case EnvOutputCapBytes:
			if n, err := strconv.ParseInt(raw, 10, 64); err != nil || n < 1024 || n > 64<<20 {
				bad(v.Name, raw, "must be a whole number of bytes from 1024 to 67108864")
			} else {
				c.OutputCapBytes = n
			}
		case EnvSecrets:
			switch {
			case raw == "secretsmanager":
			case strings.HasPrefix(raw, "file:") && len(raw) > len("file:"):
				c.SecretsDir = strings.TrimPrefix(raw, "file:")
			default:
				bad(v.Name, raw, "must be secretsmanager or file:DIR")
			}
		case EnvSecretsPrefix:
			if len(raw) > MaxSecretsPrefixLen || !secretsPrefixPattern.MatchString(raw) {
				bad(v.Name, raw, fmt.Sprintf("must be Secrets Manager name segments (letters, digits, _+=.@-) each ending in a slash, e.g. netauto/<stack>/, at most %d characters", MaxSecretsPrefixLen))
			} else {
				c.SecretsPrefix = raw
			}
		case EnvUserPoolID:
			if !userPoolPattern.MatchString(raw) {
				bad(v.Name, raw, "must be a Cognito user pool id, <region>_<id> (unset: no owner check)")
			} else {
				c.UserPoolID = raw
			}
		case EnvEventBus:
			switch {
			case raw == "off":
			case eventBusPattern.MatchString(raw):
				c.EventBus = raw
			default:
				bad(v.Name, raw, "must be off, an EventBridge bus name (1-256 of letters, digits, /._-) or a bus ARN")
			}
		case EnvJWTIssuer:
			c.JWTIssuer = raw
		case EnvJWTAudience:
			c.JWTAudience = raw
		case EnvJWKSURL:
			if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
				bad(v.Name, raw, "must be an http(s) URL")
			}
			c.JWKSURL = raw
		case EnvUIURL:
			if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
				bad(v.Name, raw, "must be an http(s) URL")
			}
			c.UIURL = strings.TrimSuffix(raw, "/")
		case EnvWSEndpoint:
			if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
				bad(v.Name, raw, "must be an http(s) URL")
			}
			c.WSEndpoint = raw
		default:
			if !resourceVar(v.Name, raw, &c) {
				bad(v.Name, raw, "unknown variable")
			}
		}
	}
	if fn == API || fn == Notifier {
		switch raw := strings.TrimSpace(getenv(EnvWebhookAllowLoopback)); raw {
		case "", "0":
		case "1":
			c.WebhookAllowLoopback = true
		default:
			bad(EnvWebhookAllowLoopback, raw, "must be 1 (a local stack only) or unset")
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("%s function configuration: %w", fn, errors.Join(errs...))
	}
	return c, nil
}

// parseDays reads a retention in days: 0 to 36500, or infinity (0: kept forever).
func parseDays(raw string) (int, bool) {
	if strings.EqualFold(raw, "infinity") {
		return 0, true
	}
	n, err := strconv.Atoi(raw)
	return n, err == nil && n >= 0 && n <= 36500
}

func resourceVar(name, value string, c *Config) bool {
	for _, t := range resources.Tables() {
		if t.EnvVar == name {
			c.Tables[t.LogicalID] = value
			return true
		}
	}
	for _, q := range resources.Queues() {
		if q.EnvVar == name {
			c.Queues[q.LogicalID] = value
			return true
		}
	}
	return false
}
