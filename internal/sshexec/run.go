package sshexec

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/platform"
)

// Runner runs commands on devices. It is safe for concurrent use; each Run
// uses its own connection.
type Runner struct {
	opts Options
}

// New returns a Runner with opts (zero fields take the defaults).
func New(opts Options) (*Runner, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("sshexec options: %w", err)
	}
	return &Runner{opts: o}, nil
}

// Options returns the effective options.
func (r *Runner) Options() Options { return r.opts }

// Run connects to t, runs command and streams its output to sink (nil
// discards it). It returns when the run has ended and its connection and
// goroutines are gone. Cancelling ctx ends the run at once with
// StatusCancelled; a ctx deadline ends it with StatusTimedOut. It is
// RunSequence with one command and no prompts.
func (r *Runner) Run(ctx context.Context, t Target, command string, sink Sink) Result {
	if sink == nil {
		sink = io.Discard
	}
	return r.RunSequence(ctx, t, Sequence{Commands: []Command{{Text: command}}}, plainSink{sink})
}

// abortCause is why a run was stopped from outside its reading loop.
type abortCause struct {
	status  Status
	reason  Reason
	message string
}

func (c *abortCause) Error() string { return c.message }

// run is the state of one RunSequence call.
type run struct {
	opts  Options
	t     Target
	seq   Sequence
	sink  SequenceSink
	prof  platform.Profile
	start time.Time
	out   output
	// hostKeyAlgos are the host key algorithms offered, to recognise their negotiation failing.
	hostKeyAlgos []string
	// ctx bounds the run; the host key callback pins with it.
	ctx context.Context
	// peer names the other end in messages: "device", or "jump host" for a hop's connection.
	peer string

	mu         sync.Mutex
	conn       net.Conn
	cause      *abortCause
	timer      *time.Timer
	idle       bool
	hostKeyErr *abortCause
	hostKeyAt  time.Time
	authTried  bool
	learnedKey string
	offeredKey string
	sentAt     time.Time

	// promptRefused is the keyboard-interactive question the run would not answer (under mu).
	promptRefused *promptRefusedError

	// started counts the commands begun, results holds the ended ones' outcomes and cmdMark
	// the output bytes before the current command (all used by the run's goroutine only).
	started int
	results []CommandResult
	cmdMark int64
}

// abort records the first cause and closes the connection, which unblocks
// every read and write of the run.
func (r *run) abort(c *abortCause) {
	r.mu.Lock()
	if r.cause == nil {
		r.cause = c
	}
	conn := r.conn
	r.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

func (r *run) getCause() *abortCause {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cause
}

// setConn installs the connection; it reports false when the run was
// aborted already (the connection is then closed).
func (r *run) setConn(c net.Conn) bool {
	r.mu.Lock()
	r.conn = c
	aborted := r.cause != nil
	r.mu.Unlock()
	if aborted {
		_ = c.Close()
	}
	return !aborted
}

// phase arms the phase timer: when d passes, the run is aborted with c. Any
// previous phase timer is stopped.
func (r *run) phase(d time.Duration, c *abortCause, idle bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
	}
	r.idle = idle
	r.timer = time.AfterFunc(d, func() { r.abort(c) })
}

func (r *run) stopPhase() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.idle = false
}

// holdIdle stops the idle timer while output is handed to the sink: a slow sink (a database
// write) is not the device going quiet. touch re-arms it.
func (r *run) holdIdle() {
	r.mu.Lock()
	if r.idle && r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
}

// touch restarts the idle timer after output arrived.
func (r *run) touch() {
	r.mu.Lock()
	if r.idle && r.timer != nil {
		r.timer.Reset(r.opts.IdleTimeout)
	}
	r.mu.Unlock()
}

func fail(status Status, reason Reason, msg string, err error) Result {
	if err == nil {
		err = errors.New(msg)
	}
	return Result{Status: status, Reason: reason, Message: msg, Err: err}
}

func fromCause(c *abortCause) Result {
	return Result{Status: c.status, Reason: c.reason, Message: c.message, Err: c}
}

