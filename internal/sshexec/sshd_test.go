package sshexec

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/sshdtest"
)

// The tests in this file run against a real OpenSSH sshd (infra/sshdtest): they need root and
// are skipped under -short.

// sshdServer is a running sshd with the engine's view of it.
type sshdServer struct {
	*sshdtest.Server
	hostKey      ssh.PublicKey
	password     string
	clientPEM    []byte
	clientEncPEM []byte
}

// startSSHD starts sshd with extra options ("Key value" lines).
func startSSHD(t *testing.T, extra ...string) *sshdServer {
	t.Helper()
	srv := sshdtest.Start(t, extra...)
	return &sshdServer{Server: srv, hostKey: srv.HostKey, password: srv.Password,
		clientPEM: srv.Keys.PEM, clientEncPEM: srv.Keys.EncryptedPEM}
}

func (s *sshdServer) target() Target {
	return Target{
		Host: "127.0.0.1", Port: s.Port, Platform: "linux", Username: sshdUser,
		AuthMethod: AuthPassword, Password: s.password,
		HostKey: s.HostKeyLine(),
	}
}

const (
	sshdUser          = sshdtest.User
	testKeyPassphrase = sshdtest.KeyPassphrase
)

func TestOpenSSH(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	// Wrong pinned keys: one of the server's own type (refused by comparing the keys' bytes)
	// and one of another type (refused because the server offers no key of that type).
	sameType := newHostKey(t)
	require.Equal(t, srv.hostKey.Type(), keyType(t, sameType), "the same-type wrong key's type")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err, "generate RSA key")
	rsaPub, err := ssh.NewPublicKey(&rsaKey.PublicKey)
	require.NoError(t, err, "RSA public key")
	otherType := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(rsaPub)))
	require.NotEqual(t, srv.hostKey.Type(), rsaPub.Type(), "the other-type wrong key's type")
	// PAM delays every failed password by about two seconds.
	opts := fastOpts
	opts.AuthTimeout = 10 * time.Second
	r := newRunner(t, opts)
	tests := []struct {
		name    string
		mutate  func(*Target)
		command string
		status  Status
		reason  Reason
		output  string
		exit    int    // -1: not checked
		message string // a substring of the message, when set
		learn   bool
	}{
		{"password", func(*Target) {}, "echo hello-$((6*7))", StatusSucceeded, "", "hello-42\n", 0, "", false},
		{"whoami", func(*Target) {}, "id -un", StatusSucceeded, "", sshdUser + "\n", 0, "", false},
		{"exit status", func(*Target) {}, "echo partial; exit 7", StatusFailed, ReasonExitStatus, "partial\n", 7, "", false},
		{"stderr is captured", func(*Target) {}, "echo oops >&2", StatusSucceeded, "", "oops\n", 0, "", false},
		{"keyboard-interactive", func(tg *Target) { tg.AuthMethod = AuthKeyboardInteractive }, "echo kbd", StatusSucceeded, "", "kbd\n", 0, "", false},
		{"public key", func(tg *Target) { tg.AuthMethod = AuthPublicKey; tg.PrivateKeyPEM = srv.clientPEM; tg.Password = "" }, "echo key", StatusSucceeded, "", "key\n", 0, "", false},
		{"public key with passphrase", func(tg *Target) {
			tg.AuthMethod = AuthPublicKey
			tg.PrivateKeyPEM = srv.clientEncPEM
			tg.Passphrase = testKeyPassphrase
		}, "echo key2", StatusSucceeded, "", "key2\n", 0, "", false},
		{"wrong password", func(tg *Target) { tg.Password = "wrong-password" }, "true", StatusAuthFailed, ReasonAuthRejected, "", -1, "", false},
		{"host key mismatch, same type", func(tg *Target) { tg.HostKey = sameType },
			"true", StatusHostKeyMismatch, ReasonHostKeyChanged, "", -1, "host key mismatch: device presented ssh-ed25519", false},
		{"host key mismatch, same type, even with TOFU", func(tg *Target) { tg.HostKey = sameType; tg.TrustOnFirstUse = true },
			"true", StatusHostKeyMismatch, ReasonHostKeyChanged, "", -1, "host key mismatch: device presented ssh-ed25519", false},
		{"host key mismatch, another type", func(tg *Target) { tg.HostKey = otherType },
			"true", StatusHostKeyMismatch, ReasonHostKeyChanged, "", -1, "device offers no host key of the pinned type", false},
		{"unknown host key", func(tg *Target) { tg.HostKey = "" }, "true", StatusHostKeyMismatch, ReasonHostKeyUnknown, "", -1, "", false},
		{"trust on first use", func(tg *Target) { tg.HostKey = ""; tg.TrustOnFirstUse = true }, "echo tofu", StatusSucceeded, "", "tofu\n", 0, "", true},
		{"shell mode (generic profile on bash)", func(tg *Target) { tg.Platform = "generic" }, "echo shell-$((6*7))", StatusSucceeded, "", "shell-42\n", -1, "", false},
		{"shell mode error marker", func(tg *Target) { tg.Platform = "generic" }, "frobnicate-xyz", StatusFailed, ReasonCommandError, "", -1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := srv.target()
			tt.mutate(&tg)
			res, out := runCmd(t, r, tg, tt.command)
			requireOutcome(t, res, tt.status, tt.reason, out)
			if tt.output != "" {
				assert.Equal(t, tt.output, out, "output")
			}
			if tt.exit >= 0 && assert.NotNil(t, res.ExitStatus, "exit status") {
				assert.Equal(t, tt.exit, *res.ExitStatus, "exit status")
			}
			if tt.learn {
				assert.Equal(t, srv.target().HostKey, res.LearnedHostKey, "learned key")
			} else {
				assert.Empty(t, res.LearnedHostKey, "learned a key without TOFU")
			}
			assert.Contains(t, res.Message, tt.message, "message")
			if res.Status == StatusHostKeyMismatch {
				assert.Empty(t, out, "output after a host key mismatch")
				assert.Zero(t, res.Timings.Auth, "Timings.Auth after a host key mismatch")
			}
			assert.NotContains(t, res.Message+fmt.Sprint(res.Err), srv.password, "password leaked")
		})
	}
}

