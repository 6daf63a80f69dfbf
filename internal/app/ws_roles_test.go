package app_test

// The role × WebSocket action matrix, generated from openapi.yaml's x-netauto-websocket-actions:
// every caller (no token, a token without a role, each role) is held to each action's documented
// role on the ws function's handler.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/resources"
)

// roleAuthenticated is the role of a WebSocket action that any valid token may use.
const roleAuthenticated = "authenticated"

// wsAction is one entry of x-netauto-websocket-actions.
type wsAction struct {
	Action string `yaml:"action"`
	Role   string `yaml:"role"`
}

// documentedWSActions parses openapi.yaml's x-netauto-websocket-actions, failing the test when an
// action names a role that is not authenticated, viewer, operator or admin, or when $connect is
// missing.
func documentedWSActions(t testing.TB) []wsAction {
	t.Helper()
	var doc struct {
		Actions []wsAction `yaml:"x-netauto-websocket-actions"`
	}
	require.NoError(t, yaml.Unmarshal(api.OpenAPIYAML(), &doc), "parse openapi.yaml")
	require.NotEmpty(t, doc.Actions, "openapi.yaml lists no x-netauto-websocket-actions")
	connect := false
	for _, a := range doc.Actions {
		require.NotEmpty(t, a.Action, "openapi.yaml: a WebSocket action without a name")
		if a.Role != roleAuthenticated {
			_, ok := auth.ParseRole(a.Role)
			require.True(t, ok && a.Role == strings.ToLower(a.Role),
				"openapi.yaml: WebSocket action %s has role %q; want authenticated, viewer, operator or admin", a.Action, a.Role)
		}
		connect = connect || a.Action == "$connect"
	}
	require.True(t, connect, "openapi.yaml: x-netauto-websocket-actions lacks $connect")
	return doc.Actions
}

// wsCaller is one kind of caller of the matrix.
type wsCaller struct {
	name string
	// token is false for the caller without one; groups are its token's groups.
	token  bool
	groups []string
	role   auth.Role
}

// allowed reports whether c may use an action that needs role.
func (c wsCaller) allowed(role string) bool {
	if role == roleAuthenticated {
		return c.token
	}
	return c.token && auth.Identity{Subject: c.name, Role: c.role}.Can(auth.Role(role))
}

// recordingPoster keeps every message posted to each connection.
type recordingPoster struct {
	mu  sync.Mutex
	got map[string][][]byte
}

func (p *recordingPoster) Post(_ context.Context, connID string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got[connID] = append(p.got[connID], data)
	return nil
}

// wsReply is a posted message, decoded enough to check it.
type wsReply struct {
	Type  string `json:"type"`
	Code  string `json:"code"`
	JobID string `json:"job_id"`
}

func (p *recordingPoster) replies(t testing.TB, connID string) []wsReply {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]wsReply, 0, len(p.got[connID]))
	for _, b := range p.got[connID] {
		var r wsReply
		require.NoError(t, json.Unmarshal(b, &r), "connection %s got %s", connID, b)
		out = append(out, r)
	}
	return out
}

// oneJob is a live.Jobs that holds one job without devices.
type oneJob struct{ job bulk.Job }

func (j oneJob) GetJob(_ context.Context, id string) (bulk.Job, error) {
	if id != j.job.ID {
		return bulk.Job{}, fmt.Errorf("job %s: %w", id, bulk.ErrJobNotFound)
	}
	return j.job, nil
}

func (j oneJob) Devices(context.Context, string, string, int) ([]bulk.DeviceState, string, error) {
	return nil, "", nil
}

