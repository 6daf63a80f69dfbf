package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/live"
)

// fakeSubs is an in-memory subscription store.
type fakeSubs struct {
	mu      sync.Mutex
	subs    map[string][]string
	lookups int
	deleted []string
}

func (f *fakeSubs) Subscribers(_ context.Context, job string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	return slices.Clone(f.subs[job]), nil
}

func (f *fakeSubs) DeleteConnection(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, id)
	for j, cs := range f.subs {
		f.subs[j] = slices.DeleteFunc(cs, func(c string) bool { return c == id })
	}
	return nil
}

// fakePoster records what each connection got, unpacking events messages; connections in gone
// answer ErrGone.
type fakePoster struct {
	mu    sync.Mutex
	got   map[string][]bulk.Event
	posts map[string]int
	gone  map[string]bool
}

func (f *fakePoster) Post(_ context.Context, conn string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[conn] {
		return live.ErrGone
	}
	if len(data) > live.MaxFrameBytes {
		return fmt.Errorf("a %d-byte message exceeds the frame", len(data))
	}
	var head struct {
		Type   string       `json:"type"`
		JobID  string       `json:"job_id"`
		Events []bulk.Event `json:"events"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	if f.posts == nil {
		f.posts = map[string]int{}
	}
	f.posts[conn]++
	if head.Type == live.TypeEvents {
		if len(head.Events) < 2 {
			return fmt.Errorf("an events message with %d events (one is sent bare)", len(head.Events))
		}
		for _, ev := range head.Events {
			if ev.JobID != head.JobID {
				return fmt.Errorf("event of job %s in a message of job %s", ev.JobID, head.JobID)
			}
		}
		f.got[conn] = append(f.got[conn], head.Events...)
		return nil
	}
	var ev bulk.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return err
	}
	f.got[conn] = append(f.got[conn], ev)
	return nil
}

func progress(job, dev string, seq int64) bulk.Event {
	return bulk.Event{Type: bulk.EventProgress, JobID: job, DeviceID: dev, Status: "running", Seq: seq}
}

func newTestPublisher(t *testing.T, subs *fakeSubs, poster *fakePoster) *Publisher {
	t.Helper()
	p, err := New(Options{Subscriptions: subs, Poster: poster, Concurrency: 4})
	require.NoError(t, err, "new publisher")
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func flush(t *testing.T, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, p.Flush(ctx), "flush")
}

func TestPublisherOrderGoneAndCache(t *testing.T) {
	subs := &fakeSubs{subs: map[string][]string{"j1": {"a", "b", "ghost"}}}
	poster := &fakePoster{got: map[string][]bulk.Event{}, gone: map[string]bool{"ghost": true}}
	p := newTestPublisher(t, subs, poster)
	var seq int64
	for range 20 {
		var evs []bulk.Event
		for _, d := range []string{"d1", "d2", "d3"} {
			seq++
			evs = append(evs, progress("j1", d, seq))
		}
		p.Publish(context.Background(), evs)
	}
	seq++
	p.Publish(context.Background(), []bulk.Event{{Type: bulk.EventJobDone, JobID: "j1", Status: "completed", Seq: seq}})
	flush(t, p)

	for _, conn := range []string{"a", "b"} {
		got := poster.got[conn]
		require.Len(t, got, 61, "events connection %s got", conn)
		assert.Equal(t, bulk.EventJobDone, got[len(got)-1].Type, "%s: the last event", conn)
		perDev := map[string][]int64{}
		for _, ev := range got {
			perDev[ev.DeviceID] = append(perDev[ev.DeviceID], ev.Seq)
		}
		for d, seqs := range perDev {
			assert.True(t, slices.IsSorted(seqs), "%s: device %s out of order: %v", conn, d, seqs)
		}
	}
	assert.Equal(t, []string{"ghost"}, subs.deleted, "deleted connections")
	st := p.Stats()
	assert.EqualValues(t, 1, st.Gone, "stats %+v: gone", st)
	assert.EqualValues(t, 122, st.Sent, "stats %+v: sent", st)
	assert.LessOrEqual(t, subs.lookups, 2, "subscriber lookups for one job within a second")
}

// TestPublisherLateSubscriber: a connection that subscribes while the list is cached gets,
// at the next read, the events it missed, before newer ones.
func TestPublisherLateSubscriber(t *testing.T) {
	subs := &fakeSubs{subs: map[string][]string{"j1": {"a"}}}
	poster := &fakePoster{got: map[string][]bulk.Event{}}
	p, err := New(Options{Subscriptions: subs, Poster: poster, CacheTTL: time.Nanosecond})
	require.NoError(t, err, "new publisher")
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	// Freeze the cache: a TTL long enough that the second publish reuses the first read.
	p.opts.CacheTTL = time.Hour
	p.Publish(context.Background(), []bulk.Event{progress("j1", "d1", 1)})
	flush(t, p)
	subs.mu.Lock()
	subs.subs["j1"] = []string{"a", "late"}
	subs.mu.Unlock()
	p.Publish(context.Background(), []bulk.Event{progress("j1", "d2", 2)})
	flush(t, p)
	require.Empty(t, poster.got["late"], "late subscriber seen before the cache expired")
	p.opts.CacheTTL = 0 // the next delivery reads the list again
	p.Publish(context.Background(), []bulk.Event{progress("j1", "d1", 3)})
	flush(t, p)
	perDev := map[string][]int64{}
	for _, ev := range poster.got["late"] {
		perDev[ev.DeviceID] = append(perDev[ev.DeviceID], ev.Seq)
	}
	assert.Equal(t, map[string][]int64{"d1": {1, 3}, "d2": {2}}, perDev, "late subscriber's events per device, in order")
}

// fakeAPI answers PostToConnection with a scripted list of errors.
type fakeAPI struct {
	errs  []error
	calls int
}

func (f *fakeAPI) PostToConnection(context.Context, *apigatewaymanagementapi.PostToConnectionInput, ...func(*apigatewaymanagementapi.Options)) (*apigatewaymanagementapi.PostToConnectionOutput, error) {
	f.calls++
	if len(f.errs) == 0 {
		return &apigatewaymanagementapi.PostToConnectionOutput{}, nil
	}
	err := f.errs[0]
	f.errs = f.errs[1:]
	return nil, err
}

func httpErr(status int) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: errors.New("boom")}
}

func TestClientPost(t *testing.T) {
	tests := []struct {
		name      string
		errs      []error
		wantGone  bool
		wantErr   bool
		wantCalls int
	}{
		{name: "ok", wantCalls: 1},
		{name: "gone exception", errs: []error{&types.GoneException{}}, wantGone: true, wantErr: true, wantCalls: 1},
		{name: "410 status", errs: []error{httpErr(410)}, wantGone: true, wantErr: true, wantCalls: 1},
		{name: "throttled then ok", errs: []error{&types.LimitExceededException{}, httpErr(429)}, wantCalls: 3},
		{name: "5xx then ok", errs: []error{httpErr(503)}, wantCalls: 2},
		{name: "throttled beyond retries", errs: []error{httpErr(429), httpErr(429), httpErr(429), httpErr(429), httpErr(429)}, wantErr: true, wantCalls: 5},
		{name: "forbidden is not retried", errs: []error{&types.ForbiddenException{}}, wantErr: true, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api := &fakeAPI{errs: tc.errs}
			c := NewClientFrom(api)
			c.Backoff = time.Millisecond
			err := c.Post(context.Background(), "c1", []byte("{}"))
			if tc.wantErr {
				assert.Error(t, err, "post")
			} else {
				assert.NoError(t, err, "post")
			}
			assert.Equal(t, tc.wantGone, errors.Is(err, live.ErrGone), "post error %v is live.ErrGone", err)
			assert.Equal(t, tc.wantCalls, api.calls, "PostToConnection calls")
		})
	}
}

// TestPublisherTrailingRefresh: a connection that subscribes after a job's last delivery (while
// the cached subscriber list was still fresh) is still sent what it missed.
func TestPublisherTrailingRefresh(t *testing.T) {
	subs := &fakeSubs{subs: map[string][]string{"j1": {"a"}}}
	poster := &fakePoster{got: map[string][]bulk.Event{}}
	p, err := New(Options{Subscriptions: subs, Poster: poster, CacheTTL: 50 * time.Millisecond})
	require.NoError(t, err, "new publisher")
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	p.Publish(context.Background(), []bulk.Event{progress("j1", "d1", 1)})
	flush(t, p)
	subs.mu.Lock()
	subs.subs["j1"] = []string{"a", "late"}
	subs.mu.Unlock()
	p.Publish(context.Background(), []bulk.Event{progress("j1", "d2", 2)}) // the job's last event, sent on the cached list
	flush(t, p)
	// The trailing refresh runs on its own after the cache expires: poll for it, bounded.
	require.Eventually(t, func() bool {
		poster.mu.Lock()
		defer poster.mu.Unlock()
		return len(poster.got["late"]) == 2
	}, 5*time.Second, 10*time.Millisecond, "late subscriber did not get both events")
	poster.mu.Lock()
	defer poster.mu.Unlock()
	assert.Len(t, poster.got["a"], 2, "events connection a got (no repeats)")
}

func TestPublisherPacksBurstsIntoFewMessages(t *testing.T) {
	subs := &fakeSubs{subs: map[string][]string{"j": {"a", "b"}}}
	poster := &fakePoster{got: map[string][]bulk.Event{}}
	p := newTestPublisher(t, subs, poster)
	var evs []bulk.Event
	for i := range 500 {
		ev := progress("j", fmt.Sprintf("device-%04d", i%50), int64(i+1))
		ev.Reason = strings.Repeat("r", 100) // about 250 bytes an event: 500 need several messages
		evs = append(evs, ev)
	}
	evs = append(evs, bulk.Event{Type: bulk.EventJobDone, JobID: "j", Status: "completed", Seq: 501})
	p.Publish(context.Background(), evs)
	require.NoError(t, p.Flush(context.Background()), "flush")
	poster.mu.Lock()
	defer poster.mu.Unlock()
	for _, conn := range []string{"a", "b"} {
		got := poster.got[conn]
		require.Len(t, got, 501, "events connection %s got", conn)
		for i, ev := range got {
			require.EqualValues(t, i+1, ev.Seq, "%s: event %d's seq (out of order)", conn, i)
		}
		n := poster.posts[conn]
		assert.GreaterOrEqual(t, n, 2, "%s: posts for 501 events, want a few messages under the frame limit", conn)
		assert.LessOrEqual(t, n, 10, "%s: posts for 501 events, want a few messages under the frame limit", conn)
	}
	st := p.Stats()
	assert.EqualValues(t, 1002, st.Sent, "stats %+v: events sent", st)
	assert.EqualValues(t, 0, st.Failed, "stats %+v: failed", st)
	assert.EqualValues(t, poster.posts["a"]+poster.posts["b"], st.Posts, "stats %+v: posts", st)
}
