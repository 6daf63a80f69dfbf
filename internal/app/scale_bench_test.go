package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// fleetChildEnv makes the test binary a fleet process: "<address>,<count>,<seed>,<state file>"
// and optionally ",<authorized keys file>" (client keys every device accepts besides the
// password). It prints the fleet's inventory on stdout and serves until its stdin closes.
const fleetChildEnv = "NET_AUTO_TEST_CHILD_FLEET"

// runChildFleet serves one fleet of linux devices as fleetChildEnv describes.
func runChildFleet() int {
	f := strings.Split(os.Getenv(fleetChildEnv), ",")
	if len(f) != 4 && len(f) != 5 {
		fmt.Fprintf(os.Stderr, "%s: want address,count,seed,state file[,authorized keys file]\n", fleetChildEnv)
		return 2
	}
	count, err1 := strconv.Atoi(f[1])
	seed, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		fmt.Fprintf(os.Stderr, "%s: bad count or seed in %q\n", fleetChildEnv, os.Getenv(fleetChildEnv))
		return 2
	}
	var keys []ssh.PublicKey
	if len(f) == 5 {
		rest, err := os.ReadFile(f[4])
		for err == nil && len(bytes.TrimSpace(rest)) > 0 {
			var k ssh.PublicKey
			if k, _, _, rest, err = ssh.ParseAuthorizedKey(rest); err == nil {
				keys = append(keys, k)
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "authorized keys:", err)
			return 2
		}
	}
	fleet, err := devicesim.Start(devicesim.Spec{Count: count, Seed: seed, Address: f[0], StateFile: f[3],
		Platforms: []devicesim.Weighted{{Name: "linux", Weight: 1}}, AuthorizedKeys: keys})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start fleet:", err)
		return 1
	}
	defer fleet.Close()
	if err := fleet.WriteInventory(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark ends (or dies)
	return 0
}

