// Command api is the Lambda function behind NetAuto's HTTPS API (API Gateway HTTP API).
package main

import (
	"context"
	"log/slog"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
)

func main() {
	app.Start(config.API, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.HTTPHandler, error) {
		return app.NewAPI(ctx, cfg, app.APIOptions{Logger: logger})
	})
}
