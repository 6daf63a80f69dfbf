package templatecheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/netauto/netauto/internal/config"
	"github.com/netauto/netauto/internal/resources"
)

// Check names, used as the first word of every Problem so tests and readers can tell them apart.
const (
	CheckRefs       = "refs"
	CheckConditions = "conditions"
	CheckBuild      = "build"
	CheckEnv        = "env"
	CheckTables     = "tables"
	CheckQueues     = "queues"
	CheckEvents     = "events"
	CheckPolicies   = "policies"
	CheckSchema     = "schema"
)

// Problem is one thing wrong with the template.
type Problem struct {
	// Check is one of the Check* names.
	Check string
	// Path locates the problem, e.g. "Resources.ApiFunction.Properties.Environment".
	Path string
	Msg  string
}

func (p Problem) Error() string { return p.Check + ": " + p.Path + ": " + p.Msg }

// Options say where the code the template deploys lives.
type Options struct {
	// Root is the repository root: CodeUri is relative to it, and it holds functions/<name>/.
	Root string
	// FunctionNames maps an AWS::Serverless::Function logical ID to the config.Function it runs;
	// nil uses DefaultFunctionNames.
	FunctionNames map[string]config.Function
	// Samconfig is the samconfig.toml whose parameter_overrides the samconfig check reads; empty
	// uses Root's samconfig.toml when there is one.
	Samconfig string
}

// DefaultFunctionNames maps NetAuto's function logical IDs to their config.Function names.
func DefaultFunctionNames() map[string]config.Function {
	return map[string]config.Function{
		"ApiFunction": config.API, "WsFunction": config.WS,
		"ExecutorFunction": config.Executor, "RetentionFunction": config.Retention,
		"WatchdogFunction": config.Watchdog, "SchedulerFunction": config.Scheduler,
		"NotifierFunction": config.Notifier,
	}
}

// Check runs every check and returns the problems found, joined; nil means the template passed.
// Each joined error is a Problem.
func Check(t *Template, opts Options) error {
	if opts.FunctionNames == nil {
		opts.FunctionNames = DefaultFunctionNames()
	}
	var ps []Problem
	ps = append(ps, checkRefs(t)...)
	ps = append(ps, checkConditions(t)...)
	ps = append(ps, checkBuild(t, opts)...)
	ps = append(ps, checkEnv(t, opts)...)
	ps = append(ps, checkTables(t)...)
	ps = append(ps, checkQueues(t)...)
	ps = append(ps, checkEvents(t)...)
	ps = append(ps, checkPolicies(t, opts)...)
	ps = append(ps, checkGrants(t, opts)...)
	ps = append(ps, checkAudit(t, opts)...)
	ps = append(ps, checkSchema(t)...)
	ps = append(ps, checkRoutes(t)...)
	ps = append(ps, checkStages(t)...)
	ps = append(ps, checkRetain(t)...)
	ps = append(ps, checkStreams(t)...)
	ps = append(ps, checkSecrets(t, opts)...)
	ps = append(ps, checkEventBus(t, opts)...)
	ps = append(ps, checkSamconfig(t, opts)...)
	ps = append(ps, checkCORS(t)...)
	if len(ps) == 0 {
		return nil
	}
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Problems unpacks the Problems of an error returned by Check.
func Problems(err error) []Problem {
	var out []Problem
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	var p Problem
	if errors.As(err, &p) {
		out = append(out, p)
	}
	return out
}

// ---- references ---------------------------------------------------------------------------

var pseudoParams = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// knownAttrs lists the Fn::GetAtt attributes of the resource types NetAuto uses; GetAtt of a type
// not listed here is only checked for the resource's existence.
var knownAttrs = map[string][]string{
	"AWS::DynamoDB::Table":                 {"Arn", "StreamArn"},
	"AWS::SQS::Queue":                      {"Arn", "QueueName", "QueueUrl"},
	"AWS::Serverless::Function":            {"Arn"},
	"AWS::Lambda::Function":                {"Arn", "SnapStartResponse"},
	"AWS::Logs::LogGroup":                  {"Arn"},
	"AWS::S3::Bucket":                      {"Arn", "DomainName", "DualStackDomainName", "RegionalDomainName", "WebsiteURL"},
	"AWS::CloudFront::Distribution":        {"DomainName", "Id"},
	"AWS::CloudFront::OriginAccessControl": {"Id"},
	"AWS::Cognito::UserPool":               {"Arn", "ProviderName", "ProviderURL", "UserPoolId"},
	"AWS::Cognito::UserPoolClient":         {"ClientId", "ClientSecret", "Name"},
	"AWS::ApiGatewayV2::Api":               {"ApiEndpoint", "ApiId"},
	"AWS::ApiGatewayV2::Integration":       {"IntegrationId"},
	"AWS::ApiGatewayV2::Route":             {"RouteId"},
	"AWS::ApiGatewayV2::Deployment":        {"DeploymentId"},
	"AWS::CloudWatch::Alarm":               {"Arn"},
	"AWS::Events::EventBus":                {"Arn", "Name", "Policy"},
	"AWS::Events::Rule":                    {"Arn"},
}

// samGenerated returns the logical IDs the SAM transform adds that a template may reference:
// <Function>Role for functions without Role, ServerlessHttpApi / ServerlessRestApi when an event
// uses the implicit API.
func samGenerated(t *Template) map[string]string {
	gen := map[string]string{}
	for id, r := range t.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		if _, ok := r.Properties["Role"]; !ok {
			gen[id+"Role"] = "AWS::IAM::Role"
		}
		for _, ev := range asMap(r.Properties["Events"]) {
			e := asMap(ev)
			props := asMap(e["Properties"])
			switch e["Type"] {
			case "HttpApi":
				if _, ok := props["ApiId"]; !ok {
					gen["ServerlessHttpApi"] = "AWS::ApiGatewayV2::Api"
				}
			case "Api":
				if _, ok := props["RestApiId"]; !ok {
					gen["ServerlessRestApi"] = "AWS::ApiGateway::RestApi"
				}
			}
		}
	}
	return gen
}

