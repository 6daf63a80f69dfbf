// Package run is the domain of one command run on one device: its record, its statuses, and how
// its output is cut into ordered chunks while it streams. It imports no AWS SDK.
package run

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/fault"
)

// Status is a run's (and a bulk job device's) state.
type Status string

// Statuses. Queued and Running are transient; the others are terminal.
const (
	Queued          Status = "queued"
	Running         Status = "running"
	Succeeded       Status = "succeeded"
	Failed          Status = "failed"
	TimedOut        Status = "timed_out"
	Unreachable     Status = "unreachable"
	AuthFailed      Status = "auth_failed"
	HostKeyMismatch Status = "host_key_mismatch"
	Cancelled       Status = "cancelled"
)

// Statuses lists every status in display order.
func Statuses() []Status {
	return []Status{Queued, Running, Succeeded, Failed, TimedOut, Unreachable, AuthFailed, HostKeyMismatch, Cancelled}
}

// Terminal reports whether s is final.
func (s Status) Terminal() bool {
	switch s {
	case Succeeded, Failed, TimedOut, Unreachable, AuthFailed, HostKeyMismatch, Cancelled:
		return true
	}
	return false
}

// IsFailure reports whether s counts against a job's max_errors.
func (s Status) IsFailure() bool {
	return s.Terminal() && s != Succeeded && s != Cancelled
}

