package sshexec

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/platform"
)

// seqSink records each command's output separately.
type seqSink struct {
	cur     int
	started []int
	out     map[int]*bytes.Buffer
	all     bytes.Buffer
}

func newSeqSink() *seqSink { return &seqSink{cur: -1, out: map[int]*bytes.Buffer{}} }

func (s *seqSink) StartCommand(i int) error {
	s.cur = i
	s.started = append(s.started, i)
	s.out[i] = &bytes.Buffer{}
	return nil
}

func (s *seqSink) Write(p []byte) (int, error) {
	if s.cur < 0 {
		return 0, errors.New("output before the first StartCommand")
	}
	s.all.Write(p)
	return s.out[s.cur].Write(p)
}

func (s *seqSink) of(i int) string {
	if b := s.out[i]; b != nil {
		return b.String()
	}
	return ""
}

// runSeq runs seq on tg and returns the result and the sink.
func runSeq(t *testing.T, r *Runner, tg Target, seq Sequence) (Result, *seqSink) {
	t.Helper()
	sink := newSeqSink()
	res := r.RunSequence(context.Background(), tg, seq, sink)
	return res, sink
}

func cmds(texts ...string) []Command {
	out := make([]Command, len(texts))
	for i, t := range texts {
		out[i] = Command{Text: t}
	}
	return out
}

// platformCommands are three commands with output per platform, and one the platform rejects.
var platformCommands = map[string]struct {
	good [3]string
	bad  string
}{
	"linux":         {[3]string{"hostname", "uname -a", "cat /etc/motd"}, "cat /nope"},
	"cisco_ios":     {[3]string{"show clock", "show version", "show ip route"}, "show frobnicate"},
	"cisco_iosxe":   {[3]string{"show clock", "show version", "show ip route"}, "show frobnicate"},
	"cisco_nxos":    {[3]string{"show clock", "show version", "show ip route"}, "show frobnicate"},
	"cisco_iosxr":   {[3]string{"show clock", "show version", "show route"}, "show frobnicate"},
	"arista_eos":    {[3]string{"show clock", "show version", "show ip route"}, "show frobnicate"},
	"juniper_junos": {[3]string{"show version", "show route", "show interfaces"}, "show frobnicate"},
	"generic":       {[3]string{"show version", "show route", "show interfaces"}, "frobnicate now"},
}

// TestSequencePerCommandOutput: three commands on one session; each command's output is
// exactly what the command alone gives, on one connection.
func TestSequencePerCommandOutput(t *testing.T) {
	f, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, fastOpts)
	for _, p := range platform.Known() {
		t.Run(p, func(t *testing.T) {
			pc, ok := platformCommands[p]
			require.True(t, ok, "no commands for platform %s", p)
			d := devs[p]
			tg := targetFor(d)
			var want [3]string
			for i, c := range pc.good {
				res, out := runCmd(t, r, tg, c)
				requireOutcome(t, res, StatusSucceeded, "", out)
				require.NotEmpty(t, out, "output of %q alone", c)
				want[i] = out
			}
			before := f.Sessions(d.ID)
			res, sink := runSeq(t, r, tg, Sequence{Commands: cmds(pc.good[:]...)})
			requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
			require.Len(t, res.Commands, 3, "command results")
			assert.Equal(t, []int{0, 1, 2}, sink.started, "StartCommand calls")
			var total int64
			for i := range pc.good {
				assert.Equal(t, want[i], sink.of(i), "output of command %d (%s)", i, pc.good[i])
				assert.Equal(t, StatusSucceeded, res.Commands[i].Status, "status of command %d", i)
				assert.Equal(t, int64(len(want[i])), res.Commands[i].Bytes, "Bytes of command %d", i)
				total += res.Commands[i].Bytes
			}
			assert.Equal(t, res.Bytes, total, "run Bytes against the commands' Bytes")
			sessions := 1 // one shell
			if p == "linux" {
				sessions = 3 // one exec channel per command, on one connection
			}
			assert.Equal(t, sessions, f.Sessions(d.ID)-before, "sessions the device started")
		})
	}
}

