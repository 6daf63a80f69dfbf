package apiwire_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/apiwire"
)

// schemaTypes names the Go type of every object schema in components/schemas.
var schemaTypes = map[string]reflect.Type{
	"AuditEntry":             reflect.TypeFor[apiwire.AuditEntry](),
	"AuditList":              reflect.TypeFor[apiwire.AuditList](),
	"RetentionSettings":      reflect.TypeFor[apiwire.RetentionSettings](),
	"RetentionStats":         reflect.TypeFor[apiwire.RetentionStats](),
	"RetentionReport":        reflect.TypeFor[apiwire.RetentionReport](),
	"RetentionView":          reflect.TypeFor[apiwire.RetentionView](),
	"Error":                  reflect.TypeFor[apiwire.Error](),
	"ErrorBody":              reflect.TypeFor[apiwire.ErrorBody](),
	"FieldError":             reflect.TypeFor[apiwire.FieldError](),
	"Health":                 reflect.TypeFor[apiwire.Health](),
	"WhoAmI":                 reflect.TypeFor[apiwire.WhoAmI](),
	"RoleGrant":              reflect.TypeFor[apiwire.RoleGrant](),
	"PolicyRule":             reflect.TypeFor[apiwire.PolicyRule](),
	"Policy":                 reflect.TypeFor[apiwire.Policy](),
	"PolicyUpdate":           reflect.TypeFor[apiwire.PolicyUpdate](),
	"PolicyCheckRequest":     reflect.TypeFor[apiwire.PolicyCheckRequest](),
	"PolicyVerdict":          reflect.TypeFor[apiwire.PolicyVerdict](),
	"PolicyCheck":            reflect.TypeFor[apiwire.PolicyCheck](),
	"Device":                 reflect.TypeFor[apiwire.Device](),
	"PendingHostKey":         reflect.TypeFor[apiwire.PendingHostKey](),
	"HostKeyAccept":          reflect.TypeFor[apiwire.HostKeyAccept](),
	"DeviceInput":            reflect.TypeFor[apiwire.DeviceInput](),
	"DevicePatch":            reflect.TypeFor[apiwire.DevicePatch](),
	"DeviceList":             reflect.TypeFor[apiwire.DeviceList](),
	"RowResult":              reflect.TypeFor[apiwire.RowResult](),
	"ImportResult":           reflect.TypeFor[apiwire.ImportResult](),
	"ImportRejected":         reflect.TypeFor[apiwire.ImportRejected](),
	"Run":                    reflect.TypeFor[apiwire.Run](),
	"RunList":                reflect.TypeFor[apiwire.RunList](),
	"NoiseFilter":            reflect.TypeFor[apiwire.NoiseFilter](),
	"NoiseFilterInput":       reflect.TypeFor[apiwire.NoiseFilterInput](),
	"NoiseFilterUpdate":      reflect.TypeFor[apiwire.NoiseFilterUpdate](),
	"PlatformProfile":        reflect.TypeFor[apiwire.Platform](),
	"PlatformList":           reflect.TypeFor[apiwire.PlatformList](),
	"DiffLine":               reflect.TypeFor[apiwire.DiffLine](),
	"DiffHunk":               reflect.TypeFor[apiwire.DiffHunk](),
	"Diff":                   reflect.TypeFor[apiwire.Diff](),
	"BulkOptions":            reflect.TypeFor[apiwire.BulkOptions](),
	"RunRequest":             reflect.TypeFor[apiwire.RunRequest](),
	"BulkRequest":            reflect.TypeFor[apiwire.BulkRequest](),
	"Job":                    reflect.TypeFor[apiwire.Job](),
	"JobSummary":             reflect.TypeFor[apiwire.JobSummary](),
	"JobDevice":              reflect.TypeFor[apiwire.JobDevice](),
	"ProgressEvent":          reflect.TypeFor[apiwire.ProgressEvent](),
	"CredentialProfile":      reflect.TypeFor[apiwire.CredentialProfile](),
	"CredentialProfileInput": reflect.TypeFor[apiwire.CredentialProfileInput](),
	"CredentialProfilePatch": reflect.TypeFor[apiwire.CredentialProfilePatch](),
	"CredentialProfileList":  reflect.TypeFor[apiwire.CredentialProfileList](),
	"ProfileInUse":           reflect.TypeFor[apiwire.ProfileInUseBody](),
	"JumpHost":               reflect.TypeFor[apiwire.JumpHost](),
	"JumpHostInput":          reflect.TypeFor[apiwire.JumpHostInput](),
	"JumpHostPatch":          reflect.TypeFor[apiwire.JumpHostPatch](),
	"JumpHostList":           reflect.TypeFor[apiwire.JumpHostList](),
	"JumpHostInUse":          reflect.TypeFor[apiwire.JumpHostInUseBody](),
	"RunCommand":             reflect.TypeFor[apiwire.RunCommand](),
	"CommandSpec":            reflect.TypeFor[apiwire.CommandItem](),
	"Prompt":                 reflect.TypeFor[apiwire.Prompt](),
	"Selector":               reflect.TypeFor[apiwire.Selector](),
	"SavedJob":               reflect.TypeFor[apiwire.SavedJob](),
	"SavedJobInput":          reflect.TypeFor[apiwire.SavedJobInput](),
	"SavedJobPatch":          reflect.TypeFor[apiwire.SavedJobPatch](),
	"Schedule":               reflect.TypeFor[apiwire.Schedule](),
	"SavedJobList":           reflect.TypeFor[apiwire.SavedJobList](),
	"RerunRequest":           reflect.TypeFor[apiwire.RerunRequest](),
	"Webhook":                reflect.TypeFor[apiwire.Webhook](),
	"WebhookCreated":         reflect.TypeFor[apiwire.WebhookCreated](),
	"WebhookUpdated":         reflect.TypeFor[apiwire.WebhookUpdated](),
	"WebhookInput":           reflect.TypeFor[apiwire.WebhookInput](),
	"WebhookPatch":           reflect.TypeFor[apiwire.WebhookPatch](),
	"WebhookList":            reflect.TypeFor[apiwire.WebhookList](),
	"WebhookDelivery":        reflect.TypeFor[apiwire.WebhookDelivery](),
	"WebhookDeliveryList":    reflect.TypeFor[apiwire.WebhookDeliveryList](),
}

