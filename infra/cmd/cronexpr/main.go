// Command cronexpr prints the EventBridge schedule expression of a retention schedule, for
// `make deploy` to pass as the RetentionScheduleExpression parameter:
//
//	go run ./infra/cmd/cronexpr "$NET_AUTO_RETENTION_CRON"   # cron(0 0 * * ? *)
//
// With no argument it translates $NET_AUTO_RETENTION_CRON, or the default @daily when unset.
// An invalid schedule exits 2 with a message naming NET_AUTO_RETENTION_CRON.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/cronexpr"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 1 {
		fmt.Fprintln(stderr, "usage: cronexpr [schedule]   (default $"+config.EnvRetentionCron+" or "+config.DefaultRetentionCron+")")
		return 2
	}
	expr := config.DefaultRetentionCron
	if v := strings.TrimSpace(getenv(config.EnvRetentionCron)); v != "" {
		expr = v
	}
	if len(args) == 1 && strings.TrimSpace(args[0]) != "" {
		expr = args[0]
	}
	out, err := cronexpr.EventBridge(expr)
	if err != nil {
		fmt.Fprintf(stderr, "%s=%q: %v\n", config.EnvRetentionCron, expr, err)
		return 2
	}
	fmt.Fprintln(stdout, out)
	return 0
}
