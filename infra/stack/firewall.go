package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DynamoDB Local has no bind option: it listens on every interface, without authentication, so
// any host that reaches the machine could read and write the local tables. Where the stack can,
// it drops TCP to DynamoDB Local's port that does not arrive on the loopback interface (a
// firewall rule, removed when the stack closes); where it cannot, it says so once.

// firewall adds and removes the rule; its fields are the system it acts on, so tests can stand
// in for root, the tools and their runs.
type firewall struct {
	goos     string
	euid     int
	lookPath func(string) (string, error)
	run      func(ctx context.Context, argv []string) error
	logger   *slog.Logger
	warnOnce *sync.Once
}

// exposureWarned makes the warning appear once per process, however many stacks it starts.
var exposureWarned sync.Once

func systemFirewall(logger *slog.Logger) *firewall {
	return &firewall{
		goos: runtime.GOOS, euid: os.Geteuid(), lookPath: exec.LookPath, logger: logger, warnOnce: &exposureWarned,
		run: func(ctx context.Context, argv []string) error {
			out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
			}
			return nil
		},
	}
}

// firewallRules returns the commands that drop TCP to port unless it arrives on the loopback
// interface, and those that remove that again, for tool "nft" (a table of its own per port,
// IPv4 and IPv6) or "iptables" (one rule each in iptables and ip6tables).
func firewallRules(tool string, port int) (add, remove [][]string) {
	p := strconv.Itoa(port)
	switch tool {
	case "nft":
		table := "netauto_dynamodb_" + p
		return [][]string{
				{"nft", "add", "table", "inet", table},
				{"nft", "add", "chain", "inet", table, "input", "{ type filter hook input priority 0 ; policy accept ; }"},
				{"nft", "add", "rule", "inet", table, "input", "iifname", "!=", "lo", "tcp", "dport", p, "drop"},
			}, [][]string{
				{"nft", "delete", "table", "inet", table},
			}
	case "iptables":
		rule := []string{"INPUT", "-p", "tcp", "--dport", p, "!", "-i", "lo", "-m", "comment", "--comment", "netauto dynamodb-local", "-j", "DROP"}
		for _, t := range []string{"iptables", "ip6tables"} {
			add = append(add, append([]string{t, "-w", "-I"}, rule...))
			remove = append(remove, append([]string{t, "-w", "-D"}, rule...))
		}
		return add, remove
	}
	return nil, nil
}

// protect makes port unreachable from other hosts and returns what undoes it. When it cannot
// (not Linux, not root, no nft or iptables, a rule refused), it logs one warning and returns a
// no-op.
func (f *firewall) protect(ctx context.Context, port int) func() {
	noop := func() {}
	var why string
	switch {
	case f.goos != "linux":
		why = "the stack adds a firewall rule only on Linux"
	case f.euid != 0:
		why = "the stack adds a firewall rule only when it runs as root"
	}
	tool := ""
	if why == "" {
		for _, t := range []string{"nft", "iptables"} {
			if _, err := f.lookPath(t); err == nil {
				tool = t
				break
			}
		}
		if tool == "" {
			why = "neither nft nor iptables is installed"
		}
	}
	if why == "" {
		add, remove := firewallRules(tool, port)
		for i, argv := range add {
			if err := f.run(ctx, argv); err != nil {
				why = "the firewall rule failed: " + err.Error()
				f.undo(remove[:min(i, len(remove))], tool) // what the commands before it added
				break
			}
		}
		if why == "" {
			f.logger.Info("dynamodb local: TCP to its port from other hosts is dropped", "port", port, "tool", tool)
			return func() { f.undo(remove, tool) }
		}
	}
	f.warnOnce.Do(func() {
		f.logger.Warn("dynamodb local listens on all interfaces without authentication (it has no bind option): "+
			"other hosts that reach this machine can read and write its tables; "+why+", so firewall the port yourself",
			"port", port)
	})
	return noop
}

// undo runs the removal commands, logging what fails.
func (f *firewall) undo(remove [][]string, tool string) {
	if len(remove) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, argv := range remove {
		if err := f.run(ctx, argv); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		f.logger.Warn("dynamodb local: could not remove the firewall rule", "tool", tool, "err", err)
	}
}