// inlineTypes names the Go type of every body declared inline (not as a $ref), by
// "METHOD path status" for an answer, "METHOD path request" for a request, or
// "responses/Name" for a shared answer.
var inlineTypes = map[string]reflect.Type{
	"POST /v1/devices/import request":      reflect.TypeFor[[]apiwire.DeviceInput](),
	"POST /v1/devices/last-runs request":   reflect.TypeFor[apiwire.LastRunsRequest](),
	"POST /v1/devices/bulk-update request": reflect.TypeFor[apiwire.DeviceBulkUpdate](),
	"POST /v1/devices/bulk-update 200":     reflect.TypeFor[apiwire.DeviceBulkUpdated](),
	"POST /v1/devices/bulk-update 400":     reflect.TypeFor[apiwire.DeviceBulkRejected](),
	"POST /v1/devices/last-runs 200":       reflect.TypeFor[apiwire.LastRuns](),
	"POST /v1/runs 202":                    reflect.TypeFor[apiwire.RunAccepted](),
	"GET /v1/bulk 200":                     reflect.TypeFor[apiwire.JobList](),
	"POST /v1/bulk 202":                    reflect.TypeFor[apiwire.BulkAccepted](),
	"POST /v1/bulk/{job_id}/rerun 202":     reflect.TypeFor[apiwire.BulkAccepted](),
	"POST /v1/saved-jobs/{id}/run 202":     reflect.TypeFor[apiwire.BulkAccepted](),
	"GET /v1/bulk/{job_id}/devices 200":    reflect.TypeFor[apiwire.JobDeviceList](),
	"GET /v1/bulk/{job_id}/events 200":     reflect.TypeFor[apiwire.EventList](),
	"responses/UnknownDevices":             reflect.TypeFor[apiwire.UnknownDevicesBody](),
}

