// Package localdev runs the whole NetAuto system on one machine: the AWS stand-ins, the tables
// and queues, and the local gateway serving the API and the UI. `make dev` runs it; `make test`
// uses Exec to share one stack among all test packages.
package localdev

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/eventbus"
	"github.com/netauto/netauto/infra/eventsource"
	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/infra/schedule"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/resources"
)

// EnvAddr names the gateway's listen address.
const EnvAddr = "NET_AUTO_LOCAL_ADDR"

// EnvCORSOrigins names further origins (comma-separated) the gateway allows to call the API from
// a browser, as the HTTP API's CorsConfiguration allows the UI's CloudFront origin in AWS.
const EnvCORSOrigins = "NET_AUTO_CORS_ORIGINS"

// EnvUIAddr names an address where the UI is also served as an origin of its own (as CloudFront
// serves it in AWS), calling the gateway cross-origin.
const EnvUIAddr = "NET_AUTO_UI_ADDR"

// EnvStateDir names the folder of local state (signing key, device credentials).
const EnvStateDir = "NET_AUTO_STATE_DIR"

// StateDir returns $NET_AUTO_STATE_DIR or .state at the repository root.
func StateDir() string {
	if d := os.Getenv(EnvStateDir); d != "" {
		return d
	}
	return filepath.Join(stack.RepoRoot(), ".state")
}

// Signer returns the local identity provider's signing key, created on first use.
func Signer() (*auth.Signer, error) {
	return auth.LoadOrCreateSigner(filepath.Join(StateDir(), "jwt-signing-key.pem"))
}

// Options configures Run.
type Options struct {
	// Addr is the gateway's address; default $NET_AUTO_LOCAL_ADDR or 127.0.0.1:8080.
	Addr string
	// DynamoDBPort and SQSPort pin the stand-ins' ports; 0 picks free ones.
	DynamoDBPort, SQSPort int
	// Prefix names the tables and queues; default "netauto-dev-".
	Prefix string
	// FleetSize is the number of simulated devices started and put in the inventory (0: none).
	FleetSize int
	// Fleet, when set, describes the simulated fleet instead of FleetSize's default mix.
	Fleet *devicesim.Spec
	// FleetReady, when set, is given the simulated fleet once its devices are in the inventory
	// (tests change devices through it, e.g. Fleet.ChangeConfig).
	FleetReady func(*devicesim.Fleet)
	Logger     *slog.Logger
	// Endpoints, when set, names running stand-ins to use instead of starting them (tests pass
	// the shared stack of `localdev exec`); give them a Prefix of their own.
	Endpoints *stack.Endpoints
	// Memory keeps the database in memory, forgotten on exit. Otherwise DynamoDB Local keeps it
	// under the state folder (StateDir), with the simulated fleet's ports and host keys, and a
	// restart finds the inventory, jobs and runs again. Ignored with Endpoints.
	Memory bool
	// StopGrace is how long the devices in flight may finish once ctx ends before they are cut
	// short (0: DefaultStopGrace).
	StopGrace time.Duration
	// UIListener, when set, also serves the UI on it as an origin of its own, whose config.json
	// names the gateway as the API and WebSocket API; the gateway allows that origin by CORS.
	// Without it, $NET_AUTO_UI_ADDR names where to listen (unset: nowhere).
	UIListener net.Listener
	// CORSOrigins are further origins the gateway allows; nil reads $NET_AUTO_CORS_ORIGINS.
	CORSOrigins []string
	// EventBus, when set, is the EventBridge stand-in the functions publish to (tests read what
	// it received); otherwise Run starts one on a free loopback port.
	EventBus *eventbus.Server
}

