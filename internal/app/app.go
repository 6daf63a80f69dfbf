// Package app wires configuration, AWS clients and domain packages into the Lambda handlers of
// NetAuto's functions. The thin mains under functions/ and the local gateway build their handlers
// here, so the code that runs in AWS is the code that runs locally.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/config"
)

// HTTPHandler is the signature of the api function's Lambda handler (API Gateway HTTP API,
// payload format 2.0).
type HTTPHandler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// APIOptions are the knobs the local gateway turns; a Lambda main passes the zero value.
type APIOptions struct {
	// Health is reported by GET /v1/health under "deployment".
	Health map[string]any
	Logger *slog.Logger
}

// NewAPI builds the api function's handler from its configuration.
func NewAPI(_ context.Context, cfg config.Config, opts APIOptions) (HTTPHandler, error) {
	if opts.Health == nil {
		opts.Health = map[string]any{"runtime": "aws-lambda", "region": os.Getenv("AWS_REGION"), "tables": cfg.Tables}
	}
	srv, err := api.New(api.Options{Logger: opts.Logger, Health: opts.Health})
	if err != nil {
		return nil, fmt.Errorf("build api: %w", err)
	}
	return httpadapter.NewV2(srv).ProxyWithContext, nil
}

// NotYet returns a handler for a function whose capability has not landed: it refuses every event
// with an error that says so, instead of pretending to work.
func NotYet[E any](fn config.Function, issue string) func(context.Context, E) (any, error) {
	return func(context.Context, E) (any, error) {
		return nil, fmt.Errorf("netauto %s function: not implemented yet (%s); this build refuses every event", fn, issue)
	}
}
