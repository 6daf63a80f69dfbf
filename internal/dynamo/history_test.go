package dynamo

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// TestRunStoreHistoryAndPrevious: a device's finished runs of one command are listed newest first
// and paged, without its other commands, other devices or a running run; Previous finds the newest
// succeeded run created before a run, skipping failures, and the drift fields round-trip.
func TestRunStoreHistoryAndPrevious(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	changed := true
	var want []string // newest first
	statuses := []run.Status{run.Succeeded, run.Succeeded, run.Failed, run.Succeeded, run.TimedOut, run.Failed}
	for i, st := range statuses {
		r := testRun(fmt.Sprintf("h%d", i), "dev-hist")
		r.Command = "show running-config"
		r.CreatedAt, r.Status = base.Add(time.Duration(i)*time.Second), st
		r.ContentSHA256, r.FilteredDigest = fmt.Sprintf("%064d", i), fmt.Sprintf("%032d", i)
		if i == 3 {
			r.Changed, r.PreviousRunID = &changed, "h1"
		}
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
		want = append([]string{r.ID}, want...)
	}
	for _, r := range []run.Run{
		{ID: "other-cmd", DeviceID: "dev-hist", Command: "show version", Status: run.Succeeded, CreatedAt: base},
		{ID: "other-dev", DeviceID: "dev-else", Command: "show running-config", Status: run.Succeeded, CreatedAt: base},
	} {
		require.NoError(t, rt.FinishNew(ctx, r, nil))
	}
	running := testRun("h-running", "dev-hist")
	running.Command, running.CreatedAt = "show running-config", base.Add(time.Minute)
	_, err := rt.Start(ctx, running)
	require.NoError(t, err)

	var got []run.Run
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10, "paging ends")
		runs, next, err := rt.History(ctx, "dev-hist", "show running-config", cursor, 4)
		require.NoError(t, err)
		got = append(got, runs...)
		if next == "" {
			break
		}
		cursor = next
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	require.Equal(t, want, ids, "history newest first, finished runs of this command and device only")
	h3 := got[len(got)-4]
	require.Equal(t, "h3", h3.ID)
	require.NotNil(t, h3.Changed, "changed stored")
	assert.True(t, *h3.Changed, "changed")
	assert.Equal(t, "h1", h3.PreviousRunID, "previous run id")
	assert.Equal(t, fmt.Sprintf("%064d", 3), h3.ContentSHA256, "content hash")
	assert.Equal(t, fmt.Sprintf("%032d", 3), h3.FilteredDigest, "filtered digest")
	assert.Nil(t, got[len(got)-1].Changed, "a first run's changed is null")

	_, _, err = rt.History(ctx, "dev-else", "show running-config", cursor+"x", 4)
	assert.ErrorIs(t, err, fault.ErrBadCursor, "a bad cursor")

	tests := []struct {
		name   string
		before run.Run
		want   string // "" for none
	}{
		{"after failures", run.Run{ID: "n6", CreatedAt: base.Add(6 * time.Second)}, "h3"},
		{"the run itself is skipped", run.Run{ID: "h3", CreatedAt: base.Add(3 * time.Second)}, "h1"},
		{"of a job in between", run.Run{ID: "h2", CreatedAt: base.Add(2 * time.Second)}, "h1"},
		{"first run", run.Run{ID: "h0", CreatedAt: base}, ""},
		{"other command", run.Run{ID: "n7", Command: "show clock", CreatedAt: base.Add(time.Hour)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.before
			r.DeviceID = "dev-hist"
			if r.Command == "" {
				r.Command = "show running-config"
			}
			prev, err := rt.Previous(ctx, r)
			if tt.want == "" {
				require.ErrorIs(t, err, run.ErrNotFound, "no previous run")
				return
			}
			require.NoError(t, err, "previous run")
			assert.Equal(t, tt.want, prev.ID, "previous run")
			assert.Equal(t, run.Succeeded, prev.Status, "previous run succeeded")
		})
	}
}

