// Package push delivers bulk progress to WebSocket subscribers: Publisher is the bulk.Publisher
// the executor and the API call after they store progress events, and Client posts one message
// to one connection through API Gateway's management API (PostToConnection).
//
// Publish never blocks on the network: events are queued and one worker delivers them, in the
// order they were published, to every subscriber of their job, many connections at once. The
// subscriber list of a job is read at most once per CacheTTL. A connection that is gone (410) is
// deleted with its subscriptions; throttling is retried with backoff; any other failure is logged
// and counted and never fails a run.
package push

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/live"
)

// Subscriptions is the part of the connection store the publisher uses.
type Subscriptions interface {
	Subscribers(ctx context.Context, jobID string) ([]string, error)
	DeleteConnection(ctx context.Context, id string) error
}

// Options configures a Publisher.
type Options struct {
	Subscriptions Subscriptions
	Poster        live.Poster
	Logger        *slog.Logger
	// CacheTTL is how long a job's subscriber list is reused (default and most 1 s).
	CacheTTL time.Duration
	// Concurrency bounds posts in flight (default 32).
	Concurrency int
	// MaxQueued bounds events waiting for delivery; beyond it events are dropped and counted
	// (default 20,000). Clients recover them from a snapshot or the events route.
	MaxQueued int
	// PostTimeout bounds one post, retries included (default 5 s).
	PostTimeout time.Duration
}

// Stats counts deliveries since the publisher started.
type Stats struct {
	// Sent counts events posted.
	Sent int64
	// Posts counts messages posted (an events message carries several events).
	Posts int64
	// Failed counts messages that could not be posted (not counting gone connections).
	Failed int64
	// Gone counts connections found gone and deleted.
	Gone int64
	// Dropped counts events dropped because the queue was full.
	Dropped int64
	// LookupErrors counts failed subscriber lookups.
	LookupErrors int64
}

// Publisher is a bulk.Publisher that pushes events to WebSocket subscribers.
type Publisher struct {
	opts Options

	mu       sync.Mutex
	queue    []bulk.Event
	enqueued uint64
	done     uint64
	progress chan struct{} // closed and replaced whenever done advances
	kick     chan struct{}
	stop     chan struct{}
	stopped  chan struct{}
	closing  sync.Once

	// cache and trailing are touched by the worker only.
	cache map[string]*jobSubs
	// trailing holds jobs whose last delivery used a cached subscriber list: when the cache
	// expires the list is read once more, and connections that subscribed meanwhile are sent
	// what they missed, even if the job sends nothing after that.
	trailing map[string]time.Time

	sent, posts, failed, gone, dropped, lookupErrs atomic.Int64
}

// jobSubs is a job's cached subscriber list and the events delivered since it was read: a
// connection that shows up in the next read subscribed after it and is sent those first.
type jobSubs struct {
	conns  []string
	readAt time.Time
	recent []message
	used   time.Time
}

// message is one encoded event and the job it belongs to.
type message struct {
	job  string
	data []byte
}

// maxRecent bounds the events remembered per job for connections that subscribe meanwhile.
const maxRecent = 5000

var _ bulk.Publisher = (*Publisher)(nil)