func (r *run) do(parent context.Context) Result {
	t := r.t
	prof, ok := platform.Lookup(t.Platform)
	if !ok {
		return fail(StatusFailed, ReasonInvalidTarget, fmt.Sprintf("unknown platform %q", t.Platform), nil)
	}
	r.prof = prof
	if err := validateSequence(r.seq); err != nil {
		return fail(StatusFailed, ReasonInvalidTarget, err.Error(), err)
	}
	if t.Host == "" {
		return fail(StatusFailed, ReasonInvalidTarget, "target has no host", nil)
	}
	if err := checkJumpHosts(t.JumpHosts); err != nil {
		return fail(StatusFailed, ReasonInvalidTarget, err.Error(), err)
	}
	port := t.Port
	if port == 0 {
		port = 22
	}
	cfg, err := r.clientConfig()
	if err != nil {
		return fail(StatusFailed, ReasonInvalidTarget, err.Error(), err)
	}

	total := r.opts.TotalTimeout
	if r.seq.Timeout > 0 {
		total = r.seq.Timeout
	}
	ctx, cancel := context.WithTimeout(parent, total)
	defer cancel()
	r.ctx = ctx
	stopWatch := context.AfterFunc(ctx, func() { r.abort(ctxCause(parent)) })
	defer stopWatch()
	defer r.stopPhase()

	addr := net.JoinHostPort(t.Host, strconv.Itoa(port))
	connectStart := time.Now()
	var conn net.Conn
	var fres Result
	var ch *chain
	if len(t.JumpHosts) == 0 {
		conn, fres = r.dialTCP(ctx, addr)
	} else {
		ch, fres = openChain(ctx, r.opts, t)
		defer ch.close()
		if fres.Status == "" {
			conn, fres = ch.dial(ctx, r.opts.ConnectTimeout, addr)
		}
	}
	if fres.Status != "" {
		if c := r.getCause(); c != nil {
			fres = fromCause(c)
		} else if ctx.Err() != nil {
			fres = fromCause(ctxCause(parent))
		}
		fres.LearnedHopKeys = ch.learnedKeys()
		return fres
	}
	client, hres := r.handshake(conn, addr, cfg, time.Now())
	if client == nil {
		hres.LearnedHopKeys = ch.learnedKeys()
		return ch.blame(hres)
	}
	defer func() {
		_ = client.Close()
		_ = client.Wait()
	}()
	stopKeepalive := keepalive(client, r.opts, r.abort, "device")
	defer stopKeepalive()
	stopHopWatch := ch.watch(r.abort)
	defer stopHopWatch()
	authDone := time.Now()
	res := Result{LearnedHostKey: r.learnedKey}
	res.Timings.Connect = r.hostKeyAt.Sub(connectStart)
	res.Timings.Auth = authDone.Sub(r.hostKeyAt)

	var out Result
	if prof.Mode == platform.ModeExec {
		out = r.runExec(client)
	} else {
		out = r.runShell(client)
	}
	out.LearnedHostKey = res.LearnedHostKey
	out.LearnedHopKeys = ch.learnedKeys()
	out.Timings = res.Timings
	return ch.blame(out)
}

// dialTCP opens the TCP connection to addr within the connect timeout and installs it as the
// run's connection.
func (r *run) dialTCP(ctx context.Context, addr string) (net.Conn, Result) {
	dialer := net.Dialer{Timeout: r.opts.ConnectTimeout}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		if c := r.getCause(); c != nil {
			return nil, fromCause(c)
		}
		return nil, classifyDial(addr, err)
	}
	return conn, Result{}
}

// handshake runs the SSH handshake on conn: key exchange and host key verification within what
// is left of the connect timeout counted from start, then authentication within the auth
// timeout. On failure the client is nil and the Result says why.
func (r *run) handshake(conn net.Conn, addr string, cfg *ssh.ClientConfig, start time.Time) (*ssh.Client, Result) {
	if !r.setConn(conn) {
		return nil, fromCause(r.getCause())
	}
	remaining := r.opts.ConnectTimeout - time.Since(start)
	r.phase(max(remaining, time.Millisecond), &abortCause{StatusTimedOut, ReasonBannerTimeout,
		fmt.Sprintf("no SSH key exchange with %s within the connect timeout (%s)", addr, r.opts.ConnectTimeout)}, false)
	c, chans, reqs, err := ssh.NewClientConn(newReadAhead(conn), addr, cfg)
	r.stopPhase()
	if err != nil {
		_ = conn.Close()
		return nil, r.classifyHandshake(addr, err)
	}
	return ssh.NewClient(c, chans, reqs), Result{}
}

