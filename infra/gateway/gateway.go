// Package gateway is NetAuto's local stand-in for API Gateway: one HTTP server that turns requests
// under /v1 into the same API Gateway HTTP API (payload 2.0) events AWS would send, invokes the api
// function's handler with them, and serves the static UI from web/ at / with its /config.json
// (and, for local development only, a dev sign-in at /dev/token). The WebSocket API hangs off
// the same server. It answers CORS as the HTTP API's CorsConfiguration does (cors.go), so the UI
// can also be served from an origin of its own (NewUIOrigin), as CloudFront serves it in AWS.
package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/resources"
)

// MaxBodyBytes is API Gateway's request payload limit (10 MB).
const MaxBodyBytes = 10 << 20

// DefaultAddr is where the gateway listens unless NET_AUTO_LOCAL_ADDR says otherwise.
const DefaultAddr = "127.0.0.1:8080"

// Options configures a Gateway.
type Options struct {
	// API is the api function's handler.
	API app.HTTPHandler
	// WebDir is the folder served at /; empty serves no UI.
	WebDir string
	// Verifier checks bearer tokens as API Gateway's JWT authorizer does; required.
	Verifier *auth.Verifier
	Logger   *slog.Logger
	// WS is the ws function's handler; when set the gateway serves the WebSocket API at /ws
	// and its management endpoint at /@connections/{id} (ws.go).
	WS app.WSHandler
	// DevSignIn, when set, serves POST /dev/token: a token for any email and role, signed by
	// this signer (ui.go). Local development only; there is no such route in AWS.
	DevSignIn *auth.Signer
	// CORSOrigins are the origins allowed to call the API from a browser, as the HTTP API's
	// CorsConfiguration AllowOrigins (the UI's CloudFront domain in AWS); the rest of that
	// configuration is resources.HTTPAPICORS() (cors.go). Empty allows none; "*" allows any.
	CORSOrigins []string
	// AllowedHosts are further Host header names the gateway answers, beside localhost and
	// loopback addresses (host.go); requests for any other name get 421.
	AllowedHosts []string
}

// publicRoutes skip the authorizer, as in template.yaml.
var publicRoutes = map[string]bool{"GET /v1/health": true, "GET /v1/openapi.json": true}

// Gateway is the local API Gateway.
type Gateway struct {
	opts  Options
	mux   *http.ServeMux
	hosts http.Handler
	cors  *cors
	reqID atomic.Uint64
	ws    wsHub
}

// New returns a Gateway; serve it with Serve or use it as an http.Handler.
func New(opts Options) (*Gateway, error) {
	if opts.API == nil {
		return nil, errors.New("gateway: no API handler")
	}
	if opts.Verifier == nil {
		return nil, errors.New("gateway: no token verifier")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c, err := newCORS(resources.HTTPAPICORS(), opts.CORSOrigins)
	if err != nil {
		return nil, fmt.Errorf("gateway: cors: %w", err)
	}
	hosts, err := newHostAllowList(opts.AllowedHosts)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{opts: opts, mux: http.NewServeMux(), cors: c, ws: wsHub{conns: map[string]*wsConn{}}}
	g.hosts = hosts.wrap(g.mux)
	if opts.WS != nil {
		g.mux.HandleFunc("GET /ws", g.serveWS)
		g.mux.HandleFunc("/@connections/{id}", g.serveConnections)
	}
	g.mux.HandleFunc("/v1/", c.wrap(g.serveAPI))
	g.mux.HandleFunc("/v1", c.wrap(g.serveAPI))
	if opts.DevSignIn != nil {
		// The UI may be served from another origin than the gateway (see localdev's UI origin).
		g.mux.HandleFunc("POST /dev/token", c.wrap(g.serveDevToken))
		g.mux.HandleFunc("OPTIONS /dev/token", c.wrap(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
		}))
	}
	if opts.WebDir != "" {
		g.mux.HandleFunc("GET /config.json", g.serveConfig)
		g.mux.Handle("/", http.FileServer(http.Dir(opts.WebDir)))
	}
	return g, nil
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) { g.hosts.ServeHTTP(w, r) }

