package devicesim

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/platform"
)

// testOS is a personality no code knows: every behaviour it shows must come from this row.
var testOS = &personality{
	prefix: "tst", serverVersion: "SSH-2.0-TestOS_0.1", kbdOnly: true,
	versions: []string{"9.9.9"}, model: "T-1", product: "Test OS",
	more: "[more]", moreErase: "\r      \r",
	exec: true,
	execShell: func(_ *simSession, w *writer, cmdline string) int {
		w.line("ran " + cmdline)
		return 3
	},
	prompt: func(f *facts) string { return "<" + f.hostname + ">$ " },
	motd:   func(f *facts) string { return "welcome to " + f.hostname + "\r\n" },
	commands: []command{
		cmd("list items", actOutput, func(f *facts, emit func(string) bool, _ int) {
			for i := range 12 {
				if !emit(f.hostname + " item " + strings.Repeat("*", i)) {
					return
				}
			}
		}),
		cmd("pager <n>", actPagingOff, nil).withReply(func(arg string) string { return "pager now " + arg }),
		cmd("width <n>", actSilent, nil).withReply(func(arg string) string { return "width now " + arg }),
		cmd("bye", actExit, nil),
	},
	invalid: func(prompt string, words []string) []string {
		return []string{"?? " + strings.Join(words, "+") + " after " + strings.TrimSpace(prompt)}
	},
}

// withPersonality adds p as platform name for the test.
func withPersonality(t *testing.T, name string, p *personality) {
	t.Helper()
	require.NotContains(t, personalities, name, "personality %s exists already", name)
	personalities[name] = p
	t.Cleanup(func() { delete(personalities, name) })
}

// typed returns a command's words as a user types them, numbers for "<n>".
func typed(c command, n string) string {
	words := make([]string, len(c.words))
	for i, w := range c.words {
		if w == "<n>" {
			w = n
		}
		words[i] = w
	}
	return strings.Join(words, " ")
}

// outputLines runs a command's output generator as the device would, unpaged.
func outputLines(c command, f *facts) []string {
	var lines []string
	c.output(f, func(l string) bool { lines = append(lines, l); return true }, 0)
	return lines
}

// TestPersonalityRows starts one device of every personality, the real ones and one added by
// this test, and checks that each behaviour is its row's: SSH version, auth methods, host name,
// version, banner, prompt, errors, pager and its erase, paging off, the answers of settings
// commands, and the exec channel (refused, network style, or a shell with an exit status).
func TestPersonalityRows(t *testing.T) {
	withPersonality(t, "test_os", testOS)
	const rows = 6 // a page is rows-1 lines: the pager's line is the last
	for _, name := range platformNames() {
		t.Run(name, func(t *testing.T) {
			p := personalities[name]
			f := start(t, Spec{Seed: 1, Devices: []DeviceSpec{{Platform: name}}})
			dev := f.devices[0]
			inv := f.Inventory()[0]
			assert.Equal(t, p.prefix+"1", inv.Name, "host name")
			assert.Equal(t, p.versions[0], inv.Version, "software version")
			wantAuth := "password"
			if p.kbdOnly {
				wantAuth = "keyboard-interactive"
			}
			assert.Equal(t, wantAuth, inv.AuthMethod, "inventory auth method")
			checkPasswordAuth(t, inv, !p.kbdOnly)

			client := dial(t, inv)
			assert.Equal(t, p.serverVersion, string(client.ServerVersion()), "SSH identification")

			tm := openShell(t, inv, rows)
			prompt := p.prompt(dev.facts)
			assert.Equal(t, p.motd(dev.facts)+prompt, tm.readUntil(prompt), "banner and first prompt")

			tm.send("frob nicate\n")
			assert.Equal(t, "frob nicate\r\n"+crlf(p.invalid(prompt, []string{"frob", "nicate"}))+prompt,
				tm.readUntil(prompt), "unknown command")

			for _, c := range p.commands {
				if c.reply != nil && c.act == actSilent {
					tm.send(typed(c, "80") + "\n")
					assert.Equal(t, typed(c, "80")+"\r\n"+c.reply("80")+"\r\n"+prompt, tm.readUntil(prompt), "answer to %q", typed(c, "80"))
				}
			}

			out, lines, ok := longOutput(p, dev.facts, rows-1)
			if ok {
				tm.send(typed(out, "") + "\n")
				page := typed(out, "") + "\r\n" + crlf(lines[:rows-1]) + p.more
				assert.Equal(t, page, tm.readUntil(p.more), "first page of %q", typed(out, ""))
				tm.send("q")
				assert.Equal(t, p.moreErase+prompt, tm.readUntil(prompt), "pager quit")
			}
			if off, found := commandOf(p, actPagingOff); found {
				tm.send(typed(off, "0") + "\n")
				want := typed(off, "0") + "\r\n"
				if off.reply != nil {
					want += off.reply("0") + "\r\n"
				}
				assert.Equal(t, want+prompt, tm.readUntil(prompt), "paging off with %q", typed(off, "0"))
				if ok {
					tm.send(typed(out, "") + "\n")
					assert.Equal(t, typed(out, "")+"\r\n"+crlf(lines)+prompt, tm.readUntil(prompt), "unpaged %q", typed(out, ""))
				}
			}

			checkExec(t, client, p, out, ok, dev.facts)
		})
	}
}

