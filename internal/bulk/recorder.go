package bulk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/run"
)

// recorder groups a batch's device state changes into few writes: changes arriving within one
// flush interval are stored with one Record call and pushed as one Publish. It tracks each
// device's stored state so every change knows the state it starts from.
type recorder struct {
	x       *Executor
	m       Message
	clock   *seqClock // numbers the batch's events; used by flush alone
	mu      sync.Mutex
	states  map[string]DeviceState
	pending []Change
	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	err     error
}

func newRecorder(x *Executor, m Message, states map[string]DeviceState, created time.Time) *recorder {
	if states == nil {
		states = map[string]DeviceState{}
	}
	r := &recorder{x: x, m: m, clock: newSeqClock(created, m.Batch, states), states: states, kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go r.loop()
	return r
}

// state returns the device's last known status (queued when unknown).
func (r *recorder) state(id string) run.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.states[id]; ok && s.Status != "" {
		return s.Status
	}
	return run.Queued
}

// add queues a change; it is stored within one flush interval.
func (r *recorder) add(c Change) {
	if c.From == c.To && c.To != run.Running {
		return
	}
	r.mu.Lock()
	r.pending = append(r.pending, c)
	st := r.states[c.DeviceID]
	st.DeviceID, st.Status, st.RunID = c.DeviceID, c.To, c.RunID
	r.states[c.DeviceID] = st
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *recorder) loop() {
	defer close(r.stopped)
	interval := r.x.FlushInterval
	if interval == 0 {
		interval = 20 * time.Millisecond
	}
	for {
		select {
		case <-r.kick:
		case <-r.done:
			return
		}
		// Let concurrent changes gather for one interval, then write them together.
		t := time.NewTimer(interval)
		select {
		case <-t.C:
		case <-r.done:
			t.Stop()
			return
		}
		if err := r.flush(context.Background()); err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
		}
	}
}

// flush writes every pending change; on a concurrent change it reloads the stored states,
// drops changes that are already stored and retries.
func (r *recorder) flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = nil
	r.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	// A device that changed twice since the last write (running, then done) is stored once, from
	// its first state to its last: one Record per flush, and the superseded state is never shown.
	round := merge(batch)
	var events []Event
	var err error
	for attempt := 0; ; attempt++ {
		r.clock.number(round, r.x.now())
		events, err = r.x.Jobs.Record(ctx, r.m.JobID, r.m.Batch, round)
		if err == nil || attempt >= 5 {
			break
		}
		if errors.Is(err, ErrStateChanged) {
			stored, lerr := r.x.Jobs.BatchStates(ctx, r.m.JobID, r.m.Batch)
			if lerr != nil {
				err = lerr
				continue
			}
			for _, st := range stored {
				r.clock.seen(st.Seq)
			}
			if round = rebase(round, stored); len(round) == 0 {
				return nil
			}
			continue
		}
		time.Sleep(time.Duration(10<<attempt) * time.Millisecond) // back off a failing store
	}
	if err != nil {
		r.mu.Lock()
		r.pending = append(round, r.pending...)
		r.mu.Unlock()
		return fmt.Errorf("record %d changes: %w", len(round), err)
	}
	// Catch-up reads the devices' states the write stored: there is no event log to write.
	r.x.publish(ctx, events)
	return nil
}

// merge folds each device's consecutive changes into one, from the first change's From to the
// last one's To (with the last one's details), keeping the devices in first-change order.
func merge(cs []Change) []Change {
	at := make(map[string]int, len(cs))
	out := make([]Change, 0, len(cs))
	for _, c := range cs {
		i, ok := at[c.DeviceID]
		if !ok {
			at[c.DeviceID] = len(out)
			out = append(out, c)
			continue
		}
		from := out[i].From
		out[i] = c
		out[i].From = from
	}
	return out
}

// rebase sets each change's From to the stored state and drops the ones already applied.
func rebase(cs []Change, stored map[string]DeviceState) []Change {
	var out []Change
	for _, c := range cs {
		cur := stored[c.DeviceID].Status
		if cur == "" {
			cur = run.Queued
		}
		if cur == c.To || cur.Terminal() {
			continue
		}
		c.From = cur
		out = append(out, c)
	}
	return out
}

// close stops the loop and writes what is left.
func (r *recorder) close(ctx context.Context) error {
	close(r.done)
	<-r.stopped
	if err := r.flush(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.pending) > 0 {
		return fmt.Errorf("%d progress changes not stored: %w", len(r.pending), r.err)
	}
	return nil
}