// TestRoleWebSocketActionMatrix connects every caller and sends every documented action on the
// ws handler: $connect refuses a caller without a valid token with 401, an action below the
// caller's role is answered with an error of code forbidden and changes nothing, and an allowed
// action does its work (a subscribe is answered with a snapshot and stored).
func TestRoleWebSocketActionMatrix(t *testing.T) {
	t.Parallel()
	st := stacktest.New(t)
	conns, err := dynamo.NewConnectionStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.ConnectionsTable])
	require.NoError(t, err)
	poster := &recordingPoster{got: map[string][][]byte{}}
	job := bulk.Job{ID: "watched", Command: "show version", Status: bulk.JobRunning, CreatedAt: time.Now().UTC()}
	srv := &live.Server{Store: conns, Jobs: oneJob{job: job}, Poster: poster,
		Verifier: auth.NewVerifier(signer(t), auth.LocalIssuer, auth.LocalAudience)}
	h := app.WSHandlerFor(srv, slog.New(slog.NewTextHandler(io.Discard, nil)))

	actions := documentedWSActions(t)
	connectRole := ""
	for _, a := range actions {
		if a.Action == "$connect" {
			connectRole = a.Role
		}
	}
	callers := []wsCaller{
		{name: "no token"},
		{name: "token without a role", token: true},
		{name: "viewer", token: true, groups: []string{"viewer"}, role: auth.Viewer},
		{name: "operator", token: true, groups: []string{"operator"}, role: auth.Operator},
		{name: "admin", token: true, groups: []string{"admin"}, role: auth.Admin},
	}
	for i, c := range callers {
		tok := ""
		if c.token {
			tok, err = signer(t).Issue(auth.TokenSpec{Subject: fmt.Sprintf("caller%d", i), Groups: c.groups})
			require.NoError(t, err, "issue a token for %s", c.name)
		}
		for j, a := range actions {
			t.Run(c.name+"/"+a.Action, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				connID := fmt.Sprintf("conn%d-%d=", i, j)
				resp, err := h(ctx, events.APIGatewayWebsocketProxyRequest{
					RequestContext:        events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$connect", ConnectionID: connID},
					QueryStringParameters: map[string]string{"token": tok},
				})
				require.NoError(t, err, "$connect as %s", c.name)
				connected := c.allowed(connectRole)
				wantConnect := map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[connected]
				require.Equal(t, wantConnect, resp.StatusCode, "$connect as %s (role %s): body %s", c.name, connectRole, resp.Body)
				stored, err := conns.GetConnection(ctx, connID)
				if !connected {
					require.ErrorIs(t, err, live.ErrNotFound, "$connect as %s was refused but the connection is stored", c.name)
				} else {
					require.NoError(t, err, "$connect as %s answered 200 but stored no connection", c.name)
					assert.Equal(t, c.role, stored.Identity.Role, "$connect as %s: the stored connection's role", c.name)
				}
				if a.Action == "$connect" {
					return
				}

				body := fmt.Sprintf(`{"action":%q,"job_id":%q}`, a.Action, job.ID)
				resp, err = h(ctx, events.APIGatewayWebsocketProxyRequest{
					RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: a.Action, ConnectionID: connID},
					Body:           body,
				})
				require.NoError(t, err, "%s as %s", a.Action, c.name)
				assert.Equal(t, http.StatusOK, resp.StatusCode, "%s as %s: the handler's status", a.Action, c.name)
				replies := poster.replies(t, connID)
				subs, err := conns.Subscribers(ctx, job.ID)
				require.NoError(t, err, "subscribers of job %s", job.ID)
				switch {
				case !connected:
					assert.Empty(t, replies, "%s from a connection refused at $connect (%s) was answered", a.Action, c.name)
					assert.NotContains(t, subs, connID, "%s from a connection refused at $connect (%s) subscribed it", a.Action, c.name)
				case !c.allowed(a.Role):
					require.Len(t, replies, 1, "%s as %s (role %s): want one error message", a.Action, c.name, a.Role)
					assert.Equal(t, wsReply{Type: live.TypeError, Code: "forbidden", JobID: job.ID}, replies[0],
						"%s as %s (role %s)", a.Action, c.name, a.Role)
					assert.NotContains(t, subs, connID, "%s as %s was refused but subscribed the connection to job %s", a.Action, c.name, job.ID)
				default:
					require.NotEmpty(t, replies, "%s as %s (role %s) got no answer", a.Action, c.name, a.Role)
					for _, r := range replies {
						assert.NotEqual(t, live.TypeError, r.Type, "%s as %s (role %s) is refused: code %s", a.Action, c.name, a.Role, r.Code)
					}
					switch a.Action {
					case live.ActionSubscribe:
						assert.Equal(t, wsReply{Type: live.TypeSnapshot, JobID: job.ID}, replies[0], "subscribe as %s: the first answer", c.name)
						assert.Contains(t, subs, connID, "subscribe as %s answered a snapshot but stored no subscription to job %s", c.name, job.ID)
					case live.ActionUnsubscribe:
						assert.Equal(t, []wsReply{{Type: live.TypeUnsubscribed, JobID: job.ID}}, replies, "unsubscribe as %s", c.name)
					}
				}
			})
		}
	}
}

// TestWebSocketRoutesAreDocumented holds the WebSocket API's routes in template.yaml to
// x-netauto-websocket-actions: every route a client can reach ($disconnect aside, which API
// Gateway sends on its own) is documented with a role, and every documented action is routed.
func TestWebSocketRoutesAreDocumented(t *testing.T) {
	t.Parallel()
	tmpl, err := templatecheck.ParseFile(filepath.Join("..", "..", "template.yaml"))
	require.NoError(t, err, "parse template.yaml")
	var routed []string
	for name, r := range tmpl.Resources {
		if r.Type != "AWS::ApiGatewayV2::Route" {
			continue
		}
		api, _ := r.Properties["ApiId"].(map[string]any)
		if api["Ref"] != "WebSocketApi" {
			continue
		}
		key, ok := r.Properties["RouteKey"].(string)
		require.True(t, ok, "template.yaml: route %s has no literal RouteKey", name)
		if key != "$disconnect" {
			routed = append(routed, key)
		}
	}
	var documented []string
	for _, a := range documentedWSActions(t) {
		documented = append(documented, a.Action)
	}
	slices.Sort(routed)
	slices.Sort(documented)
	require.NotEmpty(t, routed, "template.yaml has no WebSocket route on WebSocketApi")
	assert.Equal(t, documented, routed, "WebSocket routes in template.yaml (right) against x-netauto-websocket-actions (left)")
}
