package localdev_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startLocaldev builds and starts the real `make dev` program on a free port and returns the
// process, its gateway URL and the stand-ins' endpoints from its health answer.
func startLocaldev(t *testing.T) (*exec.Cmd, string, []string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "localdev")
	build := exec.Command("go", "build", "-o", bin, "../cmd/localdev")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build localdev: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	// A state folder of its own: the kept database and fleet must not be the developer's.
	cmd.Env = append(os.Environ(), "NET_AUTO_LOCAL_ADDR=127.0.0.1:0", "NET_AUTO_STATE_DIR="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start localdev: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "NetAuto is running" {
				urlc <- line.URL
			}
		}
		close(urlc)
	}()
	var url string
	select {
	case u, ok := <-urlc:
		if !ok {
			t.Fatal("localdev exited before it was ready")
		}
		url = u
	case <-time.After(3 * time.Minute):
		t.Fatal("localdev not ready within 3 minutes")
	}

	resp, err := http.Get(url + "/v1/health")
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health status %d: %s", resp.StatusCode, body)
	}
	var health struct {
		Status     string `json:"status"`
		Deployment struct {
			StandIns map[string]struct{ Version, Endpoint string } `json:"stand_ins"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(body, &health); err != nil {
		t.Fatalf("health body %s: %v", body, err)
	}
	if health.Status != "ok" {
		t.Fatalf("health status %q", health.Status)
	}
	var addrs []string
	for _, name := range []string{"dynamodb", "sqs"} {
		si, ok := health.Deployment.StandIns[name]
		if !ok || si.Version == "" || si.Endpoint == "" {
			t.Fatalf("health names no %s stand-in: %s", name, body)
		}
		addrs = append(addrs, strings.TrimPrefix(si.Endpoint, "http://"))
	}
	return cmd, url, append(addrs, strings.TrimPrefix(url, "http://"))
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
			t.Fatalf("%s still accepts connections", addr)
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
			cmd, _, addrs := startLocaldev(t)
			if err := cmd.Process.Signal(tc.signal); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if tc.signal == syscall.SIGINT && err != nil {
				t.Fatalf("localdev exited with %v after Ctrl-C, want a clean exit", err)
			}
			for _, a := range addrs {
				waitClosed(t, a)
			}
		})
	}
}
