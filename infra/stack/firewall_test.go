package stack

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFirewallRules(t *testing.T) {
	tests := []struct {
		name       string
		tool       string
		wantAdd    []string
		wantRemove []string
	}{
		{"nft: a table of its own", "nft",
			[]string{
				"nft add table inet netauto_dynamodb_8000",
				"nft add chain inet netauto_dynamodb_8000 input { type filter hook input priority 0 ; policy accept ; }",
				"nft add rule inet netauto_dynamodb_8000 input iifname != lo tcp dport 8000 drop",
			},
			[]string{"nft delete table inet netauto_dynamodb_8000"}},
		{"iptables: ipv4 and ipv6", "iptables",
			[]string{
				"iptables -w -I INPUT -p tcp --dport 8000 ! -i lo -m comment --comment netauto dynamodb-local -j DROP",
				"ip6tables -w -I INPUT -p tcp --dport 8000 ! -i lo -m comment --comment netauto dynamodb-local -j DROP",
			},
			[]string{
				"iptables -w -D INPUT -p tcp --dport 8000 ! -i lo -m comment --comment netauto dynamodb-local -j DROP",
				"ip6tables -w -D INPUT -p tcp --dport 8000 ! -i lo -m comment --comment netauto dynamodb-local -j DROP",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, remove := firewallRules(tt.tool, 8000)
			assert.Equal(t, tt.wantAdd, joined(add), "add")
			assert.Equal(t, tt.wantRemove, joined(remove), "remove")
		})
	}
}

func joined(cmds [][]string) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, strings.Join(c, " "))
	}
	return out
}

// fakeSystem is a firewall over a pretend system that records the commands it is asked to run.
type fakeSystem struct {
	goos   string
	euid   int
	tools  []string
	failOn string // a command prefix that fails
	ran    []string
	logs   bytes.Buffer
}

func (s *fakeSystem) firewall() *firewall {
	return &firewall{
		goos: s.goos, euid: s.euid, warnOnce: &sync.Once{},
		logger: slog.New(slog.NewTextHandler(&s.logs, nil)),
		lookPath: func(name string) (string, error) {
			for _, t := range s.tools {
				if t == name {
					return "/usr/sbin/" + name, nil
				}
			}
			return "", exec.ErrNotFound
		},
		run: func(_ context.Context, argv []string) error {
			cmd := strings.Join(argv, " ")
			s.ran = append(s.ran, cmd)
			if s.failOn != "" && strings.HasPrefix(cmd, s.failOn) {
				return errors.New("operation not permitted")
			}
			return nil
		},
	}
}

// TestFirewallWarnsWhenUnavailable covers every way the stack cannot firewall DynamoDB Local (one
// clear warning, no command run or every partial rule removed) and the way it can (the rule is
// added, and removed again by the returned function).
func TestFirewallWarnsWhenUnavailable(t *testing.T) {
	tests := []struct {
		name      string
		sys       fakeSystem
		warn      string   // in the warning; empty: no warning
		ran       []string // command prefixes run by protect
		undoneRan []string // command prefixes run by the returned function
	}{
		{"not linux", fakeSystem{goos: "darwin", euid: 0, tools: []string{"nft"}}, "only on Linux", nil, nil},
		{"not root", fakeSystem{goos: "linux", euid: 1000, tools: []string{"nft"}}, "only when it runs as root", nil, nil},
		{"no tool", fakeSystem{goos: "linux", euid: 0}, "neither nft nor iptables", nil, nil},
		{"rule refused, partial rule removed", fakeSystem{goos: "linux", euid: 0, tools: []string{"iptables"}, failOn: "ip6tables -w -I"},
			"the firewall rule failed", []string{"iptables -w -I", "ip6tables -w -I", "iptables -w -D"}, nil},
		{"nft", fakeSystem{goos: "linux", euid: 0, tools: []string{"nft", "iptables"}}, "",
			[]string{"nft add table", "nft add chain", "nft add rule"}, []string{"nft delete table"}},
		{"iptables", fakeSystem{goos: "linux", euid: 0, tools: []string{"iptables"}}, "",
			[]string{"iptables -w -I", "ip6tables -w -I"}, []string{"iptables -w -D", "ip6tables -w -D"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sys := tt.sys
			f := sys.firewall()
			undo := f.protect(context.Background(), 8000)
			assertPrefixes(t, tt.ran, sys.ran, "commands run by protect")
			sys.ran = nil
			undo()
			assertPrefixes(t, tt.undoneRan, sys.ran, "commands run at close")
			if tt.warn == "" {
				assert.NotContains(t, sys.logs.String(), "level=WARN", "warning")
				assert.Contains(t, sys.logs.String(), "dropped", "the rule is reported")
				return
			}
			assert.Contains(t, sys.logs.String(), "level=WARN", "warning")
			assert.Contains(t, sys.logs.String(), "listens on all interfaces without authentication", "the warning says what is exposed")
			assert.Contains(t, sys.logs.String(), tt.warn, "the warning says why")
			assert.Contains(t, sys.logs.String(), "port=8000", "the warning names the port")
			// Once per process, not once per stack.
			before := strings.Count(sys.logs.String(), "level=WARN")
			f.protect(context.Background(), 8001)()
			assert.Equal(t, before, strings.Count(sys.logs.String(), "level=WARN"), "warnings after a second stack")
		})
	}
}

func assertPrefixes(t *testing.T, want, got []string, msg string) {
	t.Helper()
	require.Len(t, got, len(want), "%s: %q", msg, got)
	for i := range want {
		assert.True(t, strings.HasPrefix(got[i], want[i]), "%s: %q does not start with %q", msg, got[i], want[i])
	}
}

// TestFirewallRealRule adds and removes the real rule where the machine allows it.
func TestFirewallRealRule(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change the firewall")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		if _, err := exec.LookPath("iptables"); err != nil {
			t.Skip("neither nft nor iptables is installed")
		}
	}
	var logs bytes.Buffer
	f := systemFirewall(slog.New(slog.NewTextHandler(&logs, nil)))
	f.warnOnce = &sync.Once{}
	undo := f.protect(context.Background(), 39999)
	require.NotContains(t, logs.String(), "level=WARN", "the rule was not added: %s", logs.String())
	undo()
	assert.NotContains(t, logs.String(), "could not remove", "the rule was not removed: %s", logs.String())
}
