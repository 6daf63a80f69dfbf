package sshexec

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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
)

// Benchmarks. Run them with
//
//	go test -run '^$' -bench . -benchtime 2x ./internal/sshexec/
//
// BenchmarkFanout1000 fans a command out to a simulated fleet of 1,000
// devices (one process, loopback) with the engine and with a minimal raw
// x/crypto/ssh exec loop in the same run, and reports both throughputs and
// their ratio. BenchmarkMemory50x1MiB measures the peak RSS (VmHWM) of a
// separate process running the engine against 50 devices that each stream
// 1 MiB.

const (
	fanoutDevices = 1000
	fanoutWorkers = 64
)

var benchFleets struct {
	mu     sync.Mutex
	fleets map[string]*devicesim.Fleet
}

// benchFleet starts (once per test binary) a fleet of n devices of one
// platform; closeBenchFleets stops them in TestMain.
func benchFleet(b *testing.B, key string, spec devicesim.Spec) *devicesim.Fleet {
	b.Helper()
	benchFleets.mu.Lock()
	defer benchFleets.mu.Unlock()
	if f := benchFleets.fleets[key]; f != nil {
		return f
	}
	f, err := devicesim.Start(spec)
	require.NoError(b, err, "start fleet")
	if benchFleets.fleets == nil {
		benchFleets.fleets = map[string]*devicesim.Fleet{}
	}
	benchFleets.fleets[key] = f
	return f
}

func closeBenchFleets() {
	benchFleets.mu.Lock()
	defer benchFleets.mu.Unlock()
	for k, f := range benchFleets.fleets {
		_ = f.Close()
		delete(benchFleets.fleets, k)
	}
}

// fanout runs fn for every device with a fixed number of workers and returns
// the number of failures.
func fanout(devs []devicesim.InventoryDevice, workers int, fn func(devicesim.InventoryDevice) error) (int64, error) {
	var failures atomic.Int64
	var firstErr error
	var once sync.Once
	next := make(chan devicesim.InventoryDevice)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for d := range next {
				if err := fn(d); err != nil {
					failures.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	for _, d := range devs {
		next <- d
	}
	close(next)
	wg.Wait()
	return failures.Load(), firstErr
}

// rawExec is the minimal x/crypto/ssh exec loop the engine is compared with:
// dial, password auth, pinned host key, one exec, output discarded.
func rawExec(d devicesim.InventoryDevice, cmd string) error {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(d.HostKey))
	if err != nil {
		return err
	}
	c, err := ssh.Dial("tcp", d.Addr(), &ssh.ClientConfig{
		User:              d.Username,
		Auth:              []ssh.AuthMethod{ssh.Password(d.Password)},
		HostKeyCallback:   ssh.FixedHostKey(key),
		HostKeyAlgorithms: []string{key.Type()},
		Timeout:           10 * time.Second,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Stdout = io.Discard
	err = s.Run(cmd)
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return nil // network OSes send no exit status
	}
	return err
}

func BenchmarkFanout1000(b *testing.B) {
	cases := []struct {
		name, platform, command string
	}{
		{"linux-exec", "linux", "uname -a"},
		{"iosxe-shell", "cisco_iosxe", "show version"},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			devs := benchDevices(b, bc.name, bc.platform)
			r, err := New(Options{})
			require.NoError(b, err, "new runner")
			var engineTime, rawTime time.Duration
			var engineBytes atomic.Int64
			b.ResetTimer()
			// Raw and engine alternate on quarters of the fleet so that load
			// from elsewhere on the machine hits both alike.
			const slices = 4
			for range b.N {
				for q := range slices {
					part := devs[q*len(devs)/slices : (q+1)*len(devs)/slices]
					start := time.Now()
					failed, err := fanout(part, fanoutWorkers, func(d devicesim.InventoryDevice) error {
						return rawExec(d, bc.command)
					})
					rawTime += time.Since(start)
					require.Zero(b, failed, "raw fan-out failures; first: %v", err)
					start = time.Now()
					failed, err = fanout(part, fanoutWorkers, func(d devicesim.InventoryDevice) error {
						res := r.Run(context.Background(), targetFor(d), bc.command, nil)
						engineBytes.Add(res.Bytes)
						if res.Status != StatusSucceeded {
							return fmt.Errorf("%s: %s/%s %s", d.Name, res.Status, res.Reason, res.Message)
						}
						return nil
					})
					engineTime += time.Since(start)
					require.Zero(b, failed, "engine fan-out failures; first: %v", err)
				}
			}
			n := float64(b.N * len(devs))
			engineRate, rawRate := n/engineTime.Seconds(), n/rawTime.Seconds()
			b.ReportMetric(engineRate, "engine-devices/s")
			b.ReportMetric(rawRate, "raw-devices/s")
			b.ReportMetric(engineRate/rawRate, "engine/raw")
			b.ReportMetric(float64(engineBytes.Load())/n, "output-B/device")
		})
	}
}

// benchInventoryEnv names an inventory file (written by the devicesim
// command) to fan out to instead of an in-process fleet, e.g. to keep the
// simulator's CPU use out of the benchmark process.
const benchInventoryEnv = "NETAUTO_SSHEXEC_BENCH_INVENTORY"

