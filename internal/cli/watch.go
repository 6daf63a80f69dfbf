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

// watcher follows a job until it ends (progress contract version 2, docs/websocket.md): it
// counts the job's devices itself from their events, reading them pushed over the WebSocket API
// or polled from GET /v1/bulk/{id}/events; it draws a progress bar when asked and offers to
// cancel the job on Ctrl-C.
type watcher struct {
	a     *app
	c     *Client
	jobID string
	// sigs delivers Ctrl-C; nil never does.
	sigs <-chan os.Signal
	bar  *progressbar.ProgressBar
	// tally holds each device's latest state and counts them.
	tally *tally
	// since is the highest seq the event polls returned: the next poll's since.
	since     int64
	cancelled bool
	// live is how progress arrived: LiveWebSocket or LivePolling.
	live string
	// ws is the WebSocket API's URL ("" to poll only).
	ws string
}

// Polling cadence: every pollFast while devices move, backing off to pollSlow; with a live
// socket a poll runs only after wsQuiet without a message (a push is best effort).
const (
	pollFast = 200 * time.Millisecond
	pollSlow = time.Second
	wsQuiet  = 3 * time.Second
	// eventsPageLimit is the limit of an events page (the API's maximum).
	eventsPageLimit = 1000
)

// newWatcher returns a watcher of job; showBar draws a progress bar on standard error; sigs
// (optional) delivers Ctrl-C.
func (a *app) newWatcher(c *Client, jobID string, total int, showBar bool, sigs <-chan os.Signal) *watcher {
	w := &watcher{a: a, c: c, jobID: jobID, tally: newTally(total), sigs: sigs}
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

// redraw shows the tally's counts on the progress bar.
func (w *watcher) redraw() {
	if w.bar == nil {
		return
	}
	counts := w.tally.counts()
	done := 0
	for s, n := range counts {
		if terminalRun(s) {
			done += n
		}
	}
	_ = w.bar.Set(done)
	w.bar.Describe(formatCounts(counts))
}

// poll reads the devices that moved since the last poll, every page of them, and reports
// whether job_done was among them and whether any item applied (items the watcher already
// holds come back inside the API's 30-second window and do not count as progress).
func (w *watcher) poll(ctx context.Context) (done, applied bool, err error) {
	q := url.Values{"since": {strconv.FormatInt(w.since, 10)}, "limit": {strconv.Itoa(eventsPageLimit)}}
	for {
		var page apiwire.EventList
		if err := w.c.Do(ctx, "GET", "/bulk/"+url.PathEscape(w.jobID)+"/events", q, nil, "", &page); err != nil {
			return false, applied, fmt.Errorf("job %s events: %w", w.jobID, err)
		}
		from := w.since
		for _, ev := range page.Items {
			w.since = max(w.since, ev.Seq)
			if w.tally.event(ev) {
				applied = true
			}
			done = done || ev.Type == eventJobDone
		}
		switch {
		case done:
			return true, applied, nil
		case page.Next != "":
			q.Set("cursor", page.Next) // the same since, the next page
		case len(page.Items) >= eventsPageLimit && w.since > from:
			// A full page without a cursor (an API before version 2 of the contract, whose
			// log pages by seq): read on after its last event.
			q.Del("cursor")
			q.Set("since", strconv.FormatInt(w.since, 10))
		default:
			return false, applied, nil
		}
	}
}

// wait follows the job until it ends and returns its final summary. With a WebSocket
// subscription the pushed snapshot and events are applied as they arrive, and a poll runs
// only when the socket has been quiet for wsQuiet; without one (or once it closes) it polls.
// Either way GET /v1/bulk/{id} confirms the end, and is read whenever a poll brought nothing.
func (w *watcher) wait(ctx context.Context) (apiwire.Job, error) {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	msgs := w.listen(lctx, w.ws, w.c.Token)
	w.live = LivePolling
	interval := time.Duration(0)
	if msgs != nil {
		w.live = LiveWebSocket
		interval = wsQuiet // the snapshot is the complete state: no catch-up before it
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	reset := func(d time.Duration) {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
	}
	for {
		var done, applied bool
		select {
		case <-ctx.Done():
			return apiwire.Job{}, ctx.Err()
		case <-w.sigs:
			if err := w.interrupted(ctx); err != nil {
				return apiwire.Job{}, err
			}
			continue
		case m, ok := <-msgs:
			if !ok {
				msgs, interval = nil, 0 // the socket closed: poll from here on
				reset(0)
				continue
			}
			done = w.tally.message(m, w.jobID)
			w.redraw()
			if !done {
				reset(wsQuiet)
				continue
			}
		case <-timer.C:
			var err error
			if done, applied, err = w.poll(ctx); err != nil {
				return apiwire.Job{}, err
			}
			w.redraw()
		}
		if done || !applied {
			j, err := w.job(ctx)
			if err != nil {
				return apiwire.Job{}, err
			}
			if terminalJob(j.Status) {
				w.tally.finish(j.Counts)
				w.redraw()
				if w.bar != nil {
					_ = w.bar.Finish()
				}
				return j, nil
			}
		}
		switch {
		case msgs != nil:
			interval = wsQuiet
		case applied:
			interval = pollFast
		default:
			interval = min(max(interval+interval/2, pollFast), pollSlow)
		}
		reset(interval)
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
