package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/retention"
	"github.com/netauto/netauto/internal/run"
)

// noisyConfig is a configuration of platform p of about n bytes with lines ending in eol: the
// body's lines, and the platform's noise lines (from the drift corpus) with values that change
// with night, at the top, in the middle and at the end.
func noisyConfig(p string, night, n int, eol string) string {
	noise := map[string][]string{
		"cisco_iosxe": {"Current configuration : %d bytes", "! Last configuration change at 02:14:%02d UTC Mon Dec 7 2026 by admin", "ntp clock-period 360287970189639%02d"},
		"arista_eos":  {"! Startup-config last modified at  Mon Dec  7 02:14:%02d 2026 by admin", "Timezone: UTC", "Mon Dec  7 02:14:%02d 2026"},
		"juniper_junos": {"## Last commit: 2026-12-07 02:14:%02d UTC by admin", "## Last changed: 2026-12-07 02:14:%02d UTC",
			"Current time: 2026-12-07 02:14:%02d UTC"},
		"cisco_nxos": {"!Time: Mon Dec  7 02:14:%02d 2026", "!Running configuration last done at: Sun Dec  6 23:10:%02d 2026", "feature bgp"},
	}[p]
	line := func(i int) string {
		if strings.Contains(noise[i], "%") {
			return fmt.Sprintf(noise[i], night+i)
		}
		return noise[i]
	}
	var b strings.Builder
	b.WriteString(line(0) + eol + "hostname " + p + eol)
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "interface Ethernet%d%s description uplink %d%s", i, eol, i, eol)
		if i == 30 {
			b.WriteString(line(1) + eol)
		}
	}
	b.WriteString(line(2)) // the last line, without a line ending
	return b.String()
}

// sharedFinish finishes r (on a store that may not be rt's own) with output written through a
// chunk writer that filters p's noise, as the executor does; newRun finishes it with FinishNew.
func sharedFinish(t *testing.T, s *RunStore, r run.Run, p string, output []byte, newRun bool) (run.Run, error) {
	t.Helper()
	ctx := context.Background()
	prof, ok := platform.Lookup(p)
	require.True(t, ok, "platform %s", p)
	noise, err := platform.CompileNoise("show running-config", prof.NoiseFilters())
	require.NoError(t, err)
	if r.PreviousRunID == "" {
		// A command that ran before with the same output: its output is stored once.
		r.PreviousRunID, r.Changed = "before-"+r.ID, new(bool)
	}
	w := run.NewChunkWriter(ctx, s, r)
	w.FilterNoise(noise)
	for q := output; len(q) > 0; {
		n := min(len(q), 1000)
		_, err := w.Write(q[:n])
		require.NoError(t, err)
		q = q[n:]
	}
	r.Status, r.Bytes, r.Chunks, r.OutputDigest = run.Succeeded, w.Bytes(), w.Chunks(), w.Digest()
	r.ContentSHA256 = w.ContentSHA256()
	r.NoiseLines, r.NoiseOK = w.NoiseLines()
	finished := time.Now().UTC()
	r.FinishedAt = &finished
	if newRun {
		return r, s.FinishNew(ctx, r, w.Pending())
	}
	return r, s.Finish(ctx, r, w.Pending())
}

// readOutput reads a run's whole output back.
func readOutput(t *testing.T, s *RunStore, id string) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoErrorf(t, s.WriteOutput(context.Background(), id, &buf), "read output of %s", id)
	return buf.Bytes()
}

// blobItems lists the items of outputs stored once in the table, by kind (HEAD, DATA, REF), as
// a test may: a scan.
func blobItems(t *testing.T, db API, table string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		var items []struct {
			PK string `dynamodbav:"pk"`
			SK string `dynamodbav:"sk"`
		}
		require.NoError(t, attributevalue.UnmarshalListOfMaps(page.Items, &items))
		for _, it := range items {
			if !strings.HasPrefix(it.PK, blobPrefix) {
				continue
			}
			kind, _, _ := strings.Cut(it.SK, "#")
			out[kind] = append(out[kind], it.PK+"/"+it.SK)
		}
	}
	return out
}

