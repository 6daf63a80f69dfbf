package bulk_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/sshexec"
)

// configEngine prints each device's configuration of the moment, or fails it.
type configEngine struct {
	mu      sync.Mutex
	configs map[string]string
	fail    map[string]bool
}

func (c *configEngine) Run(_ context.Context, t sshexec.Target, _ string, sink sshexec.Sink) sshexec.Result {
	c.mu.Lock()
	out, fail := c.configs[t.Host], c.fail[t.Host]
	c.mu.Unlock()
	if fail {
		return sshexec.Result{Status: sshexec.StatusUnreachable, Reason: sshexec.ReasonRefused}
	}
	n, _ := fmt.Fprint(sink, out)
	return sshexec.Result{Status: sshexec.StatusSucceeded, Bytes: int64(n), Timings: sshexec.Timings{Total: time.Millisecond}}
}

// noiseSource serves admin filters, or fails.
type noiseSource struct {
	filters map[string][]platform.NoiseFilter
	err     error
}

func (n noiseSource) CustomFilters(context.Context) (map[string][]platform.NoiseFilter, error) {
	return n.filters, n.err
}

func config(stamp, body string) string {
	return "Building configuration...\r\n\r\nCurrent configuration : 1234 bytes\r\n! Last configuration change at " + stamp +
		"\r\nntp clock-period 3602879" + stamp[:2] + "\r\n" + body
}