// checkPasswordAuth dials with the password method alone: a keyboard-interactive-only device
// refuses it.
func checkPasswordAuth(t *testing.T, d InventoryDevice, want bool) {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey))
	require.NoError(t, err, "%s host key", d.ID)
	c, err := ssh.Dial("tcp", d.Addr(), &ssh.ClientConfig{User: d.Username, Auth: []ssh.AuthMethod{ssh.Password(d.Password)},
		HostKeyCallback: ssh.FixedHostKey(key), HostKeyAlgorithms: []string{key.Type()}})
	if c != nil {
		_ = c.Close()
	}
	if want {
		assert.NoError(t, err, "%s: password authentication", d.ID)
	} else {
		assert.Error(t, err, "%s: password authentication on a keyboard-interactive-only device", d.ID)
	}
}

// checkExec runs a command on the exec channel as the row says it behaves.
func checkExec(t *testing.T, client *ssh.Client, p *personality, out command, haveOut bool, f *facts) {
	t.Helper()
	s, err := client.NewSession()
	require.NoError(t, err, "new session")
	defer s.Close()
	switch {
	case !p.exec:
		assert.Error(t, s.Start("show version"), "exec on a device without exec")
	case p.execShell != nil:
		got, err := s.Output("echo hi")
		var exit *ssh.ExitError
		if err != nil {
			require.True(t, errors.As(err, &exit), "a shell's exec ends with an exit status, not %v", err)
		}
		assert.NotContains(t, string(got), "\r", "a shell's lines end in \\n")
		if p == testOS {
			assert.Equal(t, "ran echo hi\n", string(got))
			require.NotNil(t, exit, "exit status")
			assert.Equal(t, 3, exit.ExitStatus())
		}
	case haveOut:
		got, err := s.Output(typed(out, ""))
		var missing *ssh.ExitMissingError
		assert.True(t, errors.As(err, &missing), "network exec closes without an exit status, not %v", err)
		assert.Equal(t, crlf(outputLines(out, f)), string(got), "exec %q", typed(out, ""))
	}
}

// longOutput finds a command of the row whose output is longer than a page.
func longOutput(p *personality, f *facts, page int) (command, []string, bool) {
	for _, c := range p.commands {
		if c.act == actOutput {
			if lines := outputLines(c, f); len(lines) > page {
				return c, lines, true
			}
		}
	}
	return command{}, nil, false
}

func commandOf(p *personality, act action) (command, bool) {
	for _, c := range p.commands {
		if c.act == act {
			return c, true
		}
	}
	return command{}, false
}

func crlf(lines []string) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	return b.String()
}

// TestEveryPlatformHasAPersonality: each platform the SSH engine knows is simulated, accepting
// exec as the real platform does; the simulator knows no platform the engine does not.
func TestEveryPlatformHasAPersonality(t *testing.T) {
	for _, name := range platform.Known() {
		t.Run(name, func(t *testing.T) {
			p, ok := personalities[name]
			require.True(t, ok, "platform %s has no personality", name)
			prof, _ := platform.Lookup(name)
			assert.Equal(t, prof.ExecSupported, p.exec, "%s: exec", name)
		})
	}
	assert.ElementsMatch(t, platform.Known(), platformNames(), "simulated platforms")
}
