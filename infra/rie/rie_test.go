// Package rie_test smoke-tests the real Lambda bootstrap binaries under AWS's Lambda Runtime
// Interface Emulator (RIE): the binary built the way `sam build` builds it (CGO_ENABLED=0,
// -tags lambda.norpc; for the host's GOARCH because RIE runs it natively here), started by the
// same runtime API that Lambda provides, invoked with the sample events in events/.
package rie_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/config"
)

// rieModule is the emulator the project pins (see docs/deploy.md).
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok, "locate test file")
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// goTool runs the go command in the repository root with extra environment.
func goTool(t *testing.T, ctx context.Context, env []string, args ...string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "find the go command")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
}

// installRIE returns the emulator binary in .cache/bin, installing it there when missing.
func installRIE(t *testing.T, ctx context.Context) string {
	t.Helper()
	binDir := filepath.Join(repoRoot(t), ".cache", "bin")
	bin := filepath.Join(binDir, "aws-lambda-rie")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	goTool(t, ctx, []string{"GOBIN=" + binDir}, "install", rieModule)
	return bin
}

// buildBootstrap builds functions/<fn> into dir/<fn>/bootstrap as `make build-<LogicalId>` does,
// but for the host's architecture.
func buildBootstrap(t *testing.T, ctx context.Context, dir string, fn config.Function) string {
	t.Helper()
	out := filepath.Join(dir, string(fn), "bootstrap")
	goTool(t, ctx, []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + runtime.GOARCH},
		"build", "-trimpath", "-tags", "lambda.norpc", "-o", out, "./functions/"+string(fn))
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "find a free port")
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// emulator is one running RIE instance serving one function.
type emulator struct {
	addr   string
	output *syncBuffer
}

// startRIE runs the emulator for bootstrap with env (plus a minimal base environment) and waits
// until its invoke endpoint accepts connections. The emulator and the bootstrap it starts run in
// their own process group, killed at cleanup.
func startRIE(t *testing.T, rie, bootstrap string, env map[string]string) *emulator {
	t.Helper()
	invokeAddr, runtimeAddr := freePort(t), freePort(t)
	cmd := exec.Command(rie, "--log-level", "error",
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TZ=UTC",
		"AWS_REGION=us-east-1", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDRIESMOKETEST", "AWS_SECRET_ACCESS_KEY=rie-smoke-test-secret",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=30", "AWS_EC2_METADATA_DISABLED=true"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start(), "start %s", rie)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Readiness: dial with a bounded exponential backoff until the emulator listens, it exits,
	// or 20 s pass.
	deadline := time.Now().Add(20 * time.Second)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		conn, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			conn.Close()
			return &emulator{addr: invokeAddr, output: out}
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "emulator did not listen within 20s", "%s: %v\noutput:\n%s", invokeAddr, err, out)
		}
		select {
		case err := <-exited:
			exited <- err
			require.FailNow(t, "emulator exited before listening", "%v\noutput:\n%s", err, out)
		case <-time.After(wait):
		}
	}
}

// invoke posts the event file to the emulator and returns the function's response payload.
func (e *emulator) invoke(t *testing.T, ctx context.Context, eventFile string) []byte {
	t.Helper()
	event, err := os.ReadFile(eventFile)
	require.NoError(t, err, "read event %s", eventFile)
	url := "http://" + e.addr + "/2015-03-31/functions/function/invocations"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
	require.NoError(t, err, "invoke request")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "invoke with %s\noutput:\n%s", eventFile, e.output)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "read invoke response")
	require.Equal(t, http.StatusOK, resp.StatusCode, "invoke answered %s\noutput:\n%s", body, e.output)
	return body
}

// dummyEnv sets every variable fn requires to a placeholder: the routes invoked here touch no
// AWS service.
func dummyEnv(fn config.Function) map[string]string {
	env := map[string]string{config.EnvLogLevel: "warn"}
	for _, v := range config.Vars(fn) {
		if !v.Required {
			continue
		}
		if strings.HasSuffix(v.Name, "_URL") {
			env[v.Name] = "https://sqs.us-east-1.amazonaws.com/123456789012/rie-smoke-" + strings.ToLower(v.Name)
		} else {
			env[v.Name] = "rie-smoke-" + strings.ToLower(v.Name)
		}
	}
	return env
}

func TestRIESmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function binaries and runs the Lambda emulator")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the Lambda Runtime Interface Emulator runs on Linux")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	root := repoRoot(t)
	rie := installRIE(t, ctx)
	dir := t.TempDir()

	t.Run("api health", func(t *testing.T) {
		emu := startRIE(t, rie, buildBootstrap(t, ctx, dir, config.API), dummyEnv(config.API))
		payload := emu.invoke(t, ctx, filepath.Join(root, "events", "http-health.json"))
		var resp events.APIGatewayV2HTTPResponse
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&resp), "response is no API Gateway v2 response:\n%s", payload)
		require.Equal(t, http.StatusOK, resp.StatusCode, "statusCode: %s", payload)
		var health struct {
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal([]byte(resp.Body), &health), "body is not JSON:\n%s", resp.Body)
		assert.Equal(t, "ok", health.Status, "status in the body %s", resp.Body)
	})

	t.Run("notifier takes an SQS batch", func(t *testing.T) {
		// One function answers two kinds of invocation (its EventBridge rule, its webhook queue) and
		// tells them apart by shape. A record that is no delivery is dropped without touching AWS,
		// and the answer is the partial batch response SQS reads.
		emu := startRIE(t, rie, buildBootstrap(t, ctx, dir, config.Notifier), dummyEnv(config.Notifier))
		event := filepath.Join(t.TempDir(), "sqs.json")
		require.NoError(t, os.WriteFile(event, []byte(`{"Records":[{"messageId":"m1","body":"not a delivery","eventSource":"aws:sqs"}]}`), 0o600))
		payload := emu.invoke(t, ctx, event)
		var resp events.SQSEventResponse
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&resp), "response is no SQS batch response:\n%s", payload)
		assert.Empty(t, resp.BatchItemFailures, "a record no retry can make a delivery is not handed out again")
	})

	t.Run("ws refuses the sample's unsigned token", func(t *testing.T) {
		// The sample $connect carries a token of no known issuer: the function answers 401
		// itself (no key set is fetched, no table touched), so API Gateway refuses the upgrade.
		emu := startRIE(t, rie, buildBootstrap(t, ctx, dir, config.WS), dummyEnv(config.WS))
		payload := emu.invoke(t, ctx, filepath.Join(root, "events", "ws-connect.json"))
		var resp events.APIGatewayProxyResponse
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&resp), "response is no API Gateway proxy response:\n%s", payload)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "statusCode (payload %s)", payload)
	})
}
