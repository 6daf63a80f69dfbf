package bulk

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/run"
)

// NoticeClaimer records which notices of a job were sent, so each is sent once.
type NoticeClaimer interface {
	// ClaimNotice records notice name of job jobID as sent unless it already is: of concurrent
	// callers exactly one gets true. The record expires with the job (zero: never).
	ClaimNotice(ctx context.Context, jobID, name string, expiresAt time.Time) (bool, error)
}

// DeviceLookup reads devices by id (for their names in notices); unknown ids are absent.
type DeviceLookup interface {
	GetMany(ctx context.Context, ids []string) (map[string]device.Device, error)
}

// Notice names claimed per job (NoticeClaimer).
const (
	noticeFinished = "finished"
	noticeHostKey  = "host-key:"
)

// noticePage is how many device states one read of an ended job's devices returns: a
// 10,000-device job is read in two pages of batch queries, not a read per batch.
const noticePage = 5000

// defaultNoticeTimeout bounds a publish (Notices.Timeout).
const defaultNoticeTimeout = 10 * time.Second

// Notices sends the events of internal/notify when jobs end (Job Finished and, when some device's
// output changed, Output Changed) and when a host key does not match, each exactly once: a
// conditional claim per job (and per job and target for host keys) decides who sends, so an
// executor and the watchdog ending the same job, or a redelivered batch, send nothing twice. A
// publish failure is logged and counted, never returned: the job has ended either way.
type Notices struct {
	Publisher notify.Publisher
	Claims    NoticeClaimer
	// Runs reads changed devices' runs for the run they were compared with; Devices reads
	// device names (both optional: without them the fields are empty).
	Runs    RunGetter
	Devices DeviceLookup
	Logger  *slog.Logger
	// Metrics counts EventsPublished and EventsFailed (optional), with the Function dimension.
	Metrics  *metrics.Emitter
	Function string
	// Timeout bounds one publish (default 10 s): a bus that does not answer never holds up the
	// function that ended the job for longer.
	Timeout time.Duration
}

func (n *Notices) enabled() bool { return n != nil && n.Publisher != nil && n.Claims != nil }

func (n *Notices) logger() *slog.Logger { return cmp.Or(n.Logger, slog.Default()) }

// jobEnded sends the notices of an ended job unless they were claimed already. It reports false
// when the claim itself could not be written: the caller keeps the job on the unfinished list so
// the watchdog tries again.
func (n *Notices) jobEnded(ctx context.Context, jobs JobStore, job Job) bool {
	if !n.enabled() || !job.Status.Terminal() {
		return true
	}
	ctx = context.WithoutCancel(ctx)
	won, err := n.Claims.ClaimNotice(ctx, job.ID, noticeFinished, job.ExpiresAt)
	if err != nil {
		n.logger().ErrorContext(ctx, "claim the job's finished notice; the watchdog will try again", "job_id", job.ID, "err", err)
		return false
	}
	if !won {
		return true
	}
	n.publish(ctx, job.ID, n.jobEvents(ctx, jobs, job)...)
	return true
}