// Run starts the stand-ins, provisions resources and serves the gateway until ctx ends, then
// stops everything it started. ready, if not nil, is called once the gateway accepts requests.
func Run(ctx context.Context, opts Options, ready func(addr string)) error {
	if opts.Addr == "" {
		opts.Addr = os.Getenv(EnvAddr)
	}
	if opts.Addr == "" {
		opts.Addr = gateway.DefaultAddr
	}
	if opts.Prefix == "" {
		opts.Prefix = "netauto-dev-"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	// Take the gateway's port first: a busy port should fail before anything starts.
	allowRemote := os.Getenv(gateway.EnvAllowRemote) == "1"
	ln, err := gateway.Listen(ctx, opts.Addr, allowRemote)
	if err != nil {
		return fmt.Errorf("%w (set %s to use another address)", err, EnvAddr)
	}
	defer ln.Close()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		opts.Logger.Warn("the local gateway listens on a non-loopback address: anyone who can reach it can sign in as admin with the dev sign-in",
			"addr", ln.Addr().String(), gateway.EnvAllowRemote, "1")
	}
	allowedHosts := gatewayHosts(opts.Addr)
	uiLn, corsOrigins, err := uiOrigin(ctx, opts, allowRemote)
	if err != nil {
		return err
	}
	if uiLn != nil {
		defer uiLn.Close()
	}

	var ep stack.Endpoints
	if opts.Endpoints != nil {
		ep = *opts.Endpoints
	} else {
		dataDir := ""
		if !opts.Memory {
			unlock, err := lockState(StateDir())
			if err != nil {
				return err
			}
			defer unlock()
			dataDir = filepath.Join(StateDir(), dynamoDir)
		}
		st, err := stack.Start(ctx, stack.Options{DynamoDBPort: opts.DynamoDBPort, SQSPort: opts.SQSPort, Logger: opts.Logger, DataDir: dataDir})
		if err != nil {
			return err
		}
		defer st.Close()
		ep = st.Endpoints
	}
	names, err := stack.Provision(ctx, ep, opts.Prefix)
	if err != nil {
		return err
	}
	// The handlers read the same variables as in AWS; the SDK reads the endpoint overrides.
	for k, v := range ep.Env() {
		os.Setenv(k, v)
	}
	for k, v := range names.Env() {
		os.Setenv(k, v)
	}
	os.Setenv(config.EnvSecrets, "file:"+filepath.Join(StateDir(), "secrets"))
	bus, stopBus, err := startEventBus(ctx, opts.EventBus, opts.Logger)
	if err != nil {
		return err
	}
	defer stopBus()
	// Live progress: the executor and the api push to this gateway's management endpoint; the ws
	// function checks tokens of the local issuer.
	os.Setenv(config.EnvWSEndpoint, "http://"+ln.Addr().String())
	os.Setenv(config.EnvJWTIssuer, auth.LocalIssuer)
	os.Setenv(config.EnvJWTAudience, auth.LocalAudience)
	// Local receivers listen on loopback; only a local stack may let webhooks reach it.
	os.Setenv(config.EnvWebhookAllowLoopback, "1")
	signer, err := Signer()
	if err != nil {
		return err
	}
	cfg, err := config.Load(config.API, os.Getenv)
	if err != nil {
		return err
	}
	versions := stack.Versions()
	health := map[string]any{
		"runtime": "local",
		"stand_ins": map[string]any{
			"dynamodb": map[string]string{"version": versions["dynamodb"], "endpoint": ep.DynamoDB},
			"sqs":      map[string]string{"version": versions["sqs"], "endpoint": ep.SQS},
			"eventbridge": map[string]string{"version": "local PutEvents stand-in (infra/eventbus)", "endpoint": bus.URL(),
				"bus": os.Getenv(config.EnvEventBus)},
		},
		"tables": names.Tables,
		"queues": names.Queues,
	}
	handler, err := app.NewAPI(ctx, cfg, app.APIOptions{Health: health, Logger: opts.Logger})
	if err != nil {
		return err
	}
	// The fleet starts before the executor, so it stops after it: the devices in flight when
	// ctx ends finish (see startExecutor).
	if opts.Fleet == nil && opts.FleetSize > 0 {
		spec := DefaultFleet(opts.FleetSize)
		opts.Fleet = &spec
	}
	if opts.Fleet != nil {
		fleet, stopFleet, err := seedFleet(ctx, *opts.Fleet, ep, names, opts.Endpoints == nil && !opts.Memory, opts.Logger)
		if err != nil {
			return err
		}
		defer stopFleet()
		if opts.FleetReady != nil {
			opts.FleetReady(fleet)
		}
	}
	stopWorkers, err := startExecutor(ctx, ep, names, cmp.Or(opts.StopGrace, DefaultStopGrace), opts.Logger)
	if err != nil {
		return err
	}
	defer stopWorkers()
	stopRetention, err := startRetention(ctx, opts.Logger)
	if err != nil {
		return err
	}
	defer stopRetention()
	stopWatchdog, watchdog, err := startWatchdog(ctx, opts.Logger)
	if err != nil {
		return err
	}
	defer stopWatchdog()
	stopScheduler, err := startScheduler(ctx, opts.Logger)
	if err != nil {
		return err
	}
	defer stopScheduler()
	stopNotifier, err := startNotifier(ctx, ep, names, bus, opts.Logger)
	if err != nil {
		return err
	}
	defer stopNotifier()
	// The queue stand-in keeps nothing across a restart: every sent but unfinished batch of an
	// unfinished job goes again. A device that already ran is not run again (the executor runs
	// each device once). A failure is not fatal: the watchdog's sweeps re-send stale batches too.
	if _, err := watchdog.ResendUnfinished(ctx); err != nil {
		opts.Logger.Error("re-send the batches of unfinished jobs after a restart", "err", err)
	}
	verifier := auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience)
	wsCfg, err := config.Load(config.WS, os.Getenv)
	if err != nil {
		return err
	}
	wsHandler, err := app.NewWS(ctx, wsCfg, app.WSOptions{Logger: opts.Logger, Verifier: verifier})
	if err != nil {
		return err
	}
	// The dev sign-in (POST /dev/token) exists only here, on the local gateway.
	gw, err := gateway.New(gateway.Options{
		API: handler, WebDir: filepath.Join(stack.RepoRoot(), "web"), Logger: opts.Logger,
		Verifier: verifier, WS: wsHandler, DevSignIn: signer, CORSOrigins: corsOrigins, AllowedHosts: allowedHosts,
	})
	if err != nil {
		return err
	}
	if uiLn != nil {
		ui := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: gateway.NewUIOrigin(filepath.Join(stack.RepoRoot(), "web"), gateway.UIConfig{
			APIURL: "http://" + ln.Addr().String(), WSURL: "ws://" + ln.Addr().String() + "/ws", Auth: gateway.UIAuth{Mode: "dev"},
		})}
		go func() { _ = ui.Serve(uiLn) }()
		defer ui.Close()
		opts.Logger.Info("the UI is also served on an origin of its own, calling the gateway cross-origin", "url", "http://"+uiLn.Addr().String())
	}
	opts.Logger.Info("NetAuto is running", "url", "http://"+ln.Addr().String(), "health", "http://"+ln.Addr().String()+"/v1/health",
		"websocket", "ws://"+ln.Addr().String()+"/ws?token=<JWT>")
	if ready != nil {
		ready(ln.Addr().String())
	}
	return gw.Serve(ctx, ln)
}

