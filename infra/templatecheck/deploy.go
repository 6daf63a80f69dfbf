package templatecheck

// Checks that keep the stack deployable and its data safe: who may call which HTTP route, how
// the WebSocket stage deploys, what CloudFormation keeps when a resource is deleted or replaced,
// where a stream's failed records go, and which secrets a function may touch.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/resources"
)

// Names of the checks in this file.
const (
	CheckRoutes  = "routes"
	CheckStages  = "stages"
	CheckRetain  = "retain"
	CheckStreams = "streams"
	CheckSecrets = "secrets"
)

// ---- routes -----------------------------------------------------------------------------------

// PublicRoutes are the HTTP API routes callers reach without a token; every other route has the
// authorizer.
var PublicRoutes = []string{"GET /v1/health", "GET /v1/openapi.json"}

// ProxyPath is the HTTP API path that carries every authenticated route to the api function.
const ProxyPath = "/v1/{proxy+}"

// httpRoute is one HttpApi event of a function.
type httpRoute struct {
	path       string // where the event is, for problems
	method     string // upper case
	route      string // the Path property
	authorizer string // the effective authorizer; "" or "NONE" for none
}

func (r httpRoute) key() string { return r.method + " " + r.route }

// httpRoutes lists the HttpApi events on the API apiID, with their effective authorizer.
func httpRoutes(t *Template, apiID string) []httpRoute {
	defaultAuth, _ := asMap(t.Resources[apiID].Properties["Auth"])["DefaultAuthorizer"].(string)
	var out []httpRoute
	for _, fid := range functionIDs(t) {
		events := asMap(t.Resources[fid].Properties["Events"])
		for _, name := range sortedKeys(events) {
			e := asMap(events[name])
			p := asMap(e["Properties"])
			if e["Type"] != "HttpApi" {
				continue
			}
			if fn, arg, _ := intrinsic(p["ApiId"]); fn != "Ref" || arg != apiID {
				continue
			}
			r := httpRoute{path: "Resources." + fid + ".Properties.Events." + name, authorizer: defaultAuth}
			r.method, _ = p["Method"].(string)
			r.method = strings.ToUpper(r.method)
			r.route, _ = p["Path"].(string)
			if a, ok := asMap(p["Auth"])["Authorizer"].(string); ok {
				r.authorizer = a
			}
			out = append(out, r)
		}
	}
	return out
}

// checkRoutes wants the authorizer on every route but PublicRoutes, an authorized route on
// ProxyPath for each method the API allows (resources.HTTPAPICORS, OPTIONS aside), and no route that matches
// OPTIONS. With no such route API Gateway answers a browser's CORS preflight itself from the
// CorsConfiguration; a route matching OPTIONS hands the preflight (which carries no token) to its
// authorizer, which refuses it, or to the api function, which has no OPTIONS handler; so does the
// $default route, which matches every method.
func checkRoutes(t *Template) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckRoutes, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	apiID := resources.HTTPAPI
	api, ok := t.Resources[apiID]
	if !ok || api.Type != "AWS::Serverless::HttpApi" {
		bad("Resources."+apiID, "the template has no AWS::Serverless::HttpApi %s", apiID)
		return ps
	}
	auth := asMap(api.Properties["Auth"])
	authorizers := asMap(auth["Authorizers"])
	if d, _ := auth["DefaultAuthorizer"].(string); d == "" || d == "NONE" {
		bad("Resources."+apiID+".Properties.Auth.DefaultAuthorizer", "is %v, want the JWT authorizer: a route that forgets Auth must not be public", auth["DefaultAuthorizer"])
	}
	authorized := map[string]bool{}
	for _, r := range httpRoutes(t, apiID) {
		public := r.authorizer == "" || r.authorizer == "NONE"
		switch {
		case r.method == "ANY" || r.method == "OPTIONS" || r.route == "$default":
			bad(r.path, "route %s matches CORS preflights (OPTIONS), which then reach its authorizer or the function instead of API Gateway's CORS answer; declare one route per method (%s)", r.key(), strings.Join(apiMethods(), ", "))
		case public && !slices.Contains(PublicRoutes, r.key()):
			bad(r.path, "route %s has no authorizer; only %s are public", r.key(), strings.Join(PublicRoutes, " and "))
		case !public:
			if _, ok := authorizers[r.authorizer]; !ok {
				bad(r.path, "route %s names authorizer %q, which HttpApi.Auth.Authorizers does not declare", r.key(), r.authorizer)
			}
			authorized[r.key()] = true
		}
	}
	for _, m := range apiMethods() {
		if !authorized[m+" "+ProxyPath] {
			bad("Resources."+apiID, "no authorized route %s %s: the API allows %s (resources.HTTPAPICORS), which API Gateway would answer 404", m, ProxyPath, m)
		}
	}
	return ps
}

