package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/fault"
)

// Body size limits per kind of request.
const (
	maxBodyBytes   = 64 << 10
	maxImportBytes = 10 << 20
)

// readBody reads at most limit bytes of the request body, answering 413 past it.
func readBody(r *http.Request, limit int64) ([]byte, *Error, int) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &Error{Code: "bad_request", Message: "could not read the request body"}, http.StatusBadRequest
	}
	if int64(len(body)) > limit {
		return nil, &Error{Code: "payload_too_large", Field: "body", Message: fmt.Sprintf("request body exceeds %d bytes", limit)}, http.StatusRequestEntityTooLarge
	}
	return body, nil, 0
}

// bodyField is the field an error names when the body as a whole is wrong (empty, malformed,
// trailing data, a JSON value of the wrong kind, too large).
const bodyField = "body"

// decodeStrict decodes one JSON value into v, rejecting unknown fields, trailing data and type
// mismatches with an error that names the field (bodyField for the body as a whole).
func decodeStrict(body []byte, v any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{Code: "invalid_json", Field: bodyField, Message: "request body is empty; send a JSON value"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, body, reflect.TypeOf(v))
	}
	if dec.More() {
		return &Error{Code: "invalid_json", Field: bodyField, Message: "request body holds more than one JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Code: "invalid_json", Field: bodyField, Message: "request body holds data after the JSON value"}
	}
	return nil
}

// jsonError turns the decoder's error for body, decoded into a value of type t, into the API's.
func jsonError(err error, body []byte, t reflect.Type) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = bodyField
		}
		return &Error{Code: "invalid_type", Field: field,
			Message: fmt.Sprintf("must be %s, not a JSON %s", describeType(typeErr.Type), typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return &Error{Code: "invalid_json", Field: bodyField, Message: fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: "invalid_json", Field: bodyField, Message: "JSON ends early"}
	}
	if field, ok := unknownField(body, t); ok {
		return &Error{Code: "unknown_field", Field: field, Message: "is not a known field"}
	}
	return &Error{Code: "invalid_json", Field: bodyField, Message: "request body is not valid JSON"}
}

// unknownField returns the first key of body's JSON value, in document order, that names no
// field of the type t it decodes into: the key encoding/json refuses under
// DisallowUnknownFields, which it reports in its error's text only. Keys match fields as the
// decoder matches them: exactly, or else ignoring case.
func unknownField(body []byte, t reflect.Type) (string, bool) {
	key, found, _ := firstUnknown(json.NewDecoder(bytes.NewReader(body)), t)
	return key, found
}

// firstUnknown reads one JSON value from dec, looking for a key that t has no field for; a nil t
// accepts anything (a map's keys, an interface, a value of the wrong kind, a type that decodes
// itself).
func firstUnknown(dec *json.Decoder, t reflect.Type) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return "", false, nil
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)) &&
		!(t.Kind() == reflect.Struct && delim == '{') {
		// A type that decodes itself from an object (a command item) still has its fields.
		t = nil
	}
	switch delim {
	case '{':
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return "", false, err
			}
			key, _ := tok.(string)
			var vt reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				ft, known := structField(t, key)
				if !known {
					return key, true, nil
				}
				vt = ft
			case t.Kind() == reflect.Map:
				vt = t.Elem()
			}
			if key, found, err := firstUnknown(dec, vt); found || err != nil {
				return key, found, err
			}
		}
	case '[':
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for dec.More() {
			if key, found, err := firstUnknown(dec, et); found || err != nil {
				return key, found, err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return "", false, err
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// structField returns the type of t's field that key names, as encoding/json matches it: the
// exact name first, else the first equal under case folding.
func structField(t reflect.Type, key string) (reflect.Type, bool) {
	var folded reflect.Type
	for _, f := range jsonFields(t) {
		if f.name == key {
			return f.typ, true
		}
		if folded == nil && strings.EqualFold(f.name, key) {
			folded = f.typ
		}
	}
	return folded, folded != nil
}

type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields lists the JSON names of t's fields, with an untagged embedded struct's fields
// promoted as encoding/json promotes them.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
			out = append(out, jsonFields(ft)...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, jsonField{name: name, typ: sf.Type})
	}
	return out
}

// describeType names a Go type in JSON terms, never leaking Go type names.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	if t == reflect.TypeFor[apiwire.CommandItem]() {
		return `a string or an object {"command", "prompts"}`
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "another JSON type"
	}
}

// refusedBody is a request refused before it reached a store, with its answer (failFor writes
// it as it is); the audit trail records it as invalid input.
type refusedBody struct {
	status int
	body   *Error
}

func (e *refusedBody) Error() string    { return e.body.Error() }
func (e *refusedBody) Kind() fault.Kind { return fault.Invalid }
func (e *refusedBody) Field() string    { return e.body.Field }
func (e *refusedBody) Public() string   { return e.body.Message }

// decodeBody reads a JSON body into v; the error is the answer.
func decodeBody(r *http.Request, v any) error {
	body, e, status := readBody(r, maxBodyBytes)
	if e != nil {
		return &refusedBody{status, e}
	}
	if e := decodeStrict(body, v); e != nil {
		return &refusedBody{http.StatusBadRequest, e}
	}
	return nil
}
