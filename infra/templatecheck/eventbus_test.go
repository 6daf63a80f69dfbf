package templatecheck_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// TestEventBusCheckCatches breaks a copy of template.yaml in one way per case and expects the
// event bus check to report it: the stack makes its own bus whose policy denies events:PutEvents
// to all but the publishing functions' roles; the functions that send events get that bus (or the
// named one) and may put events on it only, as source netauto only, and no other function may;
// the notifier's rule listens on that bus and only when events are on.
func TestEventBusCheckCatches(t *testing.T) {
	const (
		ownARN    = `                - !Sub "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${AWS::StackName}-events"` + "\n"
		namedARN  = `                - !Sub "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"` + "\n"
		grant     = "              Resource: !If\n                - OwnEventBus\n" + ownARN + namedARN
		condition = "              Condition:\n                StringEquals:\n                  events:source: netauto\n"
		envVar    = "          NET_AUTO_EVENT_BUS: !If [OwnEventBus, !Ref EventBus, !Ref EventBusName]\n"
		deny      = "          - Sid: OnlyNetAutoPublishes\n            Effect: Deny\n"
		policy    = "      Policy:\n        Version: \"2012-10-17\"\n"
		scheduler = "                  - !GetAtt SchedulerFunctionRole.Arn\n"
		ruleBus   = "      EventBusName: !If [OwnEventBus, !Ref EventBus, !Ref EventBusName]\n      EventPattern:\n"
		ruleCond  = "    Type: AWS::Events::Rule\n    Condition: EventsOn\n"
		samEvent  = "      Events:\n        Deliveries:\n"
	)
	cases := []struct {
		name      string
		mutations []mutation
		want      string
	}{
		{"any bus", []mutation{{grant, "              Resource: \"*\"\n"}}, `grants events:PutEvents on *`},
		{"another account's buses", []mutation{{namedARN, `                - !Sub "arn:${AWS::Partition}:events:${AWS::Region}:*:event-bus/${EventBusName}"` + "\n"}},
			`want !If [OwnEventBus, !Sub "arn:${AWS::Partition}:events`},
		{"any source", []mutation{{condition, ""}}, "without the condition StringEquals events:source netauto"},
		{"a hard-coded bus", []mutation{{envVar, "          NET_AUTO_EVENT_BUS: default\n"}}, "NET_AUTO_EVENT_BUS: want !If [OwnEventBus, !Ref EventBus, !Ref EventBusName]"},
		{"the parameter's bus only", []mutation{{envVar, "          NET_AUTO_EVENT_BUS: !Ref EventBusName\n"}}, "NET_AUTO_EVENT_BUS: want !If [OwnEventBus"},
		{"no grant", []mutation{{"            - Sid: PublishEvents\n              Effect: Allow\n              Action: events:PutEvents\n",
			"            - Sid: PublishEvents\n              Effect: Allow\n              Action: events:DescribeEventBus\n"}},
			"reads NET_AUTO_EVENT_BUS but may not events:PutEvents on the bus"},
		{"a function that sends none", []mutation{{"      Policies:\n        - DynamoDBCrudPolicy: {TableName: !Ref ConnectionsTable}\n",
			"      Policies:\n        - Statement:\n            - Sid: Stray\n              Effect: Allow\n              Action: events:PutEvents\n              Resource: \"*\"\n        - DynamoDBCrudPolicy: {TableName: !Ref ConnectionsTable}\n"}},
			`statement "Stray" lets the ws function put events, but it does not read NET_AUTO_EVENT_BUS`},
		{"no bus of its own", []mutation{{"    Type: AWS::Events::EventBus\n", "    Type: AWS::SNS::Topic\n"}}, "want one AWS::Events::EventBus"},
		{"its own bus also when a bus is named", []mutation{{"    Type: AWS::Events::EventBus\n    Condition: OwnEventBus\n", "    Type: AWS::Events::EventBus\n    Condition: EventsOn\n"}},
			`want a condition that is !Equals [!Ref EventBusName, ""], got "EventsOn"`},
		{"no bus policy", []mutation{{policy, "      NoPolicy:\n        Version: \"2012-10-17\"\n"}},
			"want one statement that denies events:PutEvents to all but the publishing functions' roles, found 0"},
		{"a policy that allows", []mutation{{deny, "          - Sid: OnlyNetAutoPublishes\n            Effect: Allow\n"}}, `statement "OnlyNetAutoPublishes" allows events:PutEvents`},
		{"a deny on another key", []mutation{{"                aws:PrincipalArn:\n", "                aws:SourceArn:\n"}}, "want only ArnNotEquals aws:PrincipalArn"},
		{"a deny on a principal of the account", []mutation{{"            Principal: \"*\"\n            Action: events:PutEvents\n",
			"            Principal: {AWS: !Ref AWS::AccountId}\n            Action: events:PutEvents\n"}}, `the deny's Principal is`},
		{"a publisher left out of the exemption", []mutation{{scheduler, ""}},
			"the deny does not exempt SchedulerFunctionRole: the SchedulerFunction function reads NET_AUTO_EVENT_BUS but could not publish"},
		{"another function exempted", []mutation{{scheduler, scheduler + "                  - !GetAtt WsFunctionRole.Arn\n"}},
			"the deny exempts WsFunctionRole, which is not the role of a function that publishes"},
		{"the rule on the default bus", []mutation{{ruleBus, "      EventPattern:\n"}}, "the rule listens on <nil>"},
		{"the rule also when events are off", []mutation{{ruleCond, "    Type: AWS::Events::Rule\n"}},
			"the rule takes NetAuto's events also when EventBusName is off"},
		{"the rule to another function", []mutation{{"          Arn: !GetAtt NotifierFunction.Arn\n", "          Arn: !GetAtt ApiFunction.Arn\n"}},
			"no AWS::Events::Rule takes NetAuto's events (source netauto) to the notifier"},
		{"a SAM rule on the notifier", []mutation{{samEvent, "      Events:\n        NetAutoEvents:\n          Type: EventBridgeRule\n          Properties:\n" +
			"            EventBusName: !If [EventsOff, !Ref AWS::NoValue, !Ref EventBusName]\n            Pattern:\n              source: [netauto]\n        Deliveries:\n"}},
			"a SAM EventBridgeRule event takes NetAuto's events"},
	}
	base := readTemplate(t)
	require.Zero(t, problemsOf(t, check(t, base), templatecheck.CheckEventBus), "template.yaml itself passes")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, check(t, apply(t, base, tc.mutations)), templatecheck.CheckEventBus)
			require.NotEmpty(t, got, "the event bus check passed a template broken by %q", tc.name)
			assert.Contains(t, strings.Join(got, "\n"), tc.want)
		})
	}
}

// TestEventBusCheckFailsOnTheSharedBus runs the check on the event bus parts of the template as it
// was before the stack had a bus of its own: the functions published to the account's default
// bus, which any principal allowed events:PutEvents may put source netauto on, and the notifier's
// rule listened on it (also with events off).
func TestEventBusCheckFailsOnTheSharedBus(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "shared-bus.yaml"))
	require.NoError(t, err)
	got := strings.Join(problemsOf(t, check(t, string(data)), templatecheck.CheckEventBus), "\n")
	for _, want := range []string{
		"want one AWS::Events::EventBus, the stack's own bus for NetAuto's events (made when EventBusName is empty), found 0",
		"Resources.NotifierFunction.Properties.Events.NetAutoEvents: a SAM EventBridgeRule event takes NetAuto's events",
		"no AWS::Events::Rule takes NetAuto's events (source netauto) to the notifier",
	} {
		assert.Contains(t, got, want)
	}
}

// problemsOf returns the problems of err that the named check reported.
func problemsOf(t *testing.T, err error, name string) []string {
	t.Helper()
	var got []string
	for _, p := range templatecheck.Problems(err) {
		if p.Check == name {
			got = append(got, p.Error())
		}
	}
	return got
}
