package cli_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/eventsource"
	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/credprofile"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/push"
	"github.com/netauto/netauto/internal/queue"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/savedjob"
	"github.com/netauto/netauto/internal/secrets"
	"github.com/netauto/netauto/internal/sshexec"
	"github.com/netauto/netauto/internal/webhook"
)

// binary is the netauto command built once by TestMain; empty under -short, where every test
// that runs it skips for want of the stack.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		stacktest.Main(m) // the tests that need no stack or binary; exits
		return
	}
	// The binary lives in a per-process folder; folders of earlier runs older than an hour are
	// removed here, since stacktest.Main exits without running deferred calls.
	tmp := os.TempDir()
	old, _ := filepath.Glob(filepath.Join(tmp, "netauto-cli-test-*"))
	for _, d := range old {
		if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > time.Hour {
			_ = os.RemoveAll(d)
		}
	}
	dir, err := os.MkdirTemp(tmp, "netauto-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "netauto")
	build := exec.Command("go", "build", "-o", binary, "github.com/netauto/netauto/cmd/netauto")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build netauto:", err)
		os.Exit(1)
	}
	stacktest.Main(m)
}

// stackEnv is the server side of one test: its own tables and queues, the api handler (with the
// stored command policy) behind
// the local gateway (JWT check with a local signer), the executor behind local event source
// mappings, and a simulated fleet (not yet in the inventory: tests import it with the CLI).
type stackEnv struct {
	url    string
	tokens map[auth.Role]string
	signer *auth.Signer
	fleet  *devicesim.Fleet
	runs   *dynamo.RunStore
	jobs   *dynamo.JobStore
}

