// Command localdev runs NetAuto locally (`make dev`):
//
//	localdev [-addr 127.0.0.1:8080] [-dynamodb-port N] [-sqs-port N]
//	localdev exec -- COMMAND [ARG...]   # run COMMAND against one shared local stack
//	localdev fetch                      # only download the stand-ins into .cache
//	localdev token [-role admin] [-email dev@netauto.local] [-ttl 12h]   # print a dev token
//
// It stops every process it started on Ctrl-C or SIGTERM, and its children die with it.
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
	flag.Parse()
	opts.Logger = logger
	if err := localdev.Run(ctx, opts, nil); err != nil {
		fmt.Fprintln(os.Stderr, "localdev:", err)
		stop()
		os.Exit(1)
	}
}

// token prints a token the local gateway accepts, for curl and the CLI.
func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	role := fs.String("role", "admin", "role: viewer, operator or admin")
	email := fs.String("email", "dev@netauto.local", "the identity's email (becomes requested_by)")
	ttl := fs.Duration("ttl", 12*time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, ok := auth.ParseRole(*role); !ok {
		return fmt.Errorf("-role %q: must be viewer, operator or admin", *role)
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
