package app

// Live progress: the ws function's handler and the progress publisher that the executor
// and the api function push through.

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/golang-jwt/jwt/v5"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/push"
	"github.com/netauto/netauto/internal/resources"
)

// WSHandler is the signature of the ws function's Lambda handler (API Gateway WebSocket API).
type WSHandler func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// WSOptions are the knobs the local gateway turns; a Lambda main passes the zero value.
type WSOptions struct {
	Logger *slog.Logger
	// Verifier checks $connect tokens; nil fetches the issuer's key set (NET_AUTO_JWKS_URL or
	// the issuer's /.well-known/jwks.json) on first use.
	Verifier live.Verifier
	// Poster sends messages to connections; nil uses PostToConnection at NET_AUTO_WS_ENDPOINT,
	// or at https://<domainName>/<stage> of each event when that is unset.
	Poster live.Poster
}

// NewWS builds the ws function's handler from its configuration.
func NewWS(ctx context.Context, cfg config.Config, opts WSOptions) (WSHandler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	awsCfg, err := AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	db := dynamo.NewClient(awsCfg)
	conns, err := dynamo.NewConnectionStore(db, cfg.Tables[resources.ConnectionsTable])
	if err != nil {
		return nil, err
	}
	jobs, err := dynamo.NewJobStore(db, cfg.Tables[resources.JobsTable])
	if err != nil {
		return nil, err
	}
	if opts.Verifier == nil {
		url := cfg.JWKSURL
		if url == "" {
			url = strings.TrimRight(cfg.JWTIssuer, "/") + "/.well-known/jwks.json"
		}
		opts.Verifier = &jwksVerifier{url: url, issuer: cfg.JWTIssuer, audience: cfg.JWTAudience, client: &http.Client{Timeout: 5 * time.Second}}
	}
	var byEvent *eventPosters
	if opts.Poster == nil {
		if cfg.WSEndpoint != "" {
			if opts.Poster, err = push.NewClient(awsCfg, cfg.WSEndpoint); err != nil {
				return nil, err
			}
		} else {
			byEvent = &eventPosters{cfg: awsCfg, clients: map[string]*push.Client{}}
		}
	}
	srv := &live.Server{Store: conns, Jobs: jobs, Poster: opts.Poster, Verifier: opts.Verifier, Logger: opts.Logger}
	return wsHandler(srv, byEvent, opts.Logger), nil
}

// WSHandlerFor adapts a live.Server to API Gateway WebSocket events (the local gateway's tests
// build their own server).
func WSHandlerFor(srv *live.Server, logger *slog.Logger) WSHandler {
	return wsHandler(srv, nil, cmp.Or(logger, slog.Default()))
}

// wsHandler adapts a live.Server to API Gateway WebSocket events. posters, when not nil, picks
// the management endpoint from each event.
func wsHandler(srv *live.Server, posters *eventPosters, logger *slog.Logger) WSHandler {
	ok := events.APIGatewayProxyResponse{StatusCode: http.StatusOK}
	return func(ctx context.Context, ev events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		rc := ev.RequestContext
		s := srv
		if posters != nil {
			cp := *srv
			cp.Poster = posters.For(rc.DomainName, rc.Stage)
			s = &cp
		}
		switch rc.RouteKey {
		case "$connect":
			c, err := s.Connect(ctx, rc.ConnectionID, ev.QueryStringParameters["token"])
			if errors.Is(err, live.ErrUnauthorized) {
				logger.InfoContext(ctx, "websocket connection refused", "connection_id", rc.ConnectionID, "reason", err.Error())
				return events.APIGatewayProxyResponse{StatusCode: http.StatusUnauthorized, Body: `{"message":"Unauthorized"}`}, nil
			}
			if err != nil {
				logger.ErrorContext(ctx, "websocket connect", "connection_id", rc.ConnectionID, "err", err)
				return events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError, Body: `{"message":"Internal Server Error"}`}, nil
			}
			logger.InfoContext(ctx, "websocket connected", "connection_id", c.ID, "subject", c.Identity.Subject, "role", c.Identity.Role)
			return ok, nil
		case "$disconnect":
			if err := s.Disconnect(ctx, rc.ConnectionID); err != nil {
				logger.ErrorContext(ctx, "websocket disconnect", "connection_id", rc.ConnectionID, "err", err)
			}
			return ok, nil
		default:
			body := []byte(ev.Body)
			if ev.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(ev.Body)
				if err != nil {
					return events.APIGatewayProxyResponse{StatusCode: http.StatusBadRequest}, nil
				}
				body = b
			}
			err := s.Message(ctx, rc.ConnectionID, body)
			if errors.Is(err, live.ErrGone) {
				logger.InfoContext(ctx, "websocket message from a gone connection", "connection_id", rc.ConnectionID, "err", err)
				return ok, nil
			}
			if err != nil {
				logger.ErrorContext(ctx, "websocket message", "connection_id", rc.ConnectionID, "route", rc.RouteKey, "err", err)
				return events.APIGatewayProxyResponse{StatusCode: http.StatusInternalServerError}, nil
			}
			return ok, nil
		}
	}
}

// eventPosters keeps one management client per endpoint named by events.
type eventPosters struct {
	cfg     aws.Config
	mu      sync.Mutex
	clients map[string]*push.Client
}

// For returns the client for https://domain/stage.
func (p *eventPosters) For(domain, stage string) live.Poster {
	endpoint := "https://" + domain + "/" + stage
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[endpoint]
	if !ok {
		c, _ = push.NewClient(p.cfg, endpoint)
		p.clients[endpoint] = c
	}
	return c
}

