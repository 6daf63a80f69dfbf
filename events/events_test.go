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

	"github.com/netauto/netauto/infra/templatecheck"
	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/config"
)

// decodeStrict decodes data into v, rejecting unknown fields and trailing data.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	if dec.More() {
		t.Fatalf("decode %T: trailing data", v)
	}
}

func load(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
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
			if e.RequestContext.Authorizer != nil {
				t.Error("the health route has no authorizer, but the event carries one")
			}
		}},
		{"http-bulk-post.json", func(t *testing.T, file string) {
			var e events.APIGatewayV2HTTPRequest
			load(t, file, &e)
			expect(t, "method", e.RequestContext.HTTP.Method, "POST")
			expect(t, "path", e.RawPath, "/v1/bulk")
			expect(t, "routeKey", e.RouteKey, "POST /v1/{proxy+}")
			if e.RequestContext.Authorizer == nil || e.RequestContext.Authorizer.JWT == nil {
				t.Fatal("no JWT authorizer block")
			}
			claims := e.RequestContext.Authorizer.JWT.Claims
			if claims["sub"] == "" || !strings.HasPrefix(claims["iss"], "https://cognito-idp.") {
				t.Errorf("claims lack sub or a Cognito iss: %v", claims)
			}
			var body struct {
				Command   string       `json:"command"`
				DeviceIDs []string     `json:"device_ids"`
				Options   bulk.Options `json:"options"`
			}
			decodeStrict(t, []byte(e.Body), &body)
			if body.Command == "" || len(body.DeviceIDs) == 0 {
				t.Errorf("bulk body lacks command or devices: %+v", body)
			}
		}},
		{"ws-connect.json", func(t *testing.T, file string) {
			var e events.APIGatewayWebsocketProxyRequest
			load(t, file, &e)
			expect(t, "routeKey", e.RequestContext.RouteKey, "$connect")
			expect(t, "eventType", e.RequestContext.EventType, "CONNECT")
			if e.QueryStringParameters["token"] == "" || e.RequestContext.ConnectionID == "" {
				t.Error("connect lacks ?token= or a connection id")
			}
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
			if msg.JobID == "" {
				t.Error("subscribe lacks job_id")
			}
		}},
		{"sqs-bulk-batch.json", func(t *testing.T, file string) {
			var e events.SQSEvent
			load(t, file, &e)
			if len(e.Records) != 1 {
				t.Fatalf("%d records, want 1 (the event source's BatchSize is 1)", len(e.Records))
			}
			r := e.Records[0]
			expect(t, "eventSource", r.EventSource, "aws:sqs")
			if r.MessageId == "" || r.Attributes["ApproximateReceiveCount"] == "" {
				t.Error("record lacks messageId or ApproximateReceiveCount")
			}
			var m bulk.Message
			decodeStrict(t, []byte(r.Body), &m)
			if err := m.Validate(); err != nil {
				t.Errorf("body is no valid bulk batch message: %v", err)
			}
		}},
		{"schedule-retention.json", func(t *testing.T, file string) {
			var e events.EventBridgeEvent
			load(t, file, &e)
			expect(t, "source", e.Source, "aws.events")
			expect(t, "detail-type", e.DetailType, "Scheduled Event")
			if e.Time.IsZero() || len(e.Resources) != 1 {
				t.Error("scheduled event lacks time or its rule ARN")
			}
		}},
		{"schedule-watchdog.json", func(t *testing.T, file string) {
			var e events.EventBridgeEvent
			load(t, file, &e)
			expect(t, "source", e.Source, "aws.events")
			expect(t, "detail-type", e.DetailType, "Scheduled Event")
			if e.Time.IsZero() || len(e.Resources) != 1 || !strings.Contains(e.Resources[0], "WatchdogFunction") {
				t.Error("scheduled event lacks time or the watchdog rule's ARN")
			}
		}},
		{"dynamodb-ttl-delete.json", func(t *testing.T, file string) {
			var e events.DynamoDBEvent
			load(t, file, &e)
			if len(e.Records) == 0 {
				t.Fatal("no records")
			}
			r := e.Records[0]
			expect(t, "eventName", r.EventName, "REMOVE")
			if r.UserIdentity == nil {
				t.Fatal("no userIdentity: a TTL deletion carries one")
			}
			expect(t, "userIdentity.type", r.UserIdentity.Type, "Service")
			expect(t, "userIdentity.principalId", r.UserIdentity.PrincipalID, "dynamodb.amazonaws.com")
			expect(t, "StreamViewType", r.Change.StreamViewType, "OLD_IMAGE")
			if _, ok := r.Change.OldImage["expires_at"]; !ok {
				t.Error("OldImage lacks the TTL attribute expires_at")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) { tc.check(t, tc.file) })
	}
}

func TestEveryEventFileIsTested(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	tested := map[string]bool{"env.json": true, "http-health.json": true, "http-bulk-post.json": true,
		"ws-connect.json": true, "ws-disconnect.json": true, "ws-subscribe.json": true,
		"sqs-bulk-batch.json": true, "schedule-retention.json": true, "schedule-watchdog.json": true, "dynamodb-ttl-delete.json": true}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") && !tested[e.Name()] {
			t.Errorf("%s has no test in TestEvents", e.Name())
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
			vars, ok := env[id]
			if !ok {
				t.Fatalf("env.json has no %s", id)
			}
			var want, got []string
			for _, v := range config.Vars(fn) {
				want = append(want, v.Name)
			}
			for k := range vars {
				got = append(got, k)
			}
			sort.Strings(want)
			sort.Strings(got)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("env.json %s sets %v, config.Vars(%s) reads %v", id, got, fn, want)
			}
		})
	}
}

func expect(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s is %q, want %q", what, got, want)
	}
}
