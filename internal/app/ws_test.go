package app_test

// Live progress end to end: real WebSocket clients (coder/websocket) on the local gateway, the ws
// handler, the push publisher in the executor, DynamoDB Local and a simulated fleet.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/infra/stack"
	"github.com/netauto/netauto/internal/app"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/dynamo"
	"github.com/netauto/netauto/internal/live"
	"github.com/netauto/netauto/internal/push"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

var (
	signerOnce sync.Once
	testSigner *auth.Signer
)

func signer(t testing.TB) *auth.Signer {
	t.Helper()
	signerOnce.Do(func() {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		testSigner = auth.NewSigner(key)
	})
	return testSigner
}

// wsEnv is the bulk pipeline plus the WebSocket side: the local gateway serving /ws and
// /@connections, the ws handler, and a push publisher wired into the executor.
type wsEnv struct {
	*bulkEnv
	conns *dynamo.ConnectionStore
	pub   *push.Publisher
	base  string // http://host:port of the gateway
}

func newWSEnv(t testing.TB, spec devicesim.Spec) *wsEnv {
	t.Helper()
	return withWS(t, newBulkEnv(t, spec))
}

// withWS adds the WebSocket side to a bulk pipeline.
func withWS(t testing.TB, be *bulkEnv) *wsEnv {
	t.Helper()
	e := &wsEnv{bulkEnv: be}
	var err error
	e.conns, err = dynamo.NewConnectionStore(stack.DynamoDBClient(e.st.Endpoints.DynamoDB), e.st.Names.Tables[resources.ConnectionsTable])
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.base = "http://" + ln.Addr().String()
	awsCfg := aws.Config{Region: stack.Region, Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), HTTPClient: app.HTTPClient()}
	client, err := push.NewClient(awsCfg, e.base)
	require.NoError(t, err)
	logger := e.exec.Logger
	srv := &live.Server{Store: e.conns, Jobs: e.jobs, Poster: client, Verifier: auth.NewVerifier(signer(t), auth.LocalIssuer, auth.LocalAudience), Logger: logger}
	noAPI := func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotFound}, nil
	}
	gw, err := gateway.New(gateway.Options{API: noAPI, Verifier: auth.NewVerifier(signer(t), auth.LocalIssuer, auth.LocalAudience),
		WS: app.WSHandlerFor(srv, logger), Logger: logger})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- gw.Serve(ctx, ln) }()
	e.pub, err = push.New(push.Options{Subscriptions: e.conns, Poster: client, Logger: logger})
	require.NoError(t, err)
	e.exec.Publisher = e.pub
	t.Cleanup(func() {
		e.stopWorkers()
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		_ = e.pub.Close(cctx)
		cancel()
		assert.NoError(t, <-served, "gateway")
	})
	return e
}

func (e *wsEnv) token(t testing.TB, groups ...string) string {
	t.Helper()
	tok, err := signer(t).Issue(auth.TokenSpec{Subject: "watcher", Email: "watcher@example.com", Groups: groups})
	require.NoError(t, err)
	return tok
}

// received is one message a client got, decoded enough to check it.
type received struct {
	at  time.Time
	raw []byte
	msg struct {
		Type     string             `json:"type"`
		JobID    string             `json:"job_id"`
		DeviceID string             `json:"device_id"`
		Status   string             `json:"status"`
		Digest   string             `json:"output_digest"`
		Seq      int64              `json:"seq"`
		At       time.Time          `json:"at"`
		Code     string             `json:"code"`
		Counts   map[run.Status]int `json:"counts"`
		Part     int                `json:"part"`
		Parts    int                `json:"parts"`
		Job      *bulk.Job          `json:"job"`
		Devices  []live.DeviceEntry `json:"devices"`
	}
}

// wsClient is a WebSocket client that reads every message into a channel.
type wsClient struct {
	c    *websocket.Conn
	in   chan received
	done chan struct{}
}

func (e *wsEnv) dial(t testing.TB, token string) (*wsClient, *http.Response, error) {
	t.Helper()
	u := "ws" + e.base[len("http"):] + "/ws"
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	cl := &wsClient{c: c, in: make(chan received, 100000), done: make(chan struct{})}
	go func() {
		defer close(cl.done)
		defer close(cl.in)
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				return
			}
			now := time.Now()
			assert.LessOrEqual(t, len(data), live.MaxFrameBytes, "a message's bytes against the frame")
			// A burst of events comes as one events message: each is handled on its own.
			var batch struct {
				Type   string            `json:"type"`
				Events []json.RawMessage `json:"events"`
			}
			if json.Unmarshal(data, &batch) == nil && batch.Type == live.TypeEvents {
				for _, ev := range batch.Events {
					r := received{at: now, raw: ev}
					_ = json.Unmarshal(ev, &r.msg)
					cl.in <- r
				}
				continue
			}
			r := received{at: now, raw: data}
			_ = json.Unmarshal(data, &r.msg)
			cl.in <- r
		}
	}()
	t.Cleanup(cl.close)
	return cl, resp, nil
}

