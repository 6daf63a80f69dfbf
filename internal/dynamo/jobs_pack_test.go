package dynamo

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/run"
)

func TestPackState(t *testing.T) {
	exit0, exit127, yes, no := 0, -127, true, false
	digest := []byte("0123456789abcdef")
	tests := []struct {
		name  string
		batch int
		d     devState
		empty bool
	}{
		{name: "running, no details but its seq", batch: 3, d: devState{S: "running", Q: 1234<<bulk.SeqBatchBits | 3}},
		{name: "nothing but the status packs to nothing", d: devState{S: "queued"}, empty: true},
		{name: "seq of another batch kept whole", batch: 3, d: devState{S: "running", Q: 1234<<bulk.SeqBatchBits | 4}},
		{name: "finished with digest, commands and drift", batch: 7, d: devState{S: "succeeded", MS: 1520, Q: 99_000<<bulk.SeqBatchBits | 7, H: digest,
			C: []devCmd{{S: "succeeded", X: &exit0, B: 4096}}, Chg: &no}},
		{name: "failed with reasons", batch: 0, d: devState{S: "failed", Why: "exit_status", MS: 1, Q: 5 << bulk.SeqBatchBits,
			C: []devCmd{{S: "succeeded", B: 1}, {S: "failed", Why: "exit_status", X: &exit127}, {S: "cancelled", Why: "not_run"}}, Chg: &yes}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			packed, err := packState(tc.d, tc.batch)
			require.NoError(t, err)
			if tc.empty {
				assert.Empty(t, packed)
			}
			got, err := unpackState(packed, tc.d.S, tc.batch)
			require.NoError(t, err)
			assert.Equal(t, tc.d, got)
		})
	}
}

func TestPackStateRejects(t *testing.T) {
	good, err := packState(devState{S: "succeeded", Why: "x", H: []byte("0123456789abcdef"), C: []devCmd{{S: "succeeded", B: 9}}}, 0)
	require.NoError(t, err)
	tests := []struct {
		name   string
		packed []byte
	}{
		{name: "cut short", packed: good[:len(good)-1]},
		{name: "trailing bytes", packed: append(append([]byte{}, good...), 0)},
		{name: "length past the end", packed: []byte{packWhy, 9, 'a'}},
		{name: "unknown command status", packed: []byte{packCmds, 1, 'z', 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := unpackState(tc.packed, "succeeded", 0)
			require.ErrorIs(t, err, errBadPacking)
		})
	}
	_, err = packState(devState{C: []devCmd{{S: "exploded"}}}, 0)
	require.Error(t, err, "a command status without a code")
}

func TestPackCounts(t *testing.T) {
	counts := map[run.Status]int{run.Running: 3, run.Succeeded: 40, run.Failed: 7}
	older, newer := packCounts(5, map[run.Status]int{run.Running: 50}), packCounts(6, counts)
	assert.Less(t, string(older), string(newer), "a newer version compares greater, whatever the counts")
	got := map[run.Status]int{run.Queued: 50}
	require.NoError(t, unpackCounts(newer, got))
	assert.Equal(t, map[run.Status]int{run.Queued: 0, run.Running: 3, run.Succeeded: 40, run.Failed: 7, run.TimedOut: 0, run.Unreachable: 0,
		run.AuthFailed: 0, run.HostKeyMismatch: 0, run.Cancelled: 0}, got)
	require.ErrorIs(t, unpackCounts(newer[:3], map[run.Status]int{}), errBadPacking, "no version")
	require.ErrorIs(t, unpackCounts(newer[:len(newer)-1], map[run.Status]int{}), errBadPacking, "a count missing")
}

func TestStatusCodesCoverEveryStatus(t *testing.T) {
	seen := map[byte]bool{}
	for _, s := range run.Statuses() {
		c, err := statusCode(s)
		require.NoError(t, err, "status %s", s)
		assert.False(t, seen[c], "code %q used twice", c)
		seen[c] = true
	}
	assert.Len(t, countedStatuses, len(run.Statuses())-1, "every status but queued is counted")
}