// TestExecutorChanged: the executor sets changed against the previous succeeded run of the
// command on the device, after the platform's and the admins' noise filters; null for a first
// run, a failed run, or a previous run without a filtered digest (stored before drift).
func TestExecutorChanged(t *testing.T) {
	ids := []string{"same", "noise", "real", "down", "banner", "legacy"}
	e := newEnv(t, ids...)
	eng := &configEngine{configs: map[string]string{}, fail: map[string]bool{}}
	e.exec.Engine = eng
	e.exec.Noise = noiseSource{filters: map[string][]platform.NoiseFilter{"cisco_ios": {{Pattern: `^banner motd \d+$`, Command: `^show run`}}}}
	nights := 0
	night := func(stamp string, bodies map[string]string) map[string]run.Run {
		t.Helper()
		// Each night's job a night later: jobs made in one millisecond are not ordered, and the
		// newest job of a command is recorded only over an older one.
		nights++
		at := time.Date(2026, 12, 6+nights, 1, 0, 0, 0, time.UTC)
		e.enq.Now = func() time.Time { return at }
		eng.mu.Lock()
		for id, b := range bodies {
			eng.configs[id] = config(stamp, b)
		}
		eng.mu.Unlock()
		acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show running-config", DeviceIDs: ids},
			auth.Identity{Subject: "admin@example.com", Role: auth.Admin})
		require.NoError(t, err)
		e.drain(t)
		out := map[string]run.Run{}
		for _, id := range ids {
			r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, id))
			require.NoError(t, err, "run of %s", id)
			out[id] = r
		}
		return out
	}
	base := map[string]string{}
	for _, id := range ids {
		base[id] = "hostname " + id + "\r\ninterface Gi1\r\n shutdown\r\nbanner motd 1\r\nend\r\n"
	}
	first := night("01:00:00 UTC Mon Dec 7 2026", base)
	for id, r := range first {
		assert.Nil(t, r.Changed, "first night: %s", id)
		assert.Len(t, r.ContentSHA256, 64, "content hash of %s", id)
		assert.Len(t, r.FilteredDigest, 32, "filtered digest of %s", id)
	}
	// "legacy"'s first run looks stored before drift: no filtered digest to compare with; and
	// night 1's job before batch digests were kept, so night 2 reads each device's run there.
	legacy := first["legacy"]
	legacy.FilteredDigest = ""
	e.runs.Put(legacy)
	e.runs.DropDigests(legacy.JobID)

	next := map[string]string{}
	for id, b := range base {
		next[id] = b
	}
	next["real"] = "hostname real\r\ninterface Gi1\r\n no shutdown\r\nbanner motd 1\r\nend\r\n"
	next["banner"] = "hostname banner\r\ninterface Gi1\r\n shutdown\r\nbanner motd 2\r\nend\r\n"
	eng.mu.Lock()
	eng.fail["down"] = true
	eng.mu.Unlock()
	in0, one0 := e.runs.PreviousLookups()
	second := night("02:00:00 UTC Tue Dec 8 2026", next) // every noise line differs
	in1, one1 := e.runs.PreviousLookups()
	assert.Equal(t, len(ids), in1-in0, "night 2 looks every device's previous run up in night 1's job (Job.PreviousJob)")
	assert.Zero(t, one1-one0, "none one by one: every device's run of night 1 succeeded")

	tests := []struct {
		id      string
		changed *bool
	}{
		{"same", ptr(false)},
		{"noise", ptr(false)},
		{"real", ptr(true)},
		{"down", nil},
		{"banner", ptr(false)}, // the admin's filter hides it
		{"legacy", nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r := second[tt.id]
			assert.Equal(t, tt.changed, r.Changed, "changed of %s", tt.id)
			if tt.id == "down" {
				assert.Empty(t, r.PreviousRunID, "a failed run is not compared")
				assert.Empty(t, r.FilteredDigest, "a failed run has no filtered digest")
				return
			}
			assert.Equal(t, first[tt.id].ID, r.PreviousRunID, "compared with the first night's run")
			assert.NotEqual(t, first[tt.id].ContentSHA256, r.ContentSHA256, "the exact bytes differ every night")
		})
	}
	states := allDevices(t, e.jobs, second["same"].JobID)
	assert.Equal(t, ptr(true), states["real"].Changed, "the job's device state carries changed")
	assert.Equal(t, ptr(false), states["noise"].Changed, "the job's device state carries changed")
	assert.Nil(t, states["down"].Changed, "a failed device has none")

	// Night 3: "down" failed in night 2's job, so its previous run is looked up one by one and is
	// night 1's.
	eng.mu.Lock()
	eng.fail["down"] = false
	eng.mu.Unlock()
	in2, one2 := e.runs.PreviousLookups()
	reads2 := e.runs.DigestReads()
	third := night("03:00:00 UTC Wed Dec 9 2026", next)
	in3, one3 := e.runs.PreviousLookups()
	assert.Equal(t, 1, e.runs.DigestReads()-reads2, "night 3 reads its batch's digests of night 2 once")
	assert.Equal(t, 1, in3-in2, "only the device without a digest there (it failed) is looked up in night 2's job")
	assert.Equal(t, 1, one3-one2, "and then one by one")
	for _, id := range ids {
		if id != "down" {
			assert.Equal(t, second[id].ID, third[id].PreviousRunID, "%s compared with night 2's run", id)
			require.NotNil(t, third[id].Changed, "changed of %s", id)
			assert.Equal(t, second[id].FilteredDigest != third[id].FilteredDigest, *third[id].Changed, "changed of %s against night 2's digest", id)
		}
	}
	assert.Equal(t, first["down"].ID, third["down"].PreviousRunID, "down compared with its last succeeded run")
	assert.Equal(t, second["same"].ID, third["same"].PreviousRunID, "same compared with night 2's run")

	t.Run("noise filters unreadable", func(t *testing.T) {
		e.exec.Noise = noiseSource{err: errors.New("table unavailable")}
		acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show running-config", DeviceIDs: ids},
			auth.Identity{Subject: "admin@example.com", Role: auth.Admin})
		require.NoError(t, err)
		sent := e.queue.Take()
		require.Len(t, sent, 1, "one batch")
		out, err := e.exec.Handle(context.Background(), sent[0].Message)
		require.Error(t, err, "the batch fails")
		assert.True(t, out.Retry, "and is retried rather than run without the admins' filters")
		assert.Equal(t, 0, e.job(t, acc.JobID).Counts[run.Succeeded], "no device ran")
	})
}

func ptr[T any](v T) *T { return &v }