type refChecker struct {
	t   *Template
	gen map[string]string
	ps  []Problem
}

func (c *refChecker) bad(path, format string, args ...any) {
	c.ps = append(c.ps, Problem{Check: CheckRefs, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *refChecker) resourceType(id string) (string, bool) {
	if r, ok := c.t.Resources[id]; ok {
		return r.Type, true
	}
	typ, ok := c.gen[id]
	return typ, ok
}

func (c *refChecker) ref(path, name string) {
	if pseudoParams[name] {
		return
	}
	if _, ok := c.t.Parameters[name]; ok {
		return
	}
	if _, ok := c.resourceType(name); ok {
		return
	}
	c.bad(path, "Ref %q names no parameter, resource or pseudo parameter", name)
}

func (c *refChecker) getAtt(path, res, attr string) {
	typ, ok := c.resourceType(res)
	if !ok {
		c.bad(path, "GetAtt %s.%s: no resource %q", res, attr, res)
		return
	}
	if attrs, known := knownAttrs[typ]; known && !slices.Contains(attrs, attr) {
		c.bad(path, "GetAtt %s.%s: %s has no attribute %q (known: %s)", res, attr, typ, attr, strings.Join(attrs, ", "))
	}
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (c *refChecker) sub(path string, arg any) {
	var s string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		s = a
	case []any:
		if len(a) != 2 {
			c.bad(path, "Fn::Sub takes a string or [string, variables]")
			return
		}
		s, _ = a[0].(string)
		vars = asMap(a[1])
		for k, v := range vars {
			c.walk(path+".Fn::Sub."+k, v)
		}
	default:
		c.bad(path, "Fn::Sub takes a string or [string, variables], not %T", arg)
		return
	}
	for _, m := range subVar.FindAllStringSubmatch(s, -1) {
		name := m[1]
		if strings.HasPrefix(name, "!") {
			continue // ${!Literal}
		}
		if _, ok := vars[name]; ok {
			continue
		}
		if res, attr, dotted := strings.Cut(name, "."); dotted && !pseudoParams[name] {
			c.getAtt(path+".Fn::Sub", res, attr)
			continue
		}
		c.ref(path+".Fn::Sub", name)
	}
}

func (c *refChecker) walk(path string, v any) {
	if fn, arg, ok := intrinsic(v); ok {
		switch fn {
		case "Ref":
			name, _ := arg.(string)
			c.ref(path, name)
			return
		case "Fn::GetAtt":
			switch a := arg.(type) {
			case []any:
				if len(a) == 2 {
					res, _ := a[0].(string)
					attr, _ := a[1].(string)
					c.getAtt(path, res, attr)
					return
				}
			case string:
				res, attr, _ := strings.Cut(a, ".")
				c.getAtt(path, res, attr)
				return
			}
			c.bad(path, "malformed Fn::GetAtt %v", arg)
			return
		case "Fn::Sub":
			c.sub(path, arg)
			return
		}
		c.walk(path+"."+fn, arg)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			c.walk(path+"."+k, x[k])
		}
	case []any:
		for i, e := range x {
			c.walk(fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

func checkRefs(t *Template) []Problem {
	c := &refChecker{t: t, gen: samGenerated(t)}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		c.walk("Resources."+id, r.Raw)
		for _, dep := range dependsOn(r.Raw["DependsOn"]) {
			if _, ok := c.resourceType(dep); !ok {
				c.bad("Resources."+id+".DependsOn", "no resource %q", dep)
			}
		}
	}
	c.walk("Globals", t.Globals)
	c.walk("Outputs", t.Outputs)
	c.walk("Conditions", t.Conditions)
	return c.ps
}

func dependsOn(v any) []string {
	switch d := v.(type) {
	case string:
		return []string{d}
	case []any:
		var out []string
		for _, e := range d {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// ---- conditions ---------------------------------------------------------------------------

func checkConditions(t *Template) []Problem {
	var ps []Problem
	use := func(path, name string) {
		if _, ok := t.Conditions[name]; !ok {
			ps = append(ps, Problem{Check: CheckConditions, Path: path, Msg: fmt.Sprintf("condition %q is not declared", name)})
		}
	}
	var walk func(path string, v any, inConditions bool)
	walk = func(path string, v any, inConditions bool) {
		if fn, arg, ok := intrinsic(v); ok {
			switch {
			case fn == "Fn::If":
				if a, ok := arg.([]any); ok && len(a) == 3 {
					name, _ := a[0].(string)
					use(path+".Fn::If", name)
					walk(path+".Fn::If", a[1:], inConditions)
				} else {
					ps = append(ps, Problem{Check: CheckConditions, Path: path, Msg: "Fn::If takes [condition, then, else]"})
				}
				return
			case fn == "Condition" && inConditions:
				name, _ := arg.(string)
				use(path, name)
				return
			}
			walk(path+"."+fn, arg, inConditions)
			return
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(path+"."+k, x[k], inConditions)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e, inConditions)
			}
		}
	}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		if c, ok := r.Raw["Condition"]; ok {
			name, _ := c.(string)
			use("Resources."+id+".Condition", name)
		}
		walk("Resources."+id+".Properties", r.Properties, false)
	}
	for _, id := range sortedKeys(t.Outputs) {
		o := asMap(t.Outputs[id])
		if c, ok := o["Condition"]; ok {
			name, _ := c.(string)
			use("Outputs."+id+".Condition", name)
		}
		walk("Outputs."+id+".Value", o["Value"], false)
	}
	walk("Globals", t.Globals, false)
	walk("Conditions", t.Conditions, true)
	return ps
}

// ---- functions: build -----------------------------------------------------------------------

func functionIDs(t *Template) []string {
	var ids []string
	for _, id := range sortedKeys(t.Resources) {
		if t.Resources[id].Type == "AWS::Serverless::Function" {
			ids = append(ids, id)
		}
	}
	return ids
}

// fnProp returns a function property, falling back to Globals.Function.
func fnProp(t *Template, r Resource, name string) (any, bool) {
	if v, ok := r.Properties[name]; ok {
		return v, true
	}
	v, ok := asMap(t.Globals["Function"])[name]
	return v, ok
}

func checkBuild(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckBuild, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	seen := map[config.Function]string{}
	for _, id := range functionIDs(t) {
		r := t.Resources[id]
		path := "Resources." + id
		name, ok := opts.FunctionNames[id]
		if !ok {
			bad(path, "no config.Function is known for logical ID %s", id)
		} else {
			seen[name] = id
			if !hasMainPackage(filepath.Join(opts.Root, "functions", string(name))) {
				bad(path, "no main package at functions/%s/", name)
			}
		}
		if bm, _ := r.Metadata["BuildMethod"].(string); bm != "makefile" {
			bad(path+".Metadata.BuildMethod", "is %q, want makefile", bm)
		}
		want := map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap"}
		for _, k := range sortedKeys(want) {
			if v, _ := fnProp(t, r, k); v != want[k] {
				bad(path+".Properties."+k, "is %v, want %v", v, want[k])
			}
		}
		if v, _ := fnProp(t, r, "Architectures"); !slices.Equal(toStrings(v), []string{"arm64"}) {
			bad(path+".Properties.Architectures", "is %v, want [arm64]", v)
		}
		cu, _ := fnProp(t, r, "CodeUri")
		dir, ok := cu.(string)
		if !ok {
			bad(path+".Properties.CodeUri", "must be a local folder, not %v", cu)
			continue
		}
		makefile := filepath.Join(opts.Root, dir, "Makefile")
		data, err := os.ReadFile(makefile)
		if err != nil {
			bad(path+".Properties.CodeUri", "CodeUri %q has no Makefile: %v", dir, err)
			continue
		}
		target := regexp.MustCompile(`(?m)^build-` + regexp.QuoteMeta(id) + `\s*:`)
		if !target.Match(data) {
			bad(path, "the Makefile in %q has no build-%s target", dir, id)
		}
	}
	for _, fn := range config.Functions() {
		if _, ok := seen[fn]; !ok {
			bad("Resources", "no AWS::Serverless::Function runs config.Function %q", fn)
		}
	}
	return ps
}

func hasMainPackage(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	pkg := regexp.MustCompile(`(?m)^package main\s*$`)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && pkg.Match(data) {
			return true
		}
	}
	return false
}

// ---- functions: environment -----------------------------------------------------------------

// functionEnv merges Globals.Function.Environment.Variables with the function's own.
func functionEnv(t *Template, r Resource) map[string]any {
	env := map[string]any{}
	for k, v := range asMap(asMap(asMap(t.Globals["Function"])["Environment"])["Variables"]) {
		env[k] = v
	}
	for k, v := range asMap(asMap(r.Properties["Environment"])["Variables"]) {
		env[k] = v
	}
	return env
}

func checkEnv(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckEnv, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	for _, id := range functionIDs(t) {
		path := "Resources." + id + ".Properties.Environment.Variables"
		env := functionEnv(t, t.Resources[id])
		// A local-only switch in AWS would open what it guards: NET_AUTO_WEBHOOK_ALLOW_LOOPBACK
		// lets webhooks reach loopback, the Lambda sandbox's Runtime API.
		for _, k := range config.LocalOnlyVars() {
			if _, set := env[k]; set {
				bad(path+"."+k, "is for a local stack only (it lets webhooks reach loopback: in AWS the Lambda Runtime API and the sandbox's own services); never set it in the template")
			}
		}
		name, ok := opts.FunctionNames[id]
		if !ok {
			continue // reported by the build check
		}
		if name == config.Executor {
			// The benchmarks measure the executor with this collector setting.
			if gc := fmt.Sprint(env["GOGC"]); gc != strconv.Itoa(resources.ExecutorGCPercent) {
				bad(path+".GOGC", "is %q, want %d (resources.ExecutorGCPercent)", gc, resources.ExecutorGCPercent)
			}
		}
		reads := map[string]bool{}
		for _, v := range config.Vars(name) {
			reads[v.Name] = true
			val, set := env[v.Name]
			if !set {
				bad(path, "%s is read by the %s function (config.Vars) but not set", v.Name, name)
				continue
			}
			if want, ok := resourceOfEnv(v.Name); ok {
				if fn, arg, _ := intrinsic(val); fn != "Ref" || arg != want {
					bad(path+"."+v.Name, "is %v, want !Ref %s", val, want)
				}
			}
		}
		for _, k := range sortedKeys(env) {
			if strings.HasPrefix(k, "NET_AUTO_") && !reads[k] && !slices.Contains(config.LocalOnlyVars(), k) {
				bad(path+"."+k, "the %s function does not read %s (config.Vars)", name, k)
			}
		}
	}
	return ps
}

// resourceOfEnv returns the logical ID of the table or queue an env var names.
func resourceOfEnv(envVar string) (string, bool) {
	for _, tb := range resources.Tables() {
		if tb.EnvVar == envVar {
			return tb.LogicalID, true
		}
	}
	for _, q := range resources.Queues() {
		if q.EnvVar == envVar {
			return q.LogicalID, true
		}
	}
	return "", false
}

// ---- tables and queues ----------------------------------------------------------------------

func checkTables(t *Template) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckTables, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	want := map[string]bool{}
	for _, tb := range resources.Tables() {
		want[tb.LogicalID] = true
		path := "Resources." + tb.LogicalID
		r, ok := t.Resources[tb.LogicalID]
		if !ok || r.Type != "AWS::DynamoDB::Table" {
			bad(path, "resources.Tables() declares table %s; the template has no AWS::DynamoDB::Table by that ID", tb.LogicalID)
			continue
		}
		p := r.Properties
		if p["BillingMode"] != "PAY_PER_REQUEST" {
			bad(path+".Properties.BillingMode", "is %v, want PAY_PER_REQUEST", p["BillingMode"])
		}
		defs := map[string]string{}
		for _, d := range toSlice(p["AttributeDefinitions"]) {
			m := asMap(d)
			n, _ := m["AttributeName"].(string)
			typ, _ := m["AttributeType"].(string)
			defs[n] = typ
		}
		used := map[string]bool{}
		keys := func(kpath string, schema any, pk, sk resources.Attribute) {
			got := map[string]string{}
			for _, k := range toSlice(schema) {
				m := asMap(k)
				n, _ := m["AttributeName"].(string)
				kt, _ := m["KeyType"].(string)
				got[kt] = n
				used[n] = true
			}
			for kt, a := range map[string]resources.Attribute{"HASH": pk, "RANGE": sk} {
				if a.Name == "" {
					if got[kt] != "" {
						bad(kpath, "has a %s key %q; resources declares none", kt, got[kt])
					}
					continue
				}
				if got[kt] != a.Name {
					bad(kpath, "%s key is %q, want %q", kt, got[kt], a.Name)
				} else if defs[a.Name] != string(a.Type) {
					bad(path+".Properties.AttributeDefinitions", "%s has type %q, want %q", a.Name, defs[a.Name], a.Type)
				}
			}
		}
		keys(path+".Properties.KeySchema", p["KeySchema"], tb.PartitionKey, tb.SortKey)
		gotIdx := map[string]map[string]any{}
		for _, g := range toSlice(p["GlobalSecondaryIndexes"]) {
			m := asMap(g)
			n, _ := m["IndexName"].(string)
			gotIdx[n] = m
		}
		for _, ix := range tb.Indexes {
			ipath := path + ".Properties.GlobalSecondaryIndexes." + ix.Name
			g, ok := gotIdx[ix.Name]
			if !ok {
				bad(path+".Properties.GlobalSecondaryIndexes", "index %q is missing", ix.Name)
				continue
			}
			delete(gotIdx, ix.Name)
			keys(ipath+".KeySchema", g["KeySchema"], ix.PartitionKey, ix.SortKey)
			proj := asMap(g["Projection"])
			if pt := proj["ProjectionType"]; pt != ix.Projection() {
				bad(ipath+".Projection", "ProjectionType is %v, want %s", pt, ix.Projection())
			}
			var include []string
			for _, a := range toSlice(proj["NonKeyAttributes"]) {
				s, _ := a.(string)
				include = append(include, s)
			}
			if !slices.Equal(include, ix.Include) {
				bad(ipath+".Projection.NonKeyAttributes", "are %v, want %v", include, ix.Include)
			}
		}
		for _, n := range sortedKeys(gotIdx) {
			bad(path+".Properties.GlobalSecondaryIndexes", "index %q is not declared in resources", n)
		}
		for _, n := range sortedKeys(defs) {
			if !used[n] {
				bad(path+".Properties.AttributeDefinitions", "%q is defined but is no key (CloudFormation rejects this)", n)
			}
		}
		ttl := asMap(p["TimeToLiveSpecification"])
		if ttl["AttributeName"] != tb.TTLAttribute || ttl["Enabled"] != true {
			bad(path+".Properties.TimeToLiveSpecification", "is %v, want AttributeName %q Enabled true", ttl, tb.TTLAttribute)
		}
		svt, hasStream := asMap(p["StreamSpecification"])["StreamViewType"]
		switch {
		case tb.Stream && svt != "OLD_IMAGE" && svt != "NEW_AND_OLD_IMAGES":
			bad(path+".Properties.StreamSpecification", "StreamViewType is %v, want OLD_IMAGE (or NEW_AND_OLD_IMAGES)", svt)
		case !tb.Stream && hasStream:
			bad(path+".Properties.StreamSpecification", "resources declares no stream for %s", tb.LogicalID)
		}
		if pitr := asMap(p["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"]; pitr != true {
			bad(path+".Properties.PointInTimeRecoverySpecification", "PointInTimeRecoveryEnabled is %v, want true", pitr)
		}
	}
	for _, id := range sortedKeys(t.Resources) {
		if t.Resources[id].Type == "AWS::DynamoDB::Table" && !want[id] {
			bad("Resources."+id, "table is not declared in internal/resources.Tables()")
		}
	}
	return ps
}

func checkQueues(t *Template) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckQueues, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if d := asMap(t.Parameters["ExecutorMaxConcurrency"])["Default"]; !numEq(d, resources.ExecutorMaxConcurrency) {
		bad("Parameters.ExecutorMaxConcurrency.Default", "is %v, want resources.ExecutorMaxConcurrency (%d)", d, resources.ExecutorMaxConcurrency)
	}
	want := map[string]bool{}
	for _, q := range resources.Queues() {
		want[q.LogicalID] = true
		path := "Resources." + q.LogicalID + ".Properties"
		r, ok := t.Resources[q.LogicalID]
		if !ok || r.Type != "AWS::SQS::Queue" {
			bad("Resources."+q.LogicalID, "resources.Queues() declares queue %s; the template has no AWS::SQS::Queue by that ID", q.LogicalID)
			continue
		}
		p := r.Properties
		if !numEq(p["VisibilityTimeout"], q.VisibilityTimeoutSeconds) {
			bad(path+".VisibilityTimeout", "is %v, want %d", p["VisibilityTimeout"], q.VisibilityTimeoutSeconds)
		}
		if !numEq(p["MessageRetentionPeriod"], q.MessageRetentionSeconds) {
			bad(path+".MessageRetentionPeriod", "is %v, want %d", p["MessageRetentionPeriod"], q.MessageRetentionSeconds)
		}
		rp, hasRedrive := p["RedrivePolicy"]
		if q.DeadLetter == "" {
			if hasRedrive {
				bad(path+".RedrivePolicy", "resources declares no dead-letter queue for %s", q.LogicalID)
			}
			continue
		}
		m := asMap(rp)
		if fn, arg, _ := intrinsic(m["deadLetterTargetArn"]); fn != "Fn::GetAtt" || !slices.Equal(toStrings(arg), []string{q.DeadLetter, "Arn"}) {
			bad(path+".RedrivePolicy.deadLetterTargetArn", "is %v, want !GetAtt %s.Arn", m["deadLetterTargetArn"], q.DeadLetter)
		}
		if !numEq(m["maxReceiveCount"], q.MaxReceiveCount) {
			bad(path+".RedrivePolicy.maxReceiveCount", "is %v, want %d", m["maxReceiveCount"], q.MaxReceiveCount)
		}
	}
	// A stream's on-failure queue exists in AWS only: the local runs table has no stream.
	failureQueues := streamFailureQueues(t)
	for _, id := range sortedKeys(t.Resources) {
		if t.Resources[id].Type == "AWS::SQS::Queue" && !want[id] && !failureQueues[id] {
			bad("Resources."+id, "queue is not declared in internal/resources.Queues() (nor the on-failure destination of a stream event source)")
		}
	}
	return ps
}

// ---- event sources --------------------------------------------------------------------------

func checkEvents(t *Template) []Problem {
	var ps []Problem
	for _, id := range functionIDs(t) {
		events := asMap(t.Resources[id].Properties["Events"])
		for _, name := range sortedKeys(events) {
			e := asMap(events[name])
			if e["Type"] != "SQS" {
				continue
			}
			path := "Resources." + id + ".Properties.Events." + name
			frt := toStrings(asMap(e["Properties"])["FunctionResponseTypes"])
			if !slices.Contains(frt, "ReportBatchItemFailures") {
				ps = append(ps, Problem{Check: CheckEvents, Path: path,
					Msg: "SQS event source must set FunctionResponseTypes [ReportBatchItemFailures] (partial batch failures)"})
			}
		}
	}
	return ps
}

// ---- policies -------------------------------------------------------------------------------

// referencedIDs collects every logical ID v refers to by Ref, GetAtt or ${} in Sub.
func referencedIDs(v any, out map[string]bool) {
	if fn, arg, ok := intrinsic(v); ok {
		switch fn {
		case "Ref":
			if s, ok := arg.(string); ok {
				out[s] = true
			}
			return
		case "Fn::GetAtt":
			if s := toStrings(arg); len(s) > 0 {
				out[s[0]] = true
			} else if s, ok := arg.(string); ok {
				res, _, _ := strings.Cut(s, ".")
				out[res] = true
			}
			return
		case "Fn::Sub":
			var s string
			switch a := arg.(type) {
			case string:
				s = a
			case []any:
				if len(a) > 0 {
					s, _ = a[0].(string)
				}
				if len(a) > 1 {
					referencedIDs(a[1], out)
				}
			}
			for _, m := range subVar.FindAllStringSubmatch(s, -1) {
				res, _, _ := strings.Cut(m[1], ".")
				out[res] = true
			}
			return
		}
		referencedIDs(arg, out)
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			referencedIDs(e, out)
		}
	case []any:
		for _, e := range x {
			referencedIDs(e, out)
		}
	}
}

// sensitivePrefixes are IAM action prefixes that must never be granted on Resource "*".
var sensitivePrefixes = []string{"dynamodb:", "sqs:", "secretsmanager:", "execute-api:", "s3:", "lambda:"}

// unscopedActions are the exceptions: actions that IAM cannot scope to a resource (AWS documents
// them on Resource "*") and whose service checks another, scoped action on each resource they
// touch. secretsmanager:BatchGetSecretValue reads only secrets the caller may GetSecretValue.
var unscopedActions = []string{"secretsmanager:BatchGetSecretValue"}

func unscoped(action string) bool {
	return slices.ContainsFunc(unscopedActions, func(u string) bool { return strings.EqualFold(u, action) })
}

func checkPolicies(t *Template, opts Options) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckPolicies, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	tableIDs, queueIDs := map[string]string{}, map[string]string{}
	for _, tb := range resources.Tables() {
		tableIDs[tb.LogicalID] = tb.EnvVar
	}
	for _, q := range resources.Queues() {
		queueIDs[q.LogicalID] = q.EnvVar
	}
	for _, id := range functionIDs(t) {
		name, ok := opts.FunctionNames[id]
		if !ok {
			continue
		}
		path := "Resources." + id + ".Properties.Policies"
		reads := map[string]bool{}
		for _, v := range config.Vars(name) {
			reads[v.Name] = true
		}
		policies := t.Resources[id].Properties["Policies"]
		refs := map[string]bool{}
		referencedIDs(policies, refs)
		for _, ref := range sortedKeys(refs) {
			if env, isTable := tableIDs[ref]; isTable && !reads[env] {
				bad(path, "grants access to table %s, but the %s function does not read %s", ref, name, env)
			}
			if env, isQueue := queueIDs[ref]; isQueue && !reads[env] {
				bad(path, "grants access to queue %s, but the %s function does not read %s", ref, name, env)
			}
		}
		if s, ok := policies.(string); ok {
			bad(path, "managed policy %q instead of scoped statements", s)
		}
		for _, st := range statements(policies) {
			if !slices.Contains(toStrings(st["Resource"]), "*") {
				continue
			}
			for _, a := range toStrings(st["Action"]) {
				if unscoped(a) {
					continue
				}
				for _, p := range sensitivePrefixes {
					if strings.HasPrefix(a, p) {
						bad(path, "action %s is granted on Resource \"*\"", a)
					}
				}
			}
		}
	}
	return ps
}

// statements finds IAM statement maps anywhere under v.
func statements(v any) []map[string]any {
	var out []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if _, ok := x["Effect"]; ok {
				out = append(out, x)
				return
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// ---- helpers --------------------------------------------------------------------------------

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func toSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func toStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

func numEq(v any, want int) bool {
	switch n := v.(type) {
	case int:
		return n == want
	case uint64:
		return n == uint64(want)
	case float64:
		return n == float64(want)
	case string:
		return n == fmt.Sprint(want)
	}
	return false
}
