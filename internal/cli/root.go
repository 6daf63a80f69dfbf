// Package cli is the netauto command-line client: devices, runs, bulk jobs and retention over
// the NetAuto HTTPS API. cmd/netauto is its thin main.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// DefaultAPI is the API base URL when neither --api, NET_AUTO_API nor the config file name one.
const DefaultAPI = "http://127.0.0.1:8080"

// Exit codes of Main.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitError: a usage, network or API error.
	ExitError = 1
	// ExitFailed: a run or some devices of a bulk job (or import rows) did not succeed.
	ExitFailed = 2
	// ExitInterrupted: interrupted by Ctrl-C.
	ExitInterrupted = 130
)

// exitError ends a command with an exit code; its message (if any) was already printed.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
}

// app is one invocation's shared state: flags and the streams.
type app struct {
	io      IO
	api     string
	ws      string
	token   string
	json    bool
	yes     bool
	getenv  func(string) string
	signals signalSource
}

// Main runs netauto with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, streams IO) int {
	a := &app{io: streams, getenv: os.Getenv, signals: osSignals{}}
	root := a.command()
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(streams.Err, "error: "+ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(streams.Err, "error: "+err.Error())
	return ExitError
}

func (a *app) command() *cobra.Command {
	root := &cobra.Command{
		Use:           "netauto",
		Short:         "Run CLI commands on fleets of network devices through the NetAuto API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.api, "api", "", "API base URL (env NET_AUTO_API, config file; default "+DefaultAPI+")")
	pf.StringVar(&a.token, "token", "", "bearer token (env NET_AUTO_TOKEN, or stored by `netauto login`)")
	pf.StringVar(&a.ws, "ws", "", "WebSocket API URL for live progress (env NET_AUTO_WS_URL, config file; default: the local gateway's /ws for an API on loopback, else polling)")
	pf.BoolVar(&a.json, "json", false, "print JSON (JSON lines for bulk and job wait)")
	root.AddCommand(a.loginCommand(), a.devicesCommand(), a.runCommand(), a.runOutputCommand(), a.bulkCommand(), a.jobCommand(), a.retentionCommand(), a.auditCommand(), a.policyCommand(), a.credentialProfilesCommand(), a.whoamiCommand(), a.jumpHostsCommand(), a.savedCommand(), a.webhooksCommand(),
		a.diffCommand(), a.historyCommand(), a.platformsCommand())
	return root
}

// client resolves the API URL and token (flag, environment, config file) and returns a client.
func (a *app) client() (*Client, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	base := firstNonEmpty(a.api, a.getenv("NET_AUTO_API"), cfg.API, DefaultAPI)
	token := firstNonEmpty(a.token, a.getenv("NET_AUTO_TOKEN"), cfg.Token)
	if token == "" {
		return nil, errors.New("no token: pass --token, set NET_AUTO_TOKEN, or run `netauto login`")
	}
	return NewClient(base, strings.TrimSpace(token)), nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// printJSON writes v as indented JSON.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.io.Out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}
