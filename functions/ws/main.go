// Command ws is the Lambda function for the WebSocket API's $connect, $disconnect, subscribe and
// unsubscribe routes: it checks the token on $connect, keeps connections and subscriptions, and
// answers a subscribe with a snapshot of the job (live progress, docs/websocket.md).
package main

import (
	"context"
	"log/slog"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
)

func main() {
	app.Start(config.WS, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.WSHandler, error) {
		return app.NewWS(ctx, cfg, app.WSOptions{Logger: logger})
	})
}
