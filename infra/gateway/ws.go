package gateway

// The local WebSocket API: /ws turns a WebSocket's life into the API Gateway WebSocket events the
// ws function receives in AWS ($connect with the query string, one MESSAGE event per client
// message routed by $request.body.action, $disconnect), and /@connections/{id} is the management
// API (PostToConnection, GetConnection, DeleteConnection) that the SDK's apigatewaymanagementapi
// client calls, answering 410 GoneException for unknown connections.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"
)

// WebSocket limits of API Gateway.
const (
	// MaxWSMessageBytes is API Gateway's WebSocket message size limit (128 KB).
	MaxWSMessageBytes = 128 << 10
	// MaxWSConnectionAge is how long API Gateway keeps a WebSocket connection.
	MaxWSConnectionAge = 2 * time.Hour
	wsStage            = "local"
)

// wsRoutes are the routes template.yaml declares besides $connect and $disconnect.
var wsRoutes = map[string]bool{"subscribe": true, "unsubscribe": true}

type wsConn struct {
	id          string
	c           *websocket.Conn
	connectedAt time.Time
	lastActive  atomic.Int64
	sourceIP    string
	userAgent   string
	cancel      context.CancelFunc
}

// wsHub is the set of open connections.
type wsHub struct {
	mu    sync.Mutex
	conns map[string]*wsConn
}

func (h *wsHub) get(id string) *wsConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id]
}

func (h *wsHub) put(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns[c.id] = c
}

func (h *wsHub) remove(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, id)
}

// closeAll ends every connection (the gateway is shutting down).
func (h *wsHub) closeAll() {
	h.mu.Lock()
	conns := make([]*wsConn, 0, len(h.conns))
	for _, c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.c.Close(websocket.StatusGoingAway, "gateway shutting down")
		c.cancel()
	}
}

// newConnectionID returns an id shaped like API Gateway's (base64 with a trailing '='), so the
// SDK's URL escaping of ids is exercised.
func newConnectionID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [15]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:]) + "="
}

func (g *Gateway) wsContext(r *http.Request, c *wsConn, routeKey, eventType string) events.APIGatewayWebsocketProxyRequestContext {
	now := time.Now()
	return events.APIGatewayWebsocketProxyRequestContext{
		RouteKey: routeKey, EventType: eventType, ConnectionID: c.id, ConnectedAt: c.connectedAt.UnixMilli(),
		RequestID: fmt.Sprintf("local-ws-%d-%d", now.UnixNano(), g.reqID.Add(1)), RequestTimeEpoch: now.UnixMilli(),
		RequestTime: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), MessageDirection: "IN",
		Stage: wsStage, APIID: "local", DomainName: r.Host,
		Identity: events.APIGatewayRequestIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
	}
}

// serveWS runs one WebSocket connection from $connect to $disconnect.
func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	c := &wsConn{id: newConnectionID(), connectedAt: time.Now(), sourceIP: ip, userAgent: r.UserAgent()}
	headers := map[string]string{}
	multi := map[string][]string{}
	for k, vs := range r.Header {
		headers[k] = strings.Join(vs, ",")
		multi[k] = vs
	}
	ev := events.APIGatewayWebsocketProxyRequest{Headers: headers, MultiValueHeaders: multi, RequestContext: g.wsContext(r, c, "$connect", "CONNECT")}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		ev.MultiValueQueryStringParameters = map[string][]string(q)
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
		}
	}
	resp, err := g.opts.WS(r.Context(), ev)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		status := resp.StatusCode
		if err != nil || status == 0 {
			status = http.StatusInternalServerError
			g.opts.Logger.Error("ws $connect handler failed", "connection_id", c.id, "err", err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, resp.Body)
		return
	}
	// Browsers send the page's Origin with the upgrade; the UI's origin may be another than the
	// gateway's (CloudFront and execute-api in AWS, whose WebSocket API checks no origin: the
	// token is the authorization). Locally the origins allowed by CORS are accepted.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: g.cors.origins})
	if err != nil {
		g.opts.Logger.Info("websocket upgrade failed", "connection_id", c.id, "err", err)
		g.wsDisconnect(r, c, int(websocket.StatusAbnormalClosure), "upgrade failed")
		return
	}
	conn.SetReadLimit(MaxWSMessageBytes)
	ctx, cancel := context.WithTimeout(context.Background(), MaxWSConnectionAge)
	c.c, c.cancel = conn, cancel
	c.lastActive.Store(time.Now().UnixMilli())
	g.ws.put(c)
	code, reason := websocket.StatusNormalClosure, ""
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			code, reason = websocket.CloseStatus(err), err.Error()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				code, reason = websocket.StatusGoingAway, "Going away"
				_ = conn.Close(code, reason)
			}
			break
		}
		c.lastActive.Store(time.Now().UnixMilli())
		if typ != websocket.MessageText {
			continue
		}
		g.wsMessage(ctx, r, c, data)
	}
	g.ws.remove(c.id)
	cancel()
	_ = conn.CloseNow()
	g.wsDisconnect(r, c, int(code), reason)
}