// TestRunStoreSharedOutputExact: outputs stored once read back byte for byte (whole, and per
// command of a sequence), over the drift corpus's platforms, LF and CRLF; two devices whose
// configurations differ only in noise share one body; each device is charged its exact bytes
// and the body is stored once.
func TestRunStoreSharedOutputExact(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	var wantStored int64
	for _, p := range []string{"cisco_iosxe", "arista_eos", "juniper_junos", "cisco_nxos"} {
		for _, eol := range []string{"\n", "\r\n"} {
			name := p + map[string]string{"\n": "/LF", "\r\n": "/CRLF"}[eol]
			t.Run(name, func(t *testing.T) {
				var body []byte
				for night, dev := range []string{"dev-a-" + name, "dev-b-" + name} {
					output := []byte(noisyConfig(p, night, 4500, eol))
					r := testRun("exact-"+fmt.Sprint(night)+"-"+name, dev)
					r.Command = "show running-config"
					r, err := sharedFinish(t, rs.runs.RunStore, r, p, output, night == 0)
					require.NoError(t, err)
					got := readOutput(t, rs.runs.RunStore, r.ID)
					require.Equal(t, string(output), string(got), "output read back byte for byte")
					sum := sha256.Sum256(got)
					assert.Equal(t, r.ContentSHA256, hex.EncodeToString(sum[:]), "content_sha256 is the exact bytes'")
					stored, err := rs.runs.Get(ctx, r.ID)
					require.NoError(t, err)
					assert.Equal(t, int64(len(output)), stored.Bytes, "bytes")
					l, err := readByteLedger(ctx, rs.db, rs.runs.table, dev)
					require.NoError(t, err)
					assert.Equal(t, int64(len(output)), l.Total, "the device is charged the exact bytes")
					sh, ok := run.Share(output, r.NoiseLines, r.NoiseOK)
					require.True(t, ok)
					require.NotEmpty(t, sh.Noise, "the noise lines are kept with the run")
					assert.Equal(t, int64(len(run.EncodeNoise(sh.Noise))), l.Kept, "the device keeps only its noise lines itself")
					if body == nil {
						body = sh.Body
					} else {
						assert.Equal(t, string(body), string(sh.Body), "configurations differing in noise share a body")
					}
				}
				wantStored += int64(len(body))
				got, err := rs.StoredBytes(ctx)
				require.NoError(t, err)
				assert.Equal(t, wantStored, got, "each body stored once")
			})
		}
	}

	t.Run("sequence read per command", func(t *testing.T) {
		parts := []string{noisyConfig("cisco_iosxe", 1, 3000, "\r\n"), "Cisco IOS XE Software, Version 17.09.04a\r\nr1 uptime is 3 weeks\r\n", "*02:14:07.123 UTC Mon Dec 7 2026\r\n"}
		r := testRun("exact-seq", "dev-seq")
		r.Command = run.Summary("show running-config", 3)
		var off int64
		for _, p := range parts {
			r.Commands = append(r.Commands, run.CommandResult{Command: "c", Status: run.Succeeded, Bytes: int64(len(p)), Offset: off})
			off += int64(len(p))
		}
		r, err := sharedFinish(t, rs.runs.RunStore, r, "cisco_iosxe", []byte(strings.Join(parts, "")), false)
		require.NoError(t, err)
		stored, err := rs.runs.Get(ctx, r.ID)
		require.NoError(t, err)
		for i, c := range stored.Commands {
			var buf bytes.Buffer
			require.NoError(t, rs.runs.WriteOutputRange(ctx, stored, c.Offset, c.Bytes, &buf))
			assert.Equal(t, parts[i], buf.String(), "command %d's output", i)
		}
		assert.Equal(t, strings.Join(parts, ""), string(readOutput(t, rs.runs.RunStore, r.ID)), "whole output")
	})

	// Outputs that are not stored once, however large: a body pays for itself only when the next
	// run gives the same output.
	changed, unchanged := true, false
	for _, tc := range []struct {
		name     string
		previous string
		changed  *bool
	}{
		{name: "a first run stays inline"},
		{name: "a changed output stays inline", previous: "before", changed: &changed},
		{name: "an output not compared stays inline", previous: "before"},
		{name: "an unchanged output is stored once", previous: "before", changed: &unchanged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := blobItems(t, rs.db, rs.runs.table)
			r := testRun("exact-"+strings.ReplaceAll(tc.name, " ", "-"), "dev-inline")
			output := cliText(2000)
			require.GreaterOrEqual(t, len(output), run.MinSharedBytes)
			w := run.NewChunkWriter(context.Background(), rs.runs.RunStore, r)
			_, err := w.Write(output)
			require.NoError(t, err)
			r.Status, r.Bytes, r.Chunks, r.PreviousRunID, r.Changed = run.Succeeded, w.Bytes(), w.Chunks(), tc.previous, tc.changed
			require.NoError(t, rs.runs.Finish(context.Background(), r, w.Pending()))
			assert.Equal(t, output, readOutput(t, rs.runs.RunStore, r.ID))
			refs := len(blobItems(t, rs.db, rs.runs.table)["REF"]) - len(before["REF"])
			if tc.changed != nil && !*tc.changed {
				assert.Equal(t, 1, refs, "references to the output's body")
				return
			}
			assert.Zero(t, refs, "references to the output's body")
		})
	}

	t.Run("small output stays inline", func(t *testing.T) {
		before := blobItems(t, rs.db, rs.runs.table)
		r, err := sharedFinish(t, rs.runs.RunStore, testRun("exact-small", "dev-small"), "cisco_iosxe", []byte("hostname r1\r\n"), false)
		require.NoError(t, err)
		assert.Equal(t, "hostname r1\r\n", string(readOutput(t, rs.runs.RunStore, r.ID)))
		assert.Equal(t, len(before["REF"]), len(blobItems(t, rs.db, rs.runs.table)["REF"]), "no reference for a small output")
	})
}