// New starts a publisher; Close stops it.
func New(opts Options) (*Publisher, error) {
	if opts.Subscriptions == nil || opts.Poster == nil {
		return nil, errors.New("push: subscriptions and poster are required")
	}
	if opts.CacheTTL <= 0 || opts.CacheTTL > time.Second {
		opts.CacheTTL = time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 32
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = 20000
	}
	if opts.PostTimeout <= 0 {
		opts.PostTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Publisher{
		opts: opts, progress: make(chan struct{}), kick: make(chan struct{}, 1),
		stop: make(chan struct{}), stopped: make(chan struct{}), cache: map[string]*jobSubs{},
		trailing: map[string]time.Time{},
	}
	go p.loop()
	return p, nil
}

// Publish queues events for delivery and returns at once.
func (p *Publisher) Publish(_ context.Context, events []bulk.Event) {
	if len(events) == 0 {
		return
	}
	p.mu.Lock()
	room := p.opts.MaxQueued - len(p.queue)
	n := min(max(room, 0), len(events))
	p.queue = append(p.queue, events[:n]...)
	p.enqueued += uint64(n)
	p.mu.Unlock()
	if n < len(events) {
		p.dropped.Add(int64(len(events) - n))
		p.opts.Logger.Warn("push queue full; progress events dropped", "dropped", len(events)-n)
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Flush waits until every event published before it was delivered (or given up on), or ctx ends.
// A Lambda handler calls it before returning, since a frozen environment delivers nothing.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	target := p.enqueued
	for p.done < target {
		ch := p.progress
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.stopped:
			return errors.New("push: publisher closed")
		}
		p.mu.Lock()
	}
	p.mu.Unlock()
	return nil
}

// Close delivers what is queued (bounded by ctx) and stops the worker.
func (p *Publisher) Close(ctx context.Context) error {
	err := p.Flush(ctx)
	p.closing.Do(func() { close(p.stop) })
	<-p.stopped
	return err
}

// Stats returns the delivery counters.
func (p *Publisher) Stats() Stats {
	return Stats{Sent: p.sent.Load(), Posts: p.posts.Load(), Failed: p.failed.Load(), Gone: p.gone.Load(), Dropped: p.dropped.Load(), LookupErrors: p.lookupErrs.Load()}
}

func (p *Publisher) loop() {
	defer close(p.stopped)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(p.nextTrailing())
		select {
		case <-p.kick:
		case <-timer.C:
			p.refreshTrailing()
			continue
		case <-p.stop:
			return
		}
		for {
			p.mu.Lock()
			batch := p.queue
			p.queue = nil
			p.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			p.deliver(batch)
			p.mu.Lock()
			p.done += uint64(len(batch))
			close(p.progress)
			p.progress = make(chan struct{})
			p.mu.Unlock()
		}
	}
}

// nextTrailing is how long until the earliest trailing refresh is due (an hour when none is).
func (p *Publisher) nextTrailing() time.Duration {
	next := time.Hour
	for _, due := range p.trailing {
		next = min(next, max(time.Until(due), time.Millisecond))
	}
	return next
}

// refreshTrailing reads the subscribers of the jobs whose trailing refresh is due and sends new
// connections the events they missed.
func (p *Publisher) refreshTrailing() {
	now := time.Now()
	perConn := map[string][]message{}
	for job, due := range p.trailing {
		if due.After(now) {
			continue
		}
		delete(p.trailing, job)
		subs := p.cache[job]
		if subs == nil {
			continue
		}
		conns, err := p.opts.Subscriptions.Subscribers(context.Background(), job)
		if err != nil {
			p.lookupErrs.Add(1)
			continue
		}
		for _, c := range conns {
			if !slices.Contains(subs.conns, c) {
				perConn[c] = append(perConn[c], subs.recent...)
			}
		}
		subs.conns, subs.readAt = conns, now
	}
	p.send(perConn)
}

// deliver sends a batch of events, in order, to every subscriber of each event's job.
func (p *Publisher) deliver(batch []bulk.Event) {
	ctx := context.Background()
	now := time.Now()
	perConn := map[string][]message{}
	add := func(conn string, m message) {
		perConn[conn] = append(perConn[conn], m)
	}
	var jobs []string
	byJob := map[string][]message{}
	for _, ev := range batch {
		data, err := json.Marshal(ev)
		if err != nil {
			p.failed.Add(1)
			continue
		}
		if _, ok := byJob[ev.JobID]; !ok {
			jobs = append(jobs, ev.JobID)
		}
		byJob[ev.JobID] = append(byJob[ev.JobID], message{job: ev.JobID, data: data})
	}
	for _, job := range jobs {
		msgs := byJob[job]
		subs := p.cache[job]
		if subs == nil || now.Sub(subs.readAt) >= p.opts.CacheTTL {
			conns, err := p.opts.Subscriptions.Subscribers(ctx, job)
			if err != nil {
				p.lookupErrs.Add(1)
				p.opts.Logger.Warn("push: subscriber lookup failed; using the last list", "job_id", job, "err", err)
				if subs == nil {
					subs = &jobSubs{}
					p.cache[job] = subs
				}
			} else {
				fresh := &jobSubs{conns: conns, readAt: now}
				if subs != nil {
					// Connections that subscribed since the last read missed what was
					// delivered meanwhile: send it to them first.
					for _, c := range conns {
						if !slices.Contains(subs.conns, c) {
							for _, m := range subs.recent {
								add(c, m)
							}
						}
					}
				}
				subs = fresh
				p.cache[job] = subs
			}
		}
		subs.used = now
		if subs.readAt.Before(now) {
			p.trailing[job] = subs.readAt.Add(p.opts.CacheTTL)
		}
		for _, c := range subs.conns {
			for _, m := range msgs {
				add(c, m)
			}
		}
		subs.recent = append(subs.recent, msgs...)
		if extra := len(subs.recent) - maxRecent; extra > 0 {
			subs.recent = slices.Delete(subs.recent, 0, extra)
		}
	}
	for job, subs := range p.cache {
		if now.Sub(subs.used) > time.Minute {
			delete(p.cache, job)
			delete(p.trailing, job)
		}
	}
	p.send(perConn)
}

