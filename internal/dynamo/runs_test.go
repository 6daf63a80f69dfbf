package dynamo

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// clock is a settable time for a store's now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Millisecond)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// runTable is a run store on its own runs table, with its clock and raw client.
type runTable struct {
	*RunStore
	db    API
	table string
	clock *clock
}

func newRunStore(t *testing.T) runTable {
	t.Helper()
	db, table := newTable(t, resources.RunsTable)
	s, err := NewRunStore(db, table, time.Minute)
	require.NoError(t, err)
	c := newClock()
	s.now = c.now
	return runTable{RunStore: s, db: db, table: table, clock: c}
}

func testRun(id, deviceID string) run.Run {
	return run.Run{ID: id, DeviceID: deviceID, Command: "show version", RequestedBy: "alice", Status: run.Queued,
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
}

// finished is r finished with output stored by the real chunk writer: full chunks appended,
// the rest kept inline by Finish.
func (rt runTable) finish(t *testing.T, r run.Run, output []byte) run.Run {
	t.Helper()
	ctx := context.Background()
	w := run.NewChunkWriter(ctx, rt.RunStore, r)
	for p := output; len(p) > 0; {
		n := min(len(p), 10007) // pieces that straddle chunk boundaries
		_, err := w.Write(p[:n])
		require.NoErrorf(t, err, "write output of run %s", r.ID)
		p = p[n:]
	}
	finished := rt.clock.now()
	r.Status, r.Bytes, r.Chunks, r.OutputDigest, r.FinishedAt = run.Succeeded, w.Bytes(), w.Chunks(), w.Digest(), &finished
	require.NoErrorf(t, rt.Finish(ctx, r, w.Pending()), "finish run %s", r.ID)
	return r
}

func (rt runTable) output(t *testing.T, id string) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoErrorf(t, rt.WriteOutput(context.Background(), id, &buf), "output of run %s", id)
	return buf.Bytes()
}

func (rt runTable) deviceBytes(t *testing.T, deviceID string) int64 {
	t.Helper()
	n, err := rt.DeviceBytes(context.Background(), deviceID)
	require.NoErrorf(t, err, "bytes of device %s", deviceID)
	return n
}

func randomOutput(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// sameBytes asserts that got is want, naming the first byte where they differ.
func sameBytes(t *testing.T, want, got []byte, what string) {
	t.Helper()
	if bytes.Equal(want, got) {
		return
	}
	i := 0
	for i < min(len(want), len(got)) && want[i] == got[i] {
		i++
	}
	assert.Failf(t, what+" differs", "%d bytes, want %d; first difference at byte %d (chunk %d)", len(got), len(want), i, i/run.ChunkSize)
}

func TestNewRunStore(t *testing.T) {
	for name, args := range map[string]struct {
		db    API
		table string
		lease time.Duration
	}{
		"no client": {nil, "runs", time.Minute}, "no table": {&fakeAPI{}, "", time.Minute}, "no lease": {&fakeAPI{}, "runs", 0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewRunStore(args.db, args.table, args.lease)
			assert.Error(t, err)
		})
	}
}

func TestRunStoreOutputInOrder(t *testing.T) {
	rt := newRunStore(t)
	tests := []struct {
		name   string
		size   int
		chunks int
	}{
		{"empty", 0, 0},
		{"inline only", 1000, 1},
		{"exactly one chunk", run.ChunkSize, 1},
		{"more than ten chunks and a tail", 11*run.ChunkSize + 1234, 12},
		{"twelve whole chunks", 12 * run.ChunkSize, 12},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := fmt.Sprintf("dev-out-%d", i)
			r := testRun(fmt.Sprintf("out-%d", i), dev)
			r, err := rt.Start(context.Background(), r)
			require.NoError(t, err)
			want := randomOutput(tt.size)
			r = rt.finish(t, r, want)
			assert.Equalf(t, tt.chunks, r.Chunks, "chunks of run %s", r.ID)
			sameBytes(t, want, rt.output(t, r.ID), "output of run "+r.ID)
			assert.Equalf(t, int64(tt.size), rt.deviceBytes(t, dev), "stored bytes of device %s", dev)
			got, err := rt.Get(context.Background(), r.ID)
			require.NoError(t, err)
			assert.Equalf(t, int64(tt.size), got.Bytes, "bytes of run %s", r.ID)
			assert.Equalf(t, run.Succeeded, got.Status, "status of run %s", r.ID)
		})
	}
}