// wsMessage routes one client message by $request.body.action, as the template's
// RouteSelectionExpression does; with no matching route and no $default route API Gateway
// answers the client with a Forbidden error message.
func (g *Gateway) wsMessage(ctx context.Context, r *http.Request, c *wsConn, data []byte) {
	var sel struct {
		Action string `json:"action"`
	}
	_ = json.Unmarshal(data, &sel)
	rc := g.wsContext(r, c, sel.Action, "MESSAGE")
	if !wsRoutes[sel.Action] {
		msg, _ := json.Marshal(map[string]string{"message": "Forbidden", "connectionId": c.id, "requestId": rc.RequestID})
		_ = c.c.Write(ctx, websocket.MessageText, msg)
		return
	}
	rc.MessageID = rc.RequestID
	resp, err := g.opts.WS(ctx, events.APIGatewayWebsocketProxyRequest{RequestContext: rc, Body: string(data)})
	if err != nil || resp.StatusCode >= 500 {
		g.opts.Logger.Error("ws route handler failed", "connection_id", c.id, "route", sel.Action, "status", resp.StatusCode, "err", err)
		msg, _ := json.Marshal(map[string]string{"message": "Internal server error", "connectionId": c.id, "requestId": rc.RequestID})
		_ = c.c.Write(ctx, websocket.MessageText, msg)
	}
}

func (g *Gateway) wsDisconnect(r *http.Request, c *wsConn, code int, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc := g.wsContext(r, c, "$disconnect", "DISCONNECT")
	rc.DisconnectStatusCode = int64(code)
	rc.DisconnectReason = &reason
	if _, err := g.opts.WS(ctx, events.APIGatewayWebsocketProxyRequest{RequestContext: rc}); err != nil {
		g.opts.Logger.Error("ws $disconnect handler failed", "connection_id", c.id, "err", err)
	}
}

// serveConnections is the management API: POST sends a message, GET describes the connection,
// DELETE closes it; an unknown connection is 410 GoneException.
func (g *Gateway) serveConnections(w http.ResponseWriter, r *http.Request) {
	// In AWS the caller needs IAM (SigV4) rights; locally at least require a SigV4-signed
	// request, which a cross-origin browser form cannot send.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		mgmtError(w, http.StatusForbidden, "ForbiddenException", "Missing Authentication Token")
		return
	}
	id := r.PathValue("id")
	c := g.ws.get(id)
	if c == nil {
		mgmtError(w, http.StatusGone, "GoneException", "")
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxWSMessageBytes+1))
		if err != nil {
			mgmtError(w, http.StatusBadRequest, "BadRequestException", "read body: "+err.Error())
			return
		}
		if len(body) > MaxWSMessageBytes {
			mgmtError(w, http.StatusRequestEntityTooLarge, "PayloadTooLargeException", fmt.Sprintf("message exceeds %d bytes", MaxWSMessageBytes))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if err := c.c.Write(ctx, websocket.MessageText, body); err != nil {
			g.ws.remove(id)
			_ = c.c.CloseNow()
			mgmtError(w, http.StatusGone, "GoneException", "")
			return
		}
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"connectedAt":  c.connectedAt.UTC().Format(time.RFC3339Nano),
			"lastActiveAt": time.UnixMilli(c.lastActive.Load()).UTC().Format(time.RFC3339Nano),
			"identity":     map[string]string{"sourceIp": c.sourceIP, "userAgent": c.userAgent},
		})
	case http.MethodDelete:
		g.ws.remove(id)
		_ = c.c.Close(websocket.StatusNormalClosure, "")
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		mgmtError(w, http.StatusMethodNotAllowed, "MethodNotAllowedException", "")
	}
}

func mgmtError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
