package app_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/app"
)

// TestHTTPClientReusesConnections sends two rounds of concurrent requests, as an executor's
// batch does to DynamoDB, and counts the connections the second round opens: none with
// app.HTTPClient, and some with the SDK's default client, which keeps only 10 idle per host.
func TestHTTPClientReusesConnections(t *testing.T) {
	t.Parallel()
	const concurrent = 40
	tests := []struct {
		name   string
		client interface {
			Do(*http.Request) (*http.Response, error)
		}
		reopened func(n int64) bool
		want     string
	}{
		{"netauto client", app.HTTPClient(), func(n int64) bool { return n == 0 }, "0"},
		{"SDK default", awshttp.NewBuildableClient(), func(n int64) bool { return n > 0 }, "> 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opened atomic.Int64
			var arrived sync.WaitGroup
			var gate atomic.Pointer[chan struct{}]
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				all := *gate.Load()
				arrived.Done()
				select {
				case <-all: // answer only once every request of the round is in flight
				case <-time.After(10 * time.Second): // a bound, should a request never arrive
				}
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					opened.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			round := func() int64 {
				t.Helper()
				before := opened.Load()
				arrived.Add(concurrent)
				all := make(chan struct{})
				gate.Store(&all)
				var done sync.WaitGroup
				for range concurrent {
					done.Add(1)
					go func() {
						defer done.Done()
						req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
						resp, err := tc.client.Do(req)
						if !assert.NoError(t, err, "request") {
							return
						}
						resp.Body.Close()
					}()
				}
				arrived.Wait()
				close(all)
				done.Wait()
				return opened.Load() - before
			}
			require.EqualValues(t, concurrent, round(), "connections the first round opened")
			n := round()
			assert.True(t, tc.reopened(n), "second round opened %d new connections, want %s", n, tc.want)
		})
	}
}
