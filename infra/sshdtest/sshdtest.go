// Package sshdtest starts a real OpenSSH sshd for tests: a private configuration and a
// generated host key in a temporary directory, loopback only, a free high port, run as a
// child process and stopped when the test ends. Tests log in as a dedicated local user,
// created (idempotently, with a random password shared by all test binaries until reboot) by
// the package, which therefore needs root; under -short Start skips the test.
//
// UsePAM is on so that keyboard-interactive works (OpenSSH on Linux offers it only through
// PAM; Debian's stock /etc/pam.d/sshd checks the password with pam_unix). LogLevel is VERBOSE,
// so the log (Server.Lines, Server.Count, Server.WaitFor) shows every connection ("Connection
// from"), authentication ("Accepted password for", "Failed password for") and forward.
//
//	srv := sshdtest.Start(t, "AllowTcpForwarding yes", "PermitOpen 127.0.0.1:2222")
//	... connect to srv.Addr() as srv.User with srv.Password, pin srv.HostKeyLine() ...
//	require.Equal(t, 1, srv.Count("Accepted password for"))
package sshdtest

import (
	"bufio"
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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

const (
	// Path is where Debian's openssh-server installs sshd.
	Path = "/usr/sbin/sshd"
	// User is the local account the tests log in as.
	User = "netauto-sshd"
	// KeyPassphrase encrypts Keys.EncryptedPEM.
	KeyPassphrase = "client-key-passphrase"
)

// passwordFile keeps the test user's password for every test binary on the machine: test
// binaries of several packages (or work trees) run at once, and each one setting its own
// password would break the others' logins.
const passwordFile = "/run/netauto-sshd.password"

// userOnce creates the test user and its password once per machine boot (under an exclusive
// lock, so concurrent test binaries agree on one password).
var userOnce = sync.OnceValues(func() (string, error) {
	lock, err := os.OpenFile(passwordFile+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("open lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if _, err := user.Lookup(User); err != nil {
		out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", User).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("useradd %s: %v: %s", User, err, out)
		}
		_ = os.Remove(passwordFile)
	}
	if b, err := os.ReadFile(passwordFile); err == nil && len(b) > 0 {
		return string(b), nil
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random password: %w", err)
	}
	password := "Pw-" + hex.EncodeToString(b[:])
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(User + ":" + password + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("chpasswd: %v: %s", err, out)
	}
	if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
		return "", fmt.Errorf("keep the password: %w", err)
	}
	return password, nil
})

// Keys is a client key pair in OpenSSH PEM form, plain and encrypted with KeyPassphrase;
// every Server accepts it.
type Keys struct {
	Public       ssh.PublicKey
	PEM          []byte
	EncryptedPEM []byte
}

// keysOnce makes the client key pair once per test binary: encrypting it (bcrypt) is slow,
// especially under the race detector.
var keysOnce = sync.OnceValues(func() (Keys, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Keys{}, fmt.Errorf("generate client key: %w", err)
	}
	k := Keys{}
	if k.Public, err = ssh.NewPublicKey(pub); err != nil {
		return k, fmt.Errorf("client public key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return k, fmt.Errorf("marshal client key: %w", err)
	}
	k.PEM = pem.EncodeToMemory(block)
	if block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(KeyPassphrase)); err != nil {
		return k, fmt.Errorf("encrypt client key: %w", err)
	}
	k.EncryptedPEM = pem.EncodeToMemory(block)
	return k, nil
})

// ClientKeys returns the client key pair every Server accepts.
func ClientKeys(tb testing.TB) Keys {
	tb.Helper()
	k, err := keysOnce()
	require.NoError(tb, err, "client keys")
	return k
}

// Server is a running sshd.
type Server struct {
	// Port is the loopback port it listens on.
	Port int
	// HostKey is its ed25519 host key.
	HostKey ssh.PublicKey
	// Password is User's password.
	Password string
	// Keys is the client key pair it accepts.
	Keys Keys

	pid   int
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
	ended bool
}