// ctxCause maps the end of the run's context to a cause: the parent's
// cancellation, the parent's deadline, or the total timeout.
func ctxCause(parent context.Context) *abortCause {
	switch parent.Err() {
	case context.Canceled:
		return &abortCause{StatusCancelled, ReasonCancelled, "run cancelled"}
	case context.DeadlineExceeded:
		if errors.Is(context.Cause(parent), ErrInvocationDeadline) {
			return &abortCause{StatusTimedOut, ReasonInvocationDeadline, ErrInvocationDeadline.Error()}
		}
		return &abortCause{StatusTimedOut, ReasonDeadline, "context deadline exceeded"}
	}
	return &abortCause{StatusTimedOut, ReasonTotalTimeout, "total timeout exceeded"}
}

func classifyDial(addr string, err error) Result {
	wrapped := fmt.Errorf("dial %s: %w", addr, err)
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fail(StatusUnreachable, ReasonRefused, "connection refused by "+addr, wrapped)
	case errors.As(err, &ne) && ne.Timeout():
		return fail(StatusUnreachable, ReasonConnectTimeout, "TCP connect to "+addr+" timed out", wrapped)
	}
	return fail(StatusUnreachable, ReasonNetwork, wrapped.Error(), wrapped)
}

func (r *run) classifyHandshake(addr string, err error) Result {
	wrapped := fmt.Errorf("ssh handshake with %s: %w", addr, err)
	if c := r.getCause(); c != nil {
		return fromCause(c)
	}
	r.mu.Lock()
	hk, verified, tried, offered := r.hostKeyErr, !r.hostKeyAt.IsZero(), r.authTried, r.offeredKey
	r.mu.Unlock()
	if hk != nil {
		return Result{Status: hk.status, Reason: hk.reason, Message: hk.message, OfferedHostKey: offered,
			Err: fmt.Errorf("ssh handshake with %s: %w", addr, hk)}
	}
	var algo *ssh.AlgorithmNegotiationError
	if r.t.HostKey != "" && errors.As(err, &algo) && slices.Equal(algo.SupportedAlgorithms, r.hostKeyAlgos) {
		// The device has no key of the pinned type any more: it changed.
		return fail(StatusHostKeyMismatch, ReasonHostKeyChanged, "host key mismatch: "+r.peer+" offers no host key of the pinned type", wrapped)
	}
	if prompt := r.refusedPrompt(); prompt != nil {
		return fail(StatusAuthFailed, ReasonAuthPrompt, prompt.Error(), wrapped)
	}
	if verified {
		// After the host key, only authentication remains: the device refused every method we
		// offer (nextAuth's error), or ended the connection once it had our credentials (OpenSSH
		// disconnects after MaxAuthTries).
		var refused *authRefusedError
		if errors.As(err, &refused) || tried {
			return fail(StatusAuthFailed, ReasonAuthRejected, "authentication failed for user "+strconv.Quote(r.t.Username), wrapped)
		}
		return fail(StatusFailed, ReasonHandshake, wrapped.Error(), wrapped)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		return fail(StatusUnreachable, ReasonClosedEarly, addr+" closed the connection before the SSH handshake completed", wrapped)
	}
	return fail(StatusFailed, ReasonHandshake, wrapped.Error(), wrapped)
}