// sharedFleet is a retention table with runs of several devices whose configurations share one
// body.
type sharedFleet struct {
	retentionTable
	mu    sync.Mutex
	bytes map[string]int64 // run id -> bytes, of the runs expected to exist
	out   map[string][]byte
}

func newSharedFleet(t *testing.T) *sharedFleet {
	return &sharedFleet{retentionTable: newRetentionStore(t), bytes: map[string]int64{}, out: map[string][]byte{}}
}

// add finishes run id of dev on night (its noise) through store s (nil: the fleet's own).
func (f *sharedFleet) add(t *testing.T, s *RunStore, id, dev string, night int) error {
	t.Helper()
	if s == nil {
		s = f.runs.RunStore
	}
	output := []byte(noisyConfig("cisco_iosxe", night, 4500, "\n"))
	r := testRun(id, dev)
	r.Command, r.ExpiresAt = "show running-config", r.CreatedAt.Add(30*24*time.Hour)
	_, err := sharedFinish(t, s, r, "cisco_iosxe", output, false)
	if err == nil {
		f.mu.Lock()
		f.bytes[id], f.out[id] = int64(len(output)), output
		f.mu.Unlock()
	}
	return err
}

func (f *sharedFleet) forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.bytes, id)
	delete(f.out, id)
}