// Run is one command on one device.
type Run struct {
	ID          string `json:"id"`
	DeviceID    string `json:"device_id"`
	Command     string `json:"command"`
	JobID       string `json:"job_id,omitempty"`
	RequestedBy string `json:"requested_by"`
	Status      Status `json:"status"`
	// Reason refines a failed status (e.g. command_error, exit_status, delivery_failed).
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	Bytes      int64  `json:"bytes"`
	Chunks     int    `json:"chunks"`
	Truncated  bool   `json:"truncated"`
	// OutputDigest identifies the output up to whitespace (see OutputDigest); empty when the
	// command did not run or printed nothing.
	OutputDigest string `json:"output_digest,omitempty"`
	// ContentSHA256 is the SHA-256 of the exact output bytes, in hex; empty when the command did
	// not run or printed nothing.
	ContentSHA256 string `json:"content_sha256,omitempty"`
	// FilteredDigest identifies the output's lines after the platform's noise filters (see
	// FilteredDigest); set on succeeded runs only.
	FilteredDigest string `json:"filtered_digest,omitempty"`
	// Changed says whether the filtered output differs from that of PreviousRunID, the previous
	// successful run of the same command on the same device; nil when there is none or the run
	// did not succeed.
	Changed       *bool      `json:"changed"`
	PreviousRunID string     `json:"previous_run_id,omitempty"`
	Attempt       int        `json:"attempt"`
	CreatedAt     time.Time  `json:"created_at"`
	StartedAt     *time.Time `json:"started_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	Timings       Timings    `json:"timings"`
	// ExpiresAt is when DynamoDB TTL may delete the run (zero: never).
	ExpiresAt time.Time `json:"-"`
	// NoiseLines are the places of the output's noise lines (LineDigest.NoiseLines) as its
	// writer found them, for a store that keeps outputs once (Share); NoiseOK is false when
	// they are not all known. Set when the run finishes; never stored as such.
	NoiseLines []int `json:"-"`
	NoiseOK    bool  `json:"-"`
	// LeaseUntil is when a running attempt's hold on the run ends (zero when not running).
	LeaseUntil time.Time `json:"-"`
	// Listed says the run's batch was listed for the purges before the run was first written
	// (bulk.RunStore.ListRuns), so the store need not list the run by its day itself. Never
	// stored as such.
	Listed bool `json:"-"`
	// Commands has one result per command of the run's sequence that started, set when the run
	// finishes; a run stored before runs kept them has none (Results makes one up).
	Commands []CommandResult `json:"commands,omitempty"`
}

// CommandResult is the outcome of one command of a run's sequence and where its output lies in
// the run's output: Bytes bytes from Offset.
type CommandResult struct {
	Command    string `json:"command"`
	Status     Status `json:"status"`
	Reason     string `json:"reason,omitempty"`
	ExitStatus *int   `json:"exit_status,omitempty"`
	Bytes      int64  `json:"bytes"`
	Offset     int64  `json:"offset"`
}

// Results returns the run's per-command results: its Commands, or for a finished run that has
// none (one stored before runs kept them) one result standing for the whole run when the run got
// as far as its command (Started).
func (r Run) Results() []CommandResult {
	if len(r.Commands) > 0 || !r.Status.Terminal() || !Started(r.Status, r.Reason) || IsSummary(r.Command) {
		// A sequence's summary stands for several commands: its results are its own list,
		// or unknown (an index entry without them).
		return r.Commands
	}
	return []CommandResult{{Command: r.Command, Status: r.Status, Reason: r.Reason, ExitStatus: r.ExitStatus, Bytes: r.Bytes}}
}

// CommandTexts returns the commands r ran (or runs), in order: the texts of its Commands, or its
// one Command when it keeps none.
func (r Run) CommandTexts() []string {
	if len(r.Commands) == 0 {
		return []string{r.Command}
	}
	out := make([]string, len(r.Commands))
	for i, c := range r.Commands {
		out[i] = c.Command
	}
	return out
}

// SameCommands reports whether runs a and b ran the same commands in the same order
// (CommandTexts). A sequence's Command is only its Summary, which two different sequences can
// share ("show run (+1 more)"), so drift compares a run only with one that SameCommands.
func SameCommands(a, b Run) bool { return slices.Equal(a.CommandTexts(), b.CommandTexts()) }

// Summary is the one-line form of a sequence whose first command is first and which has n
// commands: first, plus " (+N more)" when n > 1.
func Summary(first string, n int) string {
	if n <= 1 {
		return first
	}
	return first + " (+" + strconv.Itoa(n-1) + " more)"
}

// IsSummary reports whether command is the Summary of a sequence of several commands.
func IsSummary(command string) bool {
	i := strings.LastIndex(command, " (+")
	if i < 0 || !strings.HasSuffix(command, " more)") {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(command[i+3:], " more)"))
	return err == nil && n > 0
}

// Started reports whether a run that ended with status and reason had sent its command: it
// succeeded, or its reason is one a command's own run ends with (an error marker, an exit
// status, a cut output, a question, a lost session or a timeout while it ran).
func Started(status Status, reason string) bool {
	switch {
	case status == Succeeded:
		return true
	case status == Cancelled:
		return false
	}
	switch reason {
	case "command_error", "exit_status", "output_cap", "prompt_unanswered", "disconnected", "idle_timeout",
		"total_timeout", "deadline", "invocation_deadline", "sink_error":
		return true
	}
	return false
}

// Timings are a run's phase durations in milliseconds.
type Timings struct {
	ConnectMS   int64 `json:"connect_ms"`
	AuthMS      int64 `json:"auth_ms"`
	FirstByteMS int64 `json:"first_byte_ms"`
	TotalMS     int64 `json:"total_ms"`
}

// Errors of run stores.
var (
	// ErrNotFound means no run has the id (or it has expired).
	ErrNotFound = fault.New(fault.NotFound, "", "no run with this id")
	// ErrFinished means the run already reached a terminal status, so it is not run again. It
	// is a signal between the executor and the store, handled where it arises, so it has no
	// kind: one that reached a caller would be answered and logged as the internal error it is.
	ErrFinished = errors.New("run already finished")
	// ErrLeased means another attempt holds the run and may still be running it: retry later
	// rather than run the device twice at once. A signal like ErrFinished, without a kind.
	ErrLeased = errors.New("run is held by another attempt")
)

// ChunkSize is the most output bytes one stored chunk holds: well under DynamoDB's 400 KB item
// limit, large enough that a 1 MiB output is 16 writes.
const ChunkSize = 64 << 10

// Store keeps runs and their output.
type Store interface {
	// Start records r as running. A run that does not exist is created; a run left running by
	// an attempt that died is taken over (its partial output is deleted, Attempt increases);
	// a terminal run is left alone and ErrFinished returned with the stored run.
	Start(ctx context.Context, r Run) (Run, error)
	// AppendChunk stores output chunk seq (from 0) of a run and adds its size to the device's
	// byte counter, atomically; storing the same chunk twice has no effect.
	AppendChunk(ctx context.Context, r Run, seq int, data []byte) error
	// Finish stores the run's terminal state together with the output's last piece, shorter
	// than ChunkSize (tail may be empty), atomically: the store keeps it in the run's own record.
	// A run that was never started in the store is created finished. ErrFinished when the run is
	// no longer this attempt's.
	Finish(ctx context.Context, r Run, tail []byte) error
	// Get returns one run.
	Get(ctx context.Context, id string) (Run, error)
}

// ChunkWriter is a Sink that cuts streamed output into ChunkSize pieces and stores each when it
// is full, so a run's output is never held whole in memory. The last, partial chunk (Pending) is
// stored by Store.Finish together with the run's terminal state.
type ChunkWriter struct {
	ctx      context.Context
	store    Store
	run      Run
	buf      []byte
	seq      int
	bytes    int64
	digest   digester
	content  hash.Hash
	filtered *LineDigest
	// marks are where each command's output starts, in bytes from the output's start.
	marks []int64
}

// StartCommand marks where command i's output starts (sshexec.SequenceSink).
func (w *ChunkWriter) StartCommand(i int) error {
	for len(w.marks) <= i {
		w.marks = append(w.marks, w.Bytes())
	}
	return nil
}

// CommandSpan returns where command i's output lies: n bytes from offset. Without marks the
// whole output is command 0's.
func (w *ChunkWriter) CommandSpan(i int) (offset, n int64) {
	total := w.Bytes()
	if i >= len(w.marks) {
		if i == 0 {
			return 0, total
		}
		return total, 0
	}
	end := total
	if i+1 < len(w.marks) {
		end = w.marks[i+1]
	}
	return w.marks[i], end - w.marks[i]
}

// NewChunkWriter returns a ChunkWriter for r.
func NewChunkWriter(ctx context.Context, store Store, r Run) *ChunkWriter {
	return &ChunkWriter{ctx: ctx, store: store, run: r, content: sha256.New(), filtered: NewLineDigest(nil)}
}

// FilterNoise makes the filtered digest skip the lines noise says are noise; call it before the
// first Write.
func (w *ChunkWriter) FilterNoise(noise LineFilter) { w.filtered = NewLineDigest(noise) }

// Write buffers p and stores every full chunk.
func (w *ChunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	w.digest.write(p)
	w.content.Write(p)
	w.filtered.Write(p)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, min(ChunkSize, max(len(p), 4096)))
		}
		take := min(ChunkSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:take]...)
		p = p[take:]
		if len(w.buf) == ChunkSize {
			if err := w.flush(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

func (w *ChunkWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := w.store.AppendChunk(w.ctx, w.run, w.seq, w.buf); err != nil {
		return err
	}
	w.seq++
	w.bytes += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// Pending returns the bytes of the partial chunk not stored yet: the output's tail.
func (w *ChunkWriter) Pending() []byte { return w.buf }

// Chunks is the number of chunks, counting a non-empty pending one.
func (w *ChunkWriter) Chunks() int {
	if len(w.buf) > 0 {
		return w.seq + 1
	}
	return w.seq
}

// Bytes is the number of bytes written, stored or pending.
func (w *ChunkWriter) Bytes() int64 { return w.bytes + int64(len(w.buf)) }

// Digest returns the output's digest (see OutputDigest), or "" when nothing was written.
func (w *ChunkWriter) Digest() string {
	if w.Bytes() == 0 {
		return ""
	}
	return w.digest.sum()
}

// ContentSHA256 returns the SHA-256 of the exact bytes written, in hex, or "" when nothing was
// written.
func (w *ChunkWriter) ContentSHA256() string {
	if w.Bytes() == 0 {
		return ""
	}
	return hex.EncodeToString(w.content.Sum(nil))
}

// FilteredDigest returns the digest of the output's lines without noise (see LineDigest).
func (w *ChunkWriter) FilteredDigest() string { return w.filtered.Sum() }

// NoiseLines returns the places of the output's noise lines (see LineDigest.NoiseLines).
func (w *ChunkWriter) NoiseLines() ([]int, bool) { return w.filtered.NoiseLines() }

// OutputDigest returns the first 128 bits of the SHA-256 of output, in hex, after turning every
// run of whitespace into one space and dropping leading and trailing whitespace: outputs that
// differ only in spacing or line endings get the same digest. The UI groups identical outputs
// by it.
func OutputDigest(output []byte) string {
	var d digester
	d.write(output)
	return d.sum()
}

// digester hashes a stream as OutputDigest describes, a piece at a time.
type digester struct {
	h       hash.Hash
	started bool // a non-space byte has been hashed
	space   bool // whitespace seen since the last non-space byte
	out     []byte
}

func (d *digester) write(p []byte) {
	if d.h == nil {
		d.h = sha256.New()
	}
	d.out = d.out[:0]
	for _, c := range p {
		switch c {
		case ' ', '\t', '\n', '\r', '\v', '\f':
			d.space = d.started
		default:
			if d.space {
				d.out = append(d.out, ' ')
				d.space = false
			}
			d.out = append(d.out, c)
			d.started = true
		}
	}
	d.h.Write(d.out)
}

func (d *digester) sum() string {
	if d.h == nil {
		d.h = sha256.New()
	}
	return hex.EncodeToString(d.h.Sum(nil)[:16])
}
