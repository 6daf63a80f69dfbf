package localdev_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// localdevBinary builds the real `make dev` program, once per test binary.
func localdevBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "localdev-test-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "localdev")
		out, err := exec.Command("go", "build", "-o", buildBin, "../cmd/localdev").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build localdev: %w\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return buildBin
}

// instance is one running `make dev` program.
type instance struct {
	cmd  *exec.Cmd
	done chan error // receives the process's exit once
	url  string
	// endpoints are the stand-ins' URLs by name (dynamodb, sqs); tables the table names by
	// logical id, both from the health answer.
	endpoints map[string]string
	tables    map[string]string
	logPath   string
}

// startLocaldev starts the program with its gateway on a free port and its state in stateDir,
// waits until it is ready and reads its health answer. Its log goes to a file that a failing
// test prints the end of.
func startLocaldev(t *testing.T, stateDir string, args ...string) *instance {
	t.Helper()
	bin := localdevBinary(t)
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		// The developer's own settings must not leak in: a state folder, memory switch or address.
		if !strings.HasPrefix(kv, "NET_AUTO_STATE_DIR=") && !strings.HasPrefix(kv, "NET_AUTO_DEV_MEMORY=") && !strings.HasPrefix(kv, "NET_AUTO_LOCAL_ADDR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "NET_AUTO_LOCAL_ADDR=127.0.0.1:0", "NET_AUTO_STATE_DIR="+stateDir)
	logFile, err := os.CreateTemp(t.TempDir(), "localdev-*.log")
	require.NoError(t, err)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start localdev")
	in := &instance{cmd: cmd, done: make(chan error, 1), logPath: logFile.Name()}
	urlc := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer close(urlc)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			_, _ = logFile.Write(append(sc.Bytes(), '\n'))
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "NetAuto is running" {
				urlc <- line.URL
			}
		}
	}()
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		in.done <- cmd.Wait()
		logFile.Close()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-copied
		if t.Failed() {
			t.Logf("end of the localdev log %s:\n%s", in.logPath, tail(in.logPath, 40))
		}
	})
	select {
	case u, ok := <-urlc:
		require.True(t, ok, "localdev exited before it was ready:\n%s", tail(in.logPath, 40))
		in.url = u
	case <-time.After(3 * time.Minute):
		require.FailNow(t, "localdev not ready within 3 minutes", tail(in.logPath, 40))
	}

	resp, err := http.Get(in.url + "/v1/health")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "health: %s", body)
	var health struct {
		Status     string `json:"status"`
		Deployment struct {
			StandIns map[string]struct{ Version, Endpoint string } `json:"stand_ins"`
			Tables   map[string]string                             `json:"tables"`
		} `json:"deployment"`
	}
	require.NoError(t, json.Unmarshal(body, &health), "health body %s", body)
	require.Equal(t, "ok", health.Status)
	in.endpoints, in.tables = map[string]string{}, health.Deployment.Tables
	for _, name := range []string{"dynamodb", "sqs"} {
		si, ok := health.Deployment.StandIns[name]
		require.True(t, ok && si.Version != "" && si.Endpoint != "", "health names no %s stand-in: %s", name, body)
		in.endpoints[name] = si.Endpoint
	}
	return in
}

// addrs returns the stand-ins' and the gateway's host:port.
func (in *instance) addrs() []string {
	return []string{
		strings.TrimPrefix(in.endpoints["dynamodb"], "http://"), strings.TrimPrefix(in.endpoints["sqs"], "http://"),
		strings.TrimPrefix(in.url, "http://"),
	}
}

// stop sends sig and waits (bounded) for the process to exit, returning how it exited.
func (in *instance) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	require.NoError(t, in.cmd.Process.Signal(sig))
	select {
	case err := <-in.done:
		return err
	case <-time.After(90 * time.Second):
		require.FailNow(t, "localdev did not exit in time", "within 90 s of %v", sig)
		return nil
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// waitClosed waits (bounded) until nothing accepts connections on addr.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		select {
		case <-ctx.Done():
			require.FailNow(t, "still accepts connections", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestLocaldevLeavesNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local system")
	}
	tests := []struct {
		name   string
		signal syscall.Signal
	}{
		{"ctrl-c stops the stand-ins cleanly", syscall.SIGINT},
		{"a killed parent takes its children with it", syscall.SIGKILL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A state folder of its own: the kept database and fleet must not be the developer's.
			in := startLocaldev(t, t.TempDir())
			err := in.stop(t, tc.signal)
			if tc.signal == syscall.SIGINT {
				require.NoError(t, err, "localdev did not exit cleanly after Ctrl-C")
			}
			for _, a := range in.addrs() {
				waitClosed(t, a)
			}
		})
	}
}
