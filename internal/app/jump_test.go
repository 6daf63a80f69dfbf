package app_test

// Jump hosts end to end: the executor behind local event source mappings runs a job through a
// real OpenSSH bastion (infra/sshdtest) in front of a simulated fleet, with the jump host's
// metadata in DynamoDB Local and its credential in the file secret store.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/sshdtest"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/audit/audittest"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/jumphost"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
	"github.com/netauto/netauto/internal/secrets"
	"github.com/netauto/netauto/internal/sshexec"
)

// jumpEnv is a bulkEnv whose devices are all behind one jump host, an OpenSSH bastion.
type jumpEnv struct {
	*bulkEnv
	bastion *sshdtest.Server
	hosts   *jumphost.Registry
	audit   *audittest.Recorder
}

// newJumpEnv starts the bastion and a fleet, registers the bastion as jump host "bastion"
// (password login, its host key pinned) and puts every device of the fleet behind it.
func newJumpEnv(t testing.TB, spec devicesim.Spec) *jumpEnv {
	t.Helper()
	bastion := sshdtest.Start(t, "AllowTcpForwarding yes")
	e := newBulkEnv(t, spec)
	store, err := dynamo.NewJumpHostStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.DevicesTable])
	require.NoError(t, err)
	sec, err := secrets.NewFileStore(e.secrets)
	require.NoError(t, err)
	hosts, err := jumphost.NewRegistry(store, sec)
	require.NoError(t, err)
	e.inv.UseJumpHosts(hosts)
	ctx := context.Background()
	_, err = hosts.Create(ctx, jumphost.Input{
		JumpHost:   jumphost.JumpHost{ID: "bastion", Host: "127.0.0.1", Port: bastion.Port, Username: sshdtest.User, HostKey: bastion.HostKeyLine()},
		Credential: device.Credential{Password: bastion.Password},
	})
	require.NoError(t, err)
	chain := []string{"bastion"}
	for _, id := range e.ids {
		_, err := e.inv.Update(ctx, id, device.Patch{JumpHostIDs: &chain})
		require.NoError(t, err, "put %s behind the bastion", id)
	}
	rec := &audittest.Recorder{}
	e.exec.JumpHosts, e.exec.JumpMaxChannels, e.exec.Audit = hosts, config.DefaultJumpMaxChannels, rec
	return &jumpEnv{bulkEnv: e, bastion: bastion, hosts: hosts, audit: rec}
}

// job runs command on every device as one job and returns it with its device states.
func (e *jumpEnv) job(t *testing.T, command string) (bulk.Accepted, map[string]bulk.DeviceState) {
	t.Helper()
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: command, DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 15}},
		auth.Identity{Subject: "tester@example.com", Role: auth.Admin})
	require.NoError(t, err)
	j := e.waitJob(t, acc.JobID, 90*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s", j.ID)
	return acc, e.allDevices(t, acc.JobID)
}

// TestJobThroughBastion: every device's output, run through an OpenSSH bastion, is stored exactly
// as the device prints it directly; the batches share one bastion login (never more than one per
// batch); a changed
// bastion key refuses every device (host_key_mismatch, jump_host_key_mismatch) with nothing sent
// to any, is recorded as the jump host's pending key, and once accepted the devices run again.
func TestJobThroughBastion(t *testing.T) {
	t.Parallel()
	e := newJumpEnv(t, devicesim.Spec{Count: 60, Seed: 43, Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}, {Name: "arista_eos", Weight: 1}}})
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)

	acc, states := e.job(t, "show version")
	require.Equal(t, 2, acc.Batches, "60 devices are two batches of 50 and 10")
	for id, d := range e.devs {
		st := states[id]
		if !assert.Equal(t, run.Succeeded, st.Status, "%s: reason %q", id, st.Reason) {
			continue
		}
		res, ref := reference(t, d, "show version")
		require.Equal(t, sshexec.StatusSucceeded, res.Status, "%s: direct reference run", id)
		got := e.output(t, bulk.RunID(acc.JobID, id))
		assert.True(t, bytes.Equal(ref, got), "%s: output through the bastion (%d bytes) differs from the device's (%d bytes)", id, len(got), len(ref))
	}
	logins := e.bastion.Count("Accepted password for")
	assert.Equal(t, 1, logins, "the batches, run at the same time, share one bastion login")
	assert.Equal(t, 1, e.bastion.Count("Connection from"), "and one connection")

	// The bastion's pinned key changes (as if the bastion was replaced): nothing goes through it.
	ctx := context.Background()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	sp, err := ssh.NewPublicKey(pub)
	require.NoError(t, err)
	other := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	_, err = e.hosts.Update(ctx, "bastion", jumphost.Patch{HostKey: &other})
	require.NoError(t, err)
	before := map[string]int{}
	for _, id := range e.ids {
		before[id] = len(e.fleet.Received(id).Commands)
	}
	e.audit.Reset()
	_, states = e.job(t, "show clock")
	for _, id := range e.ids {
		assert.Equal(t, run.HostKeyMismatch, states[id].Status, "%s", id)
		assert.Equal(t, string(sshexec.ReasonJumpHostKeyMismatch), states[id].Reason, "%s", id)
		assert.Equal(t, before[id], len(e.fleet.Received(id).Commands), "%s: nothing reached the device", id)
	}
	assert.Equal(t, logins, e.bastion.Count("Accepted password for"), "no credential went to the bastion")
	h, err := e.hosts.Get(ctx, "bastion")
	require.NoError(t, err)
	require.NotNil(t, h.PendingHostKey, "the offered key is pending")
	assert.Equal(t, ssh.FingerprintSHA256(e.bastion.HostKey), h.PendingHostKey.Fingerprint)
	mismatches := 0
	for _, en := range e.audit.Entries() {
		if en.Action == "jump_host.host_key_mismatch" {
			mismatches++
			assert.Equal(t, "bastion", en.Target)
		}
	}
	assert.Equal(t, acc.Batches, mismatches, "one audit entry per batch that met the key, not one per device")

	_, err = e.hosts.AcceptHostKey(ctx, "bastion", h.PendingHostKey.Fingerprint)
	require.NoError(t, err)
	_, states = e.job(t, "show clock")
	for _, id := range e.ids {
		assert.Equal(t, run.Succeeded, states[id].Status, "%s after the accept: reason %q", id, states[id].Reason)
	}
}

