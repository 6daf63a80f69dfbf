// Command ws is the Lambda function for the WebSocket API's $connect, $disconnect, subscribe and unsubscribe routes.
// Until its capability lands (live progress, issue 6) it refuses every event with a clear error.
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
	cfg, err := config.Load(config.WS, os.Getenv)
	if err != nil {
		slog.Error("configuration", "err", err)
		os.Exit(1)
	}
	slog.SetDefault(logging.New(os.Stdout, cfg.LogLevel))
	lambda.Start(app.NotYet[events.APIGatewayWebsocketProxyRequest](config.WS, "live progress, issue 6"))
}