// clientConfig builds the SSH client configuration: algorithms, host key
// verification and authentication.
func (r *run) clientConfig() (*ssh.ClientConfig, error) {
	t := r.t
	var pinned ssh.PublicKey
	if strings.TrimSpace(t.HostKey) != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(t.HostKey))
		if err != nil {
			return nil, fmt.Errorf("parse pinned host key: %w", err)
		}
		pinned = k
	}
	auth, err := r.authMethods()
	if err != nil {
		return nil, err
	}
	modern, legacy := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	cfg := &ssh.ClientConfig{
		User:            t.Username,
		AuthCallback:    nextAuth(auth),
		HostKeyCallback: r.verifyHostKey(pinned),
		Timeout:         0, // the run's phase timers bound the handshake
	}
	cfg.KeyExchanges = modern.KeyExchanges
	cfg.Ciphers = modern.Ciphers
	cfg.MACs = modern.MACs
	hostKeyAlgos := modern.HostKeys
	if t.LegacyAlgorithms {
		cfg.KeyExchanges = append(slices.Clone(modern.KeyExchanges), legacy.KeyExchanges...)
		cfg.Ciphers = append(slices.Clone(modern.Ciphers), legacy.Ciphers...)
		cfg.MACs = append(slices.Clone(modern.MACs), legacy.MACs...)
		hostKeyAlgos = append(slices.Clone(modern.HostKeys), legacy.HostKeys...)
	}
	if pinned != nil {
		// Ask for the pinned key's type so a server with several host keys
		// presents the one we know.
		hostKeyAlgos = algorithmsFor(pinned.Type(), t.LegacyAlgorithms)
	}
	cfg.HostKeyAlgorithms = hostKeyAlgos
	r.hostKeyAlgos = hostKeyAlgos
	return cfg, nil
}

func algorithmsFor(keyType string, legacy bool) []string {
	if keyType == ssh.KeyAlgoRSA {
		algos := []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
		if legacy {
			algos = append(algos, ssh.KeyAlgoRSA)
		}
		return algos
	}
	return []string{keyType}
}

func (r *run) verifyHostKey(pinned ssh.PublicKey) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		offered := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		if pinned == nil && r.t.TrustOnFirstUse && r.t.Pinner != nil {
			// The key is pinned before authentication, so no credential ever goes to a key
			// that lost the race to another first connection. The store is called without
			// r.mu held: the phase timer's abort needs it meanwhile.
			winner, err := r.t.Pinner.PinHostKey(r.ctx, offered)
			if err != nil {
				return r.refuseHostKey(&abortCause{StatusFailed, ReasonHostKeyPin, fmt.Sprintf(
					"could not pin the host key learned on first use (nothing was sent): %v", err)}, "")
			}
			if wk, _, _, _, perr := ssh.ParseAuthorizedKey([]byte(winner)); perr != nil || !bytes.Equal(wk.Marshal(), key.Marshal()) {
				fp := "an unreadable key"
				if perr == nil {
					fp = wk.Type() + " " + ssh.FingerprintSHA256(wk)
				}
				return r.refuseHostKey(&abortCause{StatusHostKeyMismatch, ReasonHostKeyChanged, fmt.Sprintf(
					"host key mismatch: %s presented %s %s, another connection pinned %s first",
					r.peer, key.Type(), ssh.FingerprintSHA256(key), fp)}, offered)
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.hostKeyAt = time.Now()
		switch {
		case pinned != nil && !bytes.Equal(key.Marshal(), pinned.Marshal()):
			r.hostKeyErr = &abortCause{StatusHostKeyMismatch, ReasonHostKeyChanged, fmt.Sprintf(
				"host key mismatch: %s presented %s %s, pinned %s %s",
				r.peer, key.Type(), ssh.FingerprintSHA256(key), pinned.Type(), ssh.FingerprintSHA256(pinned))}
			r.offeredKey = offered
			return r.hostKeyErr
		case pinned == nil && !r.t.TrustOnFirstUse:
			r.hostKeyErr = &abortCause{StatusHostKeyMismatch, ReasonHostKeyUnknown, fmt.Sprintf(
				"no pinned host key and trust-on-first-use is off (%s presented %s %s)", r.peer, key.Type(), ssh.FingerprintSHA256(key))}
			r.offeredKey = offered
			return r.hostKeyErr
		case pinned == nil:
			r.learnedKey = offered
		}
		// Key exchange done: the auth phase starts.
		if r.timer != nil {
			r.timer.Stop()
		}
		c := &abortCause{StatusTimedOut, ReasonAuthTimeout, fmt.Sprintf("authentication did not complete within %s", r.opts.AuthTimeout)}
		r.timer = time.AfterFunc(r.opts.AuthTimeout, func() { r.abort(c) })
		return nil
	}
}