// TestSequenceStopOnError: a rejected middle command ends the run with StopOnError (the third
// command is never sent) and is reported, with the third run, without it.
func TestSequenceStopOnError(t *testing.T) {
	f, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, fastOpts)
	for _, p := range platform.Known() {
		pc := platformCommands[p]
		reason := ReasonCommandError
		if p == "linux" {
			reason = ReasonExitStatus
		}
		seq := cmds(pc.good[0], pc.bad, pc.good[1])
		t.Run(p+"/stop", func(t *testing.T) {
			d := devs[p]
			n := len(f.Received(d.ID).Commands)
			res, sink := runSeq(t, r, targetFor(d), Sequence{Commands: seq, StopOnError: true})
			requireOutcome(t, res, StatusFailed, reason, sink.all.String())
			require.Len(t, res.Commands, 2, "command results")
			assert.Equal(t, StatusSucceeded, res.Commands[0].Status, "first command")
			assert.Equal(t, reason, res.Commands[1].Reason, "second command")
			assert.Contains(t, res.Message, "command 2 of 3 ("+pc.bad+"): ", "run message")
			assert.Contains(t, res.Message, res.Commands[1].Message, "run message quotes the command's")
			got := f.Received(d.ID).Commands[n:]
			assert.Contains(t, got, pc.bad, "commands the device received")
			assert.NotContains(t, got, pc.good[1], "the command after the failure was sent")
		})
		t.Run(p+"/continue", func(t *testing.T) {
			res, sink := runSeq(t, r, targetFor(devs[p]), Sequence{Commands: seq})
			requireOutcome(t, res, StatusFailed, reason, sink.all.String())
			require.Len(t, res.Commands, 3, "command results")
			assert.Equal(t, []Status{StatusSucceeded, StatusFailed, StatusSucceeded},
				[]Status{res.Commands[0].Status, res.Commands[1].Status, res.Commands[2].Status}, "command statuses")
			assert.NotEmpty(t, sink.of(2), "output of the command after the failure")
		})
	}
}

// dialogs are per platform a command that asks for a confirmation and one that asks for a
// password (the fleet's password is the right answer), with the prompts that answer them.
func dialogs(password string) map[string][2]Command {
	secret := Prompt{Expect: "Password:", Answer: password, Secret: true}
	scp := func(text string) Command {
		return Command{Text: text, Prompts: []Prompt{
			{Expect: "remote host []?", Answer: "10.0.0.5"},
			{Expect: "Source filename []?", Answer: "image.bin"},
			{Expect: `Destination filename \[[\w.]+\]\?`, Regex: true},
			secret,
		}}
	}
	confirm := Command{Text: "clear counters", Prompts: []Prompt{{Expect: "[confirm]"}}}
	return map[string][2]Command{
		"linux": {
			{Text: "rm -i /tmp/netauto.tmp", Prompts: []Prompt{{Expect: "rm: remove regular file '/tmp/netauto.tmp'?", Answer: "y"}}},
			{Text: "sudo -S hostname", Prompts: []Prompt{{Expect: `\[sudo\] password for \w+:`, Regex: true, Answer: password, Secret: true}}},
		},
		"cisco_ios":   {confirm, scp("copy scp: flash:")},
		"cisco_iosxe": {{Text: "copy running-config startup-config", Prompts: []Prompt{{Expect: "Destination filename [startup-config]?"}}}, scp("copy scp: flash:")},
		"cisco_nxos":  {{Text: "write erase", Prompts: []Prompt{{Expect: "(y/n)  [n]", Answer: "y"}}}, scp("copy scp: bootflash:")},
		"cisco_iosxr": {confirm, scp("copy scp: harddisk:")},
		"arista_eos":  {{Text: "write erase", Prompts: []Prompt{{Expect: "[confirm]", Answer: "y"}}}, scp("copy scp: flash:")},
		"juniper_junos": {
			{Text: "request system storage cleanup", Prompts: []Prompt{{Expect: "[yes,no] (no)", Answer: "yes"}}},
			{Text: "file copy scp://backup@10.0.0.5/config.tgz /var/tmp/", Prompts: []Prompt{{Expect: `\S+'s password:`, Regex: true, Answer: password, Secret: true}}},
		},
		"generic": {{Text: "clear counters", Prompts: []Prompt{{Expect: "(y/n)", Answer: "y"}}}, scp("copy scp: flash:")},
	}
}

