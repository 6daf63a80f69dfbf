// Package events_test checks the sample events in this folder: each decodes strictly (no field
// the aws-lambda-go type lacks) into the type its function receives, and carries the fields the
// handlers and the RIE smoke test rely on. env.json is checked against config.Vars.
package events_test

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/webhook"
)

// decodeStrict decodes data into v, rejecting unknown fields and trailing data.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "decode %T", v)
	require.False(t, dec.More(), "decode %T: trailing data", v)
}

func load(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err, "read %s", name)
	decodeStrict(t, data, v)
}

func TestEvents(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, file string)
	}{
		{"http-health.json", func(t *testing.T, file string) {
			var e events.APIGatewayV2HTTPRequest
			load(t, file, &e)
			expect(t, "version", e.Version, "2.0")
			expect(t, "routeKey", e.RouteKey, "GET /v1/health")
			expect(t, "method", e.RequestContext.HTTP.Method, "GET")
			expect(t, "path", e.RawPath, "/v1/health")
			assert.Nil(t, e.RequestContext.Authorizer, "the health route has no authorizer, but the event carries one")
		}},
		{"http-bulk-post.json", func(t *testing.T, file string) {
			var e events.APIGatewayV2HTTPRequest
			load(t, file, &e)
			expect(t, "method", e.RequestContext.HTTP.Method, "POST")
			expect(t, "path", e.RawPath, "/v1/bulk")
			expect(t, "routeKey", e.RouteKey, "POST /v1/{proxy+}")
			require.NotNil(t, e.RequestContext.Authorizer, "no authorizer block")
			require.NotNil(t, e.RequestContext.Authorizer.JWT, "no JWT authorizer block")
			claims := e.RequestContext.Authorizer.JWT.Claims
			assert.NotEmpty(t, claims["sub"], "claims lack sub: %v", claims)
			assert.True(t, strings.HasPrefix(claims["iss"], "https://cognito-idp."), "claims lack a Cognito iss: %v", claims)
			var body struct {
				Command   string       `json:"command"`
				DeviceIDs []string     `json:"device_ids"`
				Options   bulk.Options `json:"options"`
			}
			decodeStrict(t, []byte(e.Body), &body)
			assert.NotEmpty(t, body.Command, "bulk body lacks command: %+v", body)
			assert.NotEmpty(t, body.DeviceIDs, "bulk body lacks devices: %+v", body)
		}},
		{"ws-connect.json", func(t *testing.T, file string) {
			var e events.APIGatewayWebsocketProxyRequest
			load(t, file, &e)
			expect(t, "routeKey", e.RequestContext.RouteKey, "$connect")
			expect(t, "eventType", e.RequestContext.EventType, "CONNECT")
			assert.NotEmpty(t, e.QueryStringParameters["token"], "connect lacks ?token=")
			assert.NotEmpty(t, e.RequestContext.ConnectionID, "connect lacks a connection id")
		}},
		{"ws-disconnect.json", func(t *testing.T, file string) {
			var e events.APIGatewayWebsocketProxyRequest
			load(t, file, &e)
			expect(t, "routeKey", e.RequestContext.RouteKey, "$disconnect")
			expect(t, "eventType", e.RequestContext.EventType, "DISCONNECT")
		}},
		{"ws-subscribe.json", func(t *testing.T, file string) {
			var e events.APIGatewayWebsocketProxyRequest
			load(t, file, &e)
			expect(t, "routeKey", e.RequestContext.RouteKey, "subscribe")
			expect(t, "eventType", e.RequestContext.EventType, "MESSAGE")
			var msg struct {
				Action string `json:"action"`
				JobID  string `json:"job_id"`
			}
			decodeStrict(t, []byte(e.Body), &msg)
			expect(t, "action", msg.Action, e.RequestContext.RouteKey)
			assert.NotEmpty(t, msg.JobID, "subscribe lacks job_id")
		}},
		{"sqs-bulk-batch.json", func(t *testing.T, file string) {
			var e events.SQSEvent
			load(t, file, &e)
			require.Len(t, e.Records, 1, "records (the event source's BatchSize is 1)")
			r := e.Records[0]
			expect(t, "eventSource", r.EventSource, "aws:sqs")
			assert.NotEmpty(t, r.MessageId, "record lacks messageId")
			assert.NotEmpty(t, r.Attributes["ApproximateReceiveCount"], "record lacks ApproximateReceiveCount")
			var m bulk.Message
			decodeStrict(t, []byte(r.Body), &m)
			assert.NoError(t, m.Validate(), "body is no valid bulk batch message")
		}},
		{"schedule-retention.json", func(t *testing.T, file string) {
			var e events.EventBridgeEvent
			load(t, file, &e)
			expect(t, "source", e.Source, "aws.events")
			expect(t, "detail-type", e.DetailType, "Scheduled Event")
			assert.False(t, e.Time.IsZero(), "scheduled event lacks time")
			assert.Len(t, e.Resources, 1, "scheduled event's resources: its rule ARN")
		}},
		{"sqs-webhook-delivery.json", func(t *testing.T, file string) {
			var e events.SQSEvent
			load(t, file, &e)
			require.NotEmpty(t, e.Records, "no records")
			r := e.Records[0]
			expect(t, "eventSource", r.EventSource, "aws:sqs")
			assert.Contains(t, r.EventSourceARN, "WebhookQueue", "the record comes from the webhook queue")
			var d webhook.Delivery
			decodeStrict(t, []byte(r.Body), &d)
			assert.NotEmpty(t, d.ID, "delivery id")
			assert.NotEmpty(t, d.WebhookID, "webhook id")
			assert.Equal(t, 1, d.Attempt)
			expect(t, "event.source", d.Event.Source, "netauto")
		}},
		{"eventbridge-job-finished.json", func(t *testing.T, file string) {
			var e events.CloudWatchEvent
			load(t, file, &e)
			expect(t, "source", e.Source, "netauto")
			expect(t, "detail-type", e.DetailType, "Job Finished")
			assert.False(t, e.Time.IsZero(), "event lacks time")
			var detail map[string]any
			require.NoError(t, json.Unmarshal(e.Detail, &detail))
			assert.NotEmpty(t, detail["job_id"], "detail lacks job_id")
		}},
		{"schedule-watchdog.json", ruleEvent("WatchdogFunction")},
		{"schedule-scheduler.json", ruleEvent("SchedulerFunction")},
		{"dynamodb-ttl-delete.json", func(t *testing.T, file string) {
			var e events.DynamoDBEvent
			load(t, file, &e)
			require.NotEmpty(t, e.Records, "no records")
			r := e.Records[0]
			expect(t, "eventName", r.EventName, "REMOVE")
			require.NotNil(t, r.UserIdentity, "no userIdentity: a TTL deletion carries one")
			expect(t, "userIdentity.type", r.UserIdentity.Type, "Service")
			expect(t, "userIdentity.principalId", r.UserIdentity.PrincipalID, "dynamodb.amazonaws.com")
			expect(t, "StreamViewType", r.Change.StreamViewType, "OLD_IMAGE")
			assert.Contains(t, r.Change.OldImage, "expires_at", "OldImage lacks the TTL attribute expires_at")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) { tc.check(t, tc.file) })
	}
}