// benchDevices returns the devices of one platform to fan out to.
func benchDevices(b *testing.B, key, platformName string) []devicesim.InventoryDevice {
	b.Helper()
	path := os.Getenv(benchInventoryEnv)
	if path == "" {
		f := benchFleet(b, key, devicesim.Spec{Count: fanoutDevices, Seed: 1, Platforms: []devicesim.Weighted{{Name: platformName, Weight: 1}}})
		return f.Inventory()
	}
	data, err := os.ReadFile(path)
	require.NoError(b, err, "read inventory")
	var all, devs []devicesim.InventoryDevice
	require.NoError(b, json.Unmarshal(data, &all), "decode inventory %s", path)
	for _, d := range all {
		if d.Platform == platformName && d.Tags["sim_fault"] == "" {
			devs = append(devs, d)
		}
	}
	if len(devs) == 0 {
		b.Skipf("no healthy %s devices in %s", platformName, path)
	}
	return devs
}

const memChildEnv = "NETAUTO_SSHEXEC_MEM_INVENTORY"

// BenchmarkMemory50x1MiB starts a fleet of 50 devices whose running
// configuration is 1 MiB, then runs a child process (this test binary, only
// BenchmarkMemoryChild) that fetches all 50 configurations at once with the
// engine into a discarding sink and reports its peak RSS (VmHWM from
// /proc/self/status) and Go heap figures. The fleet lives in this process so
// the child's numbers are the engine's alone.
func BenchmarkMemory50x1MiB(b *testing.B) {
	f := benchFleet(b, "mem50", devicesim.Spec{
		Count: 50, Seed: 2, LargeOutputBytes: 1 << 20,
		Platforms: []devicesim.Weighted{{Name: "cisco_iosxe", Weight: 1}},
		Faults:    []devicesim.FaultCount{{Fault: devicesim.FaultLargeOutput, Count: 50}},
	})
	path := filepath.Join(b.TempDir(), "inventory.json")
	data, err := json.Marshal(f.Inventory())
	require.NoError(b, err, "encode inventory")
	require.NoError(b, os.WriteFile(path, data, 0o600), "write inventory")
	b.ResetTimer()
	var last map[string]float64
	for range b.N {
		cmd := exec.Command(os.Args[0], "-test.run", "^$", "-test.bench", "^BenchmarkMemoryChild$", "-test.benchtime", "1x")
		cmd.Env = append(os.Environ(), memChildEnv+"="+path)
		out, err := cmd.CombinedOutput()
		require.NoError(b, err, "child:\n%s", out)
		last = map[string]float64{}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "MEM "); ok && k == "" {
				name, num, _ := strings.Cut(v, "=")
				x, err := strconv.ParseFloat(num, 64)
				if err == nil {
					last[name] = x
				}
			}
		}
		require.Zero(b, last["failures"], "child's failures:\n%s", out)
		require.GreaterOrEqual(b, last["bytes"], float64(50*(1<<20-4096)), "bytes the child fetched: want 50 MiB\n%s", out)
	}
	b.ReportMetric(last["vmhwm_kib"]/1024, "peak-RSS-MiB")
	b.ReportMetric(last["heap_sys_bytes"]/(1<<20), "heap-sys-MiB")
	b.ReportMetric(last["max_heap_inuse_bytes"]/(1<<20), "max-heap-inuse-MiB")
	b.ReportMetric(last["seconds"], "child-s")
}

// BenchmarkMemoryChild is the child half of BenchmarkMemory50x1MiB; it does
// nothing unless started by it.
func BenchmarkMemoryChild(b *testing.B) {
	path := os.Getenv(memChildEnv)
	if path == "" {
		b.Skip("only run as the child of BenchmarkMemory50x1MiB")
	}
	data, err := os.ReadFile(path)
	require.NoError(b, err, "read inventory")
	var devs []devicesim.InventoryDevice
	require.NoError(b, json.Unmarshal(data, &devs), "decode inventory %s", path)
	r, err := New(Options{MaxOutputBytes: 2 << 20})
	require.NoError(b, err, "new runner")
	// Sample the heap while the runs are in flight.
	var maxInuse atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > maxInuse.Load() {
					maxInuse.Store(ms.HeapInuse)
				}
			}
		}
	}()
	start := time.Now()
	var total atomic.Int64
	failed, firstErr := fanout(devs, len(devs), func(d devicesim.InventoryDevice) error {
		res := r.Run(context.Background(), targetFor(d), "show running-config", nil)
		total.Add(res.Bytes)
		if res.Status != StatusSucceeded {
			return fmt.Errorf("%s: %s/%s %s", d.Name, res.Status, res.Reason, res.Message)
		}
		return nil
	})
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if firstErr != nil {
		fmt.Println("first error:", firstErr)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("MEM failures=%d\n", failed)
	fmt.Printf("MEM bytes=%d\n", total.Load())
	fmt.Printf("MEM seconds=%.3f\n", elapsed.Seconds())
	fmt.Printf("MEM heap_sys_bytes=%d\n", ms.HeapSys)
	fmt.Printf("MEM max_heap_inuse_bytes=%d\n", maxInuse.Load())
	fmt.Printf("MEM vmhwm_kib=%d\n", vmHWM())
}

// vmHWM returns the process's peak resident set size in KiB.
func vmHWM() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}
