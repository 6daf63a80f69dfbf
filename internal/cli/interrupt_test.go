package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/cli"
)

// TestInterruptCancelsJob sends Ctrl-C (SIGINT) to a bulk command without a terminal: it cancels
// the job, keeps following it to the end, and reports the devices that never started as cancelled.
func TestInterruptCancelsJob(t *testing.T) {
	t.Parallel()
	// Three devices whose output stops after a few lines: each runs until the idle timeout.
	e := newStack(t, devicesim.Spec{Count: 3, Seed: 3, Faults: []devicesim.FaultCount{{Fault: devicesim.FaultHangMidOutput, Count: 3}}})
	r := e.run(t, cmd{args: []string{"devices", "import", "-", "--format", "json"}, stdin: fleetJSON(t, e.fleet)})
	if r.code != 0 {
		t.Fatalf("import = %d", r.code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := t.TempDir()
	p := exec.CommandContext(ctx, binary, "bulk", "--tag", "simulated=true", "--max-concurrency", "1", "--out", out, "--", "show", "running-config")
	p.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "XDG_CONFIG_HOME=" + t.TempDir(),
		"NET_AUTO_API=" + e.url, "NET_AUTO_TOKEN=" + e.tokens[auth.Operator]}
	var stdout bytes.Buffer
	p.Stdout = &stdout
	p.Stdin = strings.NewReader("")
	errPipe, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	// The job's first line on stderr means it was accepted and the command is following it.
	br := bufio.NewReader(errPipe)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "job ") {
		t.Fatalf("first stderr line %q: %v", first, err)
	}
	if err := p.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	err = p.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	stderr := first + string(rest)
	t.Logf("stderr: %s\nstdout: %s", stderr, stdout.String())
	if code != cli.ExitFailed {
		t.Errorf("exit code %d, want %d", code, cli.ExitFailed)
	}
	if !strings.Contains(stderr, "cancelling job") {
		t.Errorf("stderr does not say the job is being cancelled: %q", stderr)
	}
	job := jobIDOf(t, first)
	if !strings.Contains(stdout.String(), "job "+job+" cancelled: ") || !strings.Contains(stdout.String(), " cancelled ") {
		t.Errorf("report does not show a cancelled job with cancelled devices:\n%s", stdout.String())
	}
	// Devices cancelled before they started read as cancelled runs with no output: no file.
	files, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) > 1 {
		t.Errorf("--out wrote %d files, want at most 1 (one device ran before the cancel)", len(files))
	}
	for _, f := range files {
		if fi, err := f.Info(); err != nil || fi.Size() == 0 {
			t.Errorf("--out wrote %s empty (%v): a device that never printed gets no file", f.Name(), err)
		}
	}
}

func fleetJSON(t *testing.T, f *devicesim.Fleet) string {
	t.Helper()
	var b bytes.Buffer
	if err := f.WriteInventory(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
