// Package templatecheck checks NetAuto's template.yaml against the code it deploys: every
// reference resolves, every function builds from the Makefile and gets exactly the environment
// internal/config says it reads, the tables and queues match internal/resources, SQS event sources
// report partial batch failures, and each function's IAM policies name only its own tables and
// queues. It stands in for cfn-lint and `sam validate`, which cannot run here.
//
// Parse turns the YAML (with CloudFormation's short-form tags such as !Ref and !Sub) into plain
// Go values in the long form ({"Ref": ...}, {"Fn::Sub": ...}); Check runs every check and returns
// every problem found, each naming its check and where in the template it is.
package templatecheck

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed template: sections as generic values, intrinsic functions in long form.
type Template struct {
	// Raw is the whole document.
	Raw        map[string]any
	Parameters map[string]any
	Conditions map[string]any
	Globals    map[string]any
	Resources  map[string]Resource
	Outputs    map[string]any
}

// Resource is one entry of the Resources section.
type Resource struct {
	Type       string
	Properties map[string]any
	Metadata   map[string]any
	Condition  string
	// Raw is the whole resource entry (Type, Properties, DependsOn, ...).
	Raw map[string]any
}

// shortTags maps short-form intrinsic tags to their long-form keys.
var shortTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!Sub": "Fn::Sub", "!GetAtt": "Fn::GetAtt", "!If": "Fn::If", "!Equals": "Fn::Equals",
	"!Not": "Fn::Not", "!And": "Fn::And", "!Or": "Fn::Or", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!Join": "Fn::Join", "!GetAZs": "Fn::GetAZs", "!FindInMap": "Fn::FindInMap",
	"!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr", "!ImportValue": "Fn::ImportValue",
	"!Transform": "Fn::Transform", "!ToJsonString": "Fn::ToJsonString", "!Length": "Fn::Length",
}

// ParseFile reads and parses the template at path.
func ParseFile(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	return Parse(data)
}

// Parse parses a CloudFormation/SAM template in YAML, converting short-form intrinsic tags to
// their long form.
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse template yaml: %w", err)
	}
	v, err := convert(&doc)
	if err != nil {
		return nil, fmt.Errorf("parse template yaml: %w", err)
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse template yaml: top level is %T, not a mapping", v)
	}
	t := &Template{
		Raw:        raw,
		Parameters: asMap(raw["Parameters"]),
		Conditions: asMap(raw["Conditions"]),
		Globals:    asMap(raw["Globals"]),
		Outputs:    asMap(raw["Outputs"]),
		Resources:  map[string]Resource{},
	}
	for id, r := range asMap(raw["Resources"]) {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parse template: resource %s is %T, not a mapping", id, r)
		}
		typ, _ := m["Type"].(string)
		cond, _ := m["Condition"].(string)
		t.Resources[id] = Resource{
			Type: typ, Properties: asMap(m["Properties"]), Metadata: asMap(m["Metadata"]),
			Condition: cond, Raw: m,
		}
	}
	return t, nil
}

func convert(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return convert(n.Content[0])
	case yaml.AliasNode:
		return convert(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := shortTags[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var inner any
		if n.Kind == yaml.ScalarNode {
			inner = n.Value
			if n.Tag == "!GetAtt" {
				// !GetAtt Resource.Attribute (the attribute may itself contain dots).
				res, attr, _ := strings.Cut(n.Value, ".")
				inner = []any{res, attr}
			}
		} else {
			c := *n
			c.Tag = ""
			v, err := convert(&c)
			if err != nil {
				return nil, err
			}
			inner = v
		}
		return map[string]any{key: inner}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			if _, dup := m[k.Value]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", k.Line, k.Value)
			}
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return map[string]any{}
	}
	return m
}

// intrinsic reports whether v is a single-key intrinsic function call and returns its name and
// argument.
func intrinsic(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, arg := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, arg, true
		}
	}
	return "", nil, false
}