// refuseHostKey ends the handshake with c, recording offered as the key the device presented.
func (r *run) refuseHostKey(c *abortCause, offered string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hostKeyAt = time.Now()
	r.hostKeyErr = c
	r.offeredKey = offered
	return c
}

// authMethod is one authentication method with its name on the wire ("password", ...).
type authMethod struct {
	name   string
	method ssh.AuthMethod
}

// authRefusedError is the handshake's error when the device refused every authentication
// method the target offers. x/crypto/ssh reports that case only as text, so nextAuth, which
// picks the methods, returns this error instead.
type authRefusedError struct {
	tried, allowed []string
}

func (e *authRefusedError) Error() string {
	return fmt.Sprintf("device refused authentication: tried %v, device allows %v", e.tried, e.allowed)
}

// nextAuth picks the next method as x/crypto/ssh does (the first of ours not yet refused that
// the device allows) and returns *authRefusedError when none remains.
func nextAuth(methods []authMethod) ssh.ClientAuthCallback {
	return func(ctx *ssh.ClientAuthContext) (ssh.AuthMethod, error) {
		for _, m := range methods {
			if !slices.Contains(ctx.TriedMethods, m.name) && slices.Contains(ctx.AllowedMethods, m.name) {
				return m.method, nil
			}
		}
		return nil, &authRefusedError{tried: ctx.TriedMethods, allowed: ctx.AllowedMethods}
	}
}

func (r *run) markAuthTried() {
	r.mu.Lock()
	r.authTried = true
	r.mu.Unlock()
}

func (r *run) authMethods() ([]authMethod, error) {
	t := r.t
	password := authMethod{"password", ssh.PasswordCallback(func() (string, error) {
		r.markAuthTried()
		return t.Password, nil
	})}
	kbd := authMethod{"keyboard-interactive", ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
		r.markAuthTried()
		answers, err := answerPrompts(t, questions, echos)
		if err != nil {
			r.refusePrompt(err)
		}
		return answers, err
	})}
	switch t.AuthMethod {
	case AuthPassword, "":
		if t.Password == "" {
			return nil, errors.New("password auth without a password")
		}
		return []authMethod{password, kbd}, nil
	case AuthKeyboardInteractive:
		if t.Password == "" {
			return nil, errors.New("keyboard-interactive auth without a password")
		}
		return []authMethod{kbd, password}, nil
	case AuthPublicKey:
		if len(t.PrivateKeyPEM) == 0 {
			return nil, errors.New("publickey auth without a private key")
		}
		var signer ssh.Signer
		var err error
		if t.Passphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(t.PrivateKeyPEM, []byte(t.Passphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(t.PrivateKeyPEM)
		}
		if err != nil {
			return nil, fmt.Errorf("parse private key: %w", err)
		}
		return []authMethod{{"publickey", ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			r.markAuthTried()
			return []ssh.Signer{signer}, nil
		})}}, nil
	}
	return nil, fmt.Errorf("unknown auth method %q", t.AuthMethod)
}

// output counts, caps and forwards output to the sink.
type output struct {
	r    *run
	sink Sink
	max  int64

	mu        sync.Mutex
	n         int64
	truncated bool
	failed    bool
	firstByte time.Time
	secrets   secretFilter
}

var errOutputCap = errors.New("output cap reached")

func (o *output) write(p []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writeLocked(o.secrets.filter(p))
}

// setSecrets makes the output replace these strings by redactedMark from now on.
func (o *output) setSecrets(secrets []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.secrets.set(secrets)
}

// release passes on what the secret filter holds back; it is called where a
// command's output ends.
func (o *output) release() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.writeLocked(o.secrets.flush())
}