// TestOpenSSHKeyboardInteractiveOnly proves keyboard-interactive works on its
// own: the server offers no "password" method, and the password method falls
// back to it.
func TestOpenSSHKeyboardInteractiveOnly(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t, "PasswordAuthentication no", "PubkeyAuthentication no")
	opts := fastOpts
	opts.AuthTimeout = 10 * time.Second // PAM delays a failure by about two seconds
	r := newRunner(t, opts)
	for _, m := range []AuthMethod{AuthKeyboardInteractive, AuthPassword} {
		t.Run(string(m), func(t *testing.T) {
			tg := srv.target()
			tg.AuthMethod = m
			res, out := runCmd(t, r, tg, "echo only-kbd")
			requireOutcome(t, res, StatusSucceeded, "", out)
			require.Equal(t, "only-kbd\n", out, "output")
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		tg := srv.target()
		tg.AuthMethod = AuthKeyboardInteractive
		tg.Password = "nope-nope"
		res, _ := runCmd(t, r, tg, "true")
		require.Equal(t, StatusAuthFailed, res.Status, "status; reason %s, message %q", res.Reason, res.Message)
	})
}

func TestOpenSSHCancelAndIdle(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	opts := fastOpts
	opts.IdleTimeout = 400 * time.Millisecond
	r := newRunner(t, opts)
	start := time.Now()
	res, out := runCmd(t, r, srv.target(), "echo started; sleep 30")
	requireOutcome(t, res, StatusTimedOut, ReasonIdleTimeout, out)
	require.Equal(t, "started\n", out, "output before the idle timeout")
	assert.LessOrEqual(t, time.Since(start), 3*time.Second, "time to the idle timeout")
	ctx, cancel := context.WithCancel(context.Background())
	sink := &notifySink{first: make(chan struct{})}
	done := make(chan Result, 1)
	go func() { done <- r.Run(ctx, srv.target(), "echo go; sleep 30", sink) }()
	<-sink.first
	cancel()
	select {
	case res := <-done:
		require.Equal(t, StatusCancelled, res.Status, "status; reason %s", res.Reason)
	case <-time.After(3 * time.Second):
		require.FailNow(t, "cancel did not stop the run")
	}
}