func TestRunStoreAppendChunkOnce(t *testing.T) {
	rt := newRunStore(t)
	ctx := context.Background()
	r, err := rt.Start(ctx, testRun("twice", "dev-twice"))
	require.NoError(t, err)
	chunk := randomOutput(run.ChunkSize)
	require.NoError(t, rt.AppendChunk(ctx, r, 0, chunk))
	require.NoError(t, rt.AppendChunk(ctx, r, 0, chunk), "the same chunk again")
	assert.Equal(t, int64(run.ChunkSize), rt.deviceBytes(t, "dev-twice"), "counted once")
	sameBytes(t, chunk, rt.output(t, r.ID), "output of run twice")
}

func TestRunStoreStart(t *testing.T) {
	ctx := context.Background()
	t.Run("a new run", func(t *testing.T) {
		rt := newRunStore(t)
		r, err := rt.Start(ctx, testRun("new", "dev-a"))
		require.NoError(t, err)
		assert.Equal(t, run.Running, r.Status)
		assert.Equal(t, 1, r.Attempt)
		assert.Equal(t, rt.clock.now().Add(time.Minute), r.LeaseUntil, "leased for the store's lease")
		got, err := rt.Get(ctx, "new")
		require.NoError(t, err)
		assert.Equal(t, run.Running, got.Status)
		assert.Equal(t, r.LeaseUntil, got.LeaseUntil, "lease as stored")
	})
	t.Run("while an attempt holds it", func(t *testing.T) {
		rt := newRunStore(t)
		first, err := rt.Start(ctx, testRun("held", "dev-a"))
		require.NoError(t, err)
		rt.clock.advance(59 * time.Second)
		got, err := rt.Start(ctx, testRun("held", "dev-a"))
		assert.ErrorIs(t, err, run.ErrLeased)
		assert.Equal(t, first.LeaseUntil, got.LeaseUntil, "the holder's lease")
		assert.Equal(t, 1, got.Attempt, "attempt of the holder")
	})
	t.Run("taking over a dead attempt", func(t *testing.T) {
		rt := newRunStore(t)
		r, err := rt.Start(ctx, testRun("dead", "dev-dead"))
		require.NoError(t, err)
		require.NoError(t, rt.AppendChunk(ctx, r, 0, randomOutput(run.ChunkSize)))
		require.NoError(t, rt.AppendChunk(ctx, r, 1, randomOutput(run.ChunkSize)))
		require.Equal(t, int64(2*run.ChunkSize), rt.deviceBytes(t, "dev-dead"))
		rt.clock.advance(time.Minute + time.Millisecond)
		again, err := rt.Start(ctx, testRun("dead", "dev-dead"))
		require.NoError(t, err)
		assert.Equal(t, 2, again.Attempt)
		assert.Equal(t, r.CreatedAt, again.CreatedAt, "created as first")
		assert.Empty(t, rt.output(t, "dead"), "the dead attempt's output is gone")
		assert.Equal(t, int64(0), rt.deviceBytes(t, "dev-dead"), "and uncounted")
		assert.ErrorIs(t, rt.Finish(ctx, withStatus(r, run.Succeeded), nil), run.ErrFinished, "the dead attempt cannot finish it")
	})
	t.Run("StartNew", func(t *testing.T) {
		rt := newRunStore(t)
		r, err := rt.StartNew(ctx, testRun("fresh", "dev-a"))
		require.NoError(t, err)
		assert.Equal(t, run.Running, r.Status)
		assert.Equal(t, 1, r.Attempt)
		got, err := rt.Get(ctx, "fresh")
		require.NoError(t, err)
		assert.Equal(t, run.Running, got.Status)
		assert.NotNil(t, got.StartedAt, "started")
	})
}

