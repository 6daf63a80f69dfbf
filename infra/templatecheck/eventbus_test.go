package templatecheck_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// TestEventBusCheckCatches breaks a copy of template.yaml in one way per case and expects the
// event bus check to report it: the functions that send events get the bus from its parameter and
// may put events on that bus only, as source netauto only, and no other function may.
func TestEventBusCheckCatches(t *testing.T) {
	const (
		busARN    = `Resource: !Sub "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"`
		condition = "              Condition:\n                StringEquals:\n                  events:source: netauto\n"
		envVar    = "          NET_AUTO_EVENT_BUS: !Ref EventBusName\n"
	)
	cases := []struct {
		name      string
		mutations []mutation
		want      string
	}{
		{"any bus", []mutation{{busARN, `Resource: "*"`}}, `grants events:PutEvents on *`},
		{"another account's buses", []mutation{{busARN, `Resource: !Sub "arn:${AWS::Partition}:events:${AWS::Region}:*:event-bus/${EventBusName}"`}},
			`want !Sub "arn:${AWS::Partition}:events`},
		{"any source", []mutation{{condition, ""}}, "without the condition StringEquals events:source netauto"},
		{"a hard-coded bus", []mutation{{envVar, "          NET_AUTO_EVENT_BUS: default\n"}}, "NET_AUTO_EVENT_BUS: want !Ref EventBusName"},
		{"no grant", []mutation{{"            - Sid: PublishEvents\n              Effect: Allow\n              Action: events:PutEvents\n",
			"            - Sid: PublishEvents\n              Effect: Allow\n              Action: events:DescribeEventBus\n"}},
			"reads NET_AUTO_EVENT_BUS but may not events:PutEvents on the bus"},
		{"a function that sends none", []mutation{{"      Policies:\n        - DynamoDBCrudPolicy: {TableName: !Ref ConnectionsTable}\n",
			"      Policies:\n        - Statement:\n            - Sid: Stray\n              Effect: Allow\n              Action: events:PutEvents\n              Resource: \"*\"\n        - DynamoDBCrudPolicy: {TableName: !Ref ConnectionsTable}\n"}},
			`statement "Stray" lets the ws function put events, but it does not read NET_AUTO_EVENT_BUS`},
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