// Serve serves on ln until ctx ends, then shuts down gracefully.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(g.ws.closeAll) // hijacked WebSocket connections are not shut down by the server
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still running after the grace period (a post to a client that stopped
		// reading, say) are cut off: stopping must not hang.
		g.opts.Logger.Warn("gateway: requests still running at shutdown were closed", "addr", ln.Addr().String(), "err", err)
		if cerr := srv.Close(); cerr != nil {
			return fmt.Errorf("close %s: %w", ln.Addr(), cerr)
		}
	}
	return nil
}

func (g *Gateway) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, &api.Error{Code: "bad_request", Message: "read request body: " + err.Error()})
		return
	}
	if len(body) > MaxBodyBytes {
		api.WriteError(w, http.StatusRequestEntityTooLarge, &api.Error{Code: "payload_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes)})
		return
	}
	ev := g.event(r, body)
	if !publicRoutes[r.Method+" "+r.URL.Path] {
		claims, reason := g.authorize(r)
		if claims == nil {
			g.opts.Logger.Info("request refused by the authorizer", "request_id", ev.RequestContext.RequestID, "path", r.URL.Path, "reason", reason)
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			api.WriteError(w, http.StatusUnauthorized, &api.Error{Code: "unauthorized", Message: reason})
			return
		}
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims, Scopes: nil},
		}
	}
	resp, err := g.opts.API(r.Context(), ev)
	if err != nil {
		g.opts.Logger.Error("api handler failed", "request_id", ev.RequestContext.RequestID, "err", err)
		api.WriteError(w, http.StatusInternalServerError, &api.Error{Code: "internal", Message: "Internal Server Error"})
		return
	}
	writeResponse(w, resp)
}

// authorize returns the validated claims of the request's bearer token, or nil and a reason that
// names no secret.
func (g *Gateway) authorize(r *http.Request) (map[string]string, string) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" {
		return nil, "a bearer token is required (Authorization: Bearer <JWT>)"
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, "the Authorization header must be 'Bearer <JWT>'"
	}
	claims, err := g.opts.Verifier.Verify(strings.TrimSpace(token))
	if err != nil {
		return nil, "the bearer token was rejected: " + tokenReason(err)
	}
	return claims, ""
}

// tokenReasons name why a token failed, by the JWT library's (and the verifier's) sentinel, the
// first that matches winning: a token both expired and from another issuer has expired.
var tokenReasons = []struct {
	err    error
	reason string
}{
	{jwt.ErrTokenExpired, "it has expired"},
	{jwt.ErrTokenNotValidYet, "it is not valid yet"},
	{jwt.ErrTokenInvalidAudience, "it is for another audience"},
	{jwt.ErrTokenInvalidIssuer, "it is from another issuer"},
	{jwt.ErrTokenSignatureInvalid, "its signature is invalid"},
	{auth.ErrUnknownKey, "it is signed by an unknown key"},
	{jwt.ErrTokenUnverifiable, "it uses an unsupported signing method"},
	{jwt.ErrTokenMalformed, "it is malformed"},
}

// tokenReason names why a token failed without echoing the token.
func tokenReason(err error) string {
	for _, r := range tokenReasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "it is invalid"
}

// event builds the API Gateway HTTP API payload 2.0 event for r, as AWS documents it.
func (g *Gateway) event(r *http.Request, body []byte) events.APIGatewayV2HTTPRequest {
	now := time.Now()
	id := fmt.Sprintf("local-%d-%d", now.UnixNano(), g.reqID.Add(1))
	headers := map[string]string{}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	var query map[string]string
	if r.URL.RawQuery != "" {
		query = map[string]string{}
		for k, vs := range r.URL.Query() {
			query[k] = strings.Join(vs, ",")
		}
	}
	sourceIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              "$default",
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     "$default",
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    id,
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: "local",
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		h.Del(k)
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		decoded, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			api.WriteError(w, http.StatusBadGateway, &api.Error{Code: "bad_gateway", Message: "handler returned invalid base64 body"})
			return
		}
		body = decoded
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
