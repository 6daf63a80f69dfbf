package templatecheck_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// TestDeployChecksCatch breaks a copy of template.yaml in one way per case and expects the named
// check to report it: routes and their authorizer, the WebSocket stage, Retain on stateful
// resources, stream failure destinations, and stack-scoped secrets.
func TestDeployChecksCatch(t *testing.T) {
	const (
		apiSecrets      = `secret:netauto/${AWS::StackName}/devices/*"` + "\n      Events:"
		profileSecrets  = `- !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/${AWS::StackName}/profiles/*"`
		profileWrite    = `Resource: !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/${AWS::StackName}/profiles/*"`
		patchRoute      = "            Method: PATCH\n            PayloadFormatVersion: \"2.0\"\n"
		deleteRoute     = "        ProxyDelete:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref HttpApi\n            Path: /v1/{proxy+}\n            Method: DELETE\n            PayloadFormatVersion: \"2.0\"\n"
		optionsRoute    = "        ProxyOptions:\n          Type: HttpApi\n          Properties:\n            ApiId: !Ref HttpApi\n            Path: /v1/{proxy+}\n            Method: OPTIONS\n            PayloadFormatVersion: \"2.0\"\n            Auth:\n              Authorizer: NONE\n"
		streamFailures  = "            DestinationConfig:\n              OnFailure:\n                Type: SQS\n                Destination: !GetAtt StreamFailureQueue.Arn\n"
		runsTableRetain = "  RunsTable:\n    Type: AWS::DynamoDB::Table\n    DeletionPolicy: Retain\n"
	)
	cases := []struct {
		name      string
		mutations []mutation
		check     string
		want      string
	}{
		// routes
		{"a route without the authorizer", []mutation{{patchRoute, patchRoute + "            Auth:\n              Authorizer: NONE\n"}},
			templatecheck.CheckRoutes, "route PATCH /v1/{proxy+} has no authorizer; only GET /v1/health and GET /v1/openapi.json are public"},
		{"an ANY route", []mutation{{"            Method: GET\n            PayloadFormatVersion: \"2.0\"\n        ProxyPost:", "            Method: ANY\n            PayloadFormatVersion: \"2.0\"\n        ProxyPost:"}},
			templatecheck.CheckRoutes, "route ANY /v1/{proxy+} matches CORS preflights (OPTIONS)"},
		{"an OPTIONS route, even without authorizer", []mutation{{deleteRoute, deleteRoute + optionsRoute}},
			templatecheck.CheckRoutes, "route OPTIONS /v1/{proxy+} matches CORS preflights (OPTIONS)"},
		{"a method the API allows has no route", []mutation{{deleteRoute, ""}},
			templatecheck.CheckRoutes, "no authorized route DELETE /v1/{proxy+}"},
		{"no default authorizer", []mutation{{"DefaultAuthorizer: Jwt", "DefaultAuthorizer: NONE"}},
			templatecheck.CheckRoutes, "DefaultAuthorizer: is NONE, want the JWT authorizer"},
		{"an undeclared authorizer", []mutation{{patchRoute, patchRoute + "            Auth:\n              Authorizer: Jwtt\n"}},
			templatecheck.CheckRoutes, `names authorizer "Jwtt", which HttpApi.Auth.Authorizers does not declare`},
		{"a public route that is not health or openapi", []mutation{{"            Path: /v1/openapi.json\n            Method: GET\n", "            Path: /v1/devices\n            Method: GET\n"}},
			templatecheck.CheckRoutes, "route GET /v1/devices has no authorizer"},
		// stages
		{"stage with DeploymentId and AutoDeploy", []mutation{{"      StageName: v1\n      AutoDeploy: true\n", "      StageName: v1\n      DeploymentId: !Ref WsConnectRoute\n      AutoDeploy: true\n"}},
			templatecheck.CheckStages, "sets both DeploymentId and AutoDeploy"},
		// retain
		{"table without DeletionPolicy", []mutation{{runsTableRetain, "  RunsTable:\n    Type: AWS::DynamoDB::Table\n"}},
			templatecheck.CheckRetain, "Resources.RunsTable.DeletionPolicy: is <nil>, want Retain"},
		{"table deleted with the stack", []mutation{{runsTableRetain, "  RunsTable:\n    Type: AWS::DynamoDB::Table\n    DeletionPolicy: Delete\n"}},
			templatecheck.CheckRetain, "Resources.RunsTable.DeletionPolicy: is Delete, want Retain"},
		{"queue replaced without Retain", []mutation{{"  BulkQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n    UpdateReplacePolicy: Retain\n", "  BulkQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n"}},
			templatecheck.CheckRetain, "Resources.BulkQueue.UpdateReplacePolicy: is <nil>, want Retain"},
		{"user pool without Retain", []mutation{{"    Type: AWS::Cognito::UserPool\n    DeletionPolicy: Retain\n", "    Type: AWS::Cognito::UserPool\n"}},
			templatecheck.CheckRetain, "Resources.UserPool.DeletionPolicy"},
		{"log group without Retain", []mutation{{"  ExecutorLogGroup:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain\n", "  ExecutorLogGroup:\n    Type: AWS::Logs::LogGroup\n"}},
			templatecheck.CheckRetain, "Resources.ExecutorLogGroup.DeletionPolicy"},
		{"stream failure queue without Retain", []mutation{{"  StreamFailureQueue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n", "  StreamFailureQueue:\n    Type: AWS::SQS::Queue\n"}},
			templatecheck.CheckRetain, "Resources.StreamFailureQueue.DeletionPolicy"},
		// streams
		{"stream without on-failure destination", []mutation{{streamFailures, ""}},
			templatecheck.CheckStreams, "Events.TtlDeletions.DestinationConfig: a stream event source needs DestinationConfig.OnFailure.Destination"},
		{"on-failure destination without Type", []mutation{{"                Type: SQS\n                Destination: !GetAtt StreamFailureQueue.Arn\n", "                Destination: !GetAtt StreamFailureQueue.Arn\n"}},
			templatecheck.CheckStreams, "Type is missing: SAM grants the function permission"},
		{"unbounded retries", []mutation{{"            MaximumRetryAttempts: 10\n", ""}},
			templatecheck.CheckStreams, "MaximumRetryAttempts: is <nil>, want a bound"},
		{"stream failures without an alarm", []mutation{{"Value: !GetAtt StreamFailureQueue.QueueName", "Value: !GetAtt BulkQueue.QueueName"}},
			templatecheck.CheckStreams, "no AWS::CloudWatch::Alarm watches queue StreamFailureQueue"},
		{"a queue that is no stream's destination must be in resources", []mutation{{streamFailures, ""}},
			templatecheck.CheckQueues, "Resources.StreamFailureQueue: queue is not declared in internal/resources.Queues()"},
		// secrets
		{"write access to every stack's secrets", []mutation{{apiSecrets, `secret:netauto/devices/*"` + "\n      Events:"}},
			templatecheck.CheckSecrets, `statement "DeviceCredentialsWrite" grants Secrets Manager actions on map[Fn::Sub:arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/devices/*]`},
		{"read access to every stack's profiles", []mutation{{profileSecrets, `- !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/profiles/*"`}},
			templatecheck.CheckSecrets, `statement "DeviceCredentialsRead" grants Secrets Manager actions on`},
		{"write access to every stack's profiles", []mutation{{profileWrite, `Resource: !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/profiles/*"`}},
			templatecheck.CheckSecrets, `statement "ProfileSecretsWrite" grants Secrets Manager actions on`},
		{"access to a stack whose name extends this one", []mutation{{apiSecrets, `secret:netauto/${AWS::StackName}-prod/devices/*"` + "\n      Events:"}},
			templatecheck.CheckSecrets, `want !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/${AWS::StackName}/..."`},
		{"any secret", []mutation{{`Resource: !Sub "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:netauto/${AWS::StackName}/devices/*"`, `Resource: "*"`}},
			templatecheck.CheckSecrets, `grants Secrets Manager actions on *`},
		{"another action beside the batch read on any secret", []mutation{{"Action: secretsmanager:BatchGetSecretValue", "Action: [secretsmanager:BatchGetSecretValue, secretsmanager:GetSecretValue]"}},
			templatecheck.CheckSecrets, `statement "DeviceCredentialsBatchRead" grants Secrets Manager actions on *`},
		{"prefix shared by every stack", []mutation{{`NET_AUTO_SECRETS_PREFIX: !Sub "netauto/${AWS::StackName}/"`, `NET_AUTO_SECRETS_PREFIX: netauto/`}},
			templatecheck.CheckSecrets, `NET_AUTO_SECRETS_PREFIX: is netauto/, want !Sub "netauto/${AWS::StackName}/"`},
		{"prefix without its slash", []mutation{{`NET_AUTO_SECRETS_PREFIX: !Sub "netauto/${AWS::StackName}/"`, `NET_AUTO_SECRETS_PREFIX: !Sub "netauto/${AWS::StackName}"`}},
			templatecheck.CheckSecrets, "a prefix without the stack name is shared"},
		{"no prefix", []mutation{{"          NET_AUTO_SECRETS_PREFIX: !Sub \"netauto/${AWS::StackName}/\"\n", ""}},
			templatecheck.CheckSecrets, `statement "DeviceCredentialsWrite" grants Secrets Manager actions, but the function sets no stack-scoped NET_AUTO_SECRETS_PREFIX`},
	}
	base := readTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := check(t, apply(t, base, tc.mutations))
			require.Error(t, err, "the checks passed a template broken by %q", tc.name)
			var got []string
			for _, p := range templatecheck.Problems(err) {
				if p.Check == tc.check {
					got = append(got, p.Error())
				}
			}
			require.NotEmpty(t, got, "no %s problem; got:\n%v", tc.check, err)
			assert.Contains(t, strings.Join(got, "\n"), tc.want)
		})
	}
}

// TestStagesAllowEither checks that the stage check refuses only the combination.
func TestStagesAllowEither(t *testing.T) {
	const tpl = `
Resources:
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties:
      ApiId: x
      StageName: v1
%s`
	cases := []struct {
		name, props string
		wantProblem bool
	}{
		{"AutoDeploy alone", "      AutoDeploy: true\n", false},
		{"DeploymentId alone", "      DeploymentId: d\n", false},
		{"DeploymentId with AutoDeploy false", "      DeploymentId: d\n      AutoDeploy: false\n", false},
		{"both", "      DeploymentId: d\n      AutoDeploy: true\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := templatecheck.Parse([]byte(strings.Replace(tpl, "%s", tc.props, 1)))
			require.NoError(t, err)
			var got []templatecheck.Problem
			for _, p := range templatecheck.Problems(templatecheck.Check(parsed, templatecheck.Options{Root: repoRoot(t)})) {
				if p.Check == templatecheck.CheckStages {
					got = append(got, p)
				}
			}
			assert.Equal(t, tc.wantProblem, len(got) == 1, "problems: %v", got)
		})
	}
}