// send posts each connection's messages and forgets connections that are gone.
func (p *Publisher) send(perConn map[string][]message) {
	if len(perConn) == 0 {
		return
	}
	ctx := context.Background()
	sem := make(chan struct{}, p.opts.Concurrency)
	var wg sync.WaitGroup
	var goneMu sync.Mutex
	var gone []string
	for conn, msgs := range perConn {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.sendConn(ctx, conn, msgs, sem) {
				goneMu.Lock()
				gone = append(gone, conn)
				goneMu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, conn := range gone {
		for _, subs := range p.cache {
			subs.conns = slices.DeleteFunc(subs.conns, func(c string) bool { return c == conn })
		}
	}
}

// sendConn posts msgs to conn, in order, several to a message: a run of consecutive events of
// one job goes as one TypeEvents message of at most live.EventsBudget bytes of events (a lone
// event bare), so a burst of progress costs a few posts per subscriber, not one per event. It
// reports whether the connection is gone (and deleted).
func (p *Publisher) sendConn(ctx context.Context, conn string, msgs []message, sem chan struct{}) bool {
	isGone := false
	sent := 0
	for _, f := range frames(msgs) {
		sem <- struct{}{}
		pctx, cancel := context.WithTimeout(ctx, p.opts.PostTimeout)
		err := p.opts.Poster.Post(pctx, conn, f.data)
		cancel()
		<-sem
		switch {
		case err == nil:
			p.posts.Add(1)
			p.sent.Add(int64(f.events))
			sent += f.events
			continue
		case errors.Is(err, live.ErrGone):
			isGone = true
			p.gone.Add(1)
			sent += f.events // what follows is counted as failed
		default:
			p.failed.Add(int64(f.events))
			sent += f.events
			p.opts.Logger.Warn("push: post failed", "connection_id", conn, "err", err)
			continue
		}
		break
	}
	msgs = msgs[sent:]
	if !isGone {
		return false
	}
	p.failed.Add(int64(len(msgs)))
	dctx, cancel := context.WithTimeout(ctx, p.opts.PostTimeout)
	defer cancel()
	if err := p.opts.Subscriptions.DeleteConnection(dctx, conn); err != nil {
		p.opts.Logger.Warn("push: delete gone connection", "connection_id", conn, "err", err)
	}
	return true
}

// frame is one message to post: the encoded events it carries.
type frame struct {
	data   []byte
	events int
}

// frames packs msgs, in order, into messages: consecutive events of one job share a
// live.TypeEvents message up to live.EventsBudget bytes of events; a message holding one event
// is that event, bare.
func frames(msgs []message) []frame {
	var out []frame
	for len(msgs) > 0 {
		n, size := 1, len(msgs[0].data)
		for n < len(msgs) && msgs[n].job == msgs[0].job && size+len(msgs[n].data)+1 <= live.EventsBudget {
			size += len(msgs[n].data) + 1
			n++
		}
		if n == 1 {
			out = append(out, frame{data: msgs[0].data, events: 1})
		} else {
			job, _ := json.Marshal(msgs[0].job) // a string always encodes
			b := make([]byte, 0, size+64+len(job))
			b = append(b, `{"type":"`+live.TypeEvents+`","job_id":`...)
			b = append(b, job...)
			b = append(b, `,"events":[`...)
			for i, m := range msgs[:n] {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, m.data...)
			}
			b = append(b, "]}"...)
			out = append(out, frame{data: b, events: n})
		}
		msgs = msgs[n:]
	}
	return out
}