// gatedTunnels holds every run until open is closed, and shares jump host connections as the
// engine it wraps does.
type gatedTunnels struct {
	*gateEngine
	tm bulk.TunnelMaker
}

func (g gatedTunnels) NewTunnels(maxChannelsPerHop int) *sshexec.Tunnels {
	return g.tm.NewTunnels(maxChannelsPerHop)
}

// TestJobThroughBastionWarmsWaitingBatch: with one batch slot (MaxBatches 1) and two
// invocations, the batch waiting for the slot logs in to the bastion while the other one holds
// the slot (whose runs have not reached the bastion yet), and both batches run their devices over
// that one connection: one login for the job.
func TestJobThroughBastionWarmsWaitingBatch(t *testing.T) {
	t.Parallel()
	e := newJumpEnv(t, devicesim.Spec{Count: 100, Seed: 53, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}})
	engine, ok := e.exec.Engine.(bulk.TunnelMaker)
	require.True(t, ok, "the engine shares jump host connections")
	gate := &gateEngine{next: e.exec.Engine, open: make(chan struct{})}
	e.exec.Engine = gatedTunnels{gateEngine: gate, tm: engine}
	e.exec.MaxBatches = 1
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)
	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "uname -a", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}},
		auth.Identity{Subject: "tester@example.com", Role: auth.Admin})
	require.NoError(t, err)
	require.Equal(t, 2, acc.Batches)

	// The batch holding the slot has not reached the bastion (its runs wait at the gate); the
	// other one logs in while it waits.
	warmed := e.bastion.WaitFor(20*time.Second, func(lines []string) bool {
		return sshdtest.CountLines(lines, "Accepted password for") >= 1
	})
	close(gate.open)
	require.True(t, warmed, "the waiting batch never logged in to the bastion while the other held the slot")
	j := e.waitJob(t, acc.JobID, 60*time.Second)
	require.Equal(t, bulk.JobCompleted, j.Status, "job %s ended with %v", j.ID, j.Counts)
	require.Equal(t, 100, j.Counts[run.Succeeded], "job %s: %v", j.ID, j.Counts)
	assert.Equal(t, 1, e.bastion.Count("Accepted password for"), "one login: the warmed connection served both batches")
	assert.Equal(t, 1, e.bastion.Count("Connection from"), "one connection")
}