// TestPrompts: every platform's confirmation and password dialogs are answered; the secret
// answer reaches the device but never the output; a wrong secret fails like the device says.
func TestPrompts(t *testing.T) {
	f, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, fastOpts)
	password := devs["linux"].Password
	for p, dl := range dialogs(password) {
		t.Run(p, func(t *testing.T) {
			d := devs[p]
			n := len(f.Received(d.ID).Answers)
			res, sink := runSeq(t, r, targetFor(d), Sequence{Commands: dl[:], StopOnError: true})
			requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
			require.Len(t, res.Commands, 2, "command results")
			assert.Contains(t, f.Received(d.ID).Answers[n:], password, "the secret answer reached the device")
			assert.NotContains(t, sink.all.String(), password, "the secret answer in the output")
			if p != "linux" {
				assert.NotEmpty(t, sink.of(0), "output of the confirmed command")
			}
		})
		t.Run(p+"/wrong secret", func(t *testing.T) {
			wrong := dl[1]
			wrong.Prompts = append([]Prompt(nil), wrong.Prompts...)
			last := len(wrong.Prompts) - 1
			wrong.Prompts[last].Answer = "not-the-password"
			reason := ReasonCommandError
			if p == "linux" {
				reason = ReasonExitStatus
			}
			res, sink := runSeq(t, r, targetFor(devs[p]), Sequence{Commands: []Command{wrong}})
			requireOutcome(t, res, StatusFailed, reason, sink.all.String())
			assert.NotContains(t, sink.all.String(), "not-the-password", "the secret answer in the output")
			assert.NotContains(t, res.Message, "not-the-password", "the secret answer in the message")
		})
	}
}

// askOpts give an unanswered question half a second.
var askOpts = Options{
	ConnectTimeout: 2 * time.Second, AuthTimeout: 2 * time.Second, PromptTimeout: 2 * time.Second,
	IdleTimeout: 5 * time.Second, TotalTimeout: 15 * time.Second, AskTimeout: 500 * time.Millisecond,
}

// TestUnansweredPrompt: a question no prompt answers ends the run timed_out /
// prompt_unanswered after the ask window, long before the idle timeout, quoting the question.
func TestUnansweredPrompt(t *testing.T) {
	_, devs := onePerPlatform(t, devicesim.FaultNone)
	r := newRunner(t, askOpts)
	for p, dl := range dialogs("x") {
		t.Run(p, func(t *testing.T) {
			c := Command{Text: dl[0].Text}
			want := dl[0].Prompts[0].Expect
			if p == "linux" {
				// Without prompts stdin is closed and sudo gives up at once; a prompt for
				// another question keeps stdin open, so sudo waits.
				c = Command{Text: dl[1].Text, Prompts: []Prompt{{Expect: "Continue?", Answer: "y"}}}
				want = "[sudo] password for"
			}
			start := time.Now()
			res, sink := runSeq(t, r, targetFor(devs[p]), Sequence{Commands: []Command{{Text: platformCommands[p].good[0]}, c}})
			requireOutcome(t, res, StatusTimedOut, ReasonPromptUnanswered, sink.all.String())
			assert.Contains(t, res.Message, want, "message quotes the question")
			assert.Less(t, time.Since(start), askOpts.IdleTimeout, "time to prompt_unanswered")
			require.Len(t, res.Commands, 2, "command results")
			assert.Equal(t, StatusSucceeded, res.Commands[0].Status, "the command before")
			assert.Equal(t, ReasonPromptUnanswered, res.Commands[1].Reason, "the asking command")
		})
	}
}

// TestSlowOutputIsNotAQuestion: a ping whose replies trickle in on one line slower than the
// ask window, after a header line ending in ":" that rests for less than it, succeeds.
func TestSlowOutputIsNotAQuestion(t *testing.T) {
	for _, p := range []string{"cisco_iosxe", "arista_eos"} {
		t.Run(p, func(t *testing.T) {
			f := startFleet(t, devicesim.Spec{Seed: 5, DripInterval: 800 * time.Millisecond,
				Devices: []devicesim.DeviceSpec{{Platform: p}}})
			r := newRunner(t, askOpts)
			res, out := runCmd(t, r, targetFor(f.Inventory()[0]), "ping 10.0.0.1")
			requireOutcome(t, res, StatusSucceeded, "", out)
			assert.Contains(t, out, "!!!!!\nSuccess rate is 100 percent", "ping output")
		})
	}
}

