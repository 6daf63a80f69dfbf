package sshexec

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The tests in this file run against a real OpenSSH sshd from Debian's
// openssh-server package: a private configuration and a generated host key in
// a temporary directory, loopback only, a free high port, started as a child
// process and stopped when the test ends. They log in as a dedicated local
// user, created (idempotently, with a fresh random password per run) by the
// test, which therefore needs root.
//
// UsePAM is on so that keyboard-interactive works (OpenSSH on Linux offers
// keyboard-interactive only through PAM); Debian's stock /etc/pam.d/sshd
// stack checks the password with pam_unix.

const (
	sshdPath = "/usr/sbin/sshd"
	sshdUser = "netauto-sshtest"
)

// sshdUserOnce creates the test user once per test binary.
var sshdUserOnce = sync.OnceValues(func() (string, error) {
	if _, err := user.Lookup(sshdUser); err != nil {
		out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", sshdUser).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("useradd %s: %v: %s", sshdUser, err, out)
		}
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	password := "Pw-" + hex.EncodeToString(b[:])
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(sshdUser + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chpasswd: %v: %s", err, out)
	}
	return password, nil
})

const testKeyPassphrase = "client-key-passphrase"

// testKeys is a client key pair in OpenSSH PEM form, plain and encrypted.
type testKeys struct {
	pub              ssh.PublicKey
	plainPEM, encPEM []byte
}

// clientKeys makes the client key pair once per test binary: encrypting it
// (bcrypt) is slow, especially under the race detector.
var clientKeysOnce = sync.OnceValues(func() (testKeys, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return testKeys{}, err
	}
	k := testKeys{}
	if k.pub, err = ssh.NewPublicKey(pub); err != nil {
		return k, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return k, err
	}
	k.plainPEM = pem.EncodeToMemory(block)
	if block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(testKeyPassphrase)); err != nil {
		return k, err
	}
	k.encPEM = pem.EncodeToMemory(block)
	return k, nil
})

func clientKeys(t *testing.T) testKeys {
	t.Helper()
	k, err := clientKeysOnce()
	if err != nil {
		t.Fatalf("client keys: %v", err)
	}
	return k
}

type sshdServer struct {
	port         int
	hostKey      ssh.PublicKey
	password     string
	clientPEM    []byte
	clientEncPEM []byte
}

// startSSHD starts sshd with the private configuration plus extra options
// ("Key value" lines) and returns once it listens.
func startSSHD(t *testing.T, extra ...string) *sshdServer {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		t.Fatalf("OpenSSH server not found at %s (%v): install it with `apt-get install -y openssh-server`", sshdPath, err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the sshd tests must run as root (they create the local user %s and start sshd)", sshdUser)
	}
	password, err := sshdUserOnce()
	if err != nil {
		t.Fatalf("prepare test user: %v", err)
	}
	// sshd's privilege separation needs this directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("privsep dir: %v", err)
	}
	dir := t.TempDir()
	// sshd reads authorized_keys as the user: let it into the directory
	// (and its parent, also private to root).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv := &sshdServer{password: password}

	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "host_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	if srv.hostKey, err = ssh.NewPublicKey(hostPub); err != nil {
		t.Fatal(err)
	}
	keys := clientKeys(t)
	srv.clientPEM, srv.clientEncPEM = keys.plainPEM, keys.encPEM
	cpub := keys.pub
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(cpub), 0o644); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	conf := []string{
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(srv.port),
		"HostKey " + filepath.Join(dir, "host_ed25519"),
		"PidFile none",
		"UsePAM yes",
		"PermitRootLogin no",
		"AllowUsers " + sshdUser,
		"StrictModes no",
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PubkeyAuthentication yes",
		"PasswordAuthentication yes",
		"KbdInteractiveAuthentication yes",
		"PrintMotd no",
		"PrintLastLog no",
		"UseDNS no",
		"LogLevel VERBOSE",
		"MaxStartups 100",
	}
	// Later duplicates lose in sshd_config, so extra options go first.
	conf = append(extra, conf...)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", cfgPath)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	var logMu sync.Mutex
	var logLines []string
	ready := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			logMu.Lock()
			logLines = append(logLines, sc.Text())
			logMu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "Server listening on") {
				signalled = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-readerDone
		_ = cmd.Wait()
		if t.Failed() {
			logMu.Lock()
			t.Logf("sshd log:\n%s", strings.Join(logLines, "\n"))
			logMu.Unlock()
		}
	})
	select {
	case <-ready:
	case <-readerDone:
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("sshd exited before listening:\n%s", strings.Join(logLines, "\n"))
	case <-time.After(10 * time.Second):
		t.Fatal("sshd did not report listening within 10s")
	}
	return srv
}

func (s *sshdServer) target() Target {
	return Target{
		Host: "127.0.0.1", Port: s.port, Platform: "linux", Username: sshdUser,
		AuthMethod: AuthPassword, Password: s.password,
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey))),
	}
}

