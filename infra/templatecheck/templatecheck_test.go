package templatecheck_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// repoRoot is the repository root, found from this file's location.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok, "locate test file")
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func readTemplate(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "template.yaml"))
	require.NoError(t, err, "read template")
	return string(data)
}

func check(t *testing.T, src string) error {
	t.Helper()
	tpl, err := templatecheck.Parse([]byte(src))
	require.NoError(t, err, "parse template")
	return templatecheck.Check(tpl, templatecheck.Options{Root: repoRoot(t)})
}

func TestTemplate(t *testing.T) {
	err := check(t, readTemplate(t))
	problems := templatecheck.Problems(err)
	for _, p := range problems {
		assert.Fail(t, "template.yaml has a problem", p.Error())
	}
	if len(problems) == 0 {
		assert.NoError(t, err, "template.yaml")
	}
}

// mutation replaces the first occurrence of old with new in the template text.
type mutation struct{ old, new string }

func apply(t *testing.T, src string, ms []mutation) string {
	t.Helper()
	for _, m := range ms {
		require.Contains(t, src, m.old, "mutation target not in template.yaml; update the test")
		src = strings.Replace(src, m.old, m.new, 1)
	}
	return src
}

// TestCheckerCatches proves every check can fail: each case breaks a copy of template.yaml in one
// way and expects a specific problem.
func TestCheckerCatches(t *testing.T) {
	extraFunction := `  ExtraFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      CodeUri: .

  # ---- HTTP API with a JWT authorizer`
	cases := []struct {
		name      string
		mutations []mutation
		check     string
		want      string
	}{
		{"broken Ref", []mutation{{"Bucket: !Ref UiBucket", "Bucket: !Ref UiBukket"}},
			templatecheck.CheckRefs, `Ref "UiBukket" names no parameter`},
		{"broken Ref to parameter", []mutation{{"RetentionInDays: !Ref LogRetentionDays", "RetentionInDays: !Ref LogRetention"}},
			templatecheck.CheckRefs, `Ref "LogRetention"`},
		{"broken GetAtt resource", []mutation{{"!GetAtt UiBucket.RegionalDomainName", "!GetAtt UiBuckit.RegionalDomainName"}},
			templatecheck.CheckRefs, `no resource "UiBuckit"`},
		{"broken GetAtt attribute", []mutation{{"!GetAtt BulkDeadLetterQueue.QueueName", "!GetAtt BulkDeadLetterQueue.QueueNam"}},
			templatecheck.CheckRefs, `has no attribute "QueueNam"`},
		{"broken Sub variable", []mutation{{"integrations/${WsIntegration}", "integrations/${WsIntegratio}"}},
			templatecheck.CheckRefs, `Ref "WsIntegratio"`},
		{"broken Sub attribute", []mutation{{"${UiBucket.Arn}/*", "${UiBucket.Arm}/*"}},
			templatecheck.CheckRefs, `has no attribute "Arm"`},
		{"broken DependsOn", []mutation{{"DependsOn: [WsConnectRoute,", "DependsOn: [WsConnectRout,"}},
			templatecheck.CheckRefs, `no resource "WsConnectRout"`},
		{"undeclared condition", []mutation{{"Condition: AccessLogsEnabled", "Condition: AccessLogEnabled"}},
			templatecheck.CheckConditions, `condition "AccessLogEnabled" is not declared`},
		{"undeclared condition in If", []mutation{{"!If [HasAlarmTopic,", "!If [HasAlarmTopics,"}},
			templatecheck.CheckConditions, `condition "HasAlarmTopics"`},
		{"missing env var", []mutation{{"          NET_AUTO_CONNECTIONS_TABLE: !Ref ConnectionsTable\n", ""}},
			templatecheck.CheckEnv, "NET_AUTO_CONNECTIONS_TABLE is read by the api function (config.Vars) but not set"},
		{"unknown env var", []mutation{{"          NET_AUTO_SECRETS: secretsmanager\n", "          NET_AUTO_SECRETS: secretsmanager\n          NET_AUTO_BOGUS: x\n"}},
			templatecheck.CheckEnv, "the api function does not read NET_AUTO_BOGUS"},
		{"local-only webhook loopback switch", []mutation{{"          NET_AUTO_SECRETS: secretsmanager\n", "          NET_AUTO_SECRETS: secretsmanager\n          NET_AUTO_WEBHOOK_ALLOW_LOOPBACK: \"1\"\n"}},
			templatecheck.CheckEnv, "NET_AUTO_WEBHOOK_ALLOW_LOOPBACK: is for a local stack only"},
		{"env var names the wrong table", []mutation{{"NET_AUTO_JOBS_TABLE: !Ref JobsTable", "NET_AUTO_JOBS_TABLE: !Ref RunsTable"}},
			templatecheck.CheckEnv, "want !Ref JobsTable"},
		{"wrong TTL attribute", []mutation{{"TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}", "TimeToLiveSpecification: {AttributeName: ttl, Enabled: true}"}},
			templatecheck.CheckTables, `want AttributeName "expires_at"`},
		{"wrong GSI name", []mutation{{"IndexName: by_day", "IndexName: by_date"}},
			templatecheck.CheckTables, `index "by_day" is missing`},
		{"wrong GSI key", []mutation{{"{AttributeName: gsi2sk, KeyType: RANGE}", "{AttributeName: gsi1sk, KeyType: RANGE}"}},
			templatecheck.CheckTables, `RANGE key is "gsi1sk", want "gsi2sk"`},
		{"wrong GSI projection", []mutation{{"            ProjectionType: INCLUDE\n            NonKeyAttributes: [id, device_id, job_id", "            ProjectionType: KEYS_ONLY\n            NonKeyAttributes: [id, device_id, job_id"}},
			templatecheck.CheckTables, "ProjectionType is KEYS_ONLY, want INCLUDE"},
		{"GSI projects the output tail", []mutation{{"previous_run_id, cmds]", "previous_run_id, cmds, tail]"}},
			templatecheck.CheckTables, "NonKeyAttributes: are"},
		{"GSI lacks an attribute the purge reads", []mutation{{"NonKeyAttributes: [id, device_id, job_id, status, created_at, bytes, chunks, tail_size]", "NonKeyAttributes: [id, device_id, job_id, status, created_at, chunks, tail_size]"}},
			templatecheck.CheckTables, "by_day.Projection.NonKeyAttributes"},
		{"stream view type", []mutation{{"StreamViewType: OLD_IMAGE", "StreamViewType: KEYS_ONLY"}},
			templatecheck.CheckTables, "StreamViewType is KEYS_ONLY"},
		{"executor concurrency default", []mutation{{"  ExecutorMaxConcurrency:\n    Type: Number\n    Default: 20", "  ExecutorMaxConcurrency:\n    Type: Number\n    Default: 5"}},
			templatecheck.CheckQueues, "want resources.ExecutorMaxConcurrency (20)"},
		{"executor GOGC", []mutation{{`GOGC: "400"`, `GOGC: "100"`}},
			templatecheck.CheckEnv, `GOGC: is "100", want 400 (resources.ExecutorGCPercent)`},
		{"wrong visibility timeout", []mutation{{"VisibilityTimeout: 1800 # 6 x ExecutorTimeoutSeconds (300), as", "VisibilityTimeout: 120 # as"}},
			templatecheck.CheckQueues, "VisibilityTimeout: is 120, want 1800"},
		{"wrong maxReceiveCount", []mutation{{"maxReceiveCount: 5", "maxReceiveCount: 3"}},
			templatecheck.CheckQueues, "is 3, want 5"},
		{"wrong redrive target", []mutation{{"deadLetterTargetArn: !GetAtt BulkDeadLetterQueue.Arn", "deadLetterTargetArn: !GetAtt BulkQueue.Arn"}},
			templatecheck.CheckQueues, "want !GetAtt BulkDeadLetterQueue.Arn"},
		{"missing ReportBatchItemFailures", []mutation{{"            FunctionResponseTypes: [ReportBatchItemFailures]\n            ScalingConfig:", "            ScalingConfig:"}},
			templatecheck.CheckEvents, "Events.Bulk: SQS event source must set FunctionResponseTypes [ReportBatchItemFailures]"},
		{"unknown build target", []mutation{{"  # ---- HTTP API with a JWT authorizer", extraFunction}},
			templatecheck.CheckBuild, "has no build-ExtraFunction target"},
		{"CodeUri without Makefile", []mutation{{"      CodeUri: .\n", "      CodeUri: infra\n"}},
			templatecheck.CheckBuild, `CodeUri "infra" has no Makefile`},
		{"build method", []mutation{{"BuildMethod: makefile", "BuildMethod: go1.x"}},
			templatecheck.CheckBuild, `is "go1.x", want makefile`},
		{"policy names a table the function does not read", []mutation{{"        - DynamoDBReadPolicy: {TableName: !Ref JobsTable}\n", "        - DynamoDBReadPolicy: {TableName: !Ref JobsTable}\n        - DynamoDBReadPolicy: {TableName: !Ref DevicesTable}\n"}},
			templatecheck.CheckPolicies, "grants access to table DevicesTable, but the ws function does not read NET_AUTO_DEVICES_TABLE"},
		{"policy names a queue the function does not read", []mutation{{"        - DynamoDBReadPolicy: {TableName: !Ref JobsTable}\n", "        - DynamoDBReadPolicy: {TableName: !Ref JobsTable}\n        - SQSSendMessagePolicy: {QueueName: !GetAtt BulkQueue.QueueName}\n"}},
			templatecheck.CheckPolicies, "grants access to queue BulkQueue, but the ws function does not read NET_AUTO_BULK_QUEUE_URL"},
		{"wildcard resource", []mutation{{`Resource: !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/${AWS::StackName}/devices/*"`, `Resource: "*"`}},
			templatecheck.CheckPolicies, `secretsmanager:CreateSecret is granted on Resource "*"`},
		{"misspelt property", []mutation{{"MessageRetentionPeriod: 345600", "MessageRetentionPeriode: 345600"}},
			templatecheck.CheckSchema, `unknown field "MessageRetentionPeriode"`},
		{"misspelt nested property", []mutation{{"DefaultRootObject: index.html", "DefaultRootObjekt: index.html"}},
			templatecheck.CheckSchema, `unknown field "DefaultRootObjekt"`},
		{"misspelt resource type", []mutation{{"Type: AWS::CloudWatch::Alarm", "Type: AWS::CloudWatch::Alarms"}},
			templatecheck.CheckSchema, `unknown resource type "AWS::CloudWatch::Alarms"`},
		{"misspelt SAM function property", []mutation{{"      LoggingConfig:\n        LogGroup: !Ref WsLogGroup", "      LogingConfig:\n        LogGroup: !Ref WsLogGroup"}},
			templatecheck.CheckSchema, `has no property "LogingConfig"`},
	}
	base := readTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, apply(t, base, tc.mutations))
			require.Error(t, err, "checker passed a template broken by %q", tc.name)
			found := false
			for _, p := range templatecheck.Problems(err) {
				found = found || p.Check == tc.check && strings.Contains(p.Error(), tc.want)
			}
			assert.True(t, found, "no %s problem containing %q; got:\n%v", tc.check, tc.want, err)
		})
	}
}