// Exec starts the stand-ins, runs argv with NET_AUTO_TEST_DYNAMODB and NET_AUTO_TEST_SQS naming
// them (so every test binary reuses one stack), stops the stack and returns the command's exit
// code.
func Exec(ctx context.Context, logger *slog.Logger, argv []string) (int, error) {
	if len(argv) == 0 {
		return 2, errors.New("exec: no command given")
	}
	st, err := stack.Start(ctx, stack.Options{Logger: logger})
	if err != nil {
		return 1, err
	}
	defer st.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		stacktest.EnvDynamoDB+"="+st.Endpoints.DynamoDB,
		stacktest.EnvSQS+"="+st.Endpoints.SQS)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("run %s: %w", argv[0], err)
	}
	return 0, nil
}

// EnvEventBridgeEndpoint is the AWS SDK's endpoint override of EventBridge clients.
const EnvEventBridgeEndpoint = "AWS_ENDPOINT_URL_EVENTBRIDGE"

// startEventBus points the functions' EventBridge clients at bus, or at a stand-in it starts on
// a free loopback port, and publishes on its default bus unless NET_AUTO_EVENT_BUS says
// otherwise (off sends nothing). Every event the stand-in accepts is logged, as a rule with a
// target would see it; GET on its URL lists them.
func startEventBus(ctx context.Context, bus *eventbus.Server, logger *slog.Logger) (*eventbus.Server, func(), error) {
	stop := func() {}
	if bus == nil {
		var err error
		if bus, err = eventbus.Start(ctx, "127.0.0.1:0", eventbus.Options{Logger: logger}); err != nil {
			return nil, nil, err
		}
		stop = func() { _ = bus.Close() }
	}
	os.Setenv(EnvEventBridgeEndpoint, bus.URL())
	if os.Getenv(config.EnvEventBus) == "" {
		os.Setenv(config.EnvEventBus, "default")
	}
	bus.AddTarget(func(source, _ string) bool { return source == notify.Source }, func(ctx context.Context, e events.CloudWatchEvent) error {
		logger.InfoContext(ctx, "event", "detail_type", e.DetailType, "id", e.ID, "detail", string(e.Detail))
		return nil
	})
	logger.Info("EventBridge stand-in", "url", bus.URL(), "bus", os.Getenv(config.EnvEventBus))
	return bus, stop, nil
}