// TestExecutorChangedSequence: a sequence's run compares with the previous run of the same
// commands, not with one of another sequence that shares its summary ("show run (+1 more)").
func TestExecutorChangedSequence(t *testing.T) {
	e, _, _ := newSeqEnv(t, "d1")
	runOf := func(cmds ...string) run.Run {
		t.Helper()
		req := bulk.Request{DeviceIDs: []string{"d1"}}
		for _, c := range cmds {
			req.Commands = append(req.Commands, bulk.Command{Command: c})
		}
		acc, err := e.enq.Enqueue(context.Background(), req, admin)
		require.NoError(t, err)
		e.drain(t)
		r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, "d1"))
		require.NoError(t, err)
		require.Equal(t, run.Succeeded, r.Status, "run of %v", cmds)
		return r
	}
	nightly1 := runOf("show run", "show version")
	adhoc1 := runOf("show run", "show clock")
	require.Equal(t, nightly1.Command, adhoc1.Command, "the two sequences share a summary")
	nightly2 := runOf("show run", "show version")
	adhoc2 := runOf("show run", "show clock")

	tests := []struct {
		name     string
		r        run.Run
		previous string // "" for none
	}{
		{"first of its commands, past another sequence", adhoc1, ""},
		{"the nightly sequence again", nightly2, nightly1.ID},
		{"the ad hoc sequence again", adhoc2, adhoc1.ID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.previous, tt.r.PreviousRunID, "previous run")
			if tt.previous == "" {
				assert.Nil(t, tt.r.Changed, "a first run's changed")
				return
			}
			assert.Equal(t, ptr(false), tt.r.Changed, "the same output")
		})
	}
}

// seqConfigEngine runs sequences: show running-config prints the configuration of the moment,
// any other command one fixed line.
type seqConfigEngine struct {
	mu     sync.Mutex
	config string
}

func (c *seqConfigEngine) Run(context.Context, sshexec.Target, string, sshexec.Sink) sshexec.Result {
	return sshexec.Result{Status: sshexec.StatusFailed, Reason: sshexec.ReasonSinkError}
}

func (c *seqConfigEngine) RunSequence(_ context.Context, _ sshexec.Target, seq sshexec.Sequence, sink sshexec.SequenceSink) sshexec.Result {
	res := sshexec.Result{Status: sshexec.StatusSucceeded}
	for i, cmd := range seq.Commands {
		if err := sink.StartCommand(i); err != nil {
			return sshexec.Result{Status: sshexec.StatusFailed, Reason: sshexec.ReasonSinkError}
		}
		out := "Cisco IOS Software, Version 17.9\r\n"
		if cmd.Text == "show running-config" {
			c.mu.Lock()
			out = c.config
			c.mu.Unlock()
		}
		n, _ := fmt.Fprint(sink, out)
		res.Bytes += int64(n)
		res.Commands = append(res.Commands, sshexec.CommandResult{Status: sshexec.StatusSucceeded, Bytes: int64(n)})
	}
	return res
}

// TestExecutorChangedSequenceNoise: a sequence's filtered digest leaves out the noise of each of
// its commands, not only of its first: show running-config's noise (the admin's banner filter)
// changes nothing after a show version.
func TestExecutorChangedSequenceNoise(t *testing.T) {
	e, _, _ := newSeqEnv(t, "d1")
	eng := &seqConfigEngine{}
	e.exec.Engine = eng
	e.exec.Noise = noiseSource{filters: map[string][]platform.NoiseFilter{"cisco_ios": {{Pattern: `^banner motd \d+$`, Command: `^show run`}}}}
	night := func(body string) run.Run {
		t.Helper()
		eng.mu.Lock()
		eng.config = body
		eng.mu.Unlock()
		acc, err := e.enq.Enqueue(context.Background(), bulk.Request{DeviceIDs: []string{"d1"},
			Commands: []bulk.Command{{Command: "show version"}, {Command: "show running-config"}}}, admin)
		require.NoError(t, err)
		e.drain(t)
		r, err := e.runs.Get(context.Background(), bulk.RunID(acc.JobID, "d1"))
		require.NoError(t, err)
		require.Equal(t, run.Succeeded, r.Status)
		return r
	}
	night("hostname d1\r\nbanner motd 1\r\nend\r\n")
	noise := night("hostname d1\r\nbanner motd 2\r\nend\r\n")
	assert.Equal(t, ptr(false), noise.Changed, "only show running-config's noise changed")
	real := night("hostname d1-new\r\nbanner motd 3\r\nend\r\n")
	assert.Equal(t, ptr(true), real.Changed, "a real change")
}
