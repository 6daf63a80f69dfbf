// Command executor is the Lambda function behind the bulk queue's SQS event source: it runs each
// batch's command on its devices over SSH, stores runs and output, and records progress. Records
// from the dead-letter queue (its second event source) fail their batch's unfinished devices.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/logging"
	"github.com/netauto/netauto/internal/metrics"
)

func main() {
	cfg, err := config.Load(config.Executor, os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	logger := logging.New(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	handler, _, err := app.NewExecutor(context.Background(), cfg, app.ExecutorOptions{Logger: logger, Metrics: metrics.New(os.Stdout)})
	if err != nil {
		logger.Error("start", "err", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}
