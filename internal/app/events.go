package app

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/eventbus"
	"github.com/netauto/netauto/internal/metrics"
	"github.com/netauto/netauto/internal/notify"
)

// EventPublisher returns the publisher of NetAuto's events (docs/events.md): PutEvents on the
// EventBridge bus NET_AUTO_EVENT_BUS names (AWS_ENDPOINT_URL_EVENTBRIDGE points the client at the
// local stand-in), or nil when events are off.
func EventPublisher(cfg config.Config, awsCfg aws.Config, logger *slog.Logger) (notify.Publisher, error) {
	if cfg.EventBus == "" {
		return nil, nil
	}
	b, err := eventbus.New(eventbus.Client(awsCfg), cfg.EventBus)
	if err != nil {
		return nil, err
	}
	b.Logger = logger
	return b, nil
}

// newNotices returns the bulk notices that send a function's events through pub, or nil when
// there is no publisher.
func newNotices(pub notify.Publisher, claims bulk.NoticeClaimer, runs bulk.RunGetter, devices bulk.DeviceLookup, logger *slog.Logger, emf *metrics.Emitter, fn config.Function) *bulk.Notices {
	if pub == nil {
		return nil
	}
	return &bulk.Notices{Publisher: pub, Claims: claims, Runs: runs, Devices: devices, Logger: logger, Metrics: emf, Function: string(fn)}
}
