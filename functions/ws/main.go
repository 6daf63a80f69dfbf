// Command ws is the Lambda function for the WebSocket API's $connect, $disconnect, subscribe and
// unsubscribe routes: it checks the token on $connect, keeps connections and subscriptions, and
// answers a subscribe with a snapshot of the job (live progress, docs/websocket.md).
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
	cfg, err := config.Load(config.WS, os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	logger := logging.New(os.Stdout, cfg.LogLevel)
	slog.SetDefault(logger)
	handler, err := app.NewWS(context.Background(), cfg, app.WSOptions{Logger: logger})
	if err != nil {
		logger.Error("start", "err", err)
		os.Exit(1)
	}
	lambda.Start(handler)
}
