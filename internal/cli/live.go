package cli

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// Live progress sources a JobLine reports.
const (
	LiveWebSocket = "websocket"
	LivePolling   = "polling"
)

// wsURL is the WebSocket API's URL: --ws, NET_AUTO_WS_URL, the config file, or, for an API on
// loopback (make dev), the local gateway's /ws. Empty means poll.
func (a *app) wsURL(apiBase string) string {
	cfg, _ := loadConfig()
	if u := firstNonEmpty(a.ws, a.getenv("NET_AUTO_WS_URL"), cfg.WS); u != "" {
		return u
	}
	u, err := url.Parse(apiBase)
	if err != nil {
		return ""
	}
	if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
		return ""
	}
	scheme := "ws"
	if u.Scheme == "https" {
		scheme = "wss"
	}
	return scheme + "://" + u.Host + "/ws"
}

// listen subscribes to the job over the WebSocket API and delivers its messages (the snapshot,
// devices' progress, job_done) on the returned channel, which closes when the socket does or
// the subscription is refused. It returns nil when no socket could be opened; the watcher then
// polls.
func (w *watcher) listen(ctx context.Context, rawURL, token string) <-chan wsMessage {
	if rawURL == "" {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil
	}
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, u.String(), nil)
	if err != nil {
		return nil
	}
	conn.SetReadLimit(1 << 20)
	sub, _ := json.Marshal(map[string]string{"action": "subscribe", "job_id": w.jobID})
	if err := conn.Write(dctx, websocket.MessageText, sub); err != nil {
		conn.CloseNow()
		return nil
	}
	msgs := make(chan wsMessage, 64)
	go func() {
		defer close(msgs)
		defer conn.CloseNow()
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var m wsMessage
			if json.Unmarshal(data, &m) != nil {
				continue // not a message of the contract (API Gateway's own "Forbidden", say)
			}
			if strings.EqualFold(m.Type, "error") {
				return // refused (no right to see the job, say): polling takes over
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return msgs
}