func withStatus(r run.Run, st run.Status) run.Run {
	r.Status = st
	return r
}

// TestRunStoreStartFinished holds the rule that a finished run is never run again: Start, alone
// or among others that arrive together, returns run.ErrFinished with the stored run and changes
// nothing, even long after its lease.
func TestRunStoreStartFinished(t *testing.T) {
	ctx := context.Background()
	for _, together := range []int{1, 5} {
		t.Run(fmt.Sprintf("%d starts together", together), func(t *testing.T) {
			rt := newRunStore(t)
			r, err := rt.Start(ctx, testRun("done", "dev-done"))
			require.NoError(t, err)
			output := randomOutput(2*run.ChunkSize + 99)
			rt.finish(t, r, output)
			before, err := rt.Get(ctx, "done")
			require.NoError(t, err)
			rt.clock.advance(24 * time.Hour)

			var wg sync.WaitGroup
			errs := make([]error, together)
			got := make([]run.Run, together)
			for i := range together {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := "done"
					if i > 0 {
						id = fmt.Sprintf("other-%d", i)
					}
					got[i], errs[i] = rt.Start(ctx, testRun(id, "dev-other"))
				}()
			}
			wg.Wait()
			require.ErrorIs(t, errs[0], run.ErrFinished, "start run done again")
			assert.Equal(t, run.Succeeded, got[0].Status, "the stored run comes back")
			for i := 1; i < together; i++ {
				assert.NoErrorf(t, errs[i], "start run other-%d beside it", i)
			}
			after, err := rt.Get(ctx, "done")
			require.NoError(t, err)
			assert.Equal(t, before, after, "run done unchanged")
			sameBytes(t, output, rt.output(t, "done"), "output of run done")
			assert.Equal(t, int64(len(output)), rt.deviceBytes(t, "dev-done"), "bytes of device dev-done")
		})
	}
}

func TestRunStoreFinish(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	tests := []struct {
		name    string
		prepare func(r run.Run) run.Run // returns the run as Finish is given it
		wantErr error
		status  run.Status
	}{
		{"this attempt", func(r run.Run) run.Run {
			r, err := rt.Start(ctx, r)
			require.NoError(t, err)
			return r
		}, nil, run.Failed},
		{"never started", func(r run.Run) run.Run { return r }, nil, run.Failed},
		{"another attempt's", func(r run.Run) run.Run {
			started, err := rt.Start(ctx, r)
			require.NoError(t, err)
			started.Attempt = 7
			return started
		}, run.ErrFinished, run.Running},
		{"finished already", func(r run.Run) run.Run {
			started, err := rt.Start(ctx, r)
			require.NoError(t, err)
			require.NoError(t, rt.Finish(ctx, withStatus(started, run.Succeeded), []byte("first")))
			return started
		}, run.ErrFinished, run.Succeeded},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.prepare(testRun(fmt.Sprintf("fin-%d", i), fmt.Sprintf("dev-fin-%d", i)))
			err := rt.Finish(ctx, withStatus(r, run.Failed), []byte("tail"))
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			} else {
				assert.NoError(t, err)
			}
			got, err := rt.Get(ctx, r.ID)
			require.NoError(t, err)
			assert.Equalf(t, tt.status, got.Status, "status of run %s", r.ID)
		})
	}
	t.Run("not terminal", func(t *testing.T) {
		assert.ErrorContains(t, rt.Finish(ctx, testRun("x", "d"), nil), "not terminal")
		assert.ErrorContains(t, rt.FinishNew(ctx, testRun("x", "d"), nil), "not terminal")
	})
}

