// Command executor is the Lambda function for the bulk queue's SQS event source: it runs each batch's command on its devices over SSH.
// Until its capability lands (bulk fan-out, issue 5) it refuses every event with a clear error.
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
	cfg, err := config.Load(config.Executor, os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	slog.SetDefault(logging.New(os.Stdout, cfg.LogLevel))
	lambda.Start(app.NotYet[events.SQSEvent](config.Executor, "bulk fan-out, issue 5"))
}