// JWKS refresh bounds. A token naming an unknown key refetches the key set at most once a
// minute (so junk kids cannot hammer the identity provider); the set is also refetched every
// jwksRefresh, so a key the issuer stopped publishing stops being trusted within that time; and
// when refreshing fails the old set is used until jwksMaxStale after its fetch, then no token is
// accepted until a fetch succeeds.
const (
	jwksUnknownKeyInterval = time.Minute
	jwksRefresh            = 10 * time.Minute
	jwksMaxStale           = time.Hour
)

// jwksVerifier fetches the issuer's key set on first use and again when it is older than
// jwksRefresh or a token names a key it does not know; a refetch replaces the whole set, so
// retired keys are dropped. Key rotation needs no redeploy.
type jwksVerifier struct {
	url, issuer, audience string
	client                *http.Client
	// now is the clock (default time.Now).
	now     func() time.Time
	mu      sync.Mutex
	v       *auth.Verifier
	fetched time.Time
	// tried is when a fetch was last attempted, successful or not.
	tried time.Time
}

// Verify implements live.Verifier.
func (j *jwksVerifier) Verify(raw string) (map[string]string, error) {
	// Refuse tokens of another issuer before any fetch, so junk cannot make us call the IdP.
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &claims); err != nil {
		return nil, fmt.Errorf("%w: malformed token", auth.ErrUnauthorized)
	}
	if claims.Issuer != j.issuer {
		return nil, fmt.Errorf("%w: token issuer is not %q", auth.ErrUnauthorized, j.issuer)
	}
	v, err := j.verifier(false)
	if err != nil {
		return nil, err
	}
	out, err := v.Verify(raw)
	if errors.Is(err, auth.ErrUnknownKey) {
		if v2, ferr := j.verifier(true); ferr == nil && v2 != v {
			return v2.Verify(raw)
		}
	}
	return out, err
}

func (j *jwksVerifier) clock() time.Time {
	if j.now != nil {
		return j.now()
	}
	return time.Now()
}

// verifier returns the key set's verifier, fetching it first when there is none, when it is
// older than jwksRefresh, or when unknownKey asks and the last attempt is a minute old.
func (j *jwksVerifier) verifier(unknownKey bool) (*auth.Verifier, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.clock()
	age := now.Sub(j.fetched)
	switch {
	case j.v == nil:
	case age >= jwksRefresh && now.Sub(j.tried) >= jwksUnknownKeyInterval:
	case unknownKey && now.Sub(j.tried) >= jwksUnknownKeyInterval:
	case age >= jwksMaxStale:
		return nil, fmt.Errorf("JWKS %s: the key set is %s old and could not be refreshed", j.url, age.Round(time.Second))
	default:
		return j.v, nil
	}
	j.tried = now
	v, err := j.fetch()
	if err != nil {
		if j.v != nil && age < jwksMaxStale {
			return j.v, nil // keep the keys we have for a while when the issuer is unreachable
		}
		return nil, err
	}
	j.v, j.fetched = v, now
	return v, nil
}

func (j *jwksVerifier) fetch() (*auth.Verifier, error) {
	resp, err := j.client.Get(j.url)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", j.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: %s", j.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read JWKS %s: %w", j.url, err)
	}
	return auth.NewJWKSVerifier(body, j.issuer, j.audience)
}

// NewPublisher builds the progress publisher for a function whose configuration names the
// connections table and the WebSocket management endpoint; it returns nil, nil when either is
// missing (nothing is pushed).
func NewPublisher(cfg config.Config, awsCfg aws.Config, logger *slog.Logger) (*push.Publisher, error) {
	table := cfg.Tables[resources.ConnectionsTable]
	if table == "" || cfg.WSEndpoint == "" {
		return nil, nil
	}
	conns, err := dynamo.NewConnectionStore(dynamo.NewClient(awsCfg), table)
	if err != nil {
		return nil, err
	}
	client, err := push.NewClient(awsCfg, cfg.WSEndpoint)
	if err != nil {
		return nil, err
	}
	return push.New(push.Options{Subscriptions: conns, Poster: client, Logger: logger})
}

// flushHTTP is flushAfter for the api function.
func flushHTTP(h HTTPHandler, pub bulk.Publisher, logger *slog.Logger) HTTPHandler {
	logger = cmp.Or(logger, slog.Default())
	f, ok := pub.(flusher)
	if !ok {
		return h
	}
	return func(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := h(ctx, ev)
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if ferr := f.Flush(fctx); ferr != nil {
			logger.WarnContext(ctx, "progress not all pushed before the request ended", "err", ferr)
		}
		return resp, err
	}
}

// flusher is a publisher that delivers asynchronously and can be waited for.
type flusher interface {
	Flush(ctx context.Context) error
}

// flushAfter makes an SQS handler wait, before it returns, until the progress it published was
// delivered: Lambda freezes the environment once the handler returns.
func flushAfter(h SQSHandler, pub bulk.Publisher, logger *slog.Logger) SQSHandler {
	logger = cmp.Or(logger, slog.Default())
	f, ok := pub.(flusher)
	if !ok {
		return h
	}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := h(ctx, ev)
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if ferr := f.Flush(fctx); ferr != nil {
			logger.WarnContext(ctx, "progress not all pushed before the invocation ended", "err", ferr)
		}
		return resp, err
	}
}