// TestRunStoreFinishTogether finishes many runs at once, several on one device, so finishes share
// transactions and batch writes; every byte is counted once.
func TestRunStoreFinishTogether(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	const n, devices = 60, 7
	want := map[string]int64{}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		dev := fmt.Sprintf("dev-%d", i%devices)
		tail := randomOutput(100 + i)
		want[dev] += int64(len(tail))
		r := testRun(fmt.Sprintf("many-%02d", i), dev)
		r.Status, r.Bytes, r.Chunks = run.Succeeded, int64(len(tail)), 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs[i] = rt.FinishNew(ctx, r, tail)
				return
			}
			if _, err := rt.Start(ctx, r); err != nil {
				errs[i] = err
				return
			}
			r.Attempt = 1
			errs[i] = rt.Finish(ctx, r, tail)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoErrorf(t, err, "run many-%02d", i)
	}
	for dev, b := range want {
		assert.Equalf(t, b, rt.deviceBytes(t, dev), "bytes of device %s", dev)
	}
	for i := range n {
		id := fmt.Sprintf("many-%02d", i)
		sameBytes(t, randomOutput(100+i), rt.output(t, id), "output of run "+id)
	}
}

func TestRunStoreReconcile(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	tail := []byte("Router uptime 42d")
	finished := func(id, dev string) run.Run {
		r := testRun(id, dev)
		r.Status, r.Bytes, r.Chunks = run.Succeeded, int64(len(tail)), 1
		require.NoError(t, rt.FinishNew(ctx, r, tail))
		return r
	}
	deleteLedger := func(dev, id string) {
		_, err := rt.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(rt.table), Key: tailKey(dev, id)})
		require.NoError(t, err)
	}
	tests := []struct {
		name    string
		prepare func(dev, id string)
		want    int64
		// entry: the run's entry exists after reconciling.
		entry bool
	}{
		{"whole", func(dev, id string) { finished(id, dev) }, int64(len(tail)), true},
		{"ledger item lost", func(dev, id string) { finished(id, dev); deleteLedger(dev, id) }, int64(len(tail)), true},
		{"run item lost", func(dev, id string) {
			item, err := runEntry(run.Run{ID: id, DeviceID: dev, Command: "show version", Status: run.Succeeded}, 40, 40, false)
			require.NoError(t, err)
			_, err = rt.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(rt.table), Item: item})
			require.NoError(t, err)
		}, 0, false},
		{"running", func(dev, id string) {
			_, err := rt.Start(ctx, testRun(id, dev))
			require.NoError(t, err)
		}, 0, false},
		{"finished without output", func(dev, id string) {
			r := testRun(id, dev)
			r.Status = run.Failed
			require.NoError(t, rt.FinishNew(ctx, r, nil))
		}, 0, true},
		{"finished without output, entry lost", func(dev, id string) {
			r := testRun(id, dev)
			r.Status = run.Failed
			require.NoError(t, rt.FinishNew(ctx, r, nil))
			deleteLedger(dev, id)
		}, 0, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, id := fmt.Sprintf("dev-rec-%d", i), fmt.Sprintf("rec-%d", i)
			tt.prepare(dev, id)
			require.NoError(t, rt.Reconcile(ctx, dev, id))
			assert.Equalf(t, tt.want, rt.deviceBytes(t, dev), "bytes of device %s", dev)
			require.NoError(t, rt.Reconcile(ctx, dev, id), "again")
			assert.Equalf(t, tt.want, rt.deviceBytes(t, dev), "bytes of device %s after a second reconcile", dev)
			out, err := rt.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(rt.table), Key: tailKey(dev, id), ConsistentRead: aws.Bool(true)})
			require.NoError(t, err)
			assert.Equal(t, tt.entry, len(out.Item) > 0, "the run's entry exists")
		})
	}
}

