// Command executor is the Lambda function behind the bulk queue's SQS event source: it runs each
// batch's command on its devices over SSH, stores runs and output, and records progress. Records
// from the dead-letter queue (its second event source) fail their batch's unfinished devices.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/metrics"
)

func main() {
	app.Start(config.Executor, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.SQSHandler, error) {
		handler, _, err := app.NewExecutor(ctx, cfg, app.ExecutorOptions{Logger: logger, Metrics: metrics.New(os.Stdout)})
		return handler, err
	})
}
