// Command watchdog is the Lambda function on its own EventBridge rule (every 5 minutes): it
// re-sends bulk batches whose queue messages were lost and, when a re-send brings no progress,
// fails their unfinished devices (delivery_lost), so every job ends.
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
	app.Start(config.Watchdog, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.WatchdogHandler, error) {
		handler, _, err := app.NewWatchdog(ctx, cfg, app.WatchdogOptions{Logger: logger, Metrics: metrics.New(os.Stdout)})
		return handler, err
	})
}