func TestRunStoreGet(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	_, err := rt.Get(ctx, "never")
	assert.ErrorIs(t, err, run.ErrNotFound, "a run never stored")

	r := testRun("expiring", "dev-a")
	r.Status, r.ExpiresAt = run.Succeeded, rt.clock.now().Add(time.Hour).Truncate(time.Second)
	exit := 3
	r.ExitStatus, r.Message, r.Reason = &exit, "boom", "exit_status"
	r.Timings = run.Timings{ConnectMS: 1, AuthMS: 2, FirstByteMS: 3, TotalMS: 4}
	require.NoError(t, rt.FinishNew(ctx, r, nil))
	got, err := rt.Get(ctx, "expiring")
	require.NoError(t, err)
	assert.Equal(t, r, got, "run expiring as stored")
	rt.clock.advance(time.Hour)
	_, err = rt.Get(ctx, "expiring")
	assert.ErrorIs(t, err, run.ErrNotFound, "an expired run waiting for TTL")
}

func TestRunStoreListByDevice(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	var want []string // newest first
	for i := range 7 {
		r := testRun(fmt.Sprintf("l%d", i), "dev-list")
		r.CreatedAt, r.Status = base.Add(time.Duration(i)*time.Second), run.Succeeded
		if i == 3 {
			r.ExpiresAt = base.Add(-time.Hour) // expired: not listed
		} else {
			want = append([]string{r.ID}, want...)
		}
		require.NoError(t, rt.FinishNew(ctx, r, nil))
	}
	other := testRun("o1", "dev-other")
	other.Status = run.Succeeded
	require.NoError(t, rt.FinishNew(ctx, other, nil))
	// An unfinished run is listed first (GSI by_device), then the finished ones by their entries.
	running := testRun("l9-running", "dev-list")
	running.CreatedAt = base.Add(time.Minute)
	_, err := rt.Start(ctx, running)
	require.NoError(t, err)
	want = append([]string{running.ID}, want...)

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging ends")
		runs, next, err := rt.ListByDevice(ctx, "dev-list", cursor, 2)
		require.NoError(t, err)
		for _, r := range runs {
			got = append(got, r.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, want, got, "runs of dev-list: unfinished, then newest job first")

	_, otherCursor, err := rt.ListByDevice(ctx, "dev-list", "", 1)
	require.NoError(t, err)
	for name, cursor := range map[string]string{
		"garbage":                 "%%%",
		"another device's cursor": otherCursor,
		"a table key":             mustCursor(t, map[string]string{"pk": "RUN#l1", "sk": "META"}),
	} {
		t.Run("bad cursor: "+name, func(t *testing.T) {
			device := "dev-other"
			if name != "another device's cursor" {
				device = "dev-list"
			}
			_, _, err := rt.ListByDevice(ctx, device, cursor, 2)
			assert.ErrorIs(t, err, fault.ErrBadCursor)
		})
	}
}

func TestRunStoreAbandon(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	tests := []struct {
		name    string
		prepare func(id string)
		status  run.Status // afterwards; "" for none
		reason  string
	}{
		{"running", func(id string) {
			_, err := rt.Start(ctx, testRun(id, "dev-ab"))
			require.NoError(t, err)
		}, run.Failed, "delivery_failed"},
		{"finished", func(id string) {
			r := testRun(id, "dev-ab")
			r.Status = run.Succeeded
			require.NoError(t, rt.FinishNew(ctx, r, nil))
		}, run.Succeeded, ""},
		{"missing", func(string) {}, "", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("ab-%d", i)
			tt.prepare(id)
			require.NoError(t, rt.Abandon(ctx, id, "delivery_failed"))
			got, err := rt.Get(ctx, id)
			if tt.status == "" {
				assert.ErrorIsf(t, err, run.ErrNotFound, "run %s stays missing", id)
				return
			}
			require.NoError(t, err)
			assert.Equalf(t, tt.status, got.Status, "status of run %s", id)
			assert.Equalf(t, tt.reason, got.Reason, "reason of run %s", id)
			if tt.status == run.Failed {
				require.NotNilf(t, got.FinishedAt, "run %s finished", id)
				assert.Equalf(t, rt.clock.now(), *got.FinishedAt, "finish time of run %s", id)
				assert.Truef(t, got.LeaseUntil.IsZero(), "run %s holds no lease", id)
			}
			// Listed once, finished, by its entry.
			listed, _, err := rt.ListByDevice(ctx, "dev-ab", "", 100)
			require.NoError(t, err)
			var statuses []run.Status
			for _, r := range listed {
				if r.ID == id {
					statuses = append(statuses, r.Status)
				}
			}
			assert.Equalf(t, []run.Status{tt.status}, statuses, "run %s as its device's runs list it", id)
		})
	}
}