// TestSequenceValidation: a sequence outside its limits is refused before connecting.
func TestSequenceValidation(t *testing.T) {
	r := newRunner(t, fastOpts)
	// A password of 3 bytes or more: a shorter one would withhold every message holding its letter.
	tg := Target{Host: "127.0.0.1", Port: 1, Platform: "cisco_ios", Username: "u", Password: "pw-long"}
	many := make([]Command, MaxCommands+1)
	for i := range many {
		many[i] = Command{Text: "show clock"}
	}
	six := make([]Prompt, MaxPrompts+1)
	for i := range six {
		six[i] = Prompt{Expect: "?"}
	}
	tests := []struct {
		name string
		seq  Sequence
		want string
	}{
		{"no commands", Sequence{}, "1 to 20 commands"},
		{"too many commands", Sequence{Commands: many}, "1 to 20 commands"},
		{"empty command", Sequence{Commands: cmds("show clock", " ")}, "command 1 is empty"},
		{"multi-line command", Sequence{Commands: cmds("show clock\nreload")}, "line break"},
		{"too many prompts", Sequence{Commands: []Command{{Text: "x", Prompts: six}}}, "at most 5"},
		{"empty expect", Sequence{Commands: []Command{{Text: "x", Prompts: []Prompt{{Answer: "y"}}}}}, "expect is empty"},
		{"bad regex", Sequence{Commands: []Command{{Text: "x", Prompts: []Prompt{{Expect: "(", Regex: true}}}}}, "regular expression"},
		{"answer with line break", Sequence{Commands: []Command{{Text: "x", Prompts: []Prompt{{Expect: "?", Answer: "y\nreload"}}}}}, "line break"},
		{"negative timeout", Sequence{Commands: cmds("x"), Timeout: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, _ := runSeq(t, r, tg, tt.seq)
			requireOutcome(t, res, StatusFailed, ReasonInvalidTarget, "")
			assert.Contains(t, res.Message, tt.want, "message")
			assert.Empty(t, res.Commands, "command results of a refused sequence")
		})
	}
}

// TestEnable: devices that log in unprivileged enter privileged mode with the enable secret
// (which never reaches the output), refuse a wrong one with enable_failed, and without a secret
// run as they are.
func TestEnable(t *testing.T) {
	var specs []devicesim.DeviceSpec
	for _, p := range platform.Known() {
		if prof, _ := platform.Lookup(p); prof.Enable.Supported() {
			specs = append(specs, devicesim.DeviceSpec{Platform: p, Unprivileged: true})
		}
	}
	require.Len(t, specs, 3, "platforms with a privileged mode")
	f := startFleet(t, devicesim.Spec{Seed: 9, Devices: specs, EnableSecret: "s3cret-enable"})
	r := newRunner(t, fastOpts)
	refusal := map[string]string{
		"cisco_ios":   "% Invalid input detected at '^' marker.",
		"cisco_iosxe": "% Invalid input detected at '^' marker.",
		"arista_eos":  "% Invalid input (privileged mode required)",
	}
	for _, d := range f.Inventory() {
		t.Run(d.Platform+"/secret", func(t *testing.T) {
			tg := targetFor(d)
			tg.EnableSecret = f.EnableSecret()
			n := len(f.Received(d.ID).Answers)
			res, sink := runSeq(t, r, tg, Sequence{Commands: cmds("show running-config", "show clock")})
			requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
			assert.Contains(t, sink.of(0), "hostname "+d.Name, "privileged command's output")
			assert.Equal(t, []string{f.EnableSecret()}, f.Received(d.ID).Answers[n:], "answers the device received")
			assert.NotContains(t, sink.all.String(), f.EnableSecret(), "enable secret in the output")
		})
		t.Run(d.Platform+"/wrong secret", func(t *testing.T) {
			tg := targetFor(d)
			tg.EnableSecret = "wrong-enable"
			n := len(f.Received(d.ID).Commands)
			res, sink := runSeq(t, r, tg, Sequence{Commands: cmds("show running-config")})
			requireOutcome(t, res, StatusAuthFailed, ReasonEnableFailed, sink.all.String())
			assert.NotContains(t, res.Message, "wrong-enable", "secret in the message")
			assert.NotContains(t, res.Err.Error(), "wrong-enable", "secret in the error")
			assert.Empty(t, res.Commands, "commands started after a refused enable")
			assert.NotContains(t, f.Received(d.ID).Commands[n:], "show running-config", "command sent after a refused enable")
		})
		t.Run(d.Platform+"/no secret", func(t *testing.T) {
			res, sink := runSeq(t, r, targetFor(d), Sequence{Commands: cmds("show clock", "show running-config")})
			requireOutcome(t, res, StatusFailed, ReasonCommandError, sink.all.String())
			require.Len(t, res.Commands, 2, "command results")
			assert.Equal(t, StatusSucceeded, res.Commands[0].Status, "unprivileged command")
			assert.Equal(t, refusal[d.Platform], res.Commands[1].Message, "the device's refusal")
		})
	}
	t.Run("privileged login sends no enable", func(t *testing.T) {
		g := startFleet(t, devicesim.Spec{Seed: 9, Devices: []devicesim.DeviceSpec{{Platform: "cisco_ios"}}})
		d := g.Inventory()[0]
		tg := targetFor(d)
		tg.EnableSecret = "unused-secret"
		res, out := runCmd(t, r, tg, "show running-config")
		requireOutcome(t, res, StatusSucceeded, "", out)
		assert.NotContains(t, g.Received(d.ID).Commands, "enable", "commands the device received")
		assert.Empty(t, g.Received(d.ID).Answers, "answers the device received")
	})
}

