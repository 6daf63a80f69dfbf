// Command retention is the Lambda function for the EventBridge retention schedule: it purges runs by age and by bytes per device.
// Until its capability lands (retention, issue 7) it refuses every event with a clear error.
package main

import (
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
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
	lambda.Start(app.NotYet[events.EventBridgeEvent](config.Retention, "retention, issue 7"))
}
