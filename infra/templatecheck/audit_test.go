package templatecheck_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// TestAuditTableIsAppendOnly parses template.yaml and fails if any function may update or delete
// audit entries: each case grants that in a copy of the template one way (by name, by wildcard
// action or resource, by a SAM policy template, by a managed policy, by an IAM resource) and
// expects the audit check to refuse it. The template itself passes (TestTemplate).
func TestAuditTableIsAppendOnly(t *testing.T) {
	const (
		apiAppend    = "            - Sid: AuditAppend\n              Effect: Allow\n              Action: dynamodb:PutItem\n              Resource: !GetAtt AuditTable.Arn\n            # GET /v1/audit"
		execPolicies = "      Policies:\n        # The audit trail is append-only: put entries, never update or delete one.\n        - Statement:\n            - Sid: AuditAppend\n              Effect: Allow\n              Action: dynamodb:PutItem\n              Resource: !GetAtt AuditTable.Arn\n        - DynamoDBReadPolicy: {TableName: !Ref DevicesTable}"
		watchdogJobs = "Action: [dynamodb:GetItem, dynamodb:BatchGetItem, dynamodb:Query, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem]\n              Resource: !GetAtt JobsTable.Arn"
	)
	grant := func(action, resource string) mutation {
		return mutation{apiAppend, "            - Sid: AuditAppend\n              Effect: Allow\n              Action: " + action + "\n              Resource: " + resource + "\n            # GET /v1/audit"}
	}
	execExtra := func(policy string) mutation {
		return mutation{execPolicies, execPolicies + "\n        - " + policy}
	}
	cases := []struct {
		name     string
		mutation mutation
		want     string
	}{
		{"UpdateItem by name", grant("[dynamodb:PutItem, dynamodb:UpdateItem]", "!GetAtt AuditTable.Arn"), "grants dynamodb:UpdateItem on"},
		{"DeleteItem by name", grant("[dynamodb:PutItem, dynamodb:DeleteItem]", "!GetAtt AuditTable.Arn"), "grants dynamodb:DeleteItem on"},
		{"BatchWriteItem by name", grant("[dynamodb:PutItem, dynamodb:BatchWriteItem]", "!GetAtt AuditTable.Arn"), "grants dynamodb:BatchWriteItem on"},
		{"dynamodb:* on the table", grant("dynamodb:*", "!GetAtt AuditTable.Arn"), "grants dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem"},
		{"a *Item wildcard", grant("dynamodb:*Item", "!GetAtt AuditTable.Arn"), "grants dynamodb:UpdateItem, dynamodb:DeleteItem"},
		{"upper case action", grant("DynamoDB:deleteitem", "!GetAtt AuditTable.Arn"), "grants dynamodb:DeleteItem on"},
		{"* on the table", grant(`"*"`, "!GetAtt AuditTable.Arn"), "grants dynamodb:UpdateItem"},
		{"by Ref", grant("dynamodb:UpdateItem", "!Ref AuditTable"), "grants dynamodb:UpdateItem on"},
		{"by Sub", grant("dynamodb:DeleteItem", `!Sub "${AuditTable.Arn}"`), "grants dynamodb:DeleteItem on"},
		{"every table by ARN", grant("dynamodb:DeleteItem", `!Sub "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*"`), "which may be the audit table"},
		{"every resource", grant("dynamodb:DeleteItem", `"*"`), "grants dynamodb:DeleteItem on *"},
		{"NotAction", mutation{apiAppend, "            - Sid: AuditAppend\n              Effect: Allow\n              NotAction: dynamodb:Scan\n              Resource: !GetAtt AuditTable.Arn\n            # GET /v1/audit"}, "grants dynamodb:UpdateItem"},
		{"another function's wildcard on every table", mutation{watchdogJobs, "Action: [dynamodb:GetItem, dynamodb:BatchGetItem, dynamodb:Query, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem, dynamodb:BatchWriteItem]\n              Resource: \"arn:aws:dynamodb:*:*:table/*\""}, "WatchdogFunction"},
		{"CRUD policy template", execExtra("DynamoDBCrudPolicy: {TableName: !Ref AuditTable}"), "SAM policy DynamoDBCrudPolicy"},
		{"write policy template", execExtra("DynamoDBWritePolicy: {TableName: !Ref AuditTable}"), "SAM policy DynamoDBWritePolicy"},
		{"CRUD policy template on any table", execExtra(`DynamoDBCrudPolicy: {TableName: "*"}`), "SAM policy DynamoDBCrudPolicy"},
		{"managed policy", execExtra("arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"), `managed policy "arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess"`},
		{"an IAM policy resource", mutation{"  # ---- SQS: mirrors internal/resources.Queues() ", "  ExtraAuditPolicy:\n    Type: AWS::IAM::Policy\n    Properties:\n      PolicyName: extra\n      Roles: [!Ref ExecutorFunctionRole]\n      PolicyDocument:\n        Statement:\n          - Effect: Allow\n            Action: dynamodb:UpdateItem\n            Resource: !GetAtt AuditTable.Arn\n\n  # ---- SQS: mirrors internal/resources.Queues() "}, "Resources.ExtraAuditPolicy"},
		{"no PutItem for a function that records", mutation{apiAppend, "            - Sid: AuditAppend\n              Effect: Allow\n              Action: dynamodb:GetItem\n              Resource: !GetAtt AuditTable.Arn\n            # GET /v1/audit"}, "not granted dynamodb:PutItem"},
		{"no Query on the indexes for the api", mutation{`                - !Sub "${AuditTable.Arn}/index/*"`, ""}, "not granted dynamodb:Query"},
	}
	base := readTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, apply(t, base, []mutation{tc.mutation}))
			require.Error(t, err, "the checks passed a template broken by %q", tc.name)
			var got []string
			for _, p := range templatecheck.Problems(err) {
				if p.Check == templatecheck.CheckAudit {
					got = append(got, p.Error())
				}
			}
			require.NotEmpty(t, got, "no audit problem; got:\n%v", err)
			assert.Contains(t, strings.Join(got, "\n"), tc.want)
		})
	}
}
