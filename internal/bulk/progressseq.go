package bulk

import "time"

// Progress sequence numbers (docs/websocket.md, progress contract version 2): an event's seq is
// the millisecond since the job was created at which it was recorded, shifted left by
// SeqBatchBits, plus the batch that recorded it. No item every device of a job writes through
// hands them out: each batch's recorder keeps its own clock, one millisecond per event, so one
// device's events strictly increase and events of different batches never share a number.
const (
	// SeqBatchBits is how many low bits of a seq name the batch.
	SeqBatchBits = 20
	// SeqPerMS is one millisecond in seq units.
	SeqPerMS = 1 << SeqBatchBits
	// jobDoneBatch is the batch part of a job_done event's seq: above every batch's.
	jobDoneBatch = SeqPerMS - 1
	// jobDoneLead puts a job_done event's time part this far past its recording, above every
	// device event's: a batch's clock runs ahead of the wall clock by one millisecond per event
	// recorded within the same millisecond, at most a batch's events (100) at once.
	jobDoneLead = time.Second
	// CatchUpWindow is how far below a catch-up's since the devices it returns may be: events
	// stored late (a clock behind another executor's, a write retried for seconds).
	CatchUpWindow = 30 * time.Second
)

// seqClock numbers one batch's events.
type seqClock struct {
	created time.Time
	batch   int64
	lastMS  int64
}

// newSeqClock is batch's clock in the job created at created, past every seq states hold.
func newSeqClock(created time.Time, batch int, states map[string]DeviceState) *seqClock {
	c := &seqClock{created: created, batch: int64(batch) & (SeqPerMS - 1)}
	for _, st := range states {
		c.seen(st.Seq)
	}
	return c
}

// seen moves the clock past seq (a number this batch, or an earlier holder of it, gave out).
func (c *seqClock) seen(seq int64) {
	c.lastMS = max(c.lastMS, seq>>SeqBatchBits)
}

// next numbers one event recorded at now.
func (c *seqClock) next(now time.Time) int64 {
	c.lastMS = max(c.lastMS+1, now.Sub(c.created).Milliseconds())
	return c.lastMS<<SeqBatchBits | c.batch
}

// number gives each change its seq, in order.
func (c *seqClock) number(changes []Change, now time.Time) {
	for i := range changes {
		changes[i].Seq = c.next(now)
	}
}

// JobDoneSeq is the seq of the job_done event of a job created at created that ended at at:
// above every device event of the job.
func JobDoneSeq(created, at time.Time) int64 {
	return (max(at.Sub(created), 0)+jobDoneLead).Milliseconds()<<SeqBatchBits | jobDoneBatch
}

// CatchUpFloor is the lowest seq a catch-up from since returns: since less CatchUpWindow.
func CatchUpFloor(since int64) int64 {
	return max(since-CatchUpWindow.Milliseconds()*SeqPerMS, 0)
}