// TestRunStorePreviousSequence: two sequences that share a summary ("show run (+1 more)") share
// the by_command partition, whose items keep their commands, and a run's previous run is the
// newest one that ran its commands.
func TestRunStorePreviousSequence(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	stored := func(id string, at int, cmds ...string) run.Run {
		r := testRun(id, "dev-seq")
		r.Command = cmds[0] + " (+1 more)"
		r.CreatedAt, r.Status = base.Add(time.Duration(at)*time.Second), run.Succeeded
		for _, c := range cmds {
			r.Commands = append(r.Commands, run.CommandResult{Command: c, Status: run.Succeeded})
		}
		return r
	}
	for _, r := range []run.Run{
		stored("nightly-1", 0, "show run", "show version"),
		stored("adhoc", 1, "show run", "show clock"),
	} {
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
	}
	hist, _, err := rt.History(ctx, "dev-seq", "show run (+1 more)", "", 10)
	require.NoError(t, err, "history")
	require.Len(t, hist, 2, "both sequences are in the summary's history")
	for _, h := range hist {
		assert.Len(t, h.Commands, 2, "run %s's history item keeps its commands (the index projects cmds)", h.ID)
	}
	tests := []struct {
		name string
		r    run.Run
		want string // "" for none
	}{
		{"past a run of other commands", stored("nightly-2", 2, "show run", "show version"), "nightly-1"},
		{"the newest of its own", stored("adhoc-2", 2, "show run", "show clock"), "adhoc"},
		{"none of its commands", stored("other", 2, "show run", "show inventory"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, err := rt.Previous(ctx, tt.r)
			if tt.want == "" {
				require.ErrorIs(t, err, run.ErrNotFound, "no previous run")
				return
			}
			require.NoError(t, err, "previous run")
			assert.Equal(t, tt.want, prev.ID, "previous run")
		})
	}
}

// TestRunStoreListByDeviceDrift: a device's run list carries what drift adds to a run (changed,
// previous_run_id, content_sha256, filtered_digest) and a sequence's per-command results, all from
// the by_device index's projection.
func TestRunStoreListByDeviceDrift(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	changed := true
	first := testRun("ld-1", "dev-list")
	first.Command, first.Status, first.CreatedAt = "show running-config", run.Succeeded, base
	second := first
	second.ID, second.CreatedAt = "ld-2", base.Add(time.Second)
	second.Changed, second.PreviousRunID = &changed, first.ID
	second.ContentSHA256, second.FilteredDigest = fmt.Sprintf("%064d", 2), fmt.Sprintf("%032d", 2)
	seq := testRun("ld-3", "dev-list")
	seq.Command, seq.Status, seq.CreatedAt = "show run (+1 more)", run.Succeeded, base.Add(2*time.Second)
	seq.Commands = []run.CommandResult{{Command: "show run", Status: run.Succeeded, Bytes: 2}, {Command: "show clock", Status: run.Succeeded, Bytes: 1, Offset: 2}}
	for _, r := range []run.Run{first, second, seq} {
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
	}
	runs, _, err := rt.ListByDevice(ctx, "dev-list", "", 10)
	require.NoError(t, err)
	require.Len(t, runs, 3)
	got := runs[1]
	require.Equal(t, "ld-2", got.ID, "newest first")
	require.NotNil(t, got.Changed, "changed is listed")
	assert.True(t, *got.Changed, "changed")
	assert.Equal(t, "ld-1", got.PreviousRunID, "previous run id")
	assert.Equal(t, second.ContentSHA256, got.ContentSHA256, "content hash")
	assert.Equal(t, second.FilteredDigest, got.FilteredDigest, "filtered digest")
	assert.Nil(t, runs[2].Changed, "a first run's changed is null")
	assert.Equal(t, seq.Commands, runs[0].Commands, "a sequence's per-command results are listed")
}

