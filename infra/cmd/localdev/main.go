// Command localdev runs NetAuto locally (`make dev`):
//
//	localdev [-addr 127.0.0.1:8080] [-dynamodb-port N] [-sqs-port N]
//	localdev exec -- COMMAND [ARG...]   # run COMMAND against one shared local stack
//	localdev fetch                      # only download the stand-ins into .cache
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

	"github.com/netauto/netauto/infra/localdev"
	"github.com/netauto/netauto/infra/stack"
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
	flag.Parse()
	opts.Logger = logger
	if err := localdev.Run(ctx, opts, nil); err != nil {
		fmt.Fprintln(os.Stderr, "localdev:", err)
		stop()
		os.Exit(1)
	}
}
