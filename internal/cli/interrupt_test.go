package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	require.Equal(t, 0, r.code, "import exit code")

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
	require.NoError(t, err)
	require.NoError(t, p.Start(), "start netauto bulk")
	// The job's first line on stderr means it was accepted and the command is following it.
	br := bufio.NewReader(errPipe)
	first, err := br.ReadString('\n')
	require.NoError(t, err, "first stderr line %q", first)
	require.True(t, strings.HasPrefix(first, "job "), "first stderr line %q", first)
	require.NoError(t, p.Process.Signal(os.Interrupt), "send SIGINT")
	rest, _ := io.ReadAll(br)
	err = p.Wait()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "wait for netauto bulk")
	}
	stderr := first + string(rest)
	t.Logf("stderr: %s\nstdout: %s", stderr, stdout.String())
	assert.Equal(t, cli.ExitFailed, code, "exit code")
	assert.Contains(t, stderr, "cancelling job", "stderr says the job is being cancelled")
	job := jobIDOf(t, first)
	assert.Contains(t, stdout.String(), "job "+job+" cancelled: ", "report shows the job %s cancelled", job)
	assert.Contains(t, stdout.String(), " cancelled ", "report shows cancelled devices")
	// Devices cancelled before they started read as cancelled runs with no output: no file.
	files, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(files), 1, "--out files: at most the one device that ran before the cancel")
	for _, f := range files {
		fi, err := f.Info()
		require.NoError(t, err, "--out file %s", f.Name())
		assert.NotZero(t, fi.Size(), "--out wrote %s empty: a device that never printed gets no file", f.Name())
	}
}

func fleetJSON(t *testing.T, f *devicesim.Fleet) string {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, f.WriteInventory(&b), "write the fleet's inventory")
	return b.String()
}