// check holds the invariants: every run expected reads back exactly; its device is charged the
// exact bytes of its runs; a body exists exactly while referenced, with one reference per run
// that exists, and the stored bytes are those of the bodies that exist.
func (f *sharedFleet) check(t *testing.T, devices []string) {
	t.Helper()
	ctx := context.Background()
	charged := map[string]int64{}
	for id, n := range f.bytes {
		r, err := f.runs.Get(ctx, id)
		require.NoErrorf(t, err, "run %s exists", id)
		charged[r.DeviceID] += n
		assert.Equalf(t, string(f.out[id]), string(readOutput(t, f.runs.RunStore, id)), "run %s reads back exactly", id)
	}
	for _, dev := range devices {
		got, err := f.DeviceBytes(ctx, dev)
		require.NoError(t, err)
		assert.Equalf(t, charged[dev], got, "device %s is charged its runs' bytes", dev)
	}
	items := blobItems(t, f.db, f.runs.table)
	assert.Len(t, items["REF"], len(f.bytes), "one reference per run: %v", items["REF"])
	stored, err := f.StoredBytes(ctx)
	require.NoError(t, err)
	if len(f.bytes) == 0 {
		assert.Empty(t, items, "nothing stored once is left when nothing references it")
		assert.Zero(t, stored, "stored bytes")
		return
	}
	require.Len(t, items["HEAD"], 1, "one body: %v", items)
	require.Len(t, items["DATA"], 1, "one generation of it")
	for id := range f.out {
		it, _, err := getItem[runItem](ctx, f.db, f.runs.table, runKey(id), "run")
		require.NoError(t, err)
		data, err := f.runs.blobs.body(ctx, string(it.Blob), string(it.BlobGen))
		require.NoError(t, err)
		assert.Equal(t, int64(len(data)), stored, "stored bytes are the one body's")
		return
	}
}

// purgeAll deletes the runs of devices as the byte purge does, from workers purges at once,
// each going through them in another order, and returns the bytes they reported freed.
func (f *sharedFleet) purgeAll(t *testing.T, s *RetentionStore, devices []string, workers int, keep func(id string) bool) int64 {
	t.Helper()
	ctx := context.Background()
	var cands []retention.Candidate
	for _, dev := range devices {
		cs, _, err := f.RunsOfDevice(ctx, dev, "", 1000)
		require.NoError(t, err)
		for _, c := range cs {
			if keep == nil || !keep(c.ID) {
				cands = append(cands, c)
			}
		}
	}
	var freed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range cands {
				c := cands[(i*(w+1)+w)%len(cands)]
				if w%2 == 1 {
					c = cands[len(cands)-1-i]
				}
				del, err := s.DeleteRun(ctx, c)
				if err != nil {
					errs <- err
					return
				}
				freed.Add(del.Bytes)
			}
			for _, c := range cands { // a worker's stride may skip some: finish them all
				del, err := s.DeleteRun(ctx, c)
				if err != nil {
					errs <- err
					return
				}
				freed.Add(del.Bytes)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for _, c := range cands {
		f.forget(c.ID)
	}
	return freed.Load()
}

// TestSharedOutputConcurrentFinishesAndPurges: four purges at once delete old runs while new
// runs of the same body finish: no output referenced is lost, the body's reference count and the
// charged and stored bytes stay exact, and when the last run goes nothing is left.
func TestSharedOutputConcurrentFinishesAndPurges(t *testing.T) {
	f := newSharedFleet(t)
	devices := []string{"so-1", "so-2", "so-3", "so-4"}
	var wg sync.WaitGroup
	for i, dev := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 3 {
				assert.NoError(t, f.add(t, nil, fmt.Sprintf("old-%d-%d", i, n), dev, n))
			}
		}()
	}
	wg.Wait()
	f.check(t, devices)
	var oldBytes int64
	for _, n := range f.bytes {
		oldBytes += n
	}

	// Four purges of the old runs, while every device finishes three new runs of the same body.
	done := make(chan int64)
	go func() {
		done <- f.purgeAll(t, f.RetentionStore, devices, 4, func(id string) bool { return strings.HasPrefix(id, "new-") })
	}()
	for i, dev := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 3 {
				assert.NoError(t, f.add(t, nil, fmt.Sprintf("new-%d-%d", i, n), dev, 10+n))
			}
		}()
	}
	wg.Wait()
	freed := <-done
	assert.Equal(t, oldBytes, freed, "every byte freed reported exactly once")
	f.check(t, devices)

	// Four purges of everything: nothing stored once is left.
	f.purgeAll(t, f.RetentionStore, devices, 4, nil)
	f.check(t, devices)
}