// schema is the part of an OpenAPI schema object the check reads.
type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 string             `yaml:"type"`
	Format               string             `yaml:"format"`
	Nullable             bool               `yaml:"nullable"`
	Required             []string           `yaml:"required"`
	Properties           map[string]*schema `yaml:"properties"`
	AdditionalProperties yaml.Node          `yaml:"additionalProperties"`
	Items                *schema            `yaml:"items"`
	AllOf                []*schema          `yaml:"allOf"`
	OneOf                []*schema          `yaml:"oneOf"`
	Enum                 []any              `yaml:"enum"`
}

// additional returns the schema of additionalProperties, nil when it is absent or false.
func (s *schema) additional(t *testing.T) *schema {
	t.Helper()
	if s.AdditionalProperties.Kind != yaml.MappingNode {
		return nil
	}
	var a schema
	require.NoError(t, s.AdditionalProperties.Decode(&a), "additionalProperties")
	return &a
}

type media struct {
	Schema *schema `yaml:"schema"`
}

type body struct {
	Ref     string           `yaml:"$ref"`
	Content map[string]media `yaml:"content"`
}

type operation struct {
	RequestBody *body            `yaml:"requestBody"`
	Responses   map[string]*body `yaml:"responses"`
}

type document struct {
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Schemas   map[string]*schema `yaml:"schemas"`
		Responses map[string]*body   `yaml:"responses"`
	} `yaml:"components"`
}

func loadDocument(t *testing.T) *document {
	t.Helper()
	var doc document
	require.NoError(t, yaml.Unmarshal(api.OpenAPIYAML(), &doc), "parse openapi.yaml")
	require.NotEmpty(t, doc.Components.Schemas, "openapi.yaml has no components/schemas")
	return &doc
}

// TestSchemasHaveTypes: every object schema of components/schemas has its Go type, and every
// Go type of the table names a schema that exists.
func TestSchemasHaveTypes(t *testing.T) {
	doc := loadDocument(t)
	for name, s := range doc.Components.Schemas {
		if s.Type == "object" && len(s.Properties) > 0 {
			assert.Contains(t, schemaTypes, name, "schema %s has no apiwire type in schemaTypes", name)
		}
	}
	for name := range schemaTypes {
		assert.Contains(t, doc.Components.Schemas, name, "schemaTypes names %s, which openapi.yaml lacks", name)
	}
}

// TestTypesMatchSchemas holds each apiwire type to its schema in both directions: every
// property is a field and every field a property, required properties are always sent (no
// omitempty) and optional ones left out when empty, and the JSON types agree.
func TestTypesMatchSchemas(t *testing.T) {
	doc := loadDocument(t)
	for _, name := range slices.Sorted(maps.Keys(schemaTypes)) {
		t.Run(name, func(t *testing.T) {
			s, ok := doc.Components.Schemas[name]
			require.True(t, ok, "openapi.yaml has no schema %s", name)
			c := checker{t: t, doc: doc}
			c.object(name, s, schemaTypes[name])
		})
	}
}

