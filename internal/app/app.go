// Package app wires configuration, AWS clients and domain packages into the Lambda handlers of
// NetAuto's functions. The thin mains under functions/ and the local gateway build their handlers
// here, so the code that runs in AWS is the code that runs locally.
package app

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/cognito"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/credprofile"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/savedjob"
	"github.com/netauto/netauto/internal/secrets"
	"github.com/netauto/netauto/internal/webhook"
)

// HTTPHandler is the signature of the api function's Lambda handler (API Gateway HTTP API,
// payload format 2.0).
type HTTPHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// APIOptions are the knobs the local gateway turns; a Lambda main passes the zero value.
type APIOptions struct {
	// Health is reported by GET /v1/health under "deployment".
	Health map[string]any
	Logger *slog.Logger
	// Publisher pushes the progress events the API itself records (a failed enqueue, a cancel).
	Publisher bulk.Publisher
	// WebhookResolver replaces the DNS resolver of webhook hosts for test deliveries (tests).
	WebhookResolver webhook.Resolver
}

// AWSConfig loads the SDK configuration the standard way (environment, shared config, the
// Lambda role), with HTTPClient as every client's HTTP client. AWS_ENDPOINT_URL_<SERVICE>
// variables point it at local stand-ins.
func AWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithHTTPClient(HTTPClient()))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// maxIdleConnsPerHost is how many idle connections an AWS client keeps per endpoint. The SDK
// keeps 10, fewer than the calls an executor has in flight (a batch's 50 devices, the coalesced
// writes of the batch before it, its progress records): every call over 10 then opened a new
// connection, on AWS with a TLS handshake (docs/fanout.md has the measurement).
const maxIdleConnsPerHost = 128

// HTTPClient returns the SDK's HTTP client with enough idle connections per endpoint that
// concurrent calls reuse them (maxIdleConnsPerHost).
func HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.MaxIdleConnsPerHost = maxIdleConnsPerHost })
}

// Inventory builds the device inventory over DynamoDB and the configured secret store, with the
// credential profile registry checking which devices may use which profile.
func Inventory(ctx context.Context, cfg config.Config, awsCfg aws.Config) (*device.Inventory, error) {
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return inventory(cfg, awsCfg, sec)
}

// executorInventory is the inventory the executor reads devices and credentials through: its
// devices' and profiles' secrets are kept in a bounded cache (secrets.Cache), so a batch's own
// secrets are read together and each is read once per executor instance and TTL, not once per
// run.
func executorInventory(cfg config.Config, awsCfg aws.Config) (*device.Inventory, error) {
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	cache, err := secrets.NewCache(sec, secrets.DefaultCacheSize, secrets.DefaultCacheTTL)
	if err != nil {
		return nil, err
	}
	return inventory(cfg, awsCfg, cache)
}