// errCrash is what a crashingAPI answers in place of the write it was told to fail.
var errCrash = errors.New("injected crash")

// crashingAPI passes calls to the client until the failAt-th write (from 1), which it fails, as
// a process that died at that step would leave it; 0 never fails.
type crashingAPI struct {
	API
	failAt int64
	writes atomic.Int64
}

func (c *crashingAPI) step() error {
	if n := c.writes.Add(1); c.failAt > 0 && n == c.failAt {
		return errCrash
	}
	return nil
}

func (c *crashingAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return c.API.PutItem(ctx, in, o...)
}

func (c *crashingAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return c.API.UpdateItem(ctx, in, o...)
}

func (c *crashingAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return c.API.DeleteItem(ctx, in, o...)
}

func (c *crashingAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return c.API.TransactWriteItems(ctx, in, o...)
}

func (c *crashingAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if err := c.step(); err != nil {
		return nil, err
	}
	return c.API.BatchWriteItem(ctx, in, o...)
}

// TestSharedOutputCrashAtEveryStep: a writer or a purge that dies at any one of its writes (a
// new body, a body shared with another run, the last reference of a body) leaves nothing that
// the next attempt (the redelivery that finishes the run, the next purge and its sweep) does not
// bring back to exact: no output lost while referenced, none left when unreferenced, counters
// exact.
func TestSharedOutputCrashAtEveryStep(t *testing.T) {
	ctx := context.Background()
	for _, shared := range []bool{false, true} {
		for step := int64(1); ; step++ {
			name := fmt.Sprintf("finish/shared=%v/step %d", shared, step)
			crashed := false
			t.Run(name, func(t *testing.T) {
				f := newSharedFleet(t)
				devices := []string{"cr-1", "cr-2"}
				if shared {
					require.NoError(t, f.add(t, nil, "other", "cr-2", 0))
				}
				c := &crashingAPI{API: f.db, failAt: step}
				s, err := NewRunStore(c, f.runs.table, time.Minute)
				require.NoError(t, err)
				err = f.add(t, s, "victim", "cr-1", 1)
				crashed = errors.Is(err, errCrash)
				if !crashed {
					require.NoError(t, err)
					f.check(t, devices)
					return
				}
				// The redelivery: the run finished already (Reconcile), or runs again.
				if r, err := f.runs.Get(ctx, "victim"); err == nil && r.Status.Terminal() {
					require.NoError(t, f.runs.Reconcile(ctx, "cr-1", "victim"))
					f.mu.Lock()
					f.bytes["victim"], f.out["victim"] = r.Bytes, []byte(noisyConfig("cisco_iosxe", 1, 4500, "\n"))
					f.mu.Unlock()
				} else {
					require.NoError(t, f.add(t, nil, "victim", "cr-1", 1))
				}
				f.check(t, devices)
				f.purgeAll(t, f.RetentionStore, devices, 1, nil)
				_, _, err = f.SweepOutputs(ctx)
				require.NoError(t, err)
				f.check(t, devices)
			})
			if !crashed {
				break
			}
			require.Less(t, step, int64(20), "the finish has few writes")
		}
		for step := int64(1); ; step++ {
			name := fmt.Sprintf("purge/shared=%v/step %d", shared, step)
			crashed := false
			t.Run(name, func(t *testing.T) {
				f := newSharedFleet(t)
				devices := []string{"cp-1", "cp-2"}
				require.NoError(t, f.add(t, nil, "victim", "cp-1", 1))
				if shared {
					require.NoError(t, f.add(t, nil, "other", "cp-2", 2))
				}
				c := &crashingAPI{API: f.db, failAt: step}
				s, err := NewRetentionStore(c, f.runs.table, "jobs")
				require.NoError(t, err)
				_, err = s.DeleteRun(ctx, f.candidate(t, "cp-1", "victim"))
				crashed = errors.Is(err, errCrash)
				if !crashed {
					require.NoError(t, err)
					f.forget("victim")
					f.check(t, devices)
					return
				}
				// The next purge deletes what is left of the run, and its sweep the body.
				if _, err := f.runs.Get(ctx, "victim"); err == nil {
					_, err := f.DeleteRun(ctx, f.candidate(t, "cp-1", "victim"))
					require.NoError(t, err)
				}
				f.forget("victim")
				_, _, err = f.SweepOutputs(ctx)
				require.NoError(t, err)
				f.check(t, devices)
				f.purgeAll(t, f.RetentionStore, devices, 1, nil)
				f.check(t, devices)
			})
			if !crashed {
				break
			}
			require.Less(t, step, int64(20), "the purge has few writes")
		}
	}
}

