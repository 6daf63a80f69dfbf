package push

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/netauto/netauto/internal/live"
)

// PostAPI is the part of the API Gateway management client that Client uses.
type PostAPI interface {
	PostToConnection(ctx context.Context, in *apigatewaymanagementapi.PostToConnectionInput, opts ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error)
}

// Client posts messages to WebSocket connections; it implements live.Poster.
type Client struct {
	api PostAPI
	// Retries is how often a throttled or failed (5xx) post is retried (default 4).
	Retries int
	// Backoff is the first retry's delay, doubled for each next one, with jitter (default 25 ms).
	Backoff time.Duration
}

// NewClient returns a Client for the management endpoint of a WebSocket API stage, e.g.
// https://abc123.execute-api.eu-west-1.amazonaws.com/v1 (or the local gateway's URL). The SDK's
// own retries are off: Client retries throttling itself and never retries a gone connection.
// Posts go through cfg's HTTP client, which should keep a connection per concurrent post alive
// (app.AWSConfig's does).
func NewClient(cfg aws.Config, endpoint string) (*Client, error) {
	if endpoint == "" {
		return nil, errors.New("push: no WebSocket management endpoint")
	}
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.RetryMaxAttempts = 1
	})
	return NewClientFrom(api), nil
}

// NewClientFrom wraps an existing management client.
func NewClientFrom(api PostAPI) *Client {
	return &Client{api: api, Retries: 4, Backoff: 25 * time.Millisecond}
}

// Post sends data to the connection; live.ErrGone when API Gateway answers 410.
func (c *Client) Post(ctx context.Context, connID string, data []byte) error {
	var err error
	for attempt := 0; ; attempt++ {
		_, err = c.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(connID), Data: data})
		if err == nil {
			return nil
		}
		if isGone(err) {
			return fmt.Errorf("post to %s: %w", connID, live.ErrGone)
		}
		if !retryable(err) || attempt >= c.Retries {
			return fmt.Errorf("post to %s: %w", connID, err)
		}
		d := c.Backoff << attempt
		d += time.Duration(rand.Int64N(int64(d)/2 + 1))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("post to %s: %w (last error: %v)", connID, ctx.Err(), err)
		case <-t.C:
		}
	}
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isGone(err error) bool {
	var g *types.GoneException
	return errors.As(err, &g) || status(err) == http.StatusGone
}

func retryable(err error) bool {
	var le *types.LimitExceededException
	if errors.As(err, &le) {
		return true
	}
	s := status(err)
	return s == http.StatusTooManyRequests || s >= 500
}