// TestInvocationDeadline: a run ended by a context deadline whose cause is
// ErrInvocationDeadline says so; a plain deadline and the sequence's own timeout do not.
func TestInvocationDeadline(t *testing.T) {
	f := startFleet(t, devicesim.Spec{Seed: 1, Devices: []devicesim.DeviceSpec{{Platform: "cisco_iosxe", Fault: devicesim.FaultHangMidOutput}}})
	r := newRunner(t, Options{IdleTimeout: time.Minute, TotalTimeout: time.Minute})
	tg := targetFor(f.Inventory()[0])
	seq := Sequence{Commands: cmds("show version")}
	t.Run("invocation", func(t *testing.T) {
		ctx, cancel := context.WithDeadlineCause(context.Background(), time.Now().Add(300*time.Millisecond), ErrInvocationDeadline)
		defer cancel()
		res := r.RunSequence(ctx, tg, seq, nil)
		requireOutcome(t, res, StatusTimedOut, ReasonInvocationDeadline, "")
		require.Len(t, res.Commands, 1, "command results")
		assert.Equal(t, ReasonInvocationDeadline, res.Commands[0].Reason, "the interrupted command")
	})
	t.Run("plain deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		res := r.RunSequence(ctx, tg, seq, nil)
		requireOutcome(t, res, StatusTimedOut, ReasonDeadline, "")
	})
	t.Run("sequence timeout", func(t *testing.T) {
		s := seq
		s.Timeout = 300 * time.Millisecond
		start := time.Now()
		res := r.RunSequence(context.Background(), tg, s, nil)
		requireOutcome(t, res, StatusTimedOut, ReasonTotalTimeout, "")
		assert.Less(t, time.Since(start), 5*time.Second, "the sequence timeout replaced the total timeout")
	})
}

