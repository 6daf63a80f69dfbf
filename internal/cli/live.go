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

// listen subscribes to the job over the WebSocket API and signals on the returned channel each
// time a message arrives (the snapshot, a device's progress, job_done). The watcher then reads
// the event log in seq order, so a message lost or reordered on the socket costs nothing. It
// returns nil when no socket could be opened; the watcher then polls.
func (w *watcher) listen(ctx context.Context, rawURL, token string) <-chan struct{} {
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
	kick := make(chan struct{}, 1)
	go func() {
		defer close(kick)
		defer conn.CloseNow()
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var head struct {
				Type string `json:"type"`
			}
			if json.Unmarshal(data, &head) == nil && strings.EqualFold(head.Type, "error") {
				return // refused (no right to see the job, say): polling takes over
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}()
	return kick
}