// startFleets starts one fleet process per address, each serving per devices (accepting keys
// besides the password), and returns their inventory with ids made unique across fleets
// ("f<i>-sim-0001"). A process holds one listening
// socket per device, and the open-file limit here is 20,000 a process, so 20,000 devices and
// the executor's connections cannot share one process. Each fleet takes its ports from below the
// ephemeral range (its state file), so the 20,000 listening ports leave the ephemeral ports to
// the connections.
func startFleets(tb testing.TB, addrs []string, per int, keys ...ssh.PublicKey) []devicesim.InventoryDevice {
	tb.Helper()
	type result struct {
		devs []devicesim.InventoryDevice
		err  error
	}
	results := make([]result, len(addrs))
	var wg sync.WaitGroup
	dir := tb.TempDir()
	authorized := ""
	if len(keys) > 0 {
		var b []byte
		for _, k := range keys {
			b = append(b, ssh.MarshalAuthorizedKey(k)...)
		}
		authorized = "," + filepath.Join(dir, "authorized_keys")
		require.NoError(tb, os.WriteFile(authorized[1:], b, 0o600))
	}
	for i, addr := range addrs {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%d,%s%s", fleetChildEnv, addr, per, 21+i, filepath.Join(dir, fmt.Sprintf("fleet%d.json", i)), authorized))
		stdin, err := cmd.StdinPipe()
		require.NoError(tb, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(tb, err)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(tb, cmd.Start(), "start fleet process %d", i)
		tb.Cleanup(func() {
			_ = stdin.Close()
			_ = cmd.Wait()
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			var devs []devicesim.InventoryDevice
			if err := json.NewDecoder(stdout).Decode(&devs); err != nil {
				results[i].err = fmt.Errorf("fleet %d on %s: read inventory: %w (%s)", i, addr, err, tail(stderr.String()))
				return
			}
			for j := range devs {
				devs[j].ID = fmt.Sprintf("f%d-%s", i, devs[j].ID)
			}
			results[i].devs = devs
		}()
	}
	wg.Wait()
	var all []devicesim.InventoryDevice
	for _, r := range results {
		require.NoError(tb, r.err)
		all = append(all, r.devs...)
	}
	return all
}

// memSampler follows this process's resident set while a job runs: VmRSS every 100 ms, and
// VmHWM (reset at the start when the kernel lets it be, through clear_refs).
type memSampler struct {
	peak    atomic.Int64 // bytes
	hwmSet  bool         // VmHWM was reset at the start: it is this job's peak
	stop    chan struct{}
	stopped chan struct{}
}

func startMemSampler() *memSampler {
	m := &memSampler{stop: make(chan struct{}), stopped: make(chan struct{})}
	m.hwmSet = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	m.peak.Store(procStatusBytes("VmRSS"))
	go func() {
		defer close(m.stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				if rss := procStatusBytes("VmRSS"); rss > m.peak.Load() {
					m.peak.Store(rss)
				}
			}
		}
	}()
	return m
}

// end stops sampling and returns the peak sampled RSS and VmHWM, in bytes.
func (m *memSampler) end() (sampled, hwm int64) {
	close(m.stop)
	<-m.stopped
	return m.peak.Load(), procStatusBytes("VmHWM")
}

// procStatusBytes reads a "kB" field of /proc/self/status (0 when absent).
func procStatusBytes(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// scaleResult is one measured job.
type scaleResult struct {
	n                  int
	took               time.Duration
	rssPeak, hwm, heap int64
	hwmOwn             bool
	withOutput         int
	load               string
}

func (r scaleResult) rate() float64 { return float64(r.n) / r.took.Seconds() }

// scaleJob runs `uname -a` on ids as one job and checks it: every device terminal and
// succeeded, listed once in the job's device pages, the job's counts equal to the devices'
// states, and every device's run stored with its output (each read back, none sampled).
func scaleJob(tb testing.TB, e *bulkEnv, ids []string, check bool) scaleResult {
	tb.Helper()
	ctx := context.Background()
	runtime.GC()
	mem := startMemSampler()
	start := time.Now()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "uname -a", DeviceIDs: ids, Options: bulk.Options{TimeoutS: 20}},
		auth.Identity{Subject: "bench@example.com", Role: auth.Admin})
	require.NoError(tb, err)
	j := e.waitJob(tb, acc.JobID, 30*time.Minute)
	took := time.Since(start)
	rss, hwm := mem.end()
	load, _ := os.ReadFile("/proc/loadavg")
	res := scaleResult{n: len(ids), took: took, rssPeak: rss, hwm: hwm, hwmOwn: mem.hwmSet, load: strings.Join(strings.Fields(string(load))[:3], " ")}
	if j.Counts[run.Succeeded] != len(ids) {
		logFile := filepath.Join(os.TempDir(), "netauto-scale-"+j.ID+".log")
		_ = os.WriteFile(logFile, []byte(e.logText()), 0o600)
		require.Equal(tb, len(ids), j.Counts[run.Succeeded], "job %s ended %s with %v: succeeded; executor log in %s", j.ID, j.Status, j.Counts, logFile)
	}
	var memStats runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&memStats)
	res.heap = int64(memStats.HeapAlloc)
	if !check {
		return res
	}

	sum := 0
	for _, c := range j.Counts {
		sum += c
	}
	require.Equal(tb, len(ids), sum, "job %s: the counts %v add up to the devices", j.ID, j.Counts)
	states := e.allDevices(tb, j.ID) // fails on a device listed twice
	require.Len(tb, states, len(ids), "job %s: devices listed", j.ID)
	recount := map[run.Status]int{}
	for _, id := range ids {
		st, ok := states[id]
		require.True(tb, ok, "job %s: device %s not listed", j.ID, id)
		require.Equal(tb, run.Succeeded, st.Status, "job %s: device %s", j.ID, id)
		recount[st.Status]++
	}
	for _, s := range run.Statuses() {
		require.Equal(tb, recount[s], j.Counts[s], "job %s: count of %s against a recount of the devices", j.ID, s)
	}

	// Every run and its output, read back by 16 readers.
	var withOutput atomic.Int64
	var mu sync.Mutex
	var problems []string
	work := make(chan string)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				problem := checkRun(ctx, e, bulk.RunID(j.ID, id))
				if problem == "" {
					withOutput.Add(1)
					continue
				}
				mu.Lock()
				problems = append(problems, problem)
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	require.Empty(tb, problems, "job %s: %d runs without their output (the first ones listed)", j.ID, len(problems))
	res.withOutput = int(withOutput.Load())
	require.Equal(tb, len(ids), res.withOutput, "job %s: runs stored with their output", j.ID)
	return res
}