func TestSecretFilter(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		chunks  []string
		want    string
	}{
		{"whole", []string{"hunter2"}, []string{"Password: hunter2\n"}, "Password: [redacted]\n"},
		{"split", []string{"hunter2"}, []string{"Password: hun", "ter2\nok"}, "Password: [redacted]\nok"},
		{"prefix only", []string{"hunter2"}, []string{"hun", "gry\n"}, "hungry\n"},
		{"held to the end", []string{"hunter2"}, []string{"a hunt"}, "a hunt"},
		{"a secret that begins a longer one", []string{"cisco", "cisco123"}, []string{"scp pw cisco123, enable cisco\n"},
			"scp pw [redacted], enable [redacted]\n"},
		{"the sides of a secret do not join into it", []string{"abc"}, []string{"aabcbc"}, "a[redacted]bc"},
		{"a shorter secret in a held tail", []string{"abcdef", "cd"}, []string{"xxabcd"}, "xxab[redacted]"},
		{"split over three chunks", []string{"s3cr3t-pass"}, []string{"echo s3c", "r3t-p", "ass done"}, "echo [redacted] done"},
		{"no secret", nil, []string{"plain ", "output"}, "plain output"},
		{"a longer secret split after a shorter one's end", []string{"cisco", "cisco123"}, []string{"pw cisco1", "23 x"}, "pw [redacted] x"},
		{"a shorter secret in a held tail, then the longer one's rest", []string{"abcdef", "cd"}, []string{"xxabcd", "ef"}, "xx[redacted]"},
		{"overlapping secrets are replaced together", []string{"abc", "bcdef"}, []string{"xabcdefy"}, "x[redacted]y"},
		{"overlapping secrets across chunks", []string{"abc", "cdefgh"}, []string{"xabcdef", "ghy"}, "x[redacted]y"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f secretFilter
			f.set(tt.secrets)
			var got strings.Builder
			for _, c := range tt.chunks {
				got.Write(f.filter([]byte(c)))
			}
			got.Write(f.flush())
			assert.Equal(t, tt.want, got.String(), "filtered stream")
			for _, s := range tt.secrets {
				assert.NotContains(t, got.String(), s, "a secret in the filtered stream")
			}
		})
	}
}

// TestSecretFilterChunking streams random outputs over a small alphabet, thick with overlapping
// secrets, through the filter in random chunks: the result is the same however the stream is
// cut, and holds no secret.
func TestSecretFilterChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "xyz"[rng.IntN(3)]
		}
		return string(b)
	}
	for round := range 2000 {
		secrets := make([]string, 1+rng.IntN(3))
		for i := range secrets {
			secrets[i] = word(3 + rng.IntN(5))
		}
		var stream strings.Builder
		for range 1 + rng.IntN(8) {
			stream.WriteString(word(rng.IntN(6)))
			stream.WriteString(secrets[rng.IntN(len(secrets))])
		}
		text := stream.String()
		var whole secretFilter
		whole.set(secrets)
		want := string(append(whole.filter([]byte(text)), whole.flush()...))
		var chunked secretFilter
		chunked.set(secrets)
		var got strings.Builder
		for rest := text; rest != ""; {
			n := min(len(rest), 1+rng.IntN(4))
			got.Write(chunked.filter([]byte(rest[:n])))
			rest = rest[n:]
		}
		got.Write(chunked.flush())
		require.Equal(t, want, got.String(), "round %d: secrets %q in %q", round, secrets, text)
		for _, s := range secrets {
			require.NotContains(t, want, s, "round %d: secrets %q in %q", round, secrets, text)
		}
	}
}

// TestEchoedSecretsNeverReachTheOutput: devices that echo hidden input (the enable secret, a
// dialog's password) still deliver neither to the sink, on every shell platform.
func TestEchoedSecretsNeverReachTheOutput(t *testing.T) {
	var specs []devicesim.DeviceSpec
	for _, p := range platform.Known() {
		prof, _ := platform.Lookup(p)
		if prof.Mode == platform.ModeShell {
			specs = append(specs, devicesim.DeviceSpec{Platform: p, Fault: devicesim.FaultEchoSecrets, Unprivileged: prof.Enable.Supported()})
		}
	}
	f := startFleet(t, devicesim.Spec{Seed: 11, Devices: specs, EnableSecret: "echoed-enable"})
	r := newRunner(t, fastOpts)
	for _, d := range f.Inventory() {
		t.Run(d.Platform, func(t *testing.T) {
			tg := targetFor(d)
			tg.EnableSecret = d.EnableSecret
			n := len(f.Received(d.ID).Answers)
			dl := dialogs(d.Password)[d.Platform]
			res, sink := runSeq(t, r, tg, Sequence{Commands: []Command{dl[1], {Text: platformCommands[d.Platform].good[0]}}})
			requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
			assert.Contains(t, f.Received(d.ID).Answers[n:], d.Password, "the secret answer reached the device")
			assert.NotContains(t, sink.all.String(), d.Password, "echoed secret answer in the output")
			assert.NotContains(t, sink.all.String(), "echoed-enable", "enable secret in the output")
			assert.Equal(t, int64(sink.all.Len()), res.Bytes, "Bytes against what the sink got")
		})
	}
}