func (cl *wsClient) close() {
	_ = cl.c.Close(websocket.StatusNormalClosure, "")
	<-cl.done
}

func (cl *wsClient) send(t testing.TB, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, cl.c.Write(ctx, websocket.MessageText, b), "send")
}

// next returns the next message or fails after bound.
func (cl *wsClient) next(t testing.TB, bound time.Duration) received {
	t.Helper()
	select {
	case r, ok := <-cl.in:
		require.True(t, ok, "connection closed while a message was expected")
		return r
	case <-time.After(bound):
		require.FailNow(t, "no message", "none within %s", bound)
	}
	return received{}
}

// view is a client's picture of a job: a snapshot with the events applied by per-device seq.
type view struct {
	status    map[string]run.Status
	digest    map[string]string // output_digest per device, from snapshots and events
	seq       map[string]int64
	progress  map[string][]int64 // seqs of the bulk_progress events seen per device, in order
	terminal  map[string]int     // terminal bulk_progress events per device
	done      bool
	doneCount map[run.Status]int
}

func newView() *view {
	return &view{status: map[string]run.Status{}, digest: map[string]string{}, seq: map[string]int64{}, progress: map[string][]int64{}, terminal: map[string]int{}}
}

func (v *view) apply(t testing.TB, r received) {
	t.Helper()
	m := r.msg
	switch m.Type {
	case live.TypeSnapshot:
		for _, d := range m.Devices {
			if d.Seq >= v.seq[d.DeviceID] {
				v.status[d.DeviceID], v.seq[d.DeviceID], v.digest[d.DeviceID] = d.Status, d.Seq, d.OutputDigest
			}
		}
		if m.Job != nil && m.Job.Status.Terminal() {
			v.done = true
		}
	case bulk.EventProgress:
		v.progress[m.DeviceID] = append(v.progress[m.DeviceID], m.Seq)
		if run.Status(m.Status).Terminal() {
			v.terminal[m.DeviceID]++
		}
		if m.Seq > v.seq[m.DeviceID] {
			v.status[m.DeviceID], v.seq[m.DeviceID], v.digest[m.DeviceID] = run.Status(m.Status), m.Seq, m.Digest
		}
	case bulk.EventJobDone:
		v.done, v.doneCount = true, m.Counts
	case live.TypeError:
		require.FailNow(t, "error message", "%s", r.raw)
	}
	assert.LessOrEqual(t, len(r.raw), live.MaxFrameBytes, "a message's bytes against the frame")
}

// subscribe sends a subscribe and reads the whole snapshot into v.
func (cl *wsClient) subscribe(t testing.TB, jobID string, v *view) {
	t.Helper()
	cl.send(t, map[string]string{"action": "subscribe", "job_id": jobID})
	for {
		r := cl.next(t, 10*time.Second)
		v.apply(t, r)
		if r.msg.Type == live.TypeSnapshot && r.msg.Part == r.msg.Parts {
			return
		}
	}
}

// follow applies messages until job_done, or until stop says to stop.
func (cl *wsClient) follow(t testing.TB, v *view, bound time.Duration, stop func(received) bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !v.done {
		r := cl.next(t, time.Until(deadline))
		v.apply(t, r)
		if stop != nil && stop(r) {
			return
		}
	}
}

func (v *view) check(t testing.TB, who string, want map[string]bulk.DeviceState) {
	t.Helper()
	assert.True(t, v.done, "%s: job not seen done", who)
	for id, st := range want {
		assert.Equal(t, st.Status, v.status[id], "%s: device %s's status, stored (left) against seen", who, id)
		assert.Equal(t, st.OutputDigest, v.digest[id], "%s: device %s's output digest, stored (left) against seen", who, id)
		if st.Status == run.Succeeded {
			assert.NotEmpty(t, st.OutputDigest, "%s: succeeded device %s has no stored output digest", who, id)
		}
	}
	assert.Len(t, v.status, len(want), "%s: devices seen", who)
}