func TestParseShortForms(t *testing.T) {
	src := `
Resources:
  A:
    Type: AWS::SQS::Queue
    Properties:
      X: !Ref B
      Y: !GetAtt B.Endpoint.Address
      Z: !Sub ["${V}", {V: !Ref AWS::Region}]
      W: !If [C, !Join [",", [a, b]], !Select [0, !Split [",", "x,y"]]]
`
	tpl, err := templatecheck.Parse([]byte(src))
	require.NoError(t, err, "parse")
	p := tpl.Resources["A"].Properties
	tests := []struct {
		name string
		got  any
		want string
	}{
		{"Ref", p["X"], "map[Ref:B]"},
		{"GetAtt with dotted attribute", p["Y"], "map[Fn::GetAtt:[B Endpoint.Address]]"},
		{"Sub with variables", p["Z"], "map[Fn::Sub:[${V} map[V:map[Ref:AWS::Region]]]]"},
		{"nested If/Join/Select/Split", p["W"], "map[Fn::If:[C map[Fn::Join:[, [a b]]] map[Fn::Select:[0 map[Fn::Split:[, x,y]]]]]]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fmt.Sprint(tc.got), "parsed %s", tc.name)
		})
	}
	t.Run("unknown tag", func(t *testing.T) {
		_, err := templatecheck.Parse([]byte("A: !Reff B\n"))
		assert.ErrorContains(t, err, "unknown tag !Reff", "want an error naming !Reff")
	})
}
