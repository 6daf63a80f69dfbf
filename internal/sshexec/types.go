// Package sshexec runs one CLI command on one network device over SSH and
// streams its output to a Sink as it arrives.
//
// The device's platform profile (internal/platform) picks the mode: the SSH
// exec channel (linux and alike, with an exit status) or a PTY shell (wait for
// the prompt, disable paging, send the command, strip the echo, normalise
// CRLF, read to the next prompt, answer --More--, detect error markers).
//
// Every run ends in a Result with a Status; the engine never panics on device
// behaviour, never logs, and never puts credentials in errors or messages.
//
//	r, err := sshexec.New(sshexec.Options{})
//	res := r.Run(ctx, target, "show version", sink)
//	if res.Status != sshexec.StatusSucceeded { ... res.Reason, res.Message ... }
package sshexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Status is the outcome of a run. The values are the terminal per-device
// statuses of the public API (queued and running belong to the job layer).
type Status string

// Run outcomes.
const (
	// StatusSucceeded: the command ran and its output was read completely.
	StatusSucceeded Status = "succeeded"
	// StatusFailed: the command ran but failed (see Result.Reason): error
	// marker, non-zero exit status, exec refused, connection lost, output cap.
	StatusFailed Status = "failed"
	// StatusTimedOut: a connect (after TCP), auth, prompt, idle or total
	// timeout expired, or the context's deadline passed.
	StatusTimedOut Status = "timed_out"
	// StatusUnreachable: no TCP connection (refused, no route, TCP connect
	// timeout) or the peer closed before speaking SSH.
	StatusUnreachable Status = "unreachable"
	// StatusAuthFailed: the device rejected the credentials.
	StatusAuthFailed Status = "auth_failed"
	// StatusHostKeyMismatch: the device's host key differs from the pinned
	// one, or no key is pinned and trust-on-first-use is off. Nothing is sent
	// to such a device.
	StatusHostKeyMismatch Status = "host_key_mismatch"
	// StatusCancelled: the caller's context was cancelled (not a deadline).
	StatusCancelled Status = "cancelled"
)

// Reason refines a Status, mostly StatusFailed; it is empty on success.
type Reason string

// Reasons.
const (
	ReasonCommandError    Reason = "command_error"    // a platform error marker in the output
	ReasonExitStatus      Reason = "exit_status"      // exec: non-zero exit status
	ReasonExecUnsupported Reason = "exec_unsupported" // exec channel refused
	ReasonShellRefused    Reason = "shell_refused"    // PTY or shell request refused
	ReasonDisconnected    Reason = "disconnected"     // connection lost before the command finished
	ReasonOutputCap       Reason = "output_cap"       // output exceeded Options.MaxOutputBytes (Truncated is set)
	ReasonSinkError       Reason = "sink_error"       // the Sink returned an error
	ReasonInvalidTarget   Reason = "invalid_target"   // bad Target or command (unknown platform, bad key, empty command)
	ReasonHandshake       Reason = "handshake"        // SSH protocol failure, e.g. no common algorithm
	ReasonRefused         Reason = "connection_refused"
	ReasonNetwork         Reason = "network"         // other dial error
	ReasonClosedEarly     Reason = "closed_early"    // peer closed before the SSH banner
	ReasonConnectTimeout  Reason = "connect_timeout" // TCP connect did not complete (unreachable)
	ReasonBannerTimeout   Reason = "banner_timeout"  // TCP up but no SSH key exchange in time (timed_out)
	ReasonAuthTimeout     Reason = "auth_timeout"
	ReasonPromptTimeout   Reason = "prompt_timeout"
	ReasonIdleTimeout     Reason = "idle_timeout"
	ReasonTotalTimeout    Reason = "total_timeout"
	ReasonDeadline        Reason = "deadline" // the caller's context deadline
	ReasonCancelled       Reason = "cancelled"
	ReasonHostKeyChanged  Reason = "host_key_changed"
	ReasonHostKeyUnknown  Reason = "host_key_unknown"
	ReasonHostKeyPin      Reason = "host_key_pin_failed" // the learned key could not be pinned (nothing was sent)
	ReasonAuthRejected    Reason = "auth_rejected"
	ReasonAuthPrompt      Reason = "auth_prompt_refused" // keyboard-interactive asked for something other than the password

	// ReasonPromptUnanswered: a command's output stopped at a question that none of its
	// Prompts answers (timed_out; Message quotes the question).
	ReasonPromptUnanswered Reason = "prompt_unanswered"
	// ReasonEnableFailed: the device refused Target.EnableSecret (auth_failed).
	ReasonEnableFailed Reason = "enable_failed"
	// ReasonInvocationDeadline: the caller's context ended with ErrInvocationDeadline as its
	// cause: the invoking process (a Lambda) runs out of time, not the run's own timeout.
	ReasonInvocationDeadline Reason = "invocation_deadline"
	// ReasonJumpHostFailed: a jump host could not be reached, refused the credentials or the
	// forward, or stopped answering (StatusUnreachable, Result.JumpHostID names it).
	ReasonJumpHostFailed Reason = "jump_host_failed"
	// ReasonJumpHostKeyMismatch: a jump host's key differs from the pinned one, or none is pinned
	// and trust-on-first-use is off (StatusHostKeyMismatch, Result.JumpHostID names it). Nothing
	// was sent through it.
	ReasonJumpHostKeyMismatch Reason = "jump_host_key_mismatch"
)

