// Command scheduler is the Lambda function on its own EventBridge rule (every minute): it starts
// the saved jobs whose schedules are due, each due time once, as their owners.
package main

import (
	"context"
	"log/slog"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
)

func main() {
	app.Start(config.Scheduler, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.SchedulerHandler, error) {
		handler, _, err := app.NewScheduler(ctx, cfg, app.SchedulerOptions{Logger: logger})
		return handler, err
	})
}
