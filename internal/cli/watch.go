package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/netauto/netauto/internal/apiwire"
)

// signalSource delivers interrupts (Ctrl-C); tests and Main use the process's signals.
type signalSource interface {
	Notify() (<-chan os.Signal, func())
}

type osSignals struct{}

func (osSignals) Notify() (<-chan os.Signal, func()) {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt)
	return ch, func() { signal.Stop(ch) }
}

// watcher follows a job until it ends: it polls the job's event log (GET /v1/bulk/{id}/events
// ?since=SEQ) and, when no event arrived, the job itself; it draws a progress bar when asked and
// offers to cancel the job on Ctrl-C.
type watcher struct {
	a     *app
	c     *Client
	jobID string
	// sigs delivers Ctrl-C; nil never does.
	sigs  <-chan os.Signal
	total int
	bar   *progressbar.ProgressBar
	// seq is the last event applied; counts are those of the event with the highest seq.
	seq       int64
	counts    map[string]int
	cancelled bool
	// live is how progress arrived: LiveWebSocket or LivePolling.
	live string
	// ws is the WebSocket API's URL ("" to poll only).
	ws string
}

// newWatcher returns a watcher of job; showBar draws a progress bar on standard error; sigs
// (optional) delivers Ctrl-C.
func (a *app) newWatcher(c *Client, jobID string, total int, showBar bool, sigs <-chan os.Signal) *watcher {
	w := &watcher{a: a, c: c, jobID: jobID, total: total, counts: map[string]int{}, sigs: sigs}
	if showBar && total > 0 {
		w.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(a.io.Err),
			progressbar.OptionSetDescription("starting"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprint(a.io.Err, "\r") }),
		)
	}
	return w
}

// formatCounts is "succeeded 3 · failed 1" over the non-zero counts, in status order.
func formatCounts(counts map[string]int) string {
	var parts []string
	for _, s := range runStatuses {
		if n := counts[s]; n > 0 {
			parts = append(parts, s+" "+strconv.Itoa(n))
		}
	}
	return strings.Join(parts, " · ")
}

func (w *watcher) update(counts map[string]int) {
	if counts == nil {
		return
	}
	w.counts = counts
	if w.bar == nil {
		return
	}
	done := 0
	for s, n := range counts {
		if terminalRun(s) {
			done += n
		}
	}
	_ = w.bar.Set(done)
	w.bar.Describe(formatCounts(counts))
}

// poll applies new events and reports whether the job_done event was among them.
func (w *watcher) poll(ctx context.Context) (bool, bool, error) {
	got := false
	for {
		var page apiwire.EventList
		q := url.Values{"since": {strconv.FormatInt(w.seq, 10)}, "limit": {"1000"}}
		if err := w.c.Do(ctx, "GET", "/bulk/"+url.PathEscape(w.jobID)+"/events", q, nil, "", &page); err != nil {
			return false, got, fmt.Errorf("job %s events: %w", w.jobID, err)
		}
		for _, ev := range page.Items {
			if ev.Seq <= w.seq {
				continue
			}
			w.seq = ev.Seq
			got = true
			w.update(ev.Counts)
			if ev.Type == "job_done" {
				return true, got, nil
			}
		}
		if len(page.Items) < 1000 {
			return false, got, nil
		}
	}
}

// wait follows the job until it ends and returns its final summary. With a WebSocket
// subscription every pushed message triggers a read of the event log at once, and polling only
// backs it up (every few seconds); without one it polls.
func (w *watcher) wait(ctx context.Context) (apiwire.Job, error) {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	kick := w.listen(lctx, w.ws, w.c.Token)
	w.live = LivePolling
	maxInterval := time.Second
	if kick != nil {
		w.live = LiveWebSocket
		maxInterval = 3 * time.Second
	}
	interval := 200 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return apiwire.Job{}, ctx.Err()
		case <-w.sigs:
			if err := w.interrupted(ctx); err != nil {
				return apiwire.Job{}, err
			}
			continue
		case _, ok := <-kick:
			if !ok {
				kick, maxInterval = nil, time.Second // the socket closed: poll from here on
			}
		case <-timer.C:
		}
		done, got, err := w.poll(ctx)
		if err != nil {
			return apiwire.Job{}, err
		}
		if done || !got {
			j, err := w.job(ctx)
			if err != nil {
				return apiwire.Job{}, err
			}
			w.update(j.Counts)
			if terminalJob(j.Status) {
				if w.bar != nil {
					_ = w.bar.Finish()
				}
				return j, nil
			}
		}
		if got && kick == nil {
			interval = 200 * time.Millisecond
		} else if interval < maxInterval {
			interval = min(interval+interval/2, maxInterval)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(interval)
	}
}

func (w *watcher) job(ctx context.Context) (apiwire.Job, error) {
	var j apiwire.Job
	if err := w.c.Do(ctx, "GET", "/bulk/"+url.PathEscape(w.jobID), nil, nil, "", &j); err != nil {
		return j, fmt.Errorf("get job %s: %w", w.jobID, err)
	}
	return j, nil
}

// interrupted handles Ctrl-C: on a terminal it asks whether to cancel the job; with --yes or
// without a terminal it cancels. A second Ctrl-C after cancelling stops waiting.
func (w *watcher) interrupted(ctx context.Context) error {
	if w.bar != nil {
		_ = w.bar.Clear()
	}
	if w.cancelled {
		return &exitError{code: ExitInterrupted, msg: fmt.Sprintf("interrupted; job %s is being cancelled (netauto job wait %s)", w.jobID, w.jobID)}
	}
	cancel := w.a.yes || !isTerminal(w.a.io.In)
	if !cancel {
		fmt.Fprintf(w.a.io.Err, "\nCancel job %s? [y/N] ", w.jobID)
		line, _ := bufio.NewReader(w.a.io.In).ReadString('\n')
		cancel = strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "y")
	}
	if !cancel {
		return &exitError{code: ExitInterrupted, msg: fmt.Sprintf("interrupted; job %s keeps running (netauto job wait %s)", w.jobID, w.jobID)}
	}
	if err := cancelJob(ctx, w.c, w.jobID); err != nil {
		return err
	}
	w.cancelled = true
	fmt.Fprintf(w.a.io.Err, "cancelling job %s: running devices finish, the rest end cancelled\n", w.jobID)
	return nil
}

func cancelJob(ctx context.Context, c *Client, jobID string) error {
	err := c.Do(ctx, "POST", "/bulk/"+url.PathEscape(jobID)+"/cancel", nil, nil, "", nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == 409 {
		return nil // already ended
	}
	if err != nil {
		return fmt.Errorf("cancel job %s: %w", jobID, err)
	}
	return nil
}