// ---- stages -----------------------------------------------------------------------------------

// checkStages refuses an API Gateway v2 stage with both DeploymentId and AutoDeploy: the stage's
// deployment is then managed twice, and CloudFormation updates of it fail.
func checkStages(t *Template) []Problem {
	var ps []Problem
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if r.Type != "AWS::ApiGatewayV2::Stage" {
			continue
		}
		_, hasDeployment := r.Properties["DeploymentId"]
		auto, hasAuto := r.Properties["AutoDeploy"]
		if hasDeployment && hasAuto && auto != false {
			ps = append(ps, Problem{Check: CheckStages, Path: "Resources." + id + ".Properties",
				Msg: "sets both DeploymentId and AutoDeploy; keep AutoDeploy and depend on the routes instead"})
		}
	}
	return ps
}

// ---- retain -----------------------------------------------------------------------------------

// StatefulTypes are the resource types that hold data CloudFormation must keep when it deletes
// or replaces the resource (stack deletion, a rename, a replacing update).
var StatefulTypes = []string{
	"AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable", "AWS::SQS::Queue",
	"AWS::Cognito::UserPool", "AWS::Logs::LogGroup",
}

func checkRetain(t *Template) []Problem {
	var ps []Problem
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if !slices.Contains(StatefulTypes, r.Type) {
			continue
		}
		for _, attr := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if v := r.Raw[attr]; v != "Retain" {
				ps = append(ps, Problem{Check: CheckRetain, Path: "Resources." + id + "." + attr,
					Msg: fmt.Sprintf("is %v, want Retain: %s holds data", v, r.Type)})
			}
		}
	}
	return ps
}

// ---- streams ----------------------------------------------------------------------------------

// streamSources returns the stream event sources of the template by path: SAM DynamoDB and
// Kinesis events, and event source mappings on a stream ARN.
func streamSources(t *Template) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		switch r.Type {
		case "AWS::Serverless::Function":
			events := asMap(r.Properties["Events"])
			for _, name := range sortedKeys(events) {
				e := asMap(events[name])
				if e["Type"] == "DynamoDB" || e["Type"] == "Kinesis" {
					out["Resources."+id+".Properties.Events."+name] = asMap(e["Properties"])
				}
			}
		case "AWS::Lambda::EventSourceMapping":
			if fn, arg, _ := intrinsic(r.Properties["EventSourceArn"]); fn == "Fn::GetAtt" && slices.Contains(toStrings(arg), "StreamArn") {
				out["Resources."+id] = r.Properties
			}
		}
	}
	return out
}

// onFailureQueue returns the logical ID of the queue an event source's OnFailure destination
// names with !GetAtt <Queue>.Arn, if it does.
func onFailureQueue(t *Template, props map[string]any) (string, bool) {
	dest := asMap(asMap(props["DestinationConfig"])["OnFailure"])["Destination"]
	fn, arg, _ := intrinsic(dest)
	s := toStrings(arg)
	if fn != "Fn::GetAtt" || len(s) != 2 || s[1] != "Arn" || t.Resources[s[0]].Type != "AWS::SQS::Queue" {
		return "", false
	}
	return s[0], true
}

// streamFailureQueues are the queues that are on-failure destinations of stream event sources.
func streamFailureQueues(t *Template) map[string]bool {
	out := map[string]bool{}
	for _, props := range streamSources(t) {
		if q, ok := onFailureQueue(t, props); ok {
			out[q] = true
		}
	}
	return out
}

