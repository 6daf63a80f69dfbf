package templatecheck_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/templatecheck"
)

// corsProblems returns the CORS check's problems for src.
func corsProblems(t *testing.T, src string) []templatecheck.Problem {
	t.Helper()
	var out []templatecheck.Problem
	for _, p := range templatecheck.Problems(check(t, src)) {
		if p.Check == templatecheck.CheckCORS {
			out = append(out, p)
		}
	}
	return out
}

func TestTemplateCORS(t *testing.T) {
	assert.Empty(t, corsProblems(t, readTemplate(t)), "template.yaml's HttpApi CORS configuration")
}

// TestCORSCheckCatches breaks a copy of template.yaml's CORS configuration in one way per case
// and expects the CORS check to name it (an empty want: the change means the same, and the check
// must find what it finds in template.yaml).
func TestCORSCheckCatches(t *testing.T) {
	cases := []struct {
		name      string
		mutations []mutation
		want      string
	}{
		{"a header the UI sends is not allowed", []mutation{{"AllowHeaders: [authorization, content-type, if-match]", "AllowHeaders: [authorization, if-match]"}},
			"AllowHeaders: is [authorization if-match], want [authorization content-type if-match]"},
		{"an extra allowed header", []mutation{{"AllowHeaders: [authorization, content-type, if-match]", "AllowHeaders: [authorization, content-type, if-match, x-debug]"}},
			"not in the data [x-debug]"},
		{"headers compare without case", []mutation{{"AllowHeaders: [authorization, content-type, if-match]", "AllowHeaders: [Authorization, Content-Type, If-Match]"}},
			""},
		{"a method the UI uses is not allowed", []mutation{{"AllowMethods: [GET, POST, PUT, PATCH, DELETE, OPTIONS]", "AllowMethods: [GET, POST, PATCH, DELETE, OPTIONS]"}},
			"missing [PUT]"},
		{"a header the UI reads is not exposed", []mutation{{"ExposeHeaders: [location, etag, x-output-truncated, x-output-bytes, x-run-status]", "ExposeHeaders: [location, etag, x-output-bytes, x-run-status]"}},
			"missing [x-output-truncated]"},
		{"max age", []mutation{{"        MaxAge: 600\n", "        MaxAge: 60\n"}},
			"MaxAge: is 60, want 600"},
		{"any origin", []mutation{{`          - !Sub "https://${UiDistribution.DomainName}"`, `          - "*"`}},
			"[0] is *, want the UI's origin"},
		{"an origin that is not a distribution", []mutation{{`          - !Sub "https://${UiDistribution.DomainName}"`, `          - !Sub "https://${UiBucket.DomainName}"`}},
			`names "UiBucket", which is not a CloudFront distribution`},
		{"plain http origin", []mutation{{`          - !Sub "https://${UiDistribution.DomainName}"`, `          - !Sub "http://${UiDistribution.DomainName}"`}},
			"want the UI's origin"},
		{"credentials", []mutation{{"        MaxAge: 600\n", "        MaxAge: 600\n        AllowCredentials: true\n"}},
			"AllowCredentials: is true"},
		{"misspelt property", []mutation{{"        MaxAge: 600\n", "        MaxAges: 600\n"}},
			"MaxAges: is not a CorsConfiguration property"},
		{"no CORS configuration", []mutation{{"      CorsConfiguration:\n", "      CorsConfigurationOff:\n"}},
			"CorsConfiguration: is <nil>"},
	}
	base := readTemplate(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := apply(t, base, tc.mutations)
			if tc.want == "" {
				assert.Equal(t, corsProblems(t, base), corsProblems(t, src), "a template that means the same must check the same")
				return
			}
			ps := corsProblems(t, src)
			require.NotEmpty(t, ps, "the CORS check passed a template broken by %q", tc.name)
			var msgs []string
			for _, p := range ps {
				msgs = append(msgs, p.Error())
			}
			assert.Contains(t, strings.Join(msgs, "\n"), tc.want)
		})
	}
}

// TestPreflightRoutes checks which routes keep a browser's preflight from API Gateway's own
// answer: any route of the API that matches OPTIONS, with or without an authorizer.
func TestPreflightRoutes(t *testing.T) {
	const tpl = `
Resources:
  HttpApi:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
  OtherApi:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Route:
          Type: HttpApi
          Properties:
            ApiId: !Ref %s
            Path: %s
            Method: %s
%s`
	noAuth := "            Auth:\n              Authorizer: NONE\n"
	cases := []struct {
		name, api, path, method, auth string
		wantProblem                   bool
	}{
		{name: "ANY behind the default authorizer", api: "HttpApi", path: "/v1/{proxy+}", method: "ANY", wantProblem: true},
		{name: "any in lower case", api: "HttpApi", path: "/v1/{proxy+}", method: "any", wantProblem: true},
		{name: "OPTIONS behind the default authorizer", api: "HttpApi", path: "/v1/{proxy+}", method: "OPTIONS", wantProblem: true},
		{name: "$default behind the default authorizer", api: "HttpApi", path: "$default", method: "GET", wantProblem: true},
		{name: "ANY without an authorizer", api: "HttpApi", path: "/v1/{proxy+}", method: "ANY", auth: noAuth, wantProblem: true},
		{name: "one method without an authorizer", api: "HttpApi", path: "/v1/{proxy+}", method: "GET", auth: noAuth},
		{name: "one method", api: "HttpApi", path: "/v1/{proxy+}", method: "PATCH"},
		{name: "another API", api: "OtherApi", path: "/v1/{proxy+}", method: "ANY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parsed, err := templatecheck.Parse([]byte(fmt.Sprintf(tpl, tc.api, tc.path, tc.method, tc.auth)))
			require.NoError(t, err)
			var routes []string
			for _, p := range templatecheck.Problems(templatecheck.Check(parsed, templatecheck.Options{Root: repoRoot(t)})) {
				if p.Check == templatecheck.CheckRoutes && p.Path == "Resources.Fn.Properties.Events.Route" && strings.Contains(p.Msg, "CORS preflights") {
					routes = append(routes, p.Msg)
				}
			}
			if !tc.wantProblem {
				assert.Empty(t, routes)
				return
			}
			require.Len(t, routes, 1)
			assert.Contains(t, routes[0], "matches CORS preflights (OPTIONS)")
		})
	}
}