func newStack(t *testing.T, spec devicesim.Spec) *stackEnv {
	t.Helper()
	st := stacktest.New(t)
	ddb := stack.DynamoDBClient(st.Endpoints.DynamoDB)
	store, err := dynamo.NewDeviceStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	jobs, err := dynamo.NewJobStore(ddb, st.Names.Tables[resources.JobsTable])
	require.NoError(t, err)
	// The lease outlives the mapping's timeout, as in AWS.
	runs, err := dynamo.NewRunStore(ddb, st.Names.Tables[resources.RunsTable], 100*time.Second)
	require.NoError(t, err)
	sec, err := secrets.NewFileStore(t.TempDir())
	require.NoError(t, err)
	inv, err := device.NewInventory(store, sec)
	require.NoError(t, err)
	profileStore, err := dynamo.NewProfileStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	profiles, err := credprofile.NewRegistry(profileStore, sec)
	require.NoError(t, err)
	inv.UseProfiles(profiles)
	jumpStore, err := dynamo.NewJumpHostStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	jumpHosts, err := jumphost.NewRegistry(jumpStore, sec)
	require.NoError(t, err)
	inv.UseJumpHosts(jumpHosts)
	sender, err := queue.NewSender(stack.SQSClient(st.Endpoints.SQS), st.Names.Queues[resources.BulkQueue])
	require.NoError(t, err)
	rstore, err := dynamo.NewRetentionStore(ddb, st.Names.Tables[resources.RunsTable], st.Names.Tables[resources.JobsTable])
	require.NoError(t, err)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	purger := &retention.Purger{Store: rstore, Jobs: rstore, Budget: 20 * time.Second, Lookback: 10 * 24 * time.Hour, Logger: logger,
		Settings: retention.Settings{MaxDays: 30, MaxBytes: 1 << 20, Cron: "@daily", Schedule: "cron(0 0 * * ? *)"}}
	auditStore, err := dynamo.NewAuditStore(ddb, st.Names.Tables[resources.AuditTable], 0)
	require.NoError(t, err)
	policies, err := dynamo.NewPolicyStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	filters, err := dynamo.NewFilterStore(ddb, st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	answers, err := secrets.NewJobAnswers(sec)
	require.NoError(t, err)
	savedStore, err := dynamo.NewSavedJobStore(ddb, st.Names.Tables[resources.SavedJobsTable])
	require.NoError(t, err)
	savedAnswers, err := secrets.NewSavedJobAnswers(sec)
	require.NoError(t, err)
	saved, err := savedjob.New(savedStore, savedAnswers, inv)
	require.NoError(t, err)
	hookStore, err := dynamo.NewWebhookStore(ddb, st.Names.Tables[resources.WebhooksTable])
	require.NoError(t, err)
	hookSecrets, err := secrets.NewWebhooks(sec)
	require.NoError(t, err)
	hooks, err := webhook.NewRegistry(hookStore, hookSecrets, webhook.AllowLoopback())
	require.NoError(t, err)
	srv, err := api.New(api.Options{Devices: inv, Profiles: profiles, JumpHosts: jumpHosts, Bulk: &bulk.Enqueuer{Inventory: store, Jobs: jobs, Queue: sender, BatchSize: 50, Answers: answers},
		Jobs: jobs, Runs: runs, Usage: runs, Retention: purger, Logger: logger, Audit: audit.NewTrail(auditStore, logger), AuditLog: auditStore, Policy: policies, Filters: filters, SavedJobs: saved,
		Webhooks: hooks, WebhookTester: &webhook.Notifier{Store: hookStore, Secrets: hookSecrets, AllowLoopback: true, Logger: logger}})
	require.NoError(t, err)
	signer, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "key.pem"))
	require.NoError(t, err)
	// The WebSocket side, as make dev runs it: /ws into the ws handler, and the executor pushing
	// progress through the gateway's @connections endpoint with the real SDK client.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	conns, err := dynamo.NewConnectionStore(ddb, st.Names.Tables[resources.ConnectionsTable])
	require.NoError(t, err)
	poster, err := push.NewClient(aws.Config{Region: stack.Region, Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), HTTPClient: app.HTTPClient()}, base)
	require.NoError(t, err)
	verifier := auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)
	wsSrv := &live.Server{Store: conns, Jobs: jobs, Poster: poster, Verifier: verifier, Logger: logger}
	pub, err := push.New(push.Options{Subscriptions: conns, Poster: poster, Logger: logger})
	require.NoError(t, err)
	gw, err := gateway.New(gateway.Options{
		API:      app.WithIdentity(httpadapter.NewV2(srv).ProxyWithContext),
		Verifier: verifier, WS: app.WSHandlerFor(wsSrv, logger),
		Logger: logger,
	})
	require.NoError(t, err)
	hs := httptest.NewUnstartedServer(gw)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		_ = pub.Close(context.Background())
		hs.CloseClientConnections()
		hs.Close()
	})

	fleet, err := devicesim.Start(spec)
	require.NoError(t, err)
	t.Cleanup(func() { fleet.Close() })
	engine, err := sshexec.New(sshexec.Options{ConnectTimeout: 5 * time.Second, AuthTimeout: 5 * time.Second,
		PromptTimeout: 5 * time.Second, IdleTimeout: 3 * time.Second, MaxOutputBytes: 64 << 10})
	require.NoError(t, err)
	x := &bulk.Executor{Jobs: jobs, Runs: runs, Devices: inv, Engine: engine, Queue: sender, Logger: logger, DeadlineMargin: time.Second, BatchLease: 100 * time.Second,
		Publisher: pub, Policy: policies, Answers: answers, Noise: filters}
	handler := app.ExecutorHandler(x, st.Names.Queues[resources.BulkDLQ], logger, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, id := range []string{resources.BulkQueue, resources.BulkDLQ} {
		m := &eventsource.Mapping{
			Client: stack.SQSClient(st.Endpoints.SQS), QueueURL: st.Names.Queues[id], QueueARN: st.Names.QueueARNs[id],
			Handler: eventsource.Handler(handler), BatchSize: 1, Concurrency: 4,
			// Long enough for the default 60 s device timeout to fit before the deadline.
			Timeout: 75 * time.Second, VisibilityTimeout: 90 * time.Second, RetryDelay: time.Second,
		}
		wg.Go(func() { _ = m.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })

	e := &stackEnv{url: hs.URL, tokens: map[auth.Role]string{}, signer: signer, fleet: fleet, runs: runs, jobs: jobs}
	for _, r := range []auth.Role{auth.Viewer, auth.Operator, auth.Admin} {
		tok, err := signer.Issue(auth.TokenSpec{Subject: string(r) + "-user", Email: string(r) + "@example.com", Groups: []string{string(r)}})
		require.NoError(t, err)
		e.tokens[r] = tok
	}
	return e
}

// result is a finished netauto process.
type result struct {
	stdout, stderr string
	code           int
}

// cmd describes one netauto invocation.
type cmd struct {
	args  []string
	stdin string
	// env replaces the default environment entries (NET_AUTO_API, NET_AUTO_TOKEN as admin,
	// XDG_CONFIG_HOME as a fresh folder); "" unsets one.
	env map[string]string
}

// run runs netauto against the env and returns its outputs and exit code.
func (e *stackEnv) run(t *testing.T, c cmd) result {
	t.Helper()
	env := map[string]string{"NET_AUTO_API": e.url, "NET_AUTO_TOKEN": e.tokens[auth.Admin], "XDG_CONFIG_HOME": t.TempDir()}
	for k, v := range c.env {
		env[k] = v
	}
	return runCLI(t, env, c.stdin, c.args...)
}

func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.NotEmpty(t, binary, "the netauto binary is built by TestMain except under -short")
	p := exec.CommandContext(ctx, binary, args...)
	p.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range env {
		if v != "" {
			p.Env = append(p.Env, k+"="+v)
		}
	}
	var out, errb bytes.Buffer
	p.Stdin = bytes.NewBufferString(stdin)
	p.Stdout, p.Stderr = &out, &errb
	err := p.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "netauto %v", args)
	}
	t.Logf("netauto %v → %d\nstderr: %s", args, code, errb.String())
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// storedOutput is a run's output as the run store holds it.
func (e *stackEnv) storedOutput(t *testing.T, runID string) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, e.runs.WriteOutput(context.Background(), runID, &b), "stored output of %s", runID)
	return b.String()
}