// checkStreams wants every stream event source to give up on a failing batch after a bounded
// number of retries and to send what it gives up on to an on-failure destination; a queue
// destination must have an alarm. Without them a poison record blocks its shard until it expires
// (24 hours) and is then dropped without a trace.
func checkStreams(t *Template) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckStreams, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	sources := streamSources(t)
	for _, path := range sortedKeys(sources) {
		props := sources[path]
		sam := strings.Contains(path, ".Events.")
		onFailure := asMap(asMap(props["DestinationConfig"])["OnFailure"])
		if onFailure["Destination"] == nil {
			bad(path+".DestinationConfig", "a stream event source needs DestinationConfig.OnFailure.Destination (an SQS queue): records that fail every retry are dropped otherwise")
		} else if typ, _ := onFailure["Type"].(string); sam && typ == "" {
			bad(path+".DestinationConfig.OnFailure", "Type is missing: SAM grants the function permission to send to the destination only when Type (SQS, SNS or S3) is set")
		}
		if n, ok := number(props["MaximumRetryAttempts"]); !ok || n < 0 {
			bad(path+".MaximumRetryAttempts", "is %v, want a bound: by default a failing batch is retried until its records expire", props["MaximumRetryAttempts"])
		}
		if q, ok := onFailureQueue(t, props); ok && !hasQueueAlarm(t, q) {
			bad(path+".DestinationConfig.OnFailure", "no AWS::CloudWatch::Alarm watches queue %s, so failed records go unnoticed", q)
		}
	}
	return ps
}

// hasQueueAlarm reports whether an alarm's QueueName dimension refers to the queue.
func hasQueueAlarm(t *Template, queue string) bool {
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		for _, d := range toSlice(r.Properties["Dimensions"]) {
			m := asMap(d)
			if m["Name"] != "QueueName" {
				continue
			}
			refs := map[string]bool{}
			referencedIDs(m["Value"], refs)
			if refs[queue] {
				return true
			}
		}
	}
	return false
}

// ---- secrets ----------------------------------------------------------------------------------

// secretARNPrefix starts the ARN of every secret, as written in an !Sub.
const secretARNPrefix = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"

// checkSecrets keeps each stack to its own credentials: a function that reads NET_AUTO_SECRETS_PREFIX
// gets a prefix naming the stack (!Sub "netauto/${AWS::StackName}/"), and every Secrets Manager
// permission of a function is on ARNs under that prefix, so no stack can read, overwrite or
// delete another's secrets.
func checkSecrets(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckSecrets, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	for _, id := range functionIDs(t) {
		fnName, known := opts.FunctionNames[id]
		reads := false
		if known {
			for _, v := range config.Vars(fnName) {
				reads = reads || v.Name == config.EnvSecretsPrefix
			}
		}
		envPath := "Resources." + id + ".Properties.Environment.Variables." + config.EnvSecretsPrefix
		prefix, prefixOK := stackPrefix(functionEnv(t, t.Resources[id])[config.EnvSecretsPrefix])
		if reads && !prefixOK {
			bad(envPath, "is %v, want !Sub \"netauto/${AWS::StackName}/\": a prefix without the stack name is shared by every stack in the account", functionEnv(t, t.Resources[id])[config.EnvSecretsPrefix])
		}
		policyPath := "Resources." + id + ".Properties.Policies"
		for _, st := range statements(t.Resources[id].Properties["Policies"]) {
			if !slices.ContainsFunc(toStrings(st["Action"]), func(a string) bool { return strings.HasPrefix(strings.ToLower(a), "secretsmanager:") }) {
				continue
			}
			sid, _ := st["Sid"].(string)
			if onlyUnscoped(st) {
				continue
			}
			if !prefixOK {
				bad(policyPath, "statement %q grants Secrets Manager actions, but the function sets no stack-scoped %s to confine them to", sid, config.EnvSecretsPrefix)
				continue
			}
			resources := st["Resource"]
			if _, isList := resources.([]any); !isList {
				resources = []any{resources}
			}
			for _, res := range resources.([]any) {
				fn, arg, _ := intrinsic(res)
				s, _ := arg.(string)
				if fn != "Fn::Sub" || !strings.HasPrefix(s, secretARNPrefix+prefix) {
					bad(policyPath, "statement %q grants Secrets Manager actions on %v, want !Sub \"%s%s...\" (this stack's secrets only)", sid, res, secretARNPrefix, prefix)
				}
			}
		}
	}
	return ps
}

// onlyUnscoped reports whether a statement grants unscopedActions and nothing else: they cannot
// be confined to this stack's ARNs, and the scoped statements decide which secrets they reach.
func onlyUnscoped(st map[string]any) bool {
	actions := toStrings(st["Action"])
	return len(actions) > 0 && !slices.ContainsFunc(actions, func(a string) bool { return !unscoped(a) })
}

// stackPrefix returns the Sub string of a NET_AUTO_SECRETS_PREFIX value and whether it names the
// stack and ends a name segment.
func stackPrefix(v any) (string, bool) {
	fn, arg, _ := intrinsic(v)
	s, _ := arg.(string)
	return s, fn == "Fn::Sub" && strings.Contains(s, "${AWS::StackName}") && strings.HasSuffix(s, "/")
}
