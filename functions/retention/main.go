// Command retention is the Lambda function for the EventBridge retention schedule (it purges runs
// by age and by bytes per device) and for the runs table's stream filtered to TTL deletions (it
// keeps the per-device byte counters exact). The handler tells the two events apart.
package main

import (
	"context"
	"log/slog"

	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/config"
)

func main() {
	app.Start(config.Retention, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.RetentionHandler, error) {
		return app.NewRetention(ctx, cfg, app.RetentionOptions{Logger: logger})
	})
}
