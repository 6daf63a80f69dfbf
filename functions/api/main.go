// Command api is the Lambda function behind NetAuto's HTTPS API (API Gateway HTTP API).
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
	cfg, err := config.Load(config.API, os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	logger := logging.New(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	handler, err := app.NewAPI(context.Background(), cfg, app.APIOptions{Logger: logger})
	if err != nil {
		logger.Error("start", "err", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}
