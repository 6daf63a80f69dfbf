package templatecheck

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/serverless"
)

// The schema check loads every plain CloudFormation resource (AWS::*, not AWS::Serverless::*)
// into goformation v7's generated Go type for its resource type. Those types reject unknown
// fields, so a misspelt property ("VisibiltyTimeout"), a misspelt nested property (inside
// KeySchema, DistributionConfig, ...), a misspelt resource type, or a value of the wrong JSON
// shape (a list where a map belongs) fails the check.
//
// Limits, and why:
//   - Intrinsic functions are replaced by JSON null before loading (goformation would otherwise
//     try to resolve them against parameter defaults); so a property whose whole value is an
//     intrinsic is not type-checked, only named.
//   - goformation's SAM types (AWS::Serverless::*) lag behind SAM: they lack FunctionResponseTypes,
//     ScalingConfig and FilterCriteria on event sources, LoggingConfig on functions, and name
//     HttpApi's AccessLogSettings "AccessLogSetting". Loading them strictly would fail on valid
//     templates, so for AWS::Serverless::Function and AWS::Serverless::HttpApi (and Globals) only
//     the top-level property names are checked: against goformation's fields plus the newer SAM
//     properties listed in samExtraProps. Event source properties are not schema-checked (the
//     events check covers what NetAuto relies on).
//   - It checks shape, not semantics: allowed values, required-ness and cross-property rules are
//     not enforced (cfn-lint would), nor are IAM action names.

// samExtraProps lists SAM properties newer than goformation's generated SAM types.
var samExtraProps = map[string][]string{
	"AWS::Serverless::Function": {"LoggingConfig", "RuntimeManagementConfig", "SnapStart",
		"RecursiveLoop", "PropagateTags", "FunctionUrlConfig", "Layers", "EphemeralStorage",
		"AutoPublishAliasAllProperties", "SourceKMSKeyArn", "Capacity"},
	"AWS::Serverless::HttpApi": {"AccessLogSettings", "Name", "PropagateTags"},
}

func checkSchema(t *Template) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckSchema, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	all := cloudformation.AllResources()
	samTypes := map[string]any{
		"AWS::Serverless::Function": serverless.Function{},
		"AWS::Serverless::HttpApi":  serverless.HttpApi{},
	}
	for _, id := range sortedKeys(t.Resources) {
		r := t.Resources[id]
		path := "Resources." + id
		if strings.HasPrefix(r.Type, "AWS::Serverless::") {
			if proto, ok := samTypes[r.Type]; ok {
				for _, p := range unknownProps(r.Properties, proto, samExtraProps[r.Type]) {
					bad(path+".Properties."+p, "%s has no property %q", r.Type, p)
				}
			}
			continue
		}
		res, ok := all[r.Type]
		if !ok {
			bad(path+".Type", "unknown resource type %q", r.Type)
			continue
		}
		data, err := json.Marshal(nullIntrinsics(r.Raw))
		if err != nil {
			bad(path, "encode for goformation: %v", err)
			continue
		}
		if err := json.Unmarshal(data, res); err != nil {
			bad(path, "goformation rejects %s: %v", r.Type, err)
		}
	}
	if g, ok := t.Globals["Function"]; ok {
		for _, p := range unknownProps(asMap(g), serverless.Function{}, samExtraProps["AWS::Serverless::Function"]) {
			bad("Globals.Function."+p, "AWS::Serverless::Function has no property %q", p)
		}
	}
	return ps
}

// unknownProps returns the keys of props that are neither JSON fields of proto's type nor extra.
func unknownProps(props map[string]any, proto any, extra []string) []string {
	known := map[string]bool{}
	for _, e := range extra {
		known[e] = true
	}
	rt := reflect.TypeOf(proto)
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			known[name] = true
		}
	}
	var out []string
	for _, k := range sortedKeys(props) {
		if !known[k] {
			out = append(out, k)
		}
	}
	return out
}

// nullIntrinsics returns a copy of v with every intrinsic function call replaced by nil.
func nullIntrinsics(v any) any {
	if _, _, ok := intrinsic(v); ok {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = nullIntrinsics(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = nullIntrinsics(e)
		}
		return s
	}
	return v
}
