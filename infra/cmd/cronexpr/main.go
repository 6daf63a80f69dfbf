// Command cronexpr prints the EventBridge schedule expression of a retention schedule, for
// `make deploy` to pass as the RetentionScheduleExpression parameter:
//
//	go run ./infra/cmd/cronexpr "$NET_AUTO_RETENTION_CRON"   # cron(0 0 * * ? *)
//
// With -samconfig IN -o OUT it instead copies the SAM configuration IN to OUT with every
// "RetentionCron=..." and "RetentionScheduleExpression=..." parameter override set from the
// schedule, so `sam deploy --config-file OUT` deploys the schedule in NET_AUTO_RETENTION_CRON
// without repeating the other overrides on the command line (which would replace them). Values
// are written quoted ('RetentionCron="30 3 * * 1-5"'), since SAM CLI cuts an unquoted value at its
// first space, and the copy is read back as SAM CLI reads it before it is written: every
// environment must come out with exactly the schedule, or nothing is written.
//
// With no schedule argument it translates $NET_AUTO_RETENTION_CRON, or the default @daily when
// unset. An invalid schedule exits 2 with a message naming NET_AUTO_RETENTION_CRON.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/cronexpr"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// The parameters make deploy sets from the schedule.
const (
	cronParam  = "RetentionCron"
	schedParam = "RetentionScheduleExpression"
)

// tomlStringToken matches a TOML basic ("...", with backslash escapes) or literal ('...') string.
var tomlStringToken = regexp.MustCompile(`"(?:[^"\\\n]|\\.)*"|'[^'\n]*'`)

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
	text, err := rewrite(string(data), map[string]string{cronParam: expr, schedParam: sched})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", *in, err)
		return 1
	}
	if err := os.WriteFile(*out, []byte(text), 0o644); err != nil {
		fmt.Fprintf(stderr, "write %s: %v\n", *out, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: RetentionCron=%s RetentionScheduleExpression=%s\n", *out, expr, sched)
	return 0
}

// rewrite replaces every parameter_overrides item of samconfig text that sets one of values'
// keys with that key and value, quoted for SAM CLI, and checks the result: in every environment
// that sets any of the keys, SAM CLI must read exactly values for all of them.
func rewrite(text string, values map[string]string) (string, error) {
	items := map[string]string{}
	for k, v := range values {
		item, err := templatecheck.QuoteOverride(k, v)
		if err != nil {
			return "", err
		}
		items[k] = tomlString(item)
	}
	replaced := 0
	text = tomlStringToken.ReplaceAllStringFunc(text, func(tok string) string {
		var doc struct{ S string }
		if _, err := toml.Decode("S = "+tok, &doc); err != nil {
			return tok
		}
		key, _, ok := strings.Cut(strings.TrimSpace(doc.S), "=")
		if item, set := items[key]; ok && set {
			replaced++
			return item
		}
		return tok
	})
	if replaced == 0 {
		return "", fmt.Errorf("sets no %s override to replace", strings.Join(slices.Sorted(maps.Keys(values)), " / "))
	}
	return text, verify(text, values)
}

// verify reads samconfig text as SAM CLI does and wants values in every environment that sets
// any of their keys.
func verify(text string, values map[string]string) error {
	var doc map[string]any
	if _, err := toml.Decode(text, &doc); err != nil {
		return fmt.Errorf("the rewritten copy is not TOML: %w", err)
	}
	var errs []error
	for _, env := range slices.Sorted(maps.Keys(doc)) {
		section, _ := doc[env].(map[string]any)
		for _, cmd := range slices.Sorted(maps.Keys(section)) {
			params, _ := section[cmd].(map[string]any)["parameters"].(map[string]any)
			po, ok := params["parameter_overrides"]
			if !ok {
				continue
			}
			got, err := templatecheck.ParseParameterOverrides(po)
			if err != nil {
				errs = append(errs, fmt.Errorf("[%s.%s.parameters] parameter_overrides: %w", env, cmd, err))
				continue
			}
			touched := false
			for k := range values {
				_, has := got[k]
				touched = touched || has
			}
			if !touched {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(values)) {
				if got[k] != values[k] {
					errs = append(errs, fmt.Errorf("[%s.%s.parameters] SAM CLI would read %s as %q, not %q", env, cmd, k, got[k], values[k]))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// tomlString writes s as a TOML string: literal when it can be, else basic with escapes.
func tomlString(s string) string {
	if !strings.ContainsAny(s, "'\n") {
		return "'" + s + "'"
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