// AuthMethod names how the engine authenticates.
type AuthMethod string

// Authentication methods.
const (
	// AuthPassword offers "password" and, with the same secret,
	// "keyboard-interactive" (many network OSes only offer the latter).
	AuthPassword AuthMethod = "password"
	// AuthKeyboardInteractive offers "keyboard-interactive" first, answering
	// hidden password prompts with the password and echoed ones with the user
	// name (any other prompt ends authentication), then "password".
	AuthKeyboardInteractive AuthMethod = "keyboard-interactive"
	// AuthPublicKey authenticates with Target.PrivateKeyPEM (and Passphrase).
	AuthPublicKey AuthMethod = "publickey"
)

// Target is one device and its secret material.
type Target struct {
	Host     string
	Port     int // default 22
	Platform string
	Username string

	AuthMethod    AuthMethod
	Password      string
	PrivateKeyPEM []byte
	Passphrase    string

	// HostKey is the pinned public host key in authorized_keys format
	// ("ssh-ed25519 AAAA..."). When set it is always enforced.
	HostKey string
	// TrustOnFirstUse accepts the host key when HostKey is empty and returns
	// it in Result.LearnedHostKey. With a Pinner the key is pinned during the
	// handshake, before any credential is sent.
	TrustOnFirstUse bool
	// Pinner pins the key a trust-on-first-use connection learns. A run
	// whose key loses to one pinned concurrently by another run ends
	// StatusHostKeyMismatch without authenticating.
	Pinner HostKeyPinner
	// LegacyAlgorithms adds the insecure algorithms older gear needs
	// (diffie-hellman-group14-sha1 / group1, ssh-rsa host keys, CBC ciphers)
	// after the modern defaults.
	LegacyAlgorithms bool
	// EnableSecret, when set, takes a shell platform that has a privileged mode (see
	// platform.Profile.Enable) from its unprivileged prompt into privileged mode before the
	// paging commands. It is never written to the sink, messages or errors.
	EnableSecret string

	// JumpHosts is the ordered chain of jump hosts (at most MaxJumpHosts): the first is dialed
	// over TCP, each next one and finally the device through the one before it (direct-tcpip).
	JumpHosts []Hop
	// Tunnels, when set, shares the jump host connections with the other runs that use it;
	// without it the run opens its own chain and closes it when it ends.
	Tunnels *Tunnels
}

// LogValue logs the target without its secrets: where it is and who logs in.
func (t Target) LogValue() slog.Value {
	return slog.GroupValue(slog.String("host", t.Host), slog.Int("port", t.Port), slog.String("platform", t.Platform),
		slog.String("username", t.Username), slog.Int("jump_hosts", len(t.JumpHosts)))
}

// LogValue logs the hop without its secrets.
func (h Hop) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", h.ID), slog.String("host", h.Host), slog.Int("port", h.Port), slog.String("username", h.Username))
}

// MaxJumpHosts is the longest jump host chain a Target may have.
const MaxJumpHosts = 3

