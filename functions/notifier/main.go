// Command notifier is the Lambda function behind NetAuto's webhooks: the target of the EventBridge
// rule on source netauto (it fans each event out to the webhooks that take it) and the consumer of
// the webhook queue (it makes each delivery, signed, and queues retries with backoff).
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
	app.Start(config.Notifier, func(ctx context.Context, cfg config.Config, logger *slog.Logger) (app.NotifierHandler, error) {
		n, err := app.NewNotifier(ctx, cfg, app.NotifierOptions{Logger: logger, Metrics: metrics.New(os.Stdout)})
		if err != nil {
			return nil, err
		}
		return n.Handler(), nil
	})
}
