package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/infra/stacktest"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/resources"
)

// someJobs is a live.Jobs holding jobs without devices.
type someJobs map[string]bulk.Job

func (j someJobs) GetJob(_ context.Context, id string) (bulk.Job, error) {
	if job, ok := j[id]; ok {
		return job, nil
	}
	return bulk.Job{}, fmt.Errorf("job %s: %w", id, bulk.ErrJobNotFound)
}

func (j someJobs) Devices(context.Context, string, string, int) ([]bulk.DeviceState, string, error) {
	return nil, "", nil
}

// wsScopeCase checks one WebSocket action on a connection of operator:ams1 (connID), whose jobs
// are ams1 (in scope), fra1 and a job spanning both (out of scope).
type wsScopeCase func(t *testing.T, send func(action, jobID string) []wsReply, subscribed func(jobID string) bool)

// wsScopeCases has a row for every action of x-netauto-websocket-actions: an action added without
// one fails TestScopedRoleOnWebSocket.
var wsScopeCases = map[string]wsScopeCase{
	"$connect": nil, // the connection itself: its stored identity keeps the scope, checked below
	live.ActionSubscribe: func(t *testing.T, send func(action, jobID string) []wsReply, subscribed func(string) bool) {
		assert.Equal(t, live.TypeSnapshot, send(live.ActionSubscribe, "jams")[0].Type, "subscribe to the ams1 job")
		assert.True(t, subscribed("jams"), "subscribed to the ams1 job")
		for _, j := range []string{"jfra", "jmixed", "jold"} {
			r := send(live.ActionSubscribe, j)
			require.Len(t, r, 1, "subscribe to %s", j)
			assert.Equal(t, wsReply{Type: live.TypeError, Code: "not_found", JobID: j}, r[0], "subscribe to the out-of-scope job %s", j)
			assert.False(t, subscribed(j), "subscribed to the out-of-scope job %s", j)
		}
	},
	live.ActionUnsubscribe: func(t *testing.T, send func(action, jobID string) []wsReply, subscribed func(string) bool) {
		// Unsubscribing reveals nothing and changes only the caller's own subscriptions.
		assert.Equal(t, []wsReply{{Type: live.TypeUnsubscribed, JobID: "jfra"}}, send(live.ActionUnsubscribe, "jfra"), "unsubscribe from the fra1 job")
	},
}

// TestScopedRoleOnWebSocket connects operator:ams1 to the ws handler over the real connection
// store: the stored connection keeps its scope, and it may watch only jobs all of whose sites are
// ams1, the same rule as GET /v1/bulk/{job_id}.
func TestScopedRoleOnWebSocket(t *testing.T) {
	t.Parallel()
	st := stacktest.New(t)
	conns, err := dynamo.NewConnectionStore(stack.DynamoDBClient(st.Endpoints.DynamoDB), st.Names.Tables[resources.ConnectionsTable])
	require.NoError(t, err)
	poster := &recordingPoster{got: map[string][][]byte{}}
	now := time.Now().UTC()
	jobs := someJobs{
		"jams":   {ID: "jams", Status: bulk.JobRunning, CreatedAt: now, Sites: []string{"ams1"}},
		"jfra":   {ID: "jfra", Status: bulk.JobRunning, CreatedAt: now, Sites: []string{"fra1"}},
		"jmixed": {ID: "jmixed", Status: bulk.JobRunning, CreatedAt: now, Sites: []string{"ams1", "fra1"}},
		"jold":   {ID: "jold", Status: bulk.JobRunning, CreatedAt: now}, // no recorded sites
	}
	srv := &live.Server{Store: conns, Jobs: jobs, Poster: poster, Verifier: auth.NewVerifier(signer(t), auth.LocalIssuer, auth.LocalAudience)}
	h := app.WSHandlerFor(srv, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tok, err := signer(t).Issue(auth.TokenSpec{Subject: "scoped", Groups: []string{"operator:ams1"}})
	require.NoError(t, err)

	for _, a := range documentedWSActions(t) {
		c, ok := wsScopeCases[a.Action]
		if !assert.True(t, ok, "WebSocket action %s has no row in wsScopeCases: say how it honours scoped roles", a.Action) {
			continue
		}
		t.Run(a.Action, func(t *testing.T) {
			ctx := context.Background()
			connID := "scoped-" + a.Action + "="
			resp, err := h(ctx, events.APIGatewayWebsocketProxyRequest{
				RequestContext:        events.APIGatewayWebsocketProxyRequestContext{RouteKey: "$connect", ConnectionID: connID},
				QueryStringParameters: map[string]string{"token": tok},
			})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "$connect as operator:ams1")
			stored, err := conns.GetConnection(ctx, connID)
			require.NoError(t, err)
			assert.Equal(t, map[string]auth.Role{"ams1": auth.Operator}, stored.Identity.Sites, "the stored connection's scope")
			assert.Empty(t, stored.Identity.Role, "the stored connection's role everywhere")
			if c == nil {
				return
			}
			send := func(action, jobID string) []wsReply {
				t.Helper()
				before := len(poster.replies(t, connID))
				resp, err := h(ctx, events.APIGatewayWebsocketProxyRequest{
					RequestContext: events.APIGatewayWebsocketProxyRequestContext{RouteKey: action, ConnectionID: connID},
					Body:           fmt.Sprintf(`{"action":%q,"job_id":%q}`, action, jobID),
				})
				require.NoError(t, err)
				require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s", action, jobID)
				return poster.replies(t, connID)[before:]
			}
			subscribed := func(jobID string) bool {
				t.Helper()
				subs, err := conns.Subscribers(ctx, jobID)
				require.NoError(t, err)
				for _, s := range subs {
					if s == connID {
						return true
					}
				}
				return false
			}
			c(t, send, subscribed)
		})
	}
}