// Hop is one jump host. It is authenticated with its own credentials by the same rules as a
// device: its host key is verified (pinned, or trust-on-first-use with the Pinner) before any
// credential or channel goes through it.
type Hop struct {
	// ID names the hop in results and messages (Result.JumpHostID).
	ID       string
	Host     string
	Port     int // default 22
	Username string

	AuthMethod    AuthMethod
	Password      string
	PrivateKeyPEM []byte
	Passphrase    string

	HostKey          string
	TrustOnFirstUse  bool
	Pinner           HostKeyPinner
	LegacyAlgorithms bool
}

// HostKeyPinner stores a device's (or a jump host's) host key on its first connection.
type HostKeyPinner interface {
	// PinHostKey pins key (authorized_keys form) as the device's host key
	// unless one is pinned already, and returns the pinned key afterwards: key
	// itself, or the one another connection pinned first.
	PinHostKey(ctx context.Context, key string) (string, error)
}

// Options are the engine's limits. Zero fields take the defaults.
type Options struct {
	ConnectTimeout time.Duration // TCP connect + SSH key exchange up to host key verification (default 10s)
	AuthTimeout    time.Duration // user authentication (default 10s)
	PromptTimeout  time.Duration // shell: first prompt and each paging command (default 10s)
	IdleTimeout    time.Duration // no output for this long while a command runs (default 30s)
	TotalTimeout   time.Duration // the whole run (default 5m); a context deadline also bounds it
	MaxOutputBytes int64         // output cap per run (default 1 MiB); beyond it the session is closed
	TerminalWidth  int           // PTY columns (default 511, at least 200)
	// AskTimeout is how long output may rest on a line that looks like a question ("...?",
	// "[confirm]", "Password:") that no Prompt of the command answers before the run ends
	// timed_out / prompt_unanswered (default min(PromptTimeout, 5s), at most IdleTimeout).
	AskTimeout time.Duration

	// KeepaliveInterval is how often a keepalive@openssh.com request goes to every jump host
	// and device connection (default 15s).
	KeepaliveInterval time.Duration
	// KeepaliveMax is how many intervals may pass without an answer before the connection is
	// declared dead (default 3).
	KeepaliveMax int
}

// Default values of Options.
const (
	DefaultConnectTimeout = 10 * time.Second
	DefaultAuthTimeout    = 10 * time.Second
	DefaultPromptTimeout  = 10 * time.Second
	DefaultIdleTimeout    = 30 * time.Second
	DefaultTotalTimeout   = 5 * time.Minute
	DefaultMaxOutputBytes = 1 << 20
	DefaultTerminalWidth  = 511
	DefaultAskTimeout     = 5 * time.Second

	DefaultKeepaliveInterval = 15 * time.Second
	DefaultKeepaliveMax      = 3
)