func TestLiveProgress(t *testing.T) {
	t.Parallel()
	e := newWSEnv(t, devicesim.Spec{Count: 100, Seed: 11,
		Faults: []devicesim.FaultCount{{Fault: devicesim.FaultRefuse, Count: 3}, {Fault: devicesim.FaultWrongCredentials, Count: 2}}})
	ctx := context.Background()
	acc, err := e.enq.Enqueue(ctx, bulk.Request{Command: "show version", DeviceIDs: e.ids, Options: bulk.Options{TimeoutS: 5}}, auth.Identity{Subject: "tester@example.com", Role: auth.Operator})
	require.NoError(t, err)
	tok := e.token(t, "viewer")
	// Both clients subscribe while the job waits on the queue: every change is pushed live.
	a, _, err := e.dial(t, tok)
	require.NoError(t, err)
	va := newView()
	a.subscribe(t, acc.JobID, va)
	require.Len(t, va.status, 100, "snapshot: devices")
	require.Equal(t, run.Queued, va.status[e.ids[0]], "snapshot: device %s's status", e.ids[0])
	b, _, err := e.dial(t, tok)
	require.NoError(t, err)
	vb := newView()
	b.subscribe(t, acc.JobID, vb)
	// A connection that vanished without $disconnect: the gateway answers 410 for it.
	ghost := "ghostConnection="
	require.NoError(t, e.conns.PutConnection(ctx, live.Connection{ID: ghost, Identity: auth.Identity{Subject: "gone", Role: auth.Viewer},
		ConnectedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}), "put the ghost connection")
	require.NoError(t, e.conns.Subscribe(ctx, ghost, acc.JobID, time.Now().Add(time.Hour)))

	e.exec.Concurrency = 25 // a job that lasts long enough to drop a client in the middle
	e.startWorkers(t, app.ExecutorHandler(e.exec, e.st.Names.Queues[resources.BulkDLQ], nil, nil), 2)

	var wg sync.WaitGroup
	var b2 *wsClient
	vb2 := newView()
	wg.Add(1)
	go func() { // B drops after 30 progress events, reconnects and re-subscribes
		defer wg.Done()
		n := 0
		b.follow(t, vb, time.Minute, func(r received) bool {
			if r.msg.Type == bulk.EventProgress {
				n++
			}
			return n == 30
		})
		b.close()
		var err error
		b2, _, err = e.dial(t, tok)
		if !assert.NoError(t, err, "reconnect") {
			return
		}
		b2.subscribe(t, acc.JobID, vb2)
		b2.follow(t, vb2, time.Minute, nil)
	}()
	a.follow(t, va, time.Minute, nil)
	wg.Wait()
	require.False(t, vb.done, "B saw the job end before it dropped; the reconnect case tested nothing")

	j := e.waitJob(t, acc.JobID, 10*time.Second)
	stored := e.allDevices(t, acc.JobID)
	va.check(t, "A", stored)
	vb2.check(t, "B after reconnect", stored)
	for _, id := range e.ids {
		assert.Equal(t, 1, va.terminal[id], "A's terminal events for device %s", id)
		assert.True(t, slices.IsSorted(va.progress[id]), "A got device %s's events out of seq order: %v", id, va.progress[id])
		assert.Len(t, slices.Compact(slices.Clone(va.progress[id])), len(va.progress[id]), "A got device %s's events repeated: %v", id, va.progress[id])
	}
	total := 0
	for _, n := range va.doneCount {
		total += n
	}
	assert.Equal(t, 100, total, "job_done counts %v: total", va.doneCount)
	assert.Equal(t, 3, va.doneCount[run.Unreachable], "job_done counts %v: unreachable", va.doneCount)
	assert.Equal(t, 2, va.doneCount[run.AuthFailed], "job_done counts %v: auth_failed", va.doneCount)
	assert.Equal(t, 95, j.Counts[run.Succeeded], "job %s's counts %v: succeeded", j.ID, j.Counts)

	// The ghost was deleted on its 410, with its subscription.
	_, err = e.conns.GetConnection(ctx, ghost)
	assert.ErrorIs(t, err, live.ErrNotFound, "the ghost connection is not deleted")
	st := e.pub.Stats()
	assert.GreaterOrEqual(t, st.Gone, int64(1), "publisher stats %+v: the ghost counted gone", st)
	assert.NotZero(t, st.Sent, "publisher stats %+v: sent", st)
	// Everyone leaves: $disconnect removes the connections and their subscriptions.
	a.close()
	b2.close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		subs, err := e.conns.Subscribers(ctx, acc.JobID)
		require.NoError(t, err)
		if len(subs) == 0 {
			break
		}
		require.False(t, time.Now().After(deadline), "subscribers left after every client closed: %v", subs)
		time.Sleep(20 * time.Millisecond) // polling the gateway's asynchronous $disconnect, bounded
	}
}