func TestOpenSSH(t *testing.T) {
	t.Parallel()
	srv := startSSHD(t)
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ssh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
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
		exit    int // -1: not checked
		learn   bool
	}{
		{"password", func(*Target) {}, "echo hello-$((6*7))", StatusSucceeded, "", "hello-42\n", 0, false},
		{"whoami", func(*Target) {}, "id -un", StatusSucceeded, "", sshdUser + "\n", 0, false},
		{"exit status", func(*Target) {}, "echo partial; exit 7", StatusFailed, ReasonExitStatus, "partial\n", 7, false},
		{"stderr is captured", func(*Target) {}, "echo oops >&2", StatusSucceeded, "", "oops\n", 0, false},
		{"keyboard-interactive", func(tg *Target) { tg.AuthMethod = AuthKeyboardInteractive }, "echo kbd", StatusSucceeded, "", "kbd\n", 0, false},
		{"public key", func(tg *Target) { tg.AuthMethod = AuthPublicKey; tg.PrivateKeyPEM = srv.clientPEM; tg.Password = "" }, "echo key", StatusSucceeded, "", "key\n", 0, false},
		{"public key with passphrase", func(tg *Target) {
			tg.AuthMethod = AuthPublicKey
			tg.PrivateKeyPEM = srv.clientEncPEM
			tg.Passphrase = testKeyPassphrase
		}, "echo key2", StatusSucceeded, "", "key2\n", 0, false},
		{"wrong password", func(tg *Target) { tg.Password = "wrong-password" }, "true", StatusAuthFailed, ReasonAuthRejected, "", -1, false},
		{"host key mismatch", func(tg *Target) {
			tg.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherKey)))
		}, "true", StatusHostKeyMismatch, ReasonHostKeyChanged, "", -1, false},
		{"unknown host key", func(tg *Target) { tg.HostKey = "" }, "true", StatusHostKeyMismatch, ReasonHostKeyUnknown, "", -1, false},
		{"trust on first use", func(tg *Target) { tg.HostKey = ""; tg.TrustOnFirstUse = true }, "echo tofu", StatusSucceeded, "", "tofu\n", 0, true},
		{"shell mode (generic profile on bash)", func(tg *Target) { tg.Platform = "generic" }, "echo shell-$((6*7))", StatusSucceeded, "", "shell-42\n", -1, false},
		{"shell mode error marker", func(tg *Target) { tg.Platform = "generic" }, "frobnicate-xyz", StatusFailed, ReasonCommandError, "", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tg := srv.target()
			tt.mutate(&tg)
			res, out := runCmd(t, r, tg, tt.command)
			if res.Status != tt.status || res.Reason != tt.reason {
				t.Fatalf("got %s/%s (%s; %v), want %s/%s; output %q", res.Status, res.Reason, res.Message, res.Err, tt.status, tt.reason, out)
			}
			if tt.output != "" && out != tt.output {
				t.Errorf("output %q, want %q", out, tt.output)
			}
			if tt.exit >= 0 && (res.ExitStatus == nil || *res.ExitStatus != tt.exit) {
				t.Errorf("exit status %v, want %d", res.ExitStatus, tt.exit)
			}
			if tt.learn && res.LearnedHostKey != srv.target().HostKey {
				t.Errorf("learned %q, want %q", res.LearnedHostKey, srv.target().HostKey)
			}
			if !tt.learn && res.LearnedHostKey != "" {
				t.Errorf("learned a key without TOFU: %q", res.LearnedHostKey)
			}
			if strings.Contains(res.Message+fmt.Sprint(res.Err), srv.password) {
				t.Errorf("password leaked: %q %v", res.Message, res.Err)
			}
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
			if res.Status != StatusSucceeded || out != "only-kbd\n" {
				t.Fatalf("got %s/%s (%s), output %q", res.Status, res.Reason, res.Message, out)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		tg := srv.target()
		tg.AuthMethod = AuthKeyboardInteractive
		tg.Password = "nope-nope"
		res, _ := runCmd(t, r, tg, "true")
		if res.Status != StatusAuthFailed {
			t.Fatalf("got %s/%s (%s)", res.Status, res.Reason, res.Message)
		}
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
	if res.Status != StatusTimedOut || res.Reason != ReasonIdleTimeout || out != "started\n" {
		t.Fatalf("got %s/%s output %q", res.Status, res.Reason, out)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle timeout took %s", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sink := &notifySink{first: make(chan struct{})}
	done := make(chan Result, 1)
	go func() { done <- r.Run(ctx, srv.target(), "echo go; sleep 30", sink) }()
	<-sink.first
	cancel()
	select {
	case res := <-done:
		if res.Status != StatusCancelled {
			t.Fatalf("got %s/%s", res.Status, res.Reason)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("cancel did not stop the run")
	}
}