func inventory(cfg config.Config, awsCfg aws.Config, sec device.SecretStore) (*device.Inventory, error) {
	store, err := dynamo.NewDeviceStore(dynamo.NewClient(awsCfg), cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, err
	}
	inv, err := device.NewInventory(store, sec)
	if err != nil {
		return nil, err
	}
	profiles, err := credentialProfiles(cfg, awsCfg, sec)
	if err != nil {
		return nil, err
	}
	inv.UseProfiles(profiles)
	jumpHosts, err := JumpHosts(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	inv.UseJumpHosts(jumpHosts)
	return inv, nil
}

// JumpHosts builds the jump host registry: metadata in the devices table, credentials in the
// configured secret store.
func JumpHosts(cfg config.Config, awsCfg aws.Config) (*jumphost.Registry, error) {
	store, err := dynamo.NewJumpHostStore(dynamo.NewClient(awsCfg), cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, err
	}
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return jumphost.NewRegistry(store, sec)
}

// CredentialProfiles builds the credential profile registry: metadata in the devices table,
// secrets in the configured secret store.
func CredentialProfiles(cfg config.Config, awsCfg aws.Config) (*credprofile.Registry, error) {
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return credentialProfiles(cfg, awsCfg, sec)
}

func credentialProfiles(cfg config.Config, awsCfg aws.Config, sec device.SecretStore) (*credprofile.Registry, error) {
	store, err := dynamo.NewProfileStore(dynamo.NewClient(awsCfg), cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, err
	}
	return credprofile.NewRegistry(store, sec)
}

// JobAnswers builds the store of jobs' secret prompt answers over the configured secret store.
func JobAnswers(cfg config.Config, awsCfg aws.Config) (*secrets.JobAnswers, error) {
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return secrets.NewJobAnswers(sec)
}

// SavedJobs builds the saved job registry: saved jobs in their table, their secret answers in the
// configured secret store, selectors evaluated over inv.
func SavedJobs(cfg config.Config, awsCfg aws.Config, db dynamo.API, inv savedjob.Devices) (*savedjob.Registry, error) {
	store, err := dynamo.NewSavedJobStore(db, cfg.Tables[resources.SavedJobsTable])
	if err != nil {
		return nil, err
	}
	answers, err := SavedJobAnswers(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	reg, err := savedjob.New(store, answers, inv)
	if err != nil {
		return nil, err
	}
	if reg.Owners, err = Owners(cfg, awsCfg); err != nil {
		return nil, err
	}
	// Answers a change replaced, or a deletion left, are listed in the jobs table until their
	// delete succeeds; the watchdog retries the failed ones.
	if reg.Dropped, err = dynamo.NewJobStore(db, cfg.Tables[resources.JobsTable]); err != nil {
		return nil, err
	}
	return reg, nil
}

// SavedJobAnswers is the store of saved jobs' secret answers in the configured secret store.
func SavedJobAnswers(cfg config.Config, awsCfg aws.Config) (*secrets.JobAnswers, error) {
	sec, err := secretStore(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	return secrets.NewSavedJobAnswers(sec)
}

// Owners is the identity provider asked about saved jobs' owners: the Cognito user pool
// cfg.UserPoolID, or nil when none is configured.
func Owners(cfg config.Config, awsCfg aws.Config) (savedjob.Owners, error) {
	if cfg.UserPoolID == "" {
		return nil, nil
	}
	return cognito.NewUsers(cognitoidentityprovider.NewFromConfig(awsCfg), cfg.UserPoolID)
}

// secretStore is the file store in dev (cfg.SecretsDir) and Secrets Manager in AWS.
func secretStore(cfg config.Config, awsCfg aws.Config) (device.SecretStore, error) {
	if cfg.SecretsDir != "" {
		return secrets.NewFileStore(cfg.SecretsDir)
	}
	return secrets.NewSecretsManagerStore(secretsmanager.NewFromConfig(awsCfg), cfg.SecretsPrefix)
}

// NewAPI builds the api function's handler from its configuration.
func NewAPI(ctx context.Context, cfg config.Config, opts APIOptions) (HTTPHandler, error) {
	srv, err := newAPIServer(ctx, cfg, &opts)
	if err != nil {
		return nil, err
	}
	return flushHTTP(WithIdentity(httpadapter.NewV2(srv).ProxyWithContext), opts.Publisher, opts.Logger), nil
}

// newAPIServer builds the API server over the configured stores; it sets opts.Publisher when the
// configuration has a push endpoint.
func newAPIServer(ctx context.Context, cfg config.Config, opts *APIOptions) (*api.Server, error) {
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if opts.Health == nil {
		opts.Health = map[string]any{"runtime": "aws-lambda", "region": os.Getenv("AWS_REGION")}
	}
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	inv, err := Inventory(ctx, cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	profiles, err := CredentialProfiles(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	jumpHosts, err := JumpHosts(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	db := dynamo.NewClient(awsCfg)
	jobs, err := dynamo.NewJobStore(db, cfg.Tables[resources.JobsTable])
	if err != nil {
		return nil, err
	}
	runs, err := dynamo.NewRunStore(db, cfg.Tables[resources.RunsTable], time.Minute)
	if err != nil {
		return nil, err
	}
	devices, err := dynamo.NewDeviceStore(db, cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, err
	}
	sender, err := queue.NewSender(sqs.NewFromConfig(awsCfg), cfg.Queues[resources.BulkQueue])
	if err != nil {
		return nil, err
	}
	if opts.Publisher == nil { // live progress: push what the api records itself
		pub, err := NewPublisher(cfg, awsCfg, opts.Logger)
		if err != nil {
			return nil, err
		}
		if pub != nil {
			opts.Publisher = pub
		}
	}
	answers, err := JobAnswers(cfg, awsCfg)
	if err != nil {
		return nil, err
	}
	events, err := EventPublisher(cfg, awsCfg, opts.Logger)
	if err != nil {
		return nil, err
	}
	enq := &bulk.Enqueuer{Inventory: devices, Jobs: jobs, Queue: sender, BatchSize: cfg.BatchSize, Publisher: opts.Publisher, Answers: answers,
		Notices: newNotices(events, jobs, runs, devices, opts.Logger, nil, config.API),
		MaxRunning: map[auth.Role]bulk.RunningLimit{
			auth.Operator: {Max: cfg.MaxRunningJobsOperator, Setting: config.EnvMaxRunningJobsOperator},
			auth.Admin:    {Max: cfg.MaxRunningJobsAdmin, Setting: config.EnvMaxRunningJobsAdmin},
		}}
	if cfg.RunMaxDays > 0 {
		enq.JobTTL = time.Duration(cfg.RunMaxDays) * 24 * time.Hour
	}
	// POST /v1/retention/purge runs the purge inside the request: bounded well under API
	// Gateway's 29 s; what is left continues at the next purge, as the report says.
	purger, _, err := NewPurger(ctx, cfg, RetentionOptions{Logger: opts.Logger, DB: db, Budget: 20 * time.Second})
	if err != nil {
		return nil, err
	}
	trail, auditLog, err := AuditTrail(cfg, db, opts.Logger)
	if err != nil {
		return nil, err
	}
	policies, err := dynamo.NewPolicyStore(db, cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, err
	}
	filters, err := dynamo.NewFilterStore(db, cfg.Tables[resources.DevicesTable])
	if err != nil {
		return nil, err
	}
	saved, err := SavedJobs(cfg, awsCfg, db, inv)
	if err != nil {
		return nil, err
	}
	hooks, tester, err := webhooks(cfg, awsCfg, db, opts)
	if err != nil {
		return nil, err
	}
	srv, err := api.New(api.Options{Audit: trail, AuditLog: auditLog, Logger: opts.Logger, Health: opts.Health, Devices: inv, Profiles: profiles, JumpHosts: jumpHosts, Bulk: enq, Jobs: jobs, Runs: runs, Usage: runs, Retention: purger, Policy: policies, Filters: filters, SavedJobs: saved,
		Webhooks: hooks, WebhookTester: tester,
		MaxJobDevices: map[auth.Role]int{auth.Operator: cfg.MaxJobDevicesOperator, auth.Admin: cfg.MaxJobDevicesAdmin}})
	if err != nil {
		return nil, fmt.Errorf("build api: %w", err)
	}
	return srv, nil
}

// webhooks builds the API's webhook registry and the notifier that makes its test deliveries
// (in the request: no queue). The scheduler's API server has no webhooks table and serves none.
func webhooks(cfg config.Config, awsCfg aws.Config, db dynamo.API, opts *APIOptions) (api.Webhooks, api.WebhookTester, error) {
	table := cfg.Tables[resources.WebhooksTable]
	if table == "" {
		return nil, nil, nil
	}
	store, err := dynamo.NewWebhookStore(db, table)
	if err != nil {
		return nil, nil, err
	}
	sec, err := WebhookSecrets(cfg, awsCfg)
	if err != nil {
		return nil, nil, err
	}
	var regOpts []webhook.RegistryOption
	if cfg.WebhookAllowLoopback {
		regOpts = append(regOpts, webhook.AllowLoopback())
	}
	reg, err := webhook.NewRegistry(store, sec, regOpts...)
	if err != nil {
		return nil, nil, err
	}
	return reg, &webhook.Notifier{Store: store, Secrets: sec, UIURL: cfg.UIURL, Resolver: opts.WebhookResolver, AllowLoopback: cfg.WebhookAllowLoopback, Logger: opts.Logger}, nil
}

// WithIdentity puts the caller's identity, from the claims API Gateway's JWT authorizer validated,
// and the request's id and source address, which audit entries name, into the context the
// http.Handler sees. Without claims the request carries no identity and the
// handler answers 401 on every protected route.
func WithIdentity(next HTTPHandler) HTTPHandler {
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		ctx = audit.WithRequest(ctx, audit.Request{ID: ev.RequestContext.RequestID, Source: ev.RequestContext.HTTP.SourceIP})
		if a := ev.RequestContext.Authorizer; a != nil && a.JWT != nil {
			if id, err := auth.FromClaims(a.JWT.Claims); err == nil {
				ctx = auth.WithIdentity(ctx, id)
			}
		}
		return next(ctx, ev)
	}
}