// jobEvents builds an ended job's events from its batches: Job Finished, and Output Changed when
// a device's output changed.
func (n *Notices) jobEvents(ctx context.Context, jobs JobStore, job Job) []notify.Event {
	var failed, changed []DeviceState
	complete := true
	for cursor := ""; ; {
		page, next, err := jobs.Devices(ctx, job.ID, cursor, noticePage)
		if err != nil {
			// The counts are the job's own; the lists say they are incomplete.
			n.logger().ErrorContext(ctx, "read the job's devices for its notices", "job_id", job.ID, "err", err)
			complete = false
			break
		}
		for _, st := range page {
			if st.Status != run.Succeeded && st.Status != "" {
				failed = append(failed, st)
			}
			if st.Changed != nil && *st.Changed {
				changed = append(changed, st)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	listed := func(list []DeviceState) []DeviceState { return list[:min(len(list), notify.MaxListed)] }
	names := n.names(ctx, append(slices.Clone(listed(failed)), listed(changed)...))
	counts := make(map[string]int, len(job.Counts))
	nonSucceeded := 0
	for s, c := range job.Counts {
		if c > 0 {
			counts[string(s)] = c
			if s != run.Succeeded {
				nonSucceeded += c
			}
		}
	}
	at := n.endTime(job)
	jf := notify.JobFinished{
		JobID: job.ID, Status: string(job.Status), RequestedBy: job.RequestedBy, SavedJobID: job.SavedJobID,
		Command: job.Command, StartedAt: job.CreatedAt, FinishedAt: at, Counts: counts,
		FailedTruncated: len(failed) > notify.MaxListed || (!complete && nonSucceeded > len(failed)),
	}
	for _, st := range listed(failed) {
		jf.Failed = append(jf.Failed, notify.FailedDevice{DeviceID: st.DeviceID, Name: names[st.DeviceID], Status: string(st.Status), Reason: st.Reason})
	}
	out := []notify.Event{notify.NewJobFinished(jf)}
	if len(changed) == 0 {
		return out
	}
	oc := notify.OutputChanged{JobID: job.ID, Command: job.Command, ChangedCount: len(changed), ChangedTruncated: len(changed) > notify.MaxListed || !complete}
	prev := n.previousRuns(ctx, listed(changed), job.ID)
	for _, st := range listed(changed) {
		runID := RunID(job.ID, st.DeviceID)
		oc.Changed = append(oc.Changed, notify.ChangedDevice{DeviceID: st.DeviceID, Name: names[st.DeviceID], RunID: runID, PreviousRunID: prev[runID]})
	}
	return append(out, notify.NewOutputChanged(oc, at))
}

func (n *Notices) endTime(job Job) time.Time {
	if job.FinishedAt != nil {
		return *job.FinishedAt
	}
	return time.Now().UTC()
}

// names returns the names of the devices of list that still exist.
func (n *Notices) names(ctx context.Context, list []DeviceState) map[string]string {
	out := map[string]string{}
	if n.Devices == nil || len(list) == 0 {
		return out
	}
	ids := make([]string, 0, len(list))
	for _, st := range list {
		ids = append(ids, st.DeviceID)
	}
	slices.Sort(ids)
	devs, err := n.Devices.GetMany(ctx, slices.Compact(ids))
	if err != nil {
		n.logger().WarnContext(ctx, "read device names for a notice; sent without them", "err", err)
		return out
	}
	for id, d := range devs {
		out[id] = d.Name
	}
	return out
}

// previousRuns returns, by run id, the run each changed device's run was compared with, reading
// the runs a few at a time.
func (n *Notices) previousRuns(ctx context.Context, list []DeviceState, jobID string) map[string]string {
	out := map[string]string{}
	if n.Runs == nil {
		return out
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, 8)
	)
	for _, st := range list {
		id := RunID(jobID, st.DeviceID)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := n.Runs.Get(ctx, id)
			if err != nil {
				n.logger().WarnContext(ctx, "read a changed run for a notice", "run_id", id, "err", err)
				return
			}
			mu.Lock()
			out[id] = r.PreviousRunID
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// hostKeyMismatch sends the notice of a refused host key, once per job and target.
func (n *Notices) hostKeyMismatch(ctx context.Context, expiresAt time.Time, d notify.HostKeyMismatch) {
	if !n.enabled() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if d.JobID != "" {
		won, err := n.Claims.ClaimNotice(ctx, d.JobID, noticeHostKey+d.Kind+":"+d.ID, expiresAt)
		if err != nil {
			n.logger().ErrorContext(ctx, "claim a host key notice; not sent", "job_id", d.JobID, "kind", d.Kind, "id", d.ID, "err", err)
			n.count(0, 1)
			return
		}
		if !won {
			return
		}
	}
	n.publish(ctx, d.JobID, notify.NewHostKeyMismatch(d))
}

// publish sends events within Timeout, logging and counting a failure.
func (n *Notices) publish(ctx context.Context, jobID string, events ...notify.Event) {
	if len(events) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, cmp.Or(n.Timeout, defaultNoticeTimeout))
	defer cancel()
	types := make([]string, len(events))
	for i, e := range events {
		types[i] = e.DetailType
	}
	if err := n.Publisher.Publish(pctx, events...); err != nil {
		n.logger().ErrorContext(ctx, "publish events; they are lost", "job_id", jobID, "detail_types", types, "err", err)
		n.count(0, len(events))
		return
	}
	n.logger().InfoContext(ctx, "events published", "job_id", jobID, "detail_types", types)
	n.count(len(events), 0)
}

func (n *Notices) count(published, failed int) {
	if n.Metrics == nil {
		return
	}
	_ = n.Metrics.Emit(map[string]string{"Function": cmp.Or(n.Function, "executor")}, nil,
		metrics.Metric{Name: "EventsPublished", Value: float64(published), Unit: metrics.Count},
		metrics.Metric{Name: "EventsFailed", Value: float64(failed), Unit: metrics.Count})
}

// hostKeyNotice is the notice of a host key that device d offered instead of its pinned one.
func hostKeyNotice(m Message, d device.Device, offered string, at time.Time) notify.HostKeyMismatch {
	return notify.HostKeyMismatch{
		Kind: notify.KindDevice, ID: d.ID, Name: d.Name, Host: d.Host, Port: cmp.Or(d.Port, device.DefaultPort),
		PresentedFingerprint: device.HostKeyFingerprint(offered), PinnedFingerprint: device.HostKeyFingerprint(d.HostKey),
		JobID: m.JobID, RunID: RunID(m.JobID, d.ID), SeenAt: at,
	}
}

// noticeExpiry is when a host key notice's claim may go: with the job's runs (zero: never).
func (x *Executor) noticeExpiry() time.Time {
	if x.RunTTL <= 0 {
		return time.Time{}
	}
	return x.now().Add(x.RunTTL)
}
