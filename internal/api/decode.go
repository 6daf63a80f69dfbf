package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
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
		return jsonError(err)
	}
	if dec.More() {
		return &Error{Code: "invalid_json", Field: bodyField, Message: "request body holds more than one JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Code: "invalid_json", Field: bodyField, Message: "request body holds data after the JSON value"}
	}
	return nil
}

func jsonError(err error) *Error {
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
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Code: "unknown_field", Field: field, Message: "is not a known field"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: "invalid_json", Field: bodyField, Message: "JSON ends early"}
	default:
		return &Error{Code: "invalid_json", Field: bodyField, Message: "request body is not valid JSON"}
	}
}

// describeType names a Go type in JSON terms, never leaking Go type names.
func describeType(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
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