// ruleEvent checks a scheduled event of the EventBridge rule of function fnID.
func ruleEvent(fnID string) func(t *testing.T, file string) {
	return func(t *testing.T, file string) {
		var e events.EventBridgeEvent
		load(t, file, &e)
		expect(t, "source", e.Source, "aws.events")
		expect(t, "detail-type", e.DetailType, "Scheduled Event")
		assert.False(t, e.Time.IsZero(), "scheduled event lacks time")
		require.Len(t, e.Resources, 1, "scheduled event's resources: the rule's ARN")
		assert.Contains(t, e.Resources[0], fnID, "the rule's ARN names its function")
	}
}

func TestEveryEventFileIsTested(t *testing.T) {
	entries, err := os.ReadDir(".")
	require.NoError(t, err)
	tested := map[string]bool{"env.json": true, "http-health.json": true, "http-bulk-post.json": true,
		"ws-connect.json": true, "ws-disconnect.json": true, "ws-subscribe.json": true,
		"sqs-bulk-batch.json": true, "schedule-retention.json": true, "schedule-watchdog.json": true, "schedule-scheduler.json": true, "dynamodb-ttl-delete.json": true,
		"sqs-webhook-delivery.json": true, "eventbridge-job-finished.json": true}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			assert.True(t, tested[e.Name()], "%s has no test in TestEvents", e.Name())
		}
	}
}

// TestEnvJSON checks that env.json (for sam local invoke --env-vars) sets exactly the variables
// each function reads.
func TestEnvJSON(t *testing.T) {
	var env map[string]map[string]string
	load(t, "env.json", &env)
	for id, fn := range templatecheck.DefaultFunctionNames() {
		t.Run(id, func(t *testing.T) {
			require.Contains(t, env, id, "env.json has no %s", id)
			vars := env[id]
			var want, got []string
			for _, v := range config.Vars(fn) {
				want = append(want, v.Name)
			}
			for k := range vars {
				got = append(got, k)
			}
			sort.Strings(want)
			sort.Strings(got)
			assert.Equal(t, want, got, "env.json %s sets (right), config.Vars(%s) reads (left)", id, fn)
		})
	}
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	assert.Equal(t, want, got, what)
}
