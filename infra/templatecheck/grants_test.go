package templatecheck_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/netauto/netauto/infra/templatecheck"
)

// TestGrantsCheckCatches takes away, in a copy of template.yaml, one grant a function's code
// needs on AWS per case and expects the grants check to name it; the cases with an empty want
// grant the same another way, and the check must find nothing.
func TestGrantsCheckCatches(t *testing.T) {
	const stackSecret = `"arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/${AWS::StackName}/`
	cases := []struct {
		name      string
		mutations []mutation
		want      string
	}{
		{"the watchdog reads a job's items together", []mutation{{"Action: [dynamodb:GetItem, dynamodb:BatchGetItem, dynamodb:Query, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem]",
			"Action: [dynamodb:GetItem, dynamodb:Query, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem]"}},
			"WatchdogFunction.Properties.Policies: does not allow dynamodb:BatchGetItem on table JobsTable"},
		{"the executor pins learned host keys", []mutation{{"- Sid: HostKeysPin\n              Effect: Allow\n              Action: dynamodb:UpdateItem",
			"- Sid: HostKeysPin\n              Effect: Allow\n              Action: dynamodb:GetItem"}},
			"ExecutorFunction.Properties.Policies: does not allow dynamodb:UpdateItem on table DevicesTable"},
		{"the executor reads jump host credentials", []mutation{{"\n                - !Sub " + stackSecret + `jump-hosts/*"`, ""}},
			"does not allow secretsmanager:GetSecretValue on secret jump-hosts, which the executor function calls"},
		{"the api writes jump host credentials", []mutation{{stackSecret + `jump-hosts/*"` + "\n            # Device credentials", stackSecret + `jumphosts/*"` + "\n            # Device credentials"}},
			"does not allow secretsmanager:CreateSecret on secret jump-hosts, which the api function calls"},
		{"the api keeps a device secret's other half", []mutation{{"- Sid: DeviceCredentialsWrite\n              Effect: Allow\n              Action:\n                - secretsmanager:CreateSecret\n                - secretsmanager:PutSecretValue\n                - secretsmanager:GetSecretValue\n",
			"- Sid: DeviceCredentialsWrite\n              Effect: Allow\n              Action:\n                - secretsmanager:CreateSecret\n                - secretsmanager:PutSecretValue\n"}},
			"does not allow secretsmanager:GetSecretValue on secret devices, which the api function calls"},
		{"the scheduler lists a selector's devices", []mutation{{"Action: [dynamodb:GetItem, dynamodb:BatchGetItem, dynamodb:Query, dynamodb:Scan]", "Action: [dynamodb:GetItem, dynamodb:BatchGetItem, dynamodb:Query]"}},
			"SchedulerFunction.Properties.Policies: does not allow dynamodb:Scan on table DevicesTable"},
		{"the notifier tells a deleted secret from a refused read", []mutation{{"- Sid: WebhookSecretsRead\n              Effect: Allow\n              Action: [secretsmanager:GetSecretValue, secretsmanager:DescribeSecret]",
			"- Sid: WebhookSecretsRead\n              Effect: Allow\n              Action: [secretsmanager:GetSecretValue]"}},
			"NotifierFunction.Properties.Policies: does not allow secretsmanager:DescribeSecret on secret webhooks"},
		{"a grant in a Deny statement does not count", []mutation{{"- Sid: HostKeysPin\n              Effect: Allow", "- Sid: HostKeysPin\n              Effect: Deny"}},
			"does not allow dynamodb:UpdateItem on table DevicesTable"},
		{"a wildcard action counts", []mutation{{"- Sid: HostKeysPin\n              Effect: Allow\n              Action: dynamodb:UpdateItem",
			"- Sid: HostKeysPin\n              Effect: Allow\n              Action: dynamodb:Update*"}}, ""},
		{"a SAM CRUD policy template counts", []mutation{{"- Sid: HostKeysPin\n              Effect: Allow\n              Action: dynamodb:UpdateItem\n              Resource: !GetAtt DevicesTable.Arn\n",
			"- Sid: HostKeysPin\n              Effect: Allow\n              Action: dynamodb:GetItem\n              Resource: !GetAtt DevicesTable.Arn\n        - DynamoDBCrudPolicy: {TableName: !Ref DevicesTable}\n"}}, ""},
	}
	base := readTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, p := range templatecheck.Problems(check(t, apply(t, base, tc.mutations))) {
				if p.Check == templatecheck.CheckGrants {
					got = append(got, p.Error())
				}
			}
			if tc.want == "" {
				assert.Empty(t, got, "the grant is given another way")
				return
			}
			assert.Contains(t, strings.Join(got, "\n"), tc.want, "grants problems")
		})
	}
}
