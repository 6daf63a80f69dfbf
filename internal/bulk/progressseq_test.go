package bulk

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSeqClock(t *testing.T) {
	created := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		batch  int
		states map[string]DeviceState
		at     []time.Duration // since created, one event each
		want   []int64         // milliseconds part of each seq
	}{
		{name: "one event a millisecond follows the clock", batch: 3, at: []time.Duration{5 * time.Millisecond, 9 * time.Millisecond}, want: []int64{5, 9}},
		{name: "a burst takes a millisecond each", batch: 3, at: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}, want: []int64{5, 6, 7}},
		{name: "a clock behind the stored states starts past them", batch: 7,
			states: map[string]DeviceState{"r1": {Seq: 40<<SeqBatchBits | 7}, "r2": {Seq: 12<<SeqBatchBits | 7}},
			at:     []time.Duration{10 * time.Millisecond, 50 * time.Millisecond}, want: []int64{41, 50}},
		{name: "version 1 numbers (small) count as the job's first millisecond", batch: 0,
			states: map[string]DeviceState{"r1": {Seq: 118}}, at: []time.Duration{0}, want: []int64{1}},
		{name: "a clock before the job's creation", batch: 1, at: []time.Duration{-time.Second}, want: []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newSeqClock(created, tt.batch, tt.states)
			var last int64
			for i, at := range tt.at {
				seq := c.next(created.Add(at))
				assert.Equal(t, tt.want[i], seq>>SeqBatchBits, "event %d: milliseconds", i)
				assert.Equal(t, int64(tt.batch), seq&(SeqPerMS-1), "event %d: batch", i)
				assert.Greater(t, seq, last, "event %d after the one before", i)
				last = seq
			}
		})
	}
}

func TestJobDoneSeqIsAboveTheDevices(t *testing.T) {
	created := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	at := created.Add(90 * time.Second)
	c := newSeqClock(created, SeqPerMS-2, nil)
	var last int64
	// A whole batch's events in the job's last millisecond run a hundred milliseconds ahead.
	for range 100 {
		last = c.next(at)
	}
	assert.Greater(t, JobDoneSeq(created, at), last)
	assert.Less(t, JobDoneSeq(created, created.Add(90*24*time.Hour)), int64(1)<<53, "exact in JavaScript for a 90-day job")
}

func TestCatchUpFloor(t *testing.T) {
	assert.Zero(t, CatchUpFloor(0))
	assert.Zero(t, CatchUpFloor(5<<SeqBatchBits), "never below zero")
	assert.Equal(t, int64(10_000)<<SeqBatchBits, CatchUpFloor(int64(40_000)<<SeqBatchBits), "30 s below")
}