// TestRunItemCompact: a finished run item is written without what it can be read from (its id,
// from its key; a single command's result, from the run) and without index entries but by_day's
// (its entry lists it), and reads back the same through Get, ListByDevice, History and Previous,
// beside an item written the older way (in by_device and by_command), listed after them.
func TestRunItemCompact(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now()
	exit0 := 0
	newRun := func(id string, at time.Duration, cmds ...run.CommandResult) run.Run {
		r := testRun(id, "dev-compact")
		r.Command, r.Status, r.ExitStatus, r.Bytes = "show clock", run.Succeeded, &exit0, 3
		r.CreatedAt, r.FilteredDigest, r.Commands = base.Add(at), fmt.Sprintf("%032d", at/time.Second), cmds
		return r
	}
	one := run.CommandResult{Command: "show clock", Status: run.Succeeded, ExitStatus: &exit0, Bytes: 3}
	otherExit := 1
	tests := []struct {
		name     string
		r        run.Run
		wantOne  bool
		wantCmds int
	}{
		{name: "one command, the run's own result", r: newRun("c2-one", 2*time.Second, one), wantOne: true},
		{name: "one command, another exit status", r: newRun("c3-exit", 3*time.Second, run.CommandResult{Command: "show clock", Status: run.Succeeded, ExitStatus: &otherExit, Bytes: 3}), wantCmds: 1},
		{name: "no command results", r: newRun("c4-none", 4*time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, rt.FinishNew(ctx, tt.r, []byte("12\n")))
			raw, err := rt.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(rt.table), Key: runKey(tt.r.ID)})
			require.NoError(t, err)
			assert.NotContains(t, raw.Item, "id", "the id is read from the key")
			assert.Equal(t, tt.wantOne, raw.Item["c1"] != nil, "c1")
			if cmds, ok := raw.Item["cmds"].(*types.AttributeValueMemberL); ok {
				assert.Len(t, cmds.Value, tt.wantCmds, "cmds")
			} else {
				assert.Zero(t, tt.wantCmds, "cmds")
			}
			assert.NotContains(t, raw.Item, "gsi1pk", "a finished run is listed by its entry, not in by_device")
			got, err := rt.Get(ctx, tt.r.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.r.ID, got.ID)
			assert.Equal(t, tt.r.Commands, got.Commands, "commands")
			assert.Equal(t, tt.r.Results(), got.Results(), "results")
		})
	}
	// An item written before: its id and its results stored, the run id in its sort keys, in GSI
	// by_command, without an entry.
	legacy := newRun("c1-legacy", time.Second, one)
	item, _, err := finishedRunItem(legacy, nil, nil)
	require.NoError(t, err)
	created := legacy.CreatedAt.Format(timeLayout) + "#" + legacy.ID
	item["id"], item["gsi1sk"], item["gsi3sk"] = &types.AttributeValueMemberS{Value: legacy.ID}, &types.AttributeValueMemberS{Value: created}, &types.AttributeValueMemberS{Value: created}
	item["gsi3pk"] = &types.AttributeValueMemberS{Value: commandPartition(legacy.DeviceID, legacy.Command)}
	item["gsi1pk"] = &types.AttributeValueMemberS{Value: devIndexPrefix + legacy.DeviceID}
	item["cmds"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"c": &types.AttributeValueMemberS{Value: "show clock"}, "s": &types.AttributeValueMemberS{Value: "succeeded"},
		"x": &types.AttributeValueMemberN{Value: "0"}, "b": &types.AttributeValueMemberN{Value: "3"}, "o": &types.AttributeValueMemberN{Value: "0"}}}}}
	delete(item, "c1")
	_, err = rt.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(rt.table), Item: item})
	require.NoError(t, err)

	listed, _, err := rt.ListByDevice(ctx, "dev-compact", "", 10)
	require.NoError(t, err)
	history, _, err := rt.History(ctx, "dev-compact", "show clock", "", 10)
	require.NoError(t, err)
	for what, runs := range map[string][]run.Run{"by device": listed, "history": history} {
		var ids []string
		for _, r := range runs {
			ids = append(ids, r.ID)
			assert.Len(t, r.Results(), 1, "%s: results of %s", what, r.ID)
		}
		assert.Equal(t, []string{"c4-none", "c3-exit", "c2-one", "c1-legacy"}, ids, "%s: newest first, the item written before last", what)
	}
	prev, err := rt.Previous(ctx, newRun("c5-next", 5*time.Second, one))
	require.NoError(t, err)
	assert.Equal(t, "c4-none", prev.ID, "previous of a later run")
	prev, err = rt.Previous(ctx, newRun("c1b-after-legacy", 1500*time.Millisecond, one))
	require.NoError(t, err)
	assert.Equal(t, "c1-legacy", prev.ID, "previous of a run created after the item written before")
	got, err := rt.Get(ctx, "c1-legacy")
	require.NoError(t, err)
	assert.Equal(t, "c1-legacy", got.ID)
	assert.Equal(t, legacy.Commands, got.Commands, "the item written before keeps its results")
}

