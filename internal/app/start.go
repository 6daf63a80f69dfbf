package app

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/logging"
)

// Start is the body of every function's main: it loads fn's configuration (exiting with a
// message naming each bad variable), sets up JSON logging, builds the handler and serves it to the
// Lambda runtime. build returns a handler lambda.Start accepts.
func Start[H any](fn config.Function, build func(context.Context, config.Config, *slog.Logger) (H, error)) {
	cfg, err := config.Load(fn, os.Getenv)
	if err != nil {
		slog.Error("configuration", "function", fn, "err", err)
		os.Exit(1)
	}
	logger := logging.New(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	if limit, ok := memoryLimit(os.Getenv); ok {
		debug.SetMemoryLimit(limit)
	}
	handler, err := build(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("start", "function", fn, "err", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}

// memoryLimit is the Go heap's soft limit for a Lambda function: 90% of the function's memory
// (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB), so that a collector set to run less often (GOGC)
// still never takes the function past its memory. None when GOMEMLIMIT is set, or outside Lambda.
func memoryLimit(getenv func(string) string) (int64, bool) {
	if getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	mb, err := strconv.ParseInt(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 10, 64)
	if err != nil || mb <= 0 {
		return 0, false
	}
	return mb << 20 * 9 / 10, true
}