// TestSharedOutputRedelivery: finishing a run again (a redelivered message) never counts its
// reference twice, and an attempt whose output differs drops its own reference when it finds the
// run finished.
func TestSharedOutputRedelivery(t *testing.T) {
	ctx := context.Background()
	f := newSharedFleet(t)
	devices := []string{"rd-1"}
	require.NoError(t, f.add(t, nil, "rd", "rd-1", 1))
	for i := range 3 {
		err := f.add(t, nil, "rd", "rd-1", 1)
		require.ErrorIs(t, err, run.ErrFinished, "redelivery %d", i)
	}
	f.check(t, devices)
	// Another attempt with other output: a second body that must not stay.
	r := testRun("rd", "rd-1")
	_, err := sharedFinish(t, f.runs.RunStore, r, "cisco_iosxe", []byte(strings.Repeat("other body\n", 400)), false)
	require.ErrorIs(t, err, run.ErrFinished)
	f.check(t, devices)
	require.NoError(t, f.runs.Reconcile(ctx, "rd-1", "rd"))
	f.check(t, devices)
	f.purgeAll(t, f.RetentionStore, devices, 1, nil)
	f.check(t, devices)
}

// TestSharedOutputTTL: the TTL stream consumer's part: a run item TTL deleted drops its
// reference (twice, as a redelivered record, changes nothing more), and a head TTL deleted takes
// its data and stored bytes exactly once.
func TestSharedOutputTTL(t *testing.T) {
	ctx := context.Background()
	f := newSharedFleet(t)
	devices := []string{"ttl-1", "ttl-2"}
	require.NoError(t, f.add(t, nil, "t1", "ttl-1", 1))
	require.NoError(t, f.add(t, nil, "t2", "ttl-2", 2))
	it, _, err := getItem[runItem](ctx, f.db, f.runs.table, runKey("t1"), "run")
	blob := string(it.Blob)
	require.NoError(t, err)
	require.NotEmpty(t, blob)
	// TTL deletes t1's run item: the consumer forgets its tail and its reference.
	_, err = f.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.runs.table), Key: runKey("t1")})
	require.NoError(t, err)
	for range 2 {
		_, err = f.ForgetTTLChunk(ctx, runPrefix+"t1", runMetaSK, "ttl-1", it.TailSize)
		require.NoError(t, err)
		require.NoError(t, f.ForgetTTLReference(ctx, blob, "t1", it.Attempt))
	}
	f.forget("t1")
	f.check(t, devices)

	// t2 goes with a purge that stops before it checks the body, which stays unreferenced
	// until TTL deletes its head (its expiry passed): the data and the stored bytes go, once.
	crashing, err := NewRetentionStore(&crashingAPI{API: f.db, failAt: 2}, f.runs.table, "jobs")
	require.NoError(t, err)
	_, err = crashing.DeleteRun(ctx, f.candidate(t, "ttl-2", "t2"))
	require.ErrorIs(t, err, errCrash, "the purge stops after deleting the run")
	f.forget("t2")
	head, found, err := getItem[blobHead](ctx, f.db, f.runs.table, blobKeyOf(blob, blobHeadSK), "head")
	require.NoError(t, err)
	require.True(t, found)
	assert.Greater(t, head.ExpiresAt, it.ExpiresAt, "the head outlives its runs")
	_, err = f.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.runs.table), Key: blobKeyOf(blob, blobHeadSK)})
	require.NoError(t, err)
	freed := 0
	for range 2 {
		did, err := f.ForgetTTLBlob(ctx, blobPrefix+blob, blobHeadSK, head.Gen, head.Size)
		require.NoError(t, err)
		if did {
			freed++
		}
	}
	assert.Equal(t, 1, freed, "the body's bytes are subtracted once")
	stored, err := f.StoredBytes(ctx)
	require.NoError(t, err)
	assert.Zero(t, stored, "stored bytes")
	assert.Empty(t, blobItems(t, f.db, f.runs.table)["DATA"], "the data went with its head")
}

