// Command localdev runs NetAuto locally (`make dev`):
//
//	localdev [-addr 127.0.0.1:8080] [-memory] [-fleet 20] [-stop-grace 30s] [-dynamodb-port N] [-sqs-port N]
//	localdev exec -- COMMAND [ARG...]   # run COMMAND against one shared local stack
//	localdev fetch                      # only download the stand-ins into .cache
//	localdev token [-role admin|operator:ams1] [-email dev@netauto.local] [-ttl 12h]   # print a dev token
//
// State (the database, the simulated fleet's ports and host keys) is kept under .state
// ($NET_AUTO_STATE_DIR) unless -memory or NET_AUTO_DEV_MEMORY=1 keeps the database in memory.
// On Ctrl-C or SIGTERM it lets the devices in flight finish (at most -stop-grace; a second
// Ctrl-C stops at once), then stops every process it started; its children die with it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/localdev"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := logging.New(os.Stderr, slog.LevelInfo)
	if len(os.Args) > 1 && os.Args[1] == "fetch" {
		if _, err := stack.Fetch(ctx, stack.CacheDir()); err != nil {
			fmt.Fprintln(os.Stderr, "localdev:", err)
			stop()
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "token" {
		if err := token(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "localdev token:", err)
			stop()
			os.Exit(2)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		argv := os.Args[2:]
		if len(argv) > 0 && argv[0] == "--" {
			argv = argv[1:]
		}
		code, err := localdev.Exec(ctx, logger, argv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "localdev:", err)
		}
		stop()
		os.Exit(code)
	}
	var opts localdev.Options
	flag.StringVar(&opts.Addr, "addr", "", "gateway address (default $NET_AUTO_LOCAL_ADDR or 127.0.0.1:8080)")
	flag.IntVar(&opts.DynamoDBPort, "dynamodb-port", 0, "DynamoDB Local port (default: a free port)")
	flag.IntVar(&opts.SQSPort, "sqs-port", 0, "SQS stand-in port (default: a free port)")
	flag.IntVar(&opts.FleetSize, "fleet", 20, "simulated devices to start and put in the inventory (0: none)")
	platforms := flag.String("fleet-platforms", "", "the fleet's platform mix, e.g. cisco_iosxe=3,linux=1 (default: a mix of five)")
	faults := flag.String("fleet-faults", "", "the fleet's fault mix, e.g. slow_drip=2 (default: refuse=1,slow_drip=1)")
	drip := flag.Duration("fleet-drip", 0, "delay per output line of slow_drip devices (default 100ms)")
	memory, err := localdev.MemoryFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localdev:", err)
		stop()
		os.Exit(2)
	}
	flag.BoolVar(&opts.Memory, "memory", memory, "keep the database in memory: forget everything on exit (default $"+localdev.EnvMemory+")")
	flag.DurationVar(&opts.StopGrace, "stop-grace", localdev.DefaultStopGrace, "on Ctrl-C, how long the devices in flight may finish")
	flag.Parse()
	opts.Logger = logger
	if *platforms != "" || *faults != "" || *drip > 0 {
		spec, err := fleetSpec(opts.FleetSize, *platforms, *faults, *drip)
		if err != nil {
			fmt.Fprintln(os.Stderr, "localdev:", err)
			stop()
			os.Exit(2)
		}
		opts.Fleet = &spec
	}
	// A second Ctrl-C while stopping takes the default action: exit now (children die with us).
	context.AfterFunc(ctx, stop)
	if err := localdev.Run(ctx, opts, nil); err != nil {
		fmt.Fprintln(os.Stderr, "localdev:", err)
		stop()
		os.Exit(1)
	}
}

// fleetSpec is the default fleet of n devices with the given platform and fault mixes.
func fleetSpec(n int, platforms, faults string, drip time.Duration) (devicesim.Spec, error) {
	spec := localdev.DefaultFleet(n)
	if platforms != "" {
		p, err := devicesim.ParsePlatforms(platforms)
		if err != nil {
			return spec, fmt.Errorf("-fleet-platforms: %w", err)
		}
		spec.Platforms = p
	}
	if faults != "" {
		f, err := devicesim.ParseFaults(faults)
		if err != nil {
			return spec, fmt.Errorf("-fleet-faults: %w", err)
		}
		spec.Faults = f
	}
	spec.DripInterval = drip
	return spec, nil
}

// token prints a token the local gateway accepts, for curl and the CLI.
func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "admin", "role: viewer, operator or admin, everywhere; or <role>:<site> for one site")
	email := fs.String("email", "dev@netauto.local", "the identity's email (becomes requested_by)")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if id, err := auth.FromClaims(map[string]string{"sub": "check", auth.GroupsClaim: *role}); err != nil || len(id.Groups()) == 0 {
		return fmt.Errorf("-role %q: must be viewer, operator or admin, or <role>:<site>", *role)
	}
	signer, err := localdev.Signer()
	if err != nil {
		return err
	}
	tok, err := signer.Issue(auth.TokenSpec{Subject: *email, Email: *email, Groups: []string{*role}, TTL: *ttl})
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}
