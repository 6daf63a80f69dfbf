package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
)

type embeddedInner struct {
	Inner string `json:"inner"`
}

type unexportedInner struct {
	Promoted string `json:"promoted"`
}

// shapes exercises the decoder's field rules: embedded structs promoted, "-" skipped, untagged
// names, a map, a type that decodes itself, a slice of structs.
type shapes struct {
	embeddedInner
	unexportedInner
	Tagged  string            `json:"tagged,omitempty"`
	Skipped string            `json:"-"`
	Untag   int               // decoded by its Go name
	Labels  map[string]string `json:"labels"`
	When    time.Time         `json:"when"`
	Raw     json.RawMessage   `json:"raw"`
	Any     any               `json:"any"`
	Rows    []embeddedInner   `json:"rows"`
}

// TestUnknownFieldMatchesTheDecoder checks unknownField names the very key encoding/json refuses
// under DisallowUnknownFields, for every request type the API decodes. The decoder states that
// key only in its error text, so the test reads it there: it is the oracle, nothing in the API
// does so.
func TestUnknownFieldMatchesTheDecoder(t *testing.T) {
	tests := []struct {
		name      string
		into      any
		body      string
		wantField string // "" when every key is known
	}{
		{name: "device: unknown top-level key", into: &apiwire.DeviceInput{}, body: `{"id":"r1","colour":"red"}`, wantField: "colour"},
		{name: "device: keys match ignoring case", into: &apiwire.DeviceInput{}, body: `{"ID":"r1","Host_Key":"x"}`},
		{name: "device: a Kelvin sign folds to k", into: &apiwire.DeviceInput{}, body: `{"host_\u212Aey":"x","kelvin":1}`, wantField: "kelvin"},
		{name: "device: tags take any key", into: &apiwire.DeviceInput{}, body: `{"tags":{"colour":"red"},"x":1}`, wantField: "x"},
		{name: "device: the first of two unknown keys", into: &apiwire.DeviceInput{}, body: `{"b":1,"a":2}`, wantField: "b"},
		{name: "device: unknown key after an unknown value", into: &apiwire.DeviceInput{}, body: `{"extra":{"deep":[1,{"x":2}]},"id":"r1"}`, wantField: "extra"},
		{name: "patch: pointer to a map", into: &apiwire.DevicePatch{}, body: `{"tags":{"a":"b"},"version":3,"sudo":true}`, wantField: "sudo"},
		{name: "bulk: nested options", into: &apiwire.BulkRequest{}, body: `{"command":"x","options":{"timeout_s":5,"priority":1}}`, wantField: "priority"},
		{name: "run: unknown key", into: &apiwire.RunRequest{}, body: `{"device_id":"d1","command":"x","sudo":true}`, wantField: "sudo"},
		{name: "last runs: unknown key", into: &apiwire.LastRunsRequest{}, body: `{"device_ids":["d0"],"all":true}`, wantField: "all"},
		{name: "import rows: raw rows take anything", into: &[]json.RawMessage{}, body: `[{"anything":1},{"goes":2}]`},
		{name: "shapes: promoted fields are known", into: &shapes{}, body: `{"inner":"a","promoted":"b","tagged":"c","Untag":1,"labels":{"k":"v"},"raw":{"z":1},"any":{"z":1},"when":"2026-01-02T03:04:05Z","rows":[{"inner":"x"}]}`},
		{name: "shapes: a skipped field is unknown", into: &shapes{}, body: `{"Skipped":"x"}`, wantField: "Skipped"},
		{name: "shapes: unknown key in a slice of structs", into: &shapes{}, body: `{"rows":[{"inner":"x"},{"outer":"y"}]}`, wantField: "outer"},
		{name: "shapes: the embedded struct's own name is unknown", into: &shapes{}, body: `{"embeddedInner":{}}`, wantField: "embeddedInner"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := json.NewDecoder(bytes.NewReader([]byte(tc.body)))
			dec.DisallowUnknownFields()
			err := dec.Decode(tc.into)
			oracle := ""
			if err != nil {
				var typeErr *json.UnmarshalTypeError
				require.False(t, errors.As(err, &typeErr), "body %s has a type error: %v", tc.body, err)
				_, after, ok := bytes.Cut([]byte(err.Error()), []byte("json: unknown field "))
				require.True(t, ok, "body %s: the decoder failed otherwise: %v", tc.body, err)
				oracle, err = strconv.Unquote(string(after))
				require.NoError(t, err, "unquote the decoder's key")
			}
			require.Equal(t, tc.wantField, oracle, "the decoder's unknown key in %s", tc.body)

			got, found := unknownField([]byte(tc.body), reflect.TypeOf(tc.into))
			assert.Equal(t, tc.wantField != "", found, "unknown key found in %s", tc.body)
			assert.Equal(t, tc.wantField, got, "unknown key of %s", tc.body)
			if tc.wantField != "" {
				e := decodeStrict([]byte(tc.body), reflect.New(reflect.TypeOf(tc.into).Elem()).Interface())
				require.NotNil(t, e, "decodeStrict accepts %s", tc.body)
				assert.Equal(t, Error{Code: "unknown_field", Field: tc.wantField, Message: "is not a known field"}, *e, fmt.Sprintf("answer for %s", tc.body))
			}
		})
	}
}
