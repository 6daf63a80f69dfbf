package eventbus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	standin "github.com/netauto/netauto/infra/eventbus"
	"github.com/netauto/netauto/internal/eventbus"
	"github.com/netauto/netauto/internal/notify"
	"github.com/netauto/netauto/internal/notify/notifytest"
)

// start runs the PutEvents stand-in and returns it with a bus client over the real SDK.
func start(t *testing.T, bus string) (*standin.Server, *eventbus.Bus) {
	t.Helper()
	srv, err := standin.Start(context.Background(), "127.0.0.1:0", standin.Options{Buses: []string{"netauto-test"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	client := eventbridge.New(eventbridge.Options{
		Region: standin.Region, BaseEndpoint: aws.String(srv.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	b, err := eventbus.New(client, bus)
	require.NoError(t, err)
	b.Backoff = 0 // the stand-in answers at once; a retry needs no wait
	return srv, b
}

func mismatch(i int, name string) notify.Event {
	return notify.NewHostKeyMismatch(notify.HostKeyMismatch{
		Kind: notify.KindDevice, ID: fmt.Sprintf("d%d", i), Name: name, Host: "10.0.0.1", Port: 22,
		PresentedFingerprint: "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
		PinnedFingerprint:    "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
		SeenAt:               time.Date(2026, 12, 6, 22, 0, i, 0, time.UTC),
	})
}

func mismatches(n int, name string) []notify.Event {
	out := make([]notify.Event, n)
	for i := range out {
		out[i] = mismatch(i, name)
	}
	return out
}

func TestPublishBatchesAndRetries(t *testing.T) {
	big := strings.Repeat("x", 100<<10) // three of these are over 256 KB together
	tests := []struct {
		name      string
		bus       string
		events    []notify.Event
		fail      []string
		wantCalls int
		wantKept  int
		wantErr   string
	}{
		{"ten a call", "default", mismatches(23, "r"), nil, 3, 23, ""},
		{"256 KB a call", "netauto-test", mismatches(3, big), nil, 2, 3, ""},
		{"failed entries are retried alone", "default", mismatches(3, "r"), []string{"InternalFailure", "ThrottlingException"}, 2, 3, ""},
		{"a bus that keeps failing gives up", "default", mismatches(1, "r"), []string{"InternalFailure", "InternalFailure", "InternalFailure"}, 3, 0, "InternalFailure"},
		{"a malformed entry is not retried", "default", mismatches(2, "r"), []string{"MalformedDetail"}, 1, 1, "MalformedDetail"},
		{"an unknown bus is not retried", "nope", mismatches(2, "r"), nil, 1, 0, "ResourceNotFoundException"},
		{"by ARN", "arn:aws:events:us-east-1:000000000000:event-bus/netauto-test", mismatches(1, "r"), nil, 1, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, b := start(t, tt.bus)
			srv.FailNext(tt.fail...)
			err := b.Publish(context.Background(), tt.events...)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantCalls, srv.Calls(), "PutEvents calls")
			got := srv.Events()
			require.Len(t, got, tt.wantKept)
			for _, e := range got {
				assert.Equal(t, notify.Source, e.Source)
				assert.Equal(t, notify.DetailTypeHostKeyMismatch, e.DetailType)
				notifytest.RequireValid(t, e.DetailType, e.Detail)
			}
		})
	}
}

func TestPublishKeepsWhatItSent(t *testing.T) {
	srv, b := start(t, "default")
	e := mismatch(7, "core-7")
	require.NoError(t, b.Publish(context.Background(), e))
	got := srv.Events()
	require.Len(t, got, 1)
	want, err := e.DetailJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got[0].Detail))
	assert.Equal(t, e.Time, got[0].Time, "the event's own time, not when it was sent")
	assert.Equal(t, standin.Account, got[0].AccountID)
	assert.NotEmpty(t, got[0].ID)
}

func TestPublishRefusesAnOversizedEvent(t *testing.T) {
	srv, b := start(t, "default")
	err := b.Publish(context.Background(), mismatch(1, strings.Repeat("x", 300<<10)), mismatch(2, "small"))
	require.ErrorContains(t, err, "over EventBridge's")
	got := srv.Events()
	require.Len(t, got, 1, "the event that fits is sent")
	assert.Contains(t, string(got[0].Detail), `"small"`)
}

func TestTargetsReceiveMatchingEvents(t *testing.T) {
	srv, b := start(t, "default")
	delivered := make(chan events.CloudWatchEvent, 4)
	srv.AddTarget(func(source, detailType string) bool {
		return source == notify.Source && detailType == notify.DetailTypeJobFinished
	}, func(_ context.Context, e events.CloudWatchEvent) error {
		delivered <- e
		return nil
	})
	jf := notify.NewJobFinished(notify.JobFinished{JobID: "j1", Status: "completed", StartedAt: time.Now(), FinishedAt: time.Now()})
	require.NoError(t, b.Publish(context.Background(), mismatch(1, "r"), jf))
	select {
	case e := <-delivered:
		assert.Equal(t, notify.DetailTypeJobFinished, e.DetailType)
		assert.Contains(t, string(e.Detail), `"job_id":"j1"`)
	case <-time.After(10 * time.Second):
		require.FailNow(t, "the target got nothing")
	}
	require.NoError(t, srv.Close(), "close waits for deliveries")
	assert.Empty(t, delivered, "the host key event matched no rule")
}