// startNotifier runs the notifier function as its EventBridge rule and event source do in AWS:
// the stand-in bus hands it every event of source netauto (fan-out to the webhooks), and a local
// event source mapping on the webhook queue hands it the deliveries, retries included (their
// backoff is the messages' delay, as in AWS).
func startNotifier(ctx context.Context, ep stack.Endpoints, names stack.Names, bus *eventbus.Server, logger *slog.Logger) (func(), error) {
	cfg, err := config.Load(config.Notifier, os.Getenv)
	if err != nil {
		return nil, err
	}
	n, err := app.NewNotifier(ctx, cfg, app.NotifierOptions{Logger: logger})
	if err != nil {
		return nil, err
	}
	bus.AddTarget(func(source, _ string) bool { return source == notify.Source }, n.HandleEvent)
	m := &eventsource.Mapping{
		Client: stack.SQSClient(ep.SQS), QueueURL: names.Queues[resources.WebhookQueue], QueueARN: names.QueueARNs[resources.WebhookQueue],
		Handler: n.HandleSQS, BatchSize: 10, Concurrency: 2, Logger: logger, RetryDelay: 2 * time.Second,
		Timeout: time.Duration(resources.NotifierTimeoutSeconds) * time.Second,
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = m.Run(wctx)
	}()
	return func() { cancel(); <-done }, nil
}

// startExecutor runs the executor function behind local event source mappings on the bulk queue
// and its dead-letter queue, as the template's event sources do in AWS. When ctx ends they stop
// taking messages and the running batches wind down as at a Lambda deadline that is grace away:
// no device starts whose timeout does not fit, the devices in flight finish (or are cut short
// when grace passes), and the rest are handed on. The returned stop waits for that.
func startExecutor(ctx context.Context, ep stack.Endpoints, names stack.Names, grace time.Duration, logger *slog.Logger) (func(), error) {
	cfg, err := config.Load(config.Executor, os.Getenv)
	if err != nil {
		return nil, err
	}
	handler, _, err := app.NewExecutor(ctx, cfg, app.ExecutorOptions{Logger: logger, MaxBatches: stack.ExecutorBatches()})
	if err != nil {
		return nil, err
	}
	client := stack.SQSClient(ep.SQS)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, m := range []*eventsource.Mapping{
		{QueueURL: names.Queues[resources.BulkQueue], QueueARN: names.QueueARNs[resources.BulkQueue], Concurrency: resources.ExecutorMaxConcurrency},
		{QueueURL: names.Queues[resources.BulkDLQ], QueueARN: names.QueueARNs[resources.BulkDLQ], Concurrency: 1},
	} {
		m.Client, m.Handler, m.Logger, m.BatchSize = client, eventsource.Handler(handler), logger, 1
		m.Timeout = time.Duration(resources.ExecutorTimeoutSeconds) * time.Second
		m.RetryDelay = 2 * time.Second
		m.StopGrace = grace
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = m.Run(wctx)
		}()
	}
	return func() {
		logger.Info("stopping: the devices in flight may finish", "grace", grace.String())
		cancel()
		wg.Wait()
	}, nil
}

