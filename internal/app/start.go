package app

import (
	"context"
	"log/slog"
	"os"

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
	handler, err := build(context.Background(), cfg, logger)
	if err != nil {
		logger.Error("start", "function", fn, "err", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}