// TestWebSocketTokenExpiry connects two viewers to the local gateway, one with a token that
// expires in seconds, and runs a job once that token has expired: the expired connection receives
// nothing while the other sees the whole job, and its subscribe is refused with token_expired.
func TestWebSocketTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newWSEnv(t, devicesim.Spec{Count: 3, Seed: 21})
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}},
		auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	const ttl = 3 * time.Second
	short, err := signer(t).Issue(auth.TokenSpec{Subject: "short", Groups: []string{"viewer"}, TTL: ttl})
	require.NoError(t, err)
	exp := time.Now().Add(ttl)
	expiring, _, err := e.dial(t, short)
	require.NoError(t, err)
	expiring.subscribe(t, acc.JobID, newView())
	fresh, _, err := e.dial(t, e.token(t, "viewer"))
	require.NoError(t, err)
	vf := newView()
	fresh.subscribe(t, acc.JobID, vf)

	ids := e.connectionIDs(t)
	require.Len(t, ids, 2, "connections")
	var expiredID string
	for _, id := range ids {
		c, err := e.conns.GetConnection(ctx, id)
		require.NoError(t, err)
		if c.Identity.Subject == "short" {
			expiredID = id
			assert.WithinDuration(t, exp, c.ExpiresAt, 2*time.Second, "the connection ends at its token's exp, not two hours on")
		}
	}
	require.NotEmpty(t, expiredID, "the short token's connection")
	// Wait, bounded, for the token to pass its expiry: the store then answers ErrExpired.
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, err := e.conns.GetConnection(ctx, expiredID)
		if errors.Is(err, live.ErrExpired) {
			break
		}
		require.NoError(t, err)
		require.True(t, time.Now().Before(deadline), "the connection never expired")
		time.Sleep(100 * time.Millisecond) // waiting for the wall clock to pass exp, bounded
	}

	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 1)
	fresh.follow(t, vf, time.Minute, nil)
	require.True(t, vf.done, "the fresh connection saw the job end")
	require.NoError(t, e.pub.Flush(ctx), "flush the publisher")
	select {
	case r := <-expiring.in:
		assert.Fail(t, "the expired connection received a message", "%s", r.raw)
	default:
	}
	expiring.send(t, map[string]string{"action": "subscribe", "job_id": acc.JobID})
	r := expiring.next(t, 10*time.Second)
	assert.Equal(t, live.TypeError, r.msg.Type, "subscribe after exp: %s", r.raw)
	assert.Equal(t, "token_expired", r.msg.Code, "subscribe after exp: %s", r.raw)
	subs, err := e.conns.Subscribers(ctx, acc.JobID)
	require.NoError(t, err)
	assert.NotContains(t, subs, expiredID, "the expired connection is still subscribed")
}