// startRetention runs the retention purge on NET_AUTO_RETENTION_CRON (UTC), as the EventBridge
// schedule runs the retention function in AWS. (TTL never deletes on DynamoDB Local, so there is
// no stream consumer to run.)
func startRetention(ctx context.Context, logger *slog.Logger) (func(), error) {
	cfg, err := config.Load(config.Retention, os.Getenv)
	if err != nil {
		return nil, err
	}
	purger, _, err := app.NewPurger(ctx, cfg, app.RetentionOptions{Logger: logger, Budget: 10 * time.Minute})
	if err != nil {
		return nil, err
	}
	sched, err := schedule.Start(ctx, cfg.RetentionCron, func(ctx context.Context) {
		if _, err := purger.Purge(ctx, app.TriggerLocal); err != nil {
			logger.Error("retention purge", "err", err)
		}
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", config.EnvRetentionCron, err)
	}
	return sched.Stop, nil
}

// startWatchdog runs the bulk watchdog every resources.WatchdogPeriod, as its EventBridge rule
// runs the watchdog function in AWS. It returns the schedule's stop and the watchdog.
func startWatchdog(ctx context.Context, logger *slog.Logger) (func(), *bulk.Watchdog, error) {
	cfg, err := config.Load(config.Watchdog, os.Getenv)
	if err != nil {
		return nil, nil, err
	}
	_, w, err := app.NewWatchdog(ctx, cfg, app.WatchdogOptions{Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	spec := fmt.Sprintf("@every %dm", int(resources.WatchdogPeriod/time.Minute))
	sched, err := schedule.Start(ctx, spec, func(ctx context.Context) {
		if _, err := w.Sweep(ctx); err != nil {
			logger.Error("watchdog sweep", "err", err)
		}
	}, logger)
	if err != nil {
		return nil, nil, fmt.Errorf("watchdog schedule: %w", err)
	}
	return sched.Stop, w, nil
}

// startScheduler ticks the saved job scheduler at the start of every minute, as its EventBridge
// rule (resources.SchedulerSchedule) runs the scheduler function in AWS.
func startScheduler(ctx context.Context, logger *slog.Logger) (func(), error) {
	cfg, err := config.Load(config.Scheduler, os.Getenv)
	if err != nil {
		return nil, err
	}
	_, s, err := app.NewScheduler(ctx, cfg, app.SchedulerOptions{Logger: logger})
	if err != nil {
		return nil, err
	}
	sched, err := schedule.Start(ctx, "* * * * *", func(ctx context.Context) {
		if _, err := s.Tick(ctx); err != nil {
			logger.Error("scheduler tick", "err", err)
		}
	}, logger)
	if err != nil {
		return nil, fmt.Errorf("scheduler schedule: %w", err)
	}
	return sched.Stop, nil
}

// uiOrigin returns the listener of the UI's own origin (Options.UIListener, or one on
// $NET_AUTO_UI_ADDR) and the origins the gateway allows: Options.CORSOrigins or
// $NET_AUTO_CORS_ORIGINS, and the UI's origin.
func uiOrigin(ctx context.Context, opts Options, allowRemote bool) (net.Listener, []string, error) {
	origins := opts.CORSOrigins
	if origins == nil {
		for o := range strings.SplitSeq(os.Getenv(EnvCORSOrigins), ",") {
			if o = strings.TrimSpace(o); o != "" {
				if _, err := gateway.NormalizeOrigin(o); err != nil {
					return nil, nil, fmt.Errorf("%s: %w", EnvCORSOrigins, err)
				}
				origins = append(origins, o)
			}
		}
	}
	ln := opts.UIListener
	if ln == nil {
		if addr := os.Getenv(EnvUIAddr); addr != "" {
			var err error
			if ln, err = gateway.Listen(ctx, addr, allowRemote); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", EnvUIAddr, err)
			}
		}
	}
	if ln != nil {
		origins = append(slices.Clip(origins), "http://"+ln.Addr().String())
	}
	return ln, origins, nil
}

// gatewayHosts returns the Host names the gateway answers beside localhost and loopback
// addresses: the host of its listen address and $NET_AUTO_GATEWAY_ALLOWED_HOSTS.
func gatewayHosts(addr string) []string {
	var hosts []string
	if h, _, err := net.SplitHostPort(addr); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	for h := range strings.SplitSeq(os.Getenv(gateway.EnvAllowedHosts), ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	return hosts
}