// cliText is n bytes of interface status lines, as compressible as real CLI output.
func cliText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "GigabitEthernet0/%d is up, line protocol is up\n  Hardware is iGbE, address is 5254.00%02x.%04x\n  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,\n", i, i%256, i*7)
	}
	return b.Bytes()[:n]
}

func TestRunStorePackedTail(t *testing.T) {
	rt := newRunStore(t)
	tests := []struct {
		name   string
		output []byte
		packed bool
	}{
		{"short text stays as it is", cliText(packMinBytes - 1), false},
		{"1,000 bytes of CLI text are deflated", cliText(1000), true},
		{"random bytes do not shrink", randomOutput(900), false},
		{"an output stored once keeps no tail", cliText(run.MinSharedBytes), false},
		{"text after full chunks: the tail is deflated", cliText(2*run.ChunkSize + 3000), true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := fmt.Sprintf("dev-packed-%d", i)
			r := testRun(fmt.Sprintf("packed-%d", i), dev)
			r.PreviousRunID, r.Changed = "before", new(bool) // a repeated, unchanged output of 1 KB or more is stored once
			r = rt.finish(t, r, tt.output)
			use, err := rt.DeviceUsage(context.Background(), dev)
			require.NoError(t, err)
			assert.Equal(t, int64(len(tt.output)), use.ChargedBytes, "charged: the output's bytes")
			out, err := rt.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(rt.table), Key: runKey(r.ID)})
			require.NoError(t, err)
			z, packed := out.Item["tail_z"].(*types.AttributeValueMemberB)
			_, raw := out.Item["tail"]
			_, shared := out.Item["blob"]
			require.Equal(t, tt.packed, packed, "tail_z stored")
			assert.Equal(t, !tt.packed && !shared, raw, "tail stored as it is")
			if packed {
				tail := len(tt.output) % run.ChunkSize
				assert.Less(t, len(z.Value), tail/2, "deflated tail of %d bytes", tail)
				assert.Equal(t, int64(len(tt.output)-tail+len(z.Value)), use.StoredBytes, "stored: the chunks and the deflated tail")
			} else if !shared {
				assert.Equal(t, int64(len(tt.output)), use.StoredBytes, "stored: the output as it is")
			}
			sameBytes(t, tt.output, rt.output(t, r.ID), "whole output")
			// A range that ends inside the tail, as a command's output is read.
			from := int64(len(tt.output)) - int64(len(tt.output)%run.ChunkSize)/2 - 10
			var part bytes.Buffer
			require.NoError(t, rt.WriteOutputRange(context.Background(), r, from, 20, &part))
			sameBytes(t, tt.output[from:from+20], part.Bytes(), "range in the tail")
		})
	}
	_, err := unpackTail([]byte("not deflate"), 10)
	assert.Error(t, err, "a tail that does not inflate")
	z, ok := packTail(cliText(1000))
	require.True(t, ok)
	_, err = unpackTail(z, 999)
	assert.ErrorContains(t, err, "1000 bytes, want 999", "a tail of another size")
}