// TestRunStoreLegacyCommands: a table whose GSI by_command held runs when entries began is read
// there too, until the index empties (checked again after legacyRecheck, then stored); a fresh
// table never reads it.
func TestRunStoreLegacyCommands(t *testing.T) {
	ctx := context.Background()
	marker := func(t *testing.T, rt runTable) map[string]types.AttributeValue {
		t.Helper()
		out, err := rt.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(rt.table), Key: retentionKey(commandEntriesSK), ConsistentRead: aws.Bool(true)})
		require.NoError(t, err)
		return out.Item
	}
	t.Run("fresh table", func(t *testing.T) {
		rt := newRunStore(t)
		legacy, err := rt.legacy(ctx)
		require.NoError(t, err)
		assert.False(t, legacy, "a fresh table holds no indexed runs")
		assert.Equal(t, &types.AttributeValueMemberBOOL{Value: false}, marker(t, rt)["legacy"], "stored")
	})
	t.Run("indexed runs until they are gone", func(t *testing.T) {
		rt := newRunStore(t)
		r := testRun("old-run", "dev-legacy")
		r.Status = run.Succeeded
		item, _, err := finishedRunItem(r, nil, nil)
		require.NoError(t, err)
		item["gsi3pk"] = &types.AttributeValueMemberS{Value: commandPartition(r.DeviceID, r.Command)}
		item["gsi3sk"] = &types.AttributeValueMemberS{Value: r.CreatedAt.Format(timeLayout) + "#" + r.ID}
		_, err = rt.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(rt.table), Item: item})
		require.NoError(t, err)

		legacy, err := rt.legacy(ctx)
		require.NoError(t, err)
		assert.True(t, legacy, "the index holds a run")
		// A second store (another executor) reads the stored answer.
		other, err := NewRunStore(rt.db, rt.table, time.Minute)
		require.NoError(t, err)
		legacy, err = other.legacy(ctx)
		require.NoError(t, err)
		assert.True(t, legacy, "another store reads the marker")

		_, err = rt.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(rt.table), Key: runKey(r.ID)})
		require.NoError(t, err)
		legacy, err = rt.legacy(ctx)
		require.NoError(t, err)
		assert.True(t, legacy, "kept for legacyRecheck")
		rt.clock.advance(legacyRecheck + time.Minute)
		legacy, err = rt.legacy(ctx)
		require.NoError(t, err)
		assert.False(t, legacy, "the index is empty")
		assert.Equal(t, &types.AttributeValueMemberBOOL{Value: false}, marker(t, rt)["legacy"], "stored")
	})
}

// TestRunItemJobID: a run item leaves out the job id its run id says (<job>.<device>) and reads
// it back; any other job id, and none, round-trip as they are, through Get and the by_day index.
func TestRunItemJobID(t *testing.T) {
	ctx := context.Background()
	rs := newRetentionStore(t)
	rt := rs.runs
	tests := []struct {
		name, id, job string
		stored        bool // job_id is in the item
	}{
		{name: "a job's run", id: "06h4job.dev-j", job: "06h4job"},
		{name: "another job", id: "06h4job.dev-j2", job: "06h4other", stored: true},
		{name: "no job, an id like a job's run", id: "06h4x.dev-j3"},
		{name: "no job", id: "plain-run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := tt.id[strings.LastIndex(tt.id, ".")+1:]
			if tt.id == "plain-run" {
				dev = "dev-plain"
			}
			r := testRun(tt.id, dev)
			r.JobID, r.Status = tt.job, run.Succeeded
			require.NoError(t, rt.FinishNew(ctx, r, []byte("x")))
			raw, err := rt.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(rt.table), Key: runKey(tt.id)})
			require.NoError(t, err)
			_, stored := raw.Item["job_id"]
			assert.Equal(t, tt.stored, stored, "job_id stored")
			got, err := rt.Get(ctx, tt.id)
			require.NoError(t, err)
			assert.Equal(t, tt.job, got.JobID, "job id read back")
			c := rs.candidate(t, dev, tt.id)
			assert.Equal(t, tt.job, c.JobID, "job id as the purges read it")
		})
	}
}