func TestLiveRefusals(t *testing.T) {
	t.Parallel()
	e := newWSEnv(t, devicesim.Spec{Count: 1, Seed: 5})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	issue := func(s *auth.Signer, spec auth.TokenSpec) string {
		tok, err := s.Issue(spec)
		require.NoError(t, err)
		return tok
	}
	viewer := auth.TokenSpec{Subject: "u1", Groups: []string{"viewer"}}
	expired := viewer
	expired.Now, expired.TTL = time.Now().Add(-2*time.Hour), time.Hour
	foreignAud := viewer
	foreignAud.Audience = "someone-else"
	foreignIss := viewer
	foreignIss.Issuer = "https://idp.example.com"
	for _, tc := range []struct{ name, token string }{
		{"no token", ""},
		{"garbage", "not-a-jwt"},
		{"expired", issue(signer(t), expired)},
		{"another audience", issue(signer(t), foreignAud)},
		{"another issuer", issue(signer(t), foreignIss)},
		{"another key", issue(auth.NewSigner(other), viewer)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, resp, err := e.dial(t, tc.token)
			if err == nil {
				c.close()
			}
			require.Error(t, err, "connection accepted")
			require.NotNil(t, resp, "dial: %v without a response, want 401", err)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "dial: %v", err)
		})
	}

	acc, err := e.enq.Enqueue(context.Background(), bulk.Request{Command: "show clock", DeviceIDs: e.ids}, auth.Identity{Subject: "t@example.com", Role: auth.Operator})
	require.NoError(t, err)
	noRole, _, err := e.dial(t, issue(signer(t), auth.TokenSpec{Subject: "nobody"}))
	require.NoError(t, err, "a valid token without a role may connect")
	ok, _, err := e.dial(t, issue(signer(t), viewer))
	require.NoError(t, err)
	for _, tc := range []struct {
		name     string
		c        *wsClient
		msg      any
		wantCode string
	}{
		{"no role", noRole, map[string]string{"action": "subscribe", "job_id": acc.JobID}, "forbidden"},
		{"unknown job", ok, map[string]string{"action": "subscribe", "job_id": "nosuchjob"}, "not_found"},
		{"bad job id", ok, map[string]string{"action": "subscribe", "job_id": "../x"}, "bad_request"},
		{"unknown action", ok, map[string]string{"action": "dance"}, ""},
		{"not JSON", ok, "{", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, isStr := tc.msg.(string); isStr {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				require.NoError(t, tc.c.c.Write(ctx, websocket.MessageText, []byte(s)))
			} else {
				tc.c.send(t, tc.msg)
			}
			r := tc.c.next(t, 10*time.Second)
			if tc.wantCode == "" { // no route matched: API Gateway's own answer
				var m map[string]string
				require.NoError(t, json.Unmarshal(r.raw, &m), "got %s, want API Gateway's Forbidden", r.raw)
				require.Equal(t, "Forbidden", m["message"], "got %s, want API Gateway's Forbidden", r.raw)
				return
			}
			require.Equal(t, live.TypeError, r.msg.Type, "got %s, want an error %q", r.raw, tc.wantCode)
			require.Equal(t, tc.wantCode, r.msg.Code, "got %s: error code", r.raw)
		})
	}
	subs, err := e.conns.Subscribers(context.Background(), acc.JobID)
	if assert.NoError(t, err, "subscribers of job %s", acc.JobID) {
		assert.Empty(t, subs, "subscribers of job %s after refused subscribes", acc.JobID)
	}
}

// TestManagementEndpoint checks the local @connections API against the real SDK client: ids are
// URL-escaped by the SDK, unknown ids are 410 and map to live.ErrGone.
func TestManagementEndpoint(t *testing.T) {
	t.Parallel()
	e := newWSEnv(t, devicesim.Spec{Count: 1, Seed: 6})
	c, _, err := e.dial(t, e.token(t, "viewer"))
	require.NoError(t, err)
	// Learn the connection's id from the store (the only connection of this test's table).
	ids := e.connectionIDs(t)
	require.Len(t, ids, 1, "connections")
	client, err := push.NewClient(aws.Config{Region: stack.Region, Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""), HTTPClient: app.HTTPClient()}, e.base)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, client.Post(ctx, ids[0], []byte(`{"type":"hello"}`)), "post")
	assert.Equal(t, `{"type":"hello"}`, string(c.next(t, 5*time.Second).raw), "what the client got")
	assert.ErrorIs(t, client.Post(ctx, "noSuchConnection=", []byte("x")), live.ErrGone, "post to an unknown id")
	resp, err := http.Post(e.base+"/@connections/"+url.PathEscape(ids[0]), "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "unsigned post: %s", resp.Status)
}

func (e *wsEnv) connectionIDs(t testing.TB) []string {
	t.Helper()
	out, err := stack.DynamoDBClient(e.st.Endpoints.DynamoDB).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(e.st.Names.Tables[resources.ConnectionsTable]),
	})
	require.NoError(t, err)
	var ids []string
	for _, it := range out.Items {
		pk, _ := it["pk"].(*types.AttributeValueMemberS)
		sk, _ := it["sk"].(*types.AttributeValueMemberS)
		if pk != nil && sk != nil && sk.Value == "META" {
			ids = append(ids, strings.TrimPrefix(pk.Value, "CONN#"))
		}
	}
	sort.Strings(ids)
	return ids
}