// checkRun returns what is wrong with a run: not found, not succeeded, or its stored output
// empty, other than the record's byte count or not uname's.
func checkRun(ctx context.Context, e *bulkEnv, id string) string {
	r, err := e.runs.Get(ctx, id)
	if err != nil {
		return fmt.Sprintf("run %s: %v", id, err)
	}
	if r.Status != run.Succeeded {
		return fmt.Sprintf("run %s: %s", id, r.Status)
	}
	var out bytes.Buffer
	if err := e.runs.WriteOutput(ctx, id, &out); err != nil {
		return fmt.Sprintf("run %s: output: %v", id, err)
	}
	if out.Len() == 0 || int64(out.Len()) != r.Bytes || !bytes.Contains(out.Bytes(), []byte("Linux")) {
		return fmt.Sprintf("run %s: %d bytes stored, record says %d: %q", id, out.Len(), r.Bytes, tail(out.String()))
	}
	return ""
}

// BenchmarkJob20000 runs one job of 20,000 simulated devices and one of 1,000 (after an
// unmeasured warm-up job of 1,000) on the same stack, fleet, command and executor settings, and
// compares their devices/s (the design's bar: within 20%). The devices are served by four fleet
// processes of 5,000, each on its own loopback address; the executor runs in this process, so
// its memory figures are the executor's, the enqueuer's and this benchmark's bookkeeping.
func BenchmarkJob20000(b *testing.B) {
	const n, small = 20000, 1000
	addrs := []string{"127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"}
	for b.Loop() {
		st := stacktest.New(b)
		fleetStart := time.Now()
		devs := startFleets(b, addrs, n/len(addrs))
		e := newInventoryEnv(b, st, devs, envOptions{})
		require.Len(b, e.ids, n)
		fmt.Printf("fleet: %d devices in %d processes on %s, imported in %v\n", n, len(addrs), strings.Join(addrs, ", "), time.Since(fleetStart).Round(time.Second))
		e.exec.MaxBatches = stack.ExecutorBatches()
		// The executor settings of the 10,000-device partition benchmark (see partitionJob).
		e.startWorkers(b, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 4)

		scaleJob(b, e, e.ids[small:2*small], false) // warm-up, unmeasured
		one := scaleJob(b, e, e.ids[:small], true)
		all := scaleJob(b, e, e.ids, true)

		ratio := all.rate() / one.rate()
		stand := "this process"
		if os.Getenv(stacktest.EnvSQS) != "" {
			stand = "their own processes"
		}
		mib := func(v int64) float64 { return float64(v) / (1 << 20) }
		var s strings.Builder
		fmt.Fprintf(&s, "BenchmarkJob20000 (%d CPUs; stand-ins in %s; fleets in %d processes):\n", runtime.NumCPU(), stand, len(addrs))
		for _, r := range []scaleResult{one, all} {
			hwm := "VmHWM since the process started"
			if r.hwmOwn {
				hwm = "VmHWM of the job"
			}
			fmt.Fprintf(&s, "  %5d devices: %v, %.0f devices/s, all succeeded, %d runs with output; peak RSS %.0f MiB (sampled), %s %.0f MiB, heap after GC %.1f MiB; load %s\n",
				r.n, r.took.Round(time.Millisecond), r.rate(), r.withOutput, mib(r.rssPeak), hwm, mib(r.hwm), mib(r.heap), r.load)
		}
		verdict := "met"
		if ratio < 0.8 {
			verdict = "NOT met"
		}
		fmt.Fprintf(&s, "  job20k/job1k devices/s: %.2f (bar: at least 0.8, %s); executor log kept in memory: %.1f MiB\n", ratio, verdict, mib(int64(len(e.logText()))))
		fmt.Print(s.String()) // b.Log keeps only a benchmark's first lines
		b.ReportMetric(one.rate(), "job1k-devices/s")
		b.ReportMetric(all.rate(), "job20k-devices/s")
		b.ReportMetric(ratio, "job20k/job1k")
		b.ReportMetric(mib(one.rssPeak), "job1k-peak-rss-MiB")
		b.ReportMetric(mib(all.rssPeak), "job20k-peak-rss-MiB")
		b.ReportMetric(mib(all.heap), "job20k-heap-after-gc-MiB")
		b.ReportMetric(float64(all.withOutput), "job20k-runs-with-output")
		// Bounded: twenty times the devices may not double the executor's peak.
		require.LessOrEqual(b, all.rssPeak, 2*one.rssPeak, "peak RSS of the 20,000-device job against twice the 1,000-device job's")
		e.stopWorkers()
	}
}