// TestRunStorePreviousIn: a device's run in a given job is its previous run when it succeeded
// running the same commands and has not expired; lookups that arrive together share one read.
func TestRunStorePreviousIn(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	finished := func(job, dev, command string, st run.Status, cmds ...string) {
		r := testRun(job+"."+dev, dev)
		r.JobID, r.Command, r.Status, r.FilteredDigest = job, command, st, fmt.Sprintf("%032d", len(dev))
		for _, c := range cmds {
			r.Commands = append(r.Commands, run.CommandResult{Command: c, Status: st})
		}
		if dev == "dev-expired" {
			r.ExpiresAt = rt.clock.now().Add(-time.Minute)
		}
		require.NoError(t, rt.FinishNew(ctx, r, []byte("out")))
	}
	finished("j1", "dev-ok", "show run", run.Succeeded)
	finished("j1", "dev-failed", "show run", run.Failed)
	finished("j1", "dev-other", "show version", run.Succeeded)
	finished("j1", "dev-seq", "show run (+1 more)", run.Succeeded, "show run", "show clock")
	finished("j1", "dev-expired", "show run", run.Succeeded)
	tests := []struct {
		name, dev string
		cmds      []string
		want      bool
	}{
		{name: "succeeded", dev: "dev-ok", want: true},
		{name: "failed there", dev: "dev-failed"},
		{name: "another command there", dev: "dev-other"},
		{name: "another sequence under the same summary", dev: "dev-seq", cmds: []string{"show run", "show version"}},
		{name: "the same sequence", dev: "dev-seq", cmds: []string{"show run", "show clock"}, want: true},
		{name: "expired", dev: "dev-expired"},
		{name: "not in that job", dev: "dev-absent"},
	}
	results := make([]bool, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Add(1)
		go func() { // together: one read
			defer wg.Done()
			r := testRun("j2."+tt.dev, tt.dev)
			r.JobID, r.Command = "j2", "show run"
			for _, c := range tt.cmds {
				r.Commands = append(r.Commands, run.CommandResult{Command: c})
			}
			if len(tt.cmds) > 1 {
				r.Command = "show run (+1 more)"
			}
			prev, ok, err := rt.PreviousIn(ctx, "j1", r)
			assert.NoError(t, err, tt.name)
			if ok {
				assert.Equal(t, "j1."+tt.dev, prev.ID, tt.name)
				assert.Equal(t, fmt.Sprintf("%032d", len(tt.dev)), prev.FilteredDigest, tt.name)
			}
			results[i] = ok
		}()
	}
	wg.Wait()
	for i, tt := range tests {
		assert.Equal(t, tt.want, results[i], tt.name)
	}
}

// putLegacyRun writes finished run r as the code before entries did: id and job_id stored, in
// by_device (DEV#<device>) and by_command with <created>#<id> sort keys, and, with output, a
// ledger item without a command hash.
func putLegacyRun(t *testing.T, rt runTable, r run.Run, output []byte) {
	t.Helper()
	ctx := context.Background()
	item, kept, err := finishedRunItem(r, output, nil)
	require.NoError(t, err)
	created := r.CreatedAt.UTC().Format(timeLayout) + "#" + r.ID
	str := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	item["id"], item["gsi1pk"], item["gsi1sk"] = str(r.ID), str(devIndexPrefix+r.DeviceID), str(created)
	item["gsi3pk"], item["gsi3sk"], item["gsi2sk"] = str(commandPartition(r.DeviceID, r.Command)), str(created), str(created)
	_, err = rt.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(rt.table), Item: item})
	require.NoError(t, err)
	if len(output) > 0 {
		ledger, err := attributevalue.MarshalMap(ledgerItem{PK: counterPrefix + r.DeviceID, SK: tailPrefix + r.ID, DeviceID: r.DeviceID, Bytes: int64(len(output)), Kept: kept})
		require.NoError(t, err)
		_, err = rt.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(rt.table), Item: ledger})
		require.NoError(t, err)
	}
}

