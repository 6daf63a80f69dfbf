// Command cronexpr prints the EventBridge schedule expression of a retention schedule, for
// `make deploy` to pass as the RetentionScheduleExpression parameter:
//
//	go run ./infra/cmd/cronexpr "$NET_AUTO_RETENTION_CRON"   # cron(0 0 * * ? *)
//
// With -samconfig IN -o OUT it instead copies the SAM configuration IN to OUT with every
// "RetentionCron=..." and "RetentionScheduleExpression=..." parameter override set from the
// schedule, so `sam deploy --config-file OUT` deploys the schedule in NET_AUTO_RETENTION_CRON
// without repeating the other overrides on the command line (which would replace them).
//
// With no schedule argument it translates $NET_AUTO_RETENTION_CRON, or the default @daily when
// unset. An invalid schedule exits 2 with a message naming NET_AUTO_RETENTION_CRON.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/cronexpr"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

var (
	cronLine  = regexp.MustCompile(`"RetentionCron=[^"]*"`)
	schedLine = regexp.MustCompile(`"RetentionScheduleExpression=[^"]*"`)
)

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cronexpr", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("samconfig", "", "a samconfig.toml to copy with the schedule's parameter overrides")
	out := fs.String("o", "", "where to write the copy (with -samconfig)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 || (*in == "") != (*out == "") {
		fmt.Fprintln(stderr, "usage: cronexpr [-samconfig IN -o OUT] [schedule]   (default $"+config.EnvRetentionCron+" or "+config.DefaultRetentionCron+")")
		return 2
	}
	expr := config.DefaultRetentionCron
	if v := strings.TrimSpace(getenv(config.EnvRetentionCron)); v != "" {
		expr = v
	}
	if fs.NArg() == 1 && strings.TrimSpace(fs.Arg(0)) != "" {
		expr = fs.Arg(0)
	}
	sched, err := cronexpr.EventBridge(expr)
	if err != nil {
		fmt.Fprintf(stderr, "%s=%q: %v\n", config.EnvRetentionCron, expr, err)
		return 2
	}
	if *in == "" {
		fmt.Fprintln(stdout, sched)
		return 0
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintf(stderr, "read %s: %v\n", *in, err)
		return 1
	}
	text := string(data)
	if !cronLine.MatchString(text) || !schedLine.MatchString(text) {
		fmt.Fprintf(stderr, "%s sets no RetentionCron / RetentionScheduleExpression override to replace\n", *in)
		return 1
	}
	text = cronLine.ReplaceAllLiteralString(text, `"RetentionCron=`+expr+`"`)
	text = schedLine.ReplaceAllLiteralString(text, `"RetentionScheduleExpression=`+sched+`"`)
	if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
		fmt.Fprintf(stderr, "write %s: %v\n", *out, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: RetentionCron=%s RetentionScheduleExpression=%s\n", *out, expr, sched)
	return 0
}