func (o *output) writeLocked(p []byte) error {
	if o.truncated || o.failed {
		return errOutputCap
	}
	if len(p) == 0 {
		return nil
	}
	if o.firstByte.IsZero() {
		o.firstByte = time.Now()
	}
	over := false
	if room := o.max - o.n; int64(len(p)) > room {
		p = p[:room]
		over = true
	}
	if len(p) > 0 {
		o.r.holdIdle()
		n, err := o.sink.Write(p)
		o.r.touch()
		o.n += int64(n)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		if err != nil {
			o.failed = true
			o.r.abort(&abortCause{StatusFailed, ReasonSinkError, "output sink: " + err.Error()})
			return err
		}
	}
	if over {
		o.truncated = true
		o.r.abort(&abortCause{StatusFailed, ReasonOutputCap, fmt.Sprintf("output exceeded the cap of %d bytes; truncated", o.max)})
		return errOutputCap
	}
	return nil
}

func (o *output) bytes() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}

func (o *output) isTruncated() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.truncated
}

func (o *output) firstByteAt() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.firstByte
}

// execWriter feeds exec-mode stdout and stderr into the output and answers
// the command's prompts through stdin.
type execWriter struct {
	r *run
	e *execAsk
}

// execAsk is the prompt state of one exec command; stdout and stderr are
// copied by two goroutines, so it has its own lock.
type execAsk struct {
	mu     sync.Mutex
	ask    *asker
	stdin  io.Writer
	tail   []byte
	asking bool
	err    error
}

func (w execWriter) Write(p []byte) (int, error) {
	w.r.touch()
	if err := w.r.out.write(p); err != nil {
		return 0, err
	}
	w.e.seen(w.r, p)
	return len(p), nil
}

// seen updates the last output line with p and answers or times the question
// it may be.
func (e *execAsk) seen(r *run, p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.asking {
		e.asking = false
		r.phase(r.opts.IdleTimeout, r.idleCause(), true)
	}
	if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
		e.tail = append(e.tail[:0], p[i+1:]...)
	} else {
		e.tail = append(e.tail, p...)
	}
	if len(e.tail) > maxPending {
		e.tail = e.tail[len(e.tail)-1024:]
	}
	if len(e.tail) == 0 {
		return
	}
	tail := string(cleanLine(nil, e.tail))
	an, _ := e.ask.match(tail)
	switch {
	case an != nil && e.stdin != nil:
		e.tail = e.tail[:0]
		if _, err := io.WriteString(e.stdin, an.text+"\n"); err != nil && e.err == nil {
			e.err = err
		}
	case looksLikeQuestion(tail):
		e.asking = true
		r.phase(r.opts.AskTimeout, r.unansweredCause(tail), false)
	}
}

// runExec runs the sequence on one connection, one exec channel per command.
func (r *run) runExec(client *ssh.Client) Result {
	for i := range r.seq.Commands {
		if err := r.startCommand(i); err != nil {
			return fromCause(r.getCause())
		}
		cr, runErr := r.execCommand(client, i)
		if runErr != nil {
			return *runErr
		}
		if !r.endCommand(cr) {
			break
		}
	}
	return r.sequenceResult()
}

