// Command retention is the Lambda function for the EventBridge retention schedule (it purges runs
// by age and by bytes per device) and for the runs table's stream filtered to TTL deletions (it
// keeps the per-device byte counters exact). The handler tells the two events apart.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/logging"
)

func main() {
	cfg, err := config.Load(config.Retention, os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	slog.SetDefault(logging.New(os.Stdout, cfg.LogLevel))
	handler, err := app.NewRetention(context.Background(), cfg, app.RetentionOptions{Logger: slog.Default()})
	if err != nil {
		slog.Error("retention function", "err", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}
