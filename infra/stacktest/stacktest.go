// Package stacktest gives integration tests the local stack: Main starts it once per test binary
// (or reuses the one named by NET_AUTO_TEST_DYNAMODB / NET_AUTO_TEST_SQS), and New provisions a
// fresh, uniquely named set of tables and queues for one test so tests can run in parallel.
// Under -short (make unit) Main starts no stack and every test that asks for it is skipped.
package stacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/stack"
)

// Env vars naming a running stack to reuse instead of starting one.
const (
	EnvDynamoDB = "NET_AUTO_TEST_DYNAMODB"
	EnvSQS      = "NET_AUTO_TEST_SQS"
)

var endpoints stack.Endpoints

// Main runs the tests of a package against the local stack and exits with their status. Call it
// from TestMain. Under -short it starts no stack: tests that need one skip (see Require).
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	if d, s := os.Getenv(EnvDynamoDB), os.Getenv(EnvSQS); d != "" && s != "" {
		endpoints = stack.Endpoints{DynamoDB: d, SQS: s}
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := stack.Start(ctx, stack.Options{Logger: logger})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "stacktest: start local stack: %v\n", err)
		return 1
	}
	defer st.Close()
	endpoints = st.Endpoints
	return m.Run()
}

// Env is one test's own set of resources on the shared stack.
type Env struct {
	Endpoints stack.Endpoints
	Names     stack.Names
	Prefix    string
}

// SkipReason is the message of a test skipped because it needs the local stack under -short.
const SkipReason = "needs the local stack (DynamoDB Local, SQS stand-in): skipped under -short"

// Require skips the test under -short, where Main starts no stack. Tests that need the stack
// without calling New or Endpoints (a whole localdev, an SSH server, a browser) call it first.
func Require(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip(SkipReason)
	}
}

// Endpoints returns the running stack's endpoints; Main must have run. Under -short it skips.
func Endpoints(tb testing.TB) stack.Endpoints {
	tb.Helper()
	Require(tb)
	require.NotEmpty(tb, endpoints.DynamoDB, "stacktest: no local stack: call stacktest.Main from TestMain")
	return endpoints
}

// New provisions every table and queue under a prefix unique to this test.
func New(tb testing.TB) *Env {
	tb.Helper()
	ep := Endpoints(tb)
	var b [4]byte
	_, err := rand.Read(b[:])
	require.NoError(tb, err, "random prefix")
	prefix := "t" + hex.EncodeToString(b[:]) + "-"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	names, err := stack.Provision(ctx, ep, prefix)
	require.NoError(tb, err, "provision %s", prefix)
	return &Env{Endpoints: ep, Names: names, Prefix: prefix}
}

// Setenv points the AWS SDK and the functions' resource variables at this test's resources for
// the duration of the test (tests that call it cannot run in parallel, as with tb.Setenv).
func (e *Env) Setenv(t *testing.T) {
	t.Helper()
	for k, v := range e.Endpoints.Env() {
		t.Setenv(k, v)
	}
	for k, v := range e.Names.Env() {
		t.Setenv(k, v)
	}
}