// TestOpenSSHSequence runs sequences with prompts against real OpenSSH: on exec channels
// (prompts on stderr, answers on stdin) and in a bash PTY shell (the generic profile). The
// secret answer is echoed back by the commands and must not reach the output.
func TestOpenSSHSequence(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	opts := fastOpts
	opts.AuthTimeout = 10 * time.Second
	opts.AskTimeout = 500 * time.Millisecond
	r := newRunner(t, opts)
	const token = "tok-3f9a-secret"
	secret := Prompt{Expect: "Token:", Answer: token, Secret: true}
	t.Run("exec", func(t *testing.T) {
		seq := Sequence{Commands: []Command{
			{Text: "echo one"},
			{Text: `printf 'Proceed? [y/N] ' >&2; read a; echo "answer=$a"`, Prompts: []Prompt{{Expect: "[y/N]", Answer: "y"}}},
			{Text: `printf 'Token: ' >&2; read t; echo "got $t and again $t."`, Prompts: []Prompt{secret}},
		}}
		res, sink := runSeq(t, r, srv.target(), seq)
		requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
		assert.Equal(t, "one\n", sink.of(0), "output of command 0")
		assert.Equal(t, "Proceed? [y/N] answer=y\n", sink.of(1), "output of command 1")
		assert.Equal(t, "Token: got [redacted] and again [redacted].\n", sink.of(2), "output of command 2 (secret replaced)")
	})
	t.Run("shell", func(t *testing.T) {
		tg := srv.target()
		tg.Platform = "generic"
		seq := Sequence{Commands: []Command{
			{Text: "echo one"},
			{Text: `read -p 'Proceed? [y/N] ' a; echo "answer=$a"`, Prompts: []Prompt{{Expect: `Proceed\? \[y/N\]`, Regex: true, Answer: "y"}}},
			{Text: `read -p 'Token: ' t; echo "got $t."`, Prompts: []Prompt{secret}},
		}}
		res, sink := runSeq(t, r, tg, seq)
		requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
		assert.Equal(t, "one\n", sink.of(0), "output of command 0")
		assert.Equal(t, "Proceed? [y/N] y\nanswer=y\n", sink.of(1), "output of command 1")
		assert.Equal(t, "Token: [redacted]\ngot [redacted].\n", sink.of(2), "output of command 2 (echoed secret replaced)")
		assert.NotContains(t, sink.all.String(), token, "secret in the output")
	})
	t.Run("shell, a later command prints an earlier secret answer", func(t *testing.T) {
		tg := srv.target()
		tg.Platform = "generic"
		seq := Sequence{Commands: []Command{
			{Text: `read -s -p 'Token: ' t; echo`, Prompts: []Prompt{secret}},
			{Text: `echo "later: $t."`},
		}}
		res, sink := runSeq(t, r, tg, seq)
		requireOutcome(t, res, StatusSucceeded, "", sink.all.String())
		assert.Equal(t, "later: [redacted].\n", sink.of(1), "output of command 1 (the secret it printed replaced)")
		assert.NotContains(t, sink.all.String(), token, "secret in the output")
	})
	t.Run("shell unanswered", func(t *testing.T) {
		tg := srv.target()
		tg.Platform = "generic"
		start := time.Now()
		res, sink := runSeq(t, r, tg, Sequence{Commands: []Command{{Text: "read -p 'Really? ' a"}}})
		requireOutcome(t, res, StatusTimedOut, ReasonPromptUnanswered, sink.all.String())
		assert.Contains(t, res.Message, `"Really?"`, "message quotes the question")
		assert.Less(t, time.Since(start), opts.IdleTimeout+opts.AuthTimeout, "time to prompt_unanswered")
	})
}