// hookAPI passes calls to the client and runs before, once, just before its at-th write (from 1).
type hookAPI struct {
	crashingAPI
	at     int64
	before func()
}

func (h *hookAPI) step() {
	if n := h.writes.Add(1); n == h.at && h.before != nil {
		h.before()
	}
}

func (h *hookAPI) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	h.step()
	return h.API.PutItem(ctx, in, o...)
}

func (h *hookAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	h.step()
	return h.API.UpdateItem(ctx, in, o...)
}

func (h *hookAPI) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	h.step()
	return h.API.DeleteItem(ctx, in, o...)
}

func (h *hookAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	h.step()
	return h.API.TransactWriteItems(ctx, in, o...)
}

func (h *hookAPI) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	h.step()
	return h.API.BatchWriteItem(ctx, in, o...)
}

// TestSharedOutputLastReferenceRace: a new run references a body at each point of the purge
// that drops the body's last reference (before the purge's writes, between them): the new run's
// output is never lost, and the body goes only when the new run goes too.
func TestSharedOutputLastReferenceRace(t *testing.T) {
	ctx := context.Background()
	// The purge's writes: 1 the run with its reference (a transaction), 2 the dying mark, 3 the
	// body's deletion (a transaction); past 3 the purge is over before the writer starts.
	for at := int64(1); at <= 4; at++ {
		t.Run(fmt.Sprintf("writer before purge write %d", at), func(t *testing.T) {
			f := newSharedFleet(t)
			devices := []string{"race-1", "race-2"}
			require.NoError(t, f.add(t, nil, "race-old", "race-1", 1))
			h := &hookAPI{crashingAPI: crashingAPI{API: f.db}, at: at}
			h.before = func() { assert.NoError(t, f.add(t, nil, "race-new", "race-2", 2), "the new run finishes") }
			s, err := NewRetentionStore(h, f.runs.table, "jobs")
			require.NoError(t, err)
			del, err := s.DeleteRun(ctx, f.candidate(t, "race-1", "race-old"))
			require.NoError(t, err)
			require.True(t, del.Run, "the old run is deleted")
			f.forget("race-old")
			if at == 4 {
				require.NoError(t, f.add(t, nil, "race-new", "race-2", 2), "the new run finishes after the purge")
			}
			f.check(t, devices)
			f.purgeAll(t, f.RetentionStore, devices, 1, nil)
			_, _, err = f.SweepOutputs(ctx)
			require.NoError(t, err)
			f.check(t, devices)
		})
	}
}