// Start starts sshd with the private configuration plus extra options ("Key value" lines,
// which win over the defaults) and returns once it listens. It skips the test under -short.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs OpenSSH's sshd run as root: skipped under -short")
	}
	_, err := os.Stat(Path)
	require.NoError(tb, err, "OpenSSH server not found at %s: install it with `apt-get install -y openssh-server`", Path)
	require.Zero(tb, os.Geteuid(), "the sshd tests must run as root (they create the local user %s and start sshd)", User)
	password, err := userOnce()
	require.NoError(tb, err, "prepare test user")
	// sshd's privilege separation needs this directory.
	require.NoError(tb, os.MkdirAll("/run/sshd", 0o755), "privsep dir")
	dir := tb.TempDir()
	// sshd reads authorized_keys as the user: let it into the directory (and its parent,
	// also private to root).
	for _, d := range []string{filepath.Dir(dir), dir} {
		require.NoError(tb, os.Chmod(d, 0o755), "chmod %s", d)
	}
	srv := &Server{Password: password, Keys: ClientKeys(tb)}
	srv.cond = sync.NewCond(&srv.mu)

	hostPub, hostPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(tb, err, "generate host key")
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	require.NoError(tb, err, "marshal host key")
	require.NoError(tb, os.WriteFile(filepath.Join(dir, "host_ed25519"), pem.EncodeToMemory(block), 0o600), "write host key")
	srv.HostKey, err = ssh.NewPublicKey(hostPub)
	require.NoError(tb, err, "host public key")
	require.NoError(tb, os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(srv.Keys.Public), 0o644), "write authorized_keys")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err, "pick a free port")
	srv.Port = ln.Addr().(*net.TCPAddr).Port
	require.NoError(tb, ln.Close(), "free the port")

	conf := []string{
		"ListenAddress 127.0.0.1",
		"Port " + strconv.Itoa(srv.Port),
		"HostKey " + filepath.Join(dir, "host_ed25519"),
		"PidFile none",
		"UsePAM yes",
		"PermitRootLogin no",
		"AllowUsers " + User,
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
	// The first occurrence of a keyword wins in sshd_config, so extra options go first.
	conf = append(extra, conf...)
	cfgPath := filepath.Join(dir, "sshd_config")
	require.NoError(tb, os.WriteFile(cfgPath, []byte(strings.Join(conf, "\n")+"\n"), 0o600), "write sshd_config")
	cmd := exec.Command(Path, "-D", "-e", "-f", cfgPath)
	stderr, err := cmd.StderrPipe()
	require.NoError(tb, err, "sshd stderr pipe")
	require.NoError(tb, cmd.Start(), "start sshd")
	srv.pid = cmd.Process.Pid
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			srv.mu.Lock()
			srv.lines = append(srv.lines, sc.Text())
			srv.cond.Broadcast()
			srv.mu.Unlock()
		}
		srv.mu.Lock()
		srv.ended = true
		srv.cond.Broadcast()
		srv.mu.Unlock()
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-readerDone
		_ = cmd.Wait()
		if tb.Failed() {
			tb.Logf("sshd log:\n%s", strings.Join(srv.Lines(), "\n"))
		}
	})
	if !srv.WaitFor(10*time.Second, func(lines []string) bool { return CountLines(lines, "Server listening on") > 0 }) {
		require.FailNow(tb, "sshd did not report listening within 10s", strings.Join(srv.Lines(), "\n"))
	}
	return srv
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// HostKeyLine returns the host key in authorized_keys form, as a client pins it.
func (s *Server) HostKeyLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey)))
}

// CPUTime returns the CPU time (user and system) sshd has used so far: the listener's own, that
// of every connection process still running (found through /proc's children lists), and that of
// every one that has ended (the kernel adds a reaped child's time to its parent's).
func (s *Server) CPUTime() (time.Duration, error) {
	ticks, err := treeTicks(s.pid)
	if err != nil {
		return 0, fmt.Errorf("read sshd's CPU time: %w", err)
	}
	return time.Duration(ticks) * (time.Second / 100), nil
}

// treeTicks sums utime, stime, cutime and cstime (clock ticks, 100 a second) of pid and of its
// live descendants; a process that ends while it is read counts through its parent's cutime.
func treeTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name (which may hold spaces) start at state, field 3;
	// utime, stime, cutime and cstime are fields 14 to 17.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 15 {
		return 0, fmt.Errorf("unexpected /proc stat %q", b)
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		kids, err := os.ReadFile(t)
		if err != nil {
			continue // the task ended
		}
		for _, k := range strings.Fields(string(kids)) {
			child, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			if n, err := treeTicks(child); err == nil {
				ticks += n
			}
		}
	}
	return ticks, nil
}

// Lines returns sshd's log so far.
func (s *Server) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// Count returns how many log lines so far contain substr, e.g. "Connection from" (one per
// TCP connection) or "Accepted password for" (one per password login).
func (s *Server) Count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return CountLines(s.lines, substr)
}

// WaitFor waits until cond holds for the log (checked on every new line) and reports whether
// it did before timeout or sshd's exit.
func (s *Server) WaitFor(timeout time.Duration, cond func(lines []string) bool) bool {
	expired := false // under s.mu
	timer := time.AfterFunc(timeout, func() {
		s.mu.Lock()
		expired = true
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !cond(s.lines) {
		if s.ended || expired {
			return false
		}
		s.cond.Wait()
	}
	return true
}

// CountLines returns how many of lines contain substr (for WaitFor's conditions).
func CountLines(lines []string, substr string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}