// execCommand runs command i on its own exec channel. A failure that ends the
// run is returned as a Result; otherwise the command's outcome.
func (r *run) execCommand(client *ssh.Client, i int) (CommandResult, *Result) {
	cmd := r.seq.Commands[i]
	runErr := func(res Result) (CommandResult, *Result) {
		if c := r.getCause(); c != nil {
			res = fromCause(c)
		}
		return CommandResult{}, &res
	}
	sess, err := client.NewSession()
	if err != nil {
		return runErr(fail(StatusFailed, ReasonShellRefused, "device refused a session channel", fmt.Errorf("open session: %w", err)))
	}
	defer sess.Close()
	e := &execAsk{}
	if len(cmd.Prompts) > 0 {
		e.ask = newAsker(cmd.Prompts)
		if e.stdin, err = sess.StdinPipe(); err != nil {
			return runErr(fail(StatusFailed, ReasonShellRefused, "stdin", fmt.Errorf("stdin pipe: %w", err)))
		}
	}
	w := execWriter{r, e}
	sess.Stdout = w
	sess.Stderr = w
	r.phase(r.opts.IdleTimeout, r.idleCause(), true)
	if r.sentAt.IsZero() {
		r.sentAt = time.Now()
	}
	if err := sess.Start(cmd.Text); err != nil {
		return runErr(fail(StatusFailed, ReasonExecUnsupported, "device refused the exec channel", fmt.Errorf("exec: %w", err)))
	}
	err = sess.Wait()
	r.stopPhase()
	if c := r.getCause(); c != nil {
		return runErr(fromCause(c))
	}
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		zero := 0
		return CommandResult{Status: StatusSucceeded, ExitStatus: &zero}, nil
	case errors.As(err, &exitErr):
		code := exitErr.ExitStatus()
		msg := fmt.Sprintf("exit status %d", code)
		if exitErr.Signal() != "" {
			msg = "killed by signal " + exitErr.Signal()
		}
		return CommandResult{Status: StatusFailed, Reason: ReasonExitStatus, Message: msg, ExitStatus: &code}, nil
	case errors.As(err, &missing):
		if r.prof.ExecExitStatus {
			return runErr(fail(StatusFailed, ReasonDisconnected, "session ended without an exit status (connection lost?)", fmt.Errorf("exec: %w", err)))
		}
		return CommandResult{Status: StatusSucceeded}, nil
	}
	return runErr(fail(StatusFailed, ReasonDisconnected, "connection lost while the command ran", fmt.Errorf("exec: %w", err)))
}

func (r *run) idleCause() *abortCause {
	return &abortCause{StatusTimedOut, ReasonIdleTimeout, fmt.Sprintf("no output for %s", r.opts.IdleTimeout)}
}

// MinMaskedSecret is the length from which a secret is masked where it occurs in a result's
// texts. A shorter one (1-2 bytes) cannot be: masking every "a" or "1" would wreck the text, and
// leaving it would echo the secret, so a text that contains a shorter secret is withheld whole.
const MinMaskedSecret = 3

// withheldText replaces a message or error that contains a secret shorter than MinMaskedSecret;
// the result's status and reason still say what happened.
const withheldText = "message withheld: it contains text equal to a secret too short to mask (under 3 bytes); the status and reason still apply"

// redact removes the target's secrets from the result's texts: a secret of MinMaskedSecret bytes
// or more is replaced by [redacted] where it occurs, and a text that contains a shorter one is
// withheld whole (the device's own output, echoed into a message, could hold it anywhere).
func redact(res Result, t Target, seq Sequence) Result {
	secrets := []string{t.Password, t.Passphrase, t.EnableSecret}
	for _, h := range t.JumpHosts {
		secrets = append(secrets, h.Password, h.Passphrase)
	}
	for _, c := range seq.Commands {
		for _, p := range c.Prompts {
			if p.Secret {
				secrets = append(secrets, p.Answer)
			}
		}
	}
	// Longest first: a secret inside a longer one (password "cisco", enable secret "cisco123")
	// would otherwise be masked first and leave the longer one's rest ("[redacted]123").
	slices.SortStableFunc(secrets, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	clean := func(s string) string {
		for _, sec := range secrets {
			if sec != "" && len(sec) < MinMaskedSecret && strings.Contains(s, sec) {
				return withheldText
			}
		}
		for _, sec := range secrets {
			if len(sec) >= MinMaskedSecret {
				s = strings.ReplaceAll(s, sec, "[redacted]")
			}
		}
		return s
	}
	res.Message = clean(res.Message)
	for i := range res.Commands {
		res.Commands[i].Message = clean(res.Commands[i].Message)
	}
	if res.Err != nil {
		if msg := res.Err.Error(); clean(msg) != msg {
			res.Err = &redactedError{msg: clean(msg)}
		}
	}
	return res
}

// redactedError replaces an error whose text contained a secret.
type redactedError struct{ msg string }

func (e *redactedError) Error() string { return e.msg }