// TestSharedOutputStaleAttempt: an attempt that lost its run's lease finishes the same output as
// the attempt holding the run, between the holder's reference and its run item: the stale
// attempt is refused and drops only its own reference, so the holder's output is not lost; and
// a stale attempt with other output leaves no body behind.
func TestSharedOutputStaleAttempt(t *testing.T) {
	for _, same := range []bool{true, false} {
		t.Run(map[bool]string{true: "same output", false: "other output"}[same], func(t *testing.T) {
			ctx := context.Background()
			f := newSharedFleet(t)
			rt := f.runs
			r := testRun("stale", "st-1")
			r.Command, r.ExpiresAt = "show running-config", r.CreatedAt.Add(30*24*time.Hour)
			first, err := rt.Start(ctx, r)
			require.NoError(t, err)
			rt.clock.advance(2 * rt.Lease)
			second, err := rt.Start(ctx, r)
			require.NoError(t, err)
			require.Equal(t, first.Attempt+1, second.Attempt, "the second attempt took the run over")
			output := []byte(noisyConfig("cisco_iosxe", 1, 4500, "\n"))
			stale := output
			if !same {
				stale = []byte(noisyConfig("cisco_iosxe", 1, 3000, "\n"))
			}
			// The holder's writes: 1 its reference, 2 the body's creation, 3 its run item.
			h := &hookAPI{crashingAPI: crashingAPI{API: f.db}, at: 3}
			h.before = func() {
				_, err := sharedFinish(t, rt.RunStore, first, "cisco_iosxe", stale, false)
				assert.ErrorIs(t, err, run.ErrFinished, "the stale attempt is refused")
			}
			holder, err := NewRunStore(h, rt.table, rt.Lease)
			require.NoError(t, err)
			_, err = sharedFinish(t, holder, second, "cisco_iosxe", output, false)
			require.NoError(t, err)
			f.bytes[r.ID], f.out[r.ID] = int64(len(output)), output
			f.check(t, []string{"st-1"})
			f.purgeAll(t, f.RetentionStore, []string{"st-1"}, 1, nil)
			f.check(t, []string{"st-1"})
		})
	}
}

// TestSharedOutputTakeoverDropsEarlierReferences: an attempt that stopped after referencing its
// output and before writing its run leaves a reference; the attempt that takes the run over and
// finishes the same output drops it, so the body goes with the run and not only with the
// reference's TTL (never, when runs do not expire).
func TestSharedOutputTakeoverDropsEarlierReferences(t *testing.T) {
	ctx := context.Background()
	f := newSharedFleet(t)
	rt := f.runs
	r := testRun("takeover", "to-1")
	r.Command = "show running-config" // no expiry: nothing but the run's deletion removes its references
	first, err := rt.Start(ctx, r)
	require.NoError(t, err)
	output := []byte(noisyConfig("cisco_iosxe", 1, 4500, "\n"))
	// The first attempt's writes: 1 its reference, 2 the body's creation, 3 its run item.
	crashing, err := NewRunStore(&crashingAPI{API: f.db, failAt: 3}, rt.table, rt.Lease)
	require.NoError(t, err)
	_, err = sharedFinish(t, crashing, first, "cisco_iosxe", output, false)
	require.ErrorIs(t, err, errCrash, "the first attempt stops before its run item")
	rt.clock.advance(2 * rt.Lease)
	second, err := rt.Start(ctx, r)
	require.NoError(t, err)
	require.Equal(t, 2, second.Attempt, "the second attempt took the run over")
	_, err = sharedFinish(t, rt.RunStore, second, "cisco_iosxe", output, false)
	require.NoError(t, err)
	f.bytes[r.ID], f.out[r.ID] = int64(len(output)), output
	f.check(t, []string{"to-1"})
	f.purgeAll(t, f.RetentionStore, []string{"to-1"}, 1, nil)
	f.check(t, []string{"to-1"})
}
