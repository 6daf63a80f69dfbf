package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
		return nil, &Error{Code: "payload_too_large", Message: fmt.Sprintf("request body exceeds %d bytes", limit)}, http.StatusRequestEntityTooLarge
	}
	return body, nil, 0
}

// decodeStrict decodes one JSON value into v, rejecting unknown fields, trailing data and type
// mismatches with an error that names the field.
func decodeStrict(body []byte, v any) *Error {
	if len(bytes.TrimSpace(body)) == 0 {
		return &Error{Code: "invalid_json", Message: "request body is empty; send a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return &Error{Code: "invalid_json", Message: "request body holds more than one JSON value"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{Code: "invalid_json", Message: "request body holds data after the JSON value"}
	}
	return nil
}

func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		return &Error{Code: "invalid_type", Field: field,
			Message: fmt.Sprintf("must be %s, not a JSON %s", describeType(typeErr.Type.String()), typeErr.Value)}
	case errors.As(err, &syntaxErr):
		return &Error{Code: "invalid_json", Message: fmt.Sprintf("malformed JSON at byte %d", syntaxErr.Offset)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Code: "unknown_field", Field: field, Message: "is not a known field"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: "invalid_json", Message: "JSON ends early"}
	default:
		return &Error{Code: "invalid_json", Message: "request body is not valid JSON"}
	}
}

func describeType(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "a whole number"
	case strings.Contains(t, "float"):
		return "a number"
	case t == "string" || strings.HasSuffix(t, "AuthMethod"):
		return "a string"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "map"):
		return "an object"
	case strings.HasPrefix(t, "[]"):
		return "an array"
	default:
		return "a " + t
	}
}