// TestBodiesMatchSchemas finds every JSON request and answer body of every route and checks it
// against its Go type: a $ref must name a schema with a type, an inline schema must have an
// entry in inlineTypes, and the type must match the schema.
func TestBodiesMatchSchemas(t *testing.T) {
	doc := loadDocument(t)
	seen := map[string]bool{}
	check := func(t *testing.T, key string, b *body) {
		t.Helper()
		if b == nil || b.Ref != "" {
			return // a shared answer, checked under its own name
		}
		m, ok := b.Content["application/json"]
		if !ok || m.Schema == nil {
			return
		}
		s := m.Schema
		if s.Ref != "" {
			name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
			assert.Contains(t, schemaTypes, name, "%s: body %s has no apiwire type", key, s.Ref)
			return
		}
		if s.Type == "object" && len(s.Properties) == 0 && s.additional(t) == nil {
			return // any JSON object, such as the OpenAPI document itself
		}
		typ, ok := inlineTypes[key]
		if !assert.True(t, ok, "%s: inline body has no apiwire type in inlineTypes", key) {
			return
		}
		seen[key] = true
		c := checker{t: t, doc: doc}
		c.value(key, s, typ)
	}
	for _, path := range slices.Sorted(maps.Keys(doc.Paths)) {
		for _, method := range slices.Sorted(maps.Keys(doc.Paths[path])) {
			if method == "parameters" {
				continue
			}
			var op operation
			node := doc.Paths[path][method]
			require.NoError(t, node.Decode(&op), "%s %s", method, path)
			prefix := strings.ToUpper(method) + " " + path
			check(t, prefix+" request", op.RequestBody)
			for _, status := range slices.Sorted(maps.Keys(op.Responses)) {
				check(t, prefix+" "+status, op.Responses[status])
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(doc.Components.Responses)) {
		check(t, "responses/"+name, doc.Components.Responses[name])
	}
	for key := range inlineTypes {
		assert.True(t, seen[key], "inlineTypes names %s, which openapi.yaml does not declare inline", key)
	}
}

// checker compares schemas with Go types, reporting each mismatch with the path to it.
type checker struct {
	t   *testing.T
	doc *document
}

var timeType = reflect.TypeFor[time.Time]()

// resolve follows a $ref (and a single-element allOf, the way a nullable $ref is written) to the
// schema and, for a named schema, its name.
func (c checker) resolve(s *schema) (*schema, string) {
	if len(s.AllOf) == 1 && s.Ref == "" {
		return c.resolve(s.AllOf[0])
	}
	if s.Ref == "" {
		return s, ""
	}
	name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
	target, ok := c.doc.Components.Schemas[name]
	require.True(c.t, ok, "unresolved $ref %s", s.Ref)
	return target, name
}

// value checks one value of type typ against schema s.
func (c checker) value(at string, s *schema, typ reflect.Type) {
	c.t.Helper()
	s, name := c.resolve(s)
	if name != "" {
		if want, ok := schemaTypes[name]; ok {
			assert.Equal(c.t, want, deref(typ), "%s: schema %s is apiwire.%s", at, name, want.Name())
			return
		}
	}
	typ = deref(typ)
	if len(s.OneOf) > 0 {
		// A value of one of several kinds decodes itself: a string alternative needs the type
		// to unmarshal itself, any other alternative is checked against the type.
		for i, alt := range s.OneOf {
			if r, _ := c.resolve(alt); r.Type == "string" {
				assert.True(c.t, reflect.PointerTo(typ).Implements(reflect.TypeFor[json.Unmarshaler]()),
					"%s: oneOf[%d] is a string: %s must unmarshal itself", at, i, typ)
				continue
			}
			c.value(at, alt, typ)
		}
		return
	}
	switch s.Type {
	case "string":
		if s.Format == "date-time" {
			assert.Equal(c.t, timeType, typ, "%s: a date-time is a time.Time", at)
			return
		}
		assert.Equal(c.t, reflect.String, typ.Kind(), "%s: a string, not %s", at, typ)
	case "integer":
		assert.Contains(c.t, []reflect.Kind{reflect.Int, reflect.Int32, reflect.Int64}, typ.Kind(), "%s: an integer, not %s", at, typ)
	case "number":
		assert.Contains(c.t, []reflect.Kind{reflect.Float32, reflect.Float64}, typ.Kind(), "%s: a number, not %s", at, typ)
	case "boolean":
		assert.Equal(c.t, reflect.Bool, typ.Kind(), "%s: a boolean, not %s", at, typ)
	case "array":
		if assert.Equal(c.t, reflect.Slice, typ.Kind(), "%s: an array, not %s", at, typ) {
			require.NotNil(c.t, s.Items, "%s: array without items", at)
			c.value(at+"[]", s.Items, typ.Elem())
		}
	case "object":
		if len(s.Properties) > 0 {
			c.object(at, s, typ)
			return
		}
		if add := s.additional(c.t); add != nil {
			if assert.Equal(c.t, reflect.Map, typ.Kind(), "%s: a map, not %s", at, typ) {
				assert.Equal(c.t, reflect.String, typ.Key().Kind(), "%s: map keys are strings", at)
				c.value(at+"{}", add, typ.Elem())
			}
			return
		}
		assert.Contains(c.t, []reflect.Kind{reflect.Map, reflect.Interface}, typ.Kind(), "%s: any object, not %s", at, typ)
	default:
		c.t.Errorf("%s: schema type %q is not checked", at, s.Type)
	}
}

// object checks a struct against an object schema with properties, in both directions.
func (c checker) object(at string, s *schema, typ reflect.Type) {
	c.t.Helper()
	typ = deref(typ)
	if !assert.Equal(c.t, reflect.Struct, typ.Kind(), "%s: an object with properties is a struct, not %s", at, typ) {
		return
	}
	assert.Nil(c.t, s.additional(c.t), "%s: the schema must say additionalProperties: false", at)
	fields := jsonFields(typ)
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
		assert.Contains(c.t, s.Properties, r, "%s: required %q is not a property", at, r)
	}
	for _, prop := range slices.Sorted(maps.Keys(s.Properties)) {
		f, ok := fields[prop]
		if !assert.True(c.t, ok, "%s: property %q has no field in %s", at, prop, typ) {
			continue
		}
		where := at + "." + prop
		ps := s.Properties[prop]
		if required[prop] {
			assert.False(c.t, f.omit, "%s is required: its field %s must not be omitempty or omitzero", where, f.name)
		} else {
			assert.True(c.t, f.omit, "%s is optional: its field %s must be omitempty or omitzero", where, f.name)
		}
		if resolved, _ := c.resolve(ps); ps.Nullable || resolved.Nullable {
			assert.Contains(c.t, []reflect.Kind{reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface}, f.typ.Kind(),
				"%s is nullable: its field %s must be able to hold null", where, f.name)
		}
		c.value(where, ps, f.typ)
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		assert.Contains(c.t, s.Properties, name, "%s: field %s (json %q) is not a property of the schema", at, fields[name].name, name)
	}
}

// field is one JSON field of a struct.
type field struct {
	name string // the Go field's name
	typ  reflect.Type
	omit bool // omitempty or omitzero
}

// jsonFields lists the JSON fields of a struct as encoding/json sees them, embedded structs
// flattened (a shallower field hides a deeper one of the same name).
func jsonFields(typ reflect.Type) map[string]field {
	out := map[string]field{}
	depth := map[string]int{}
	var walk func(t reflect.Type, d int)
	walk = func(t reflect.Type, d int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" || (!f.IsExported() && !f.Anonymous) {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" && deref(f.Type).Kind() == reflect.Struct {
				walk(deref(f.Type), d+1)
				continue
			}
			if name == "" {
				name = f.Name
			}
			if prev, ok := depth[name]; ok && prev <= d {
				continue
			}
			depth[name] = d
			omit := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero")
			out[name] = field{name: f.Name, typ: f.Type, omit: omit}
		}
	}
	walk(typ, 0)
	return out
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// TestOptionalFieldsAreLeftOut encodes each type's zero value: exactly the required properties
// are sent, so a client that sets only those sends a body the schema accepts.
func TestOptionalFieldsAreLeftOut(t *testing.T) {
	doc := loadDocument(t)
	for _, name := range slices.Sorted(maps.Keys(schemaTypes)) {
		t.Run(name, func(t *testing.T) {
			data, err := json.Marshal(reflect.New(schemaTypes[name]).Interface())
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, json.Unmarshal(data, &got))
			assert.ElementsMatch(t, doc.Components.Schemas[name].Required, slices.Collect(maps.Keys(got)),
				"%s's zero value sends %s", name, string(data))
		})
	}
}