func (o Options) withDefaults() (Options, error) {
	for _, d := range []struct {
		v    *time.Duration
		def  time.Duration
		name string
	}{
		{&o.ConnectTimeout, DefaultConnectTimeout, "connect"},
		{&o.AuthTimeout, DefaultAuthTimeout, "auth"},
		{&o.PromptTimeout, DefaultPromptTimeout, "prompt"},
		{&o.IdleTimeout, DefaultIdleTimeout, "idle"},
		{&o.TotalTimeout, DefaultTotalTimeout, "total"},
	} {
		if *d.v < 0 {
			return o, fmt.Errorf("%s timeout is negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.AskTimeout < 0 {
		return o, errors.New("ask timeout is negative")
	}
	if o.AskTimeout == 0 {
		o.AskTimeout = min(o.PromptTimeout, DefaultAskTimeout)
	}
	o.AskTimeout = min(o.AskTimeout, o.IdleTimeout)
	if o.MaxOutputBytes < 0 {
		return o, errors.New("output cap is negative")
	}
	if o.MaxOutputBytes == 0 {
		o.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if o.KeepaliveInterval < 0 {
		return o, errors.New("keepalive interval is negative")
	}
	if o.KeepaliveInterval == 0 {
		o.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if o.KeepaliveMax < 0 {
		return o, errors.New("keepalive max is negative")
	}
	if o.KeepaliveMax == 0 {
		o.KeepaliveMax = DefaultKeepaliveMax
	}
	if o.TerminalWidth == 0 {
		o.TerminalWidth = DefaultTerminalWidth
	}
	if o.TerminalWidth < 200 {
		return o, fmt.Errorf("terminal width %d is below 200 columns", o.TerminalWidth)
	}
	return o, nil
}

// Sink receives a run's output in order, as it arrives. Write is called from
// one goroutine at a time and must not retain p. An error from Write stops
// the run (ReasonSinkError). Shell-mode output has the echo and prompts
// removed and "\n" line endings; exec-mode output is passed through as is
// (stdout and stderr interleaved).
type Sink interface {
	Write(p []byte) (n int, err error)
}

// Timings are the durations of a run's phases.
type Timings struct {
	Connect   time.Duration // TCP connect and key exchange up to host key verification
	Auth      time.Duration // user authentication
	FirstByte time.Duration // from sending the command to its first output byte (0 if none)
	Total     time.Duration // the whole run
}

// Result is the outcome of one run.
type Result struct {
	Status Status
	Reason Reason
	// Message is a short human-readable explanation; for ReasonCommandError
	// it is the device's own error line.
	Message string
	// ExitStatus is set when the device reported one (exec mode).
	ExitStatus *int
	// Bytes is the number of output bytes delivered to the sink.
	Bytes int64
	// Truncated is set when the output cap was hit.
	Truncated bool
	// LearnedHostKey is the device's host key in authorized_keys format,
	// set when trust-on-first-use accepted it.
	LearnedHostKey string
	// OfferedHostKey is the key the device presented when it was refused
	// (StatusHostKeyMismatch), in authorized_keys form, so the caller can
	// record it for an operator to accept.
	OfferedHostKey string
	// JumpHostID is the ID of the jump host that failed (ReasonJumpHostFailed) or whose key was
	// refused (ReasonJumpHostKeyMismatch; OfferedHostKey is then that hop's key).
	JumpHostID string
	// LearnedHopKeys maps the ID of each jump host whose key trust-on-first-use accepted to
	// that key (authorized_keys form), for the caller to record.
	LearnedHopKeys map[string]string
	Timings        Timings
	// Commands has one entry per command of the sequence that was started, in order
	// (RunSequence; Run has one).
	Commands []CommandResult
	// Err is the underlying error (nil on success), free of secrets.
	Err error
}

var _ Sink = io.Discard

// Sequence limits.
const (
	MaxCommands = 20 // commands per Sequence
	MaxPrompts  = 5  // prompts per Command
)

// ErrInvocationDeadline is the cause a caller gives its context's deadline
// (context.WithDeadlineCause) when that deadline is the end of the invoking
// process rather than a limit of the run: a run it ends is timed_out with
// ReasonInvocationDeadline.
var ErrInvocationDeadline = errors.New("the invocation's deadline passed before the run could finish")

// Prompt answers one question a command asks.
type Prompt struct {
	// Expect is matched against the current last, unterminated output line: a
	// literal that the line ends with (trailing spaces ignored), or with Regex an
	// regular expression that must match the whole line (it is anchored).
	Expect string
	Regex  bool
	// Answer is sent followed by "\n". Each Prompt answers at most once.
	Answer string
	// Secret answers never appear in output, messages or errors; a device
	// echoing one has it removed from the output.
	Secret bool
}

// Command is one command of a Sequence: Text is one non-empty line, Prompts
// (at most MaxPrompts) answer the questions it asks.
type Command struct {
	Text    string
	Prompts []Prompt
}

// Sequence is the commands of one run, sent in order on one SSH session.
type Sequence struct {
	// Commands holds 1 to MaxCommands commands.
	Commands []Command
	// StopOnError ends the run at the first command that fails; later commands
	// are not sent. Without it every command runs.
	StopOnError bool
	// Timeout, when positive, replaces Options.TotalTimeout for this run (larger
	// or smaller); the context's deadline still bounds it.
	Timeout time.Duration
}

// SequenceSink is a Sink that is told where each command's output starts:
// everything written after StartCommand(i) belongs to command i (0-based). An
// error from StartCommand stops the run (ReasonSinkError).
type SequenceSink interface {
	Sink
	StartCommand(i int) error
}

// CommandResult is the outcome of one command of a sequence. A run-level
// failure (timeout, lost connection, output cap) is also the outcome of the
// command it interrupted.
type CommandResult struct {
	Status     Status
	Reason     Reason
	Message    string
	ExitStatus *int
	// Bytes is the number of output bytes of this command delivered to the sink.
	Bytes int64
}