// BenchmarkBulkThroughBastion1000 runs one 1,000-device job through one OpenSSH bastion and the
// same job direct (same fleet, command, batches and concurrency), once each unmeasured to warm
// up, then in five rounds of one job each way (the order alternating), and reports the best rate
// of each, the median round's ratio, the bastion's connections and logins per batch (from sshd's
// log) and where the CPU went per device: this process (executor and simulated fleet), sshd,
// DynamoDB Local, and everything else on the machine.
func BenchmarkBulkThroughBastion1000(b *testing.B) {
	const n, rounds = 1000, 5
	e := newJumpEnv(b, devicesim.Spec{Count: n, Seed: 47, Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}})
	e.exec.MaxBatches = stack.ExecutorBatches()
	e.startWorkers(b, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), resources.ExecutorMaxConcurrency)
	ctx := context.Background()
	// setChain puts every device behind chain (nil: direct), 100 devices a bulk update, then
	// waits until DynamoDB Local has digested the writes (less than 10% of a core over a quarter
	// of a second), so neither job's window pays for the setup.
	setChain := func(chain []string) {
		if chain == nil {
			chain = []string{}
		}
		for i := 0; i < len(e.ids); i += device.MaxBulkUpdate {
			_, err := e.inv.BulkUpdate(ctx, e.ids[i:min(i+device.MaxBulkUpdate, len(e.ids))], device.BulkSet{JumpHostIDs: &chain},
				func(device.Device) bool { return true })
			require.NoError(b, err)
		}
		last := readCPU(b, e.st.Endpoints.DynamoDB).ddb
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for range 20 {
			<-tick.C
			cur := readCPU(b, e.st.Endpoints.DynamoDB).ddb
			if cur-last < 25*time.Millisecond {
				return
			}
			last = cur
		}
	}
	sshdCPU := func() time.Duration {
		c, err := e.bastion.CPUTime()
		require.NoError(b, err)
		return c
	}
	job := func() (time.Duration, int) {
		start := time.Now()
		acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "uname -a", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 20}}, auth.Identity{Subject: "bench@example.com", Role: auth.Admin})
		require.NoError(b, err)
		j := e.waitJob(b, acc.JobID, 5*time.Minute)
		require.Equal(b, n, j.Counts[run.Succeeded], "job %s ended %s with %v", j.ID, j.Status, j.Counts)
		return time.Since(start), acc.Batches
	}
	best := map[string]time.Duration{}
	var ratios []float64 // per round: the direct job's time over the bastion job's
	cpu := map[string]cpuSplit{}
	sshd := map[string]time.Duration{}
	jobs := map[string]int{}
	batches, logins, conns := 0, 0, 0
	// One job each way first, unmeasured: DynamoDB Local's JIT and the executor's first hand-ons
	// (20 batches meeting one cold slot) land on whichever job runs first otherwise.
	for _, chain := range [][]string{{"bastion"}, nil} {
		setChain(chain)
		job()
	}
	for range b.N {
		for round := range rounds {
			// The order alternates by round: whichever job runs first in a pair measured faster
			// or slower depending on what DynamoDB Local was still doing, so neither mode always
			// runs after the other.
			modes := []string{"bastion", "direct"}
			if round%2 == 1 {
				modes[0], modes[1] = modes[1], modes[0]
			}
			took := map[string]time.Duration{}
			for _, mode := range modes {
				if mode == "bastion" {
					setChain([]string{"bastion"})
				} else {
					setChain(nil)
				}
				login0, conn0 := e.bastion.Count("Accepted password for"), e.bastion.Count("Connection from")
				cpu0, sshd0 := readCPU(b, e.st.Endpoints.DynamoDB), sshdCPU()
				t, nb := job()
				took[mode] = t
				// The job's CPU is read when it ends, before waiting for the bastion connection
				// to close (idle after the job), which would add seconds of idle background.
				d := readCPU(b, e.st.Endpoints.DynamoDB).sub(cpu0)
				// sshd logs a connection's end as "Transferred: ..." when the executor closed it
				// cleanly, and as a read error or reset when the close raced data in flight.
				require.Eventually(b, func() bool {
					ended := e.bastion.Count("Transferred: sent") + e.bastion.Count("Read error from remote host") + e.bastion.Count("Connection reset by")
					return ended >= e.bastion.Count("Accepted password for")
				}, 60*time.Second, 10*time.Millisecond, "bastion connections closed")
				cpu[mode] = cpu[mode].add(d)
				sshd[mode] += sshdCPU() - sshd0
				jobs[mode]++
				if mode == "bastion" {
					batches += nb
					logins += e.bastion.Count("Accepted password for") - login0
					conns += e.bastion.Count("Connection from") - conn0
				}
				if cur, ok := best[mode]; !ok || t < cur {
					best[mode] = t
				}
			}
			ratios = append(ratios, took["direct"].Seconds()/took["bastion"].Seconds())
		}
	}
	rate := func(mode string) float64 { return n / best[mode].Seconds() }
	b.ReportMetric(rate("bastion"), "bastion-devices/s")
	b.ReportMetric(rate("direct"), "direct-devices/s")
	// The ratio pairs the two jobs of a round, which ran back to back on the same machine, and
	// takes the median round: the best rate of each mode can come from different rounds.
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "bastion/direct")
	b.Logf("bastion/direct per round (sorted): %.2f", ratios)
	b.ReportMetric(float64(logins)/float64(batches), "bastion-logins/batch")
	b.ReportMetric(float64(conns)/float64(batches), "bastion-connections/batch")
	for _, mode := range []string{"bastion", "direct"} {
		per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n*jobs[mode]) }
		c := cpu[mode]
		b.ReportMetric(per(c.self), mode+"-self-cpu-ms/device")
		b.ReportMetric(per(c.ddb), mode+"-ddb-cpu-ms/device")
		b.ReportMetric(per(sshd[mode]), mode+"-sshd-cpu-ms/device")
		b.ReportMetric(per(c.all-c.self-c.ddb-sshd[mode]), mode+"-other-cpu-ms/device")
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average after the run: %s", strings.TrimSpace(string(load)))
	}
}