// TestRunStoreUpgrade: on a table with runs from before entries, a device's newest run is found
// with a page of one (its ledger items do not hide the index), a run from before reconciled gets
// its entry and leaves the indexes (listed once), and forged cursors are refused.
func TestRunStoreUpgrade(t *testing.T) {
	ctx := context.Background()
	rt := newRunStore(t)
	base := rt.clock.now().Add(-time.Hour)
	old := func(i int, dev string, output []byte) run.Run {
		r := testRun(fmt.Sprintf("06h0%02d.%s", i, dev), dev)
		r.Command, r.Status, r.CreatedAt = "show clock", run.Succeeded, base.Add(time.Duration(i)*time.Minute)
		if output == nil {
			r.Status, r.Reason = run.Unreachable, "connection_refused"
		}
		putLegacyRun(t, rt, r, output)
		return r
	}
	for i := range 12 {
		old(i, "dev-up", []byte("12:00:00 UTC\n"))
	}
	newest := old(12, "dev-up", []byte("12:01:00 UTC\n"))

	t.Run("a page of one", func(t *testing.T) {
		runs, _, err := rt.ListByDevice(ctx, "dev-up", "", 1)
		require.NoError(t, err)
		require.Len(t, runs, 1, "the device's last run")
		assert.Equal(t, newest.ID, runs[0].ID)
		after := testRun("06h9.dev-up", "dev-up")
		after.Command, after.Status = "show clock", run.Succeeded
		require.NoError(t, rt.FinishNew(ctx, after, []byte("12:02:00 UTC\n")))
		runs, _, err = rt.ListByDevice(ctx, "dev-up", "", 1)
		require.NoError(t, err)
		require.Len(t, runs, 1)
		assert.Equal(t, after.ID, runs[0].ID, "a run since: by its entry")
		var all []string
		for cursor := ""; ; {
			page, next, err := rt.ListByDevice(ctx, "dev-up", cursor, 5)
			require.NoError(t, err)
			for _, r := range page {
				all = append(all, r.ID)
			}
			if cursor = next; cursor == "" {
				break
			}
		}
		assert.Len(t, all, 14, "every run once: %v", all)
	})
	t.Run("reconciled, listed once", func(t *testing.T) {
		failed := old(1, "dev-rec", nil)
		require.NoError(t, rt.Reconcile(ctx, "dev-rec", failed.ID))
		list, _, err := rt.ListByDevice(ctx, "dev-rec", "", 10)
		require.NoError(t, err)
		hist, _, err := rt.History(ctx, "dev-rec", "show clock", "", 10)
		require.NoError(t, err)
		for what, runs := range map[string][]run.Run{"list": list, "history": hist} {
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ID)
			}
			assert.Equal(t, []string{failed.ID}, ids, what)
		}
	})
	t.Run("forged cursors", func(t *testing.T) {
		tag := deviceTag("dev-up")
		for name, c := range map[string]pagedCursor{
			"the counter":      {Phase: listEntries, Key: counterSK, Dev: tag},
			"past the entries": {Phase: listEntries, Key: "ZZZ", Dev: tag},
		} {
			cursor, err := c.encode(devRunsKind)
			require.NoError(t, err)
			_, _, err = rt.ListByDevice(ctx, "dev-up", cursor, 5)
			assert.ErrorIs(t, err, fault.ErrBadCursor, name)
		}
		cursor, err := pagedCursor{Key: counterSK, Dev: tag}.encode(historyKind)
		require.NoError(t, err)
		_, _, err = rt.History(ctx, "dev-up", "show clock", cursor, 5)
		assert.ErrorIs(t, err, fault.ErrBadCursor, "a history cursor at the counter")
		// Any position among entries is one DynamoDB takes.
		cursor, err = pagedCursor{Key: tailPrefix + "\U0010FFFF", Dev: tag}.encode(historyKind)
		require.NoError(t, err)
		_, _, err = rt.History(ctx, "dev-up", "show clock", cursor, 5)
		assert.NoError(t, err, "a history cursor at the end of the entries")
	})
}

// TestListedRunAttrs: a listing reads every attribute of a run item but its inline output and
// noise lines.
func TestListedRunAttrs(t *testing.T) {
	var want []string
	rt := reflect.TypeFor[runItem]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("dynamodbav"), ",")
		if name != tailAttr && name != packedTailAttr && name != "noise" {
			want = append(want, name)
		}
	}
	assert.ElementsMatch(t, want, listedRunAttrs)
}
