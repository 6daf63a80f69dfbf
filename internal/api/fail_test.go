package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/run"
)

// TestAnswersCoverEveryKind checks the edge table has a row for every kind fault declares.
func TestAnswersCoverEveryKind(t *testing.T) {
	for k := fault.Internal; !strings.HasPrefix(k.String(), "kind("); k++ {
		a, ok := answers[k]
		if assert.True(t, ok, "kind %s has no answer", k) {
			assert.NotEmpty(t, a.code, "kind %s: code", k)
			assert.NotEmpty(t, a.message, "kind %s: default message", k)
			assert.GreaterOrEqual(t, a.status, 400, "kind %s: status", k)
		}
	}
}

// TestFailAnswersEachKind pins the status, code, field and message the API answers for each kind
// of error, wrapped or not, and that an error of no kind is answered 500 and logged without the
// secrets of the request.
func TestFailAnswersEachKind(t *testing.T) {
	secret := device.Credential{Password: "hunter2-secret"}
	tests := []struct {
		name        string
		err         error
		field       string
		extra       map[string]any
		wantStatus  int
		wantCode    string
		wantField   string
		wantMessage string
		wantDetails []device.FieldError
		wantUnknown []string
		wantExtra   string
		wantLogged  bool
	}{
		{name: "invalid input names its first field and lists all", err: &device.ValidationError{Fields: []device.FieldError{{Field: "host", Message: "is required"}, {Field: "port", Message: "must be from 1 to 65535"}}},
			wantStatus: 400, wantCode: "invalid", wantField: "host", wantMessage: "is required",
			wantDetails: []device.FieldError{{Field: "host", Message: "is required"}, {Field: "port", Message: "must be from 1 to 65535"}}},
		{name: "invalid input without fields", err: &device.ValidationError{}, wantStatus: 400, wantCode: "invalid", wantMessage: "invalid device"},
		{name: "bad cursor, wrapped, names the cursor over the hint", err: fmt.Errorf("list jobs: %w", fault.ErrBadCursor), field: "job_id",
			wantStatus: 400, wantCode: "invalid", wantField: "cursor", wantMessage: "is not a cursor this API issued"},
		{name: "device not found", err: fmt.Errorf("get device r1: %w", device.ErrNotFound),
			wantStatus: 404, wantCode: "not_found", wantField: "id", wantMessage: "no device with this id"},
		{name: "device not found behind a secret store", err: fmt.Errorf("secret devices/r1: %w", fmt.Errorf("read: %w", device.ErrNotFound)),
			wantStatus: 404, wantCode: "not_found", wantField: "id", wantMessage: "no device with this id"},
		{name: "job not found takes the route's field", err: fmt.Errorf("job j1: %w", bulk.ErrJobNotFound), field: "job_id",
			wantStatus: 404, wantCode: "not_found", wantField: "job_id", wantMessage: "no job with this id"},
		{name: "run not found takes the route's field", err: run.ErrNotFound, field: "id",
			wantStatus: 404, wantCode: "not_found", wantField: "id", wantMessage: "no run with this id"},
		{name: "device exists", err: fmt.Errorf("create device r1: %w", device.ErrExists),
			wantStatus: 409, wantCode: "already_exists", wantField: "id", wantMessage: "a device with this id already exists"},
		{name: "device changed by someone else", err: fmt.Errorf("update device r1: version 3 given, stored version is 4: %w", device.ErrConflict),
			wantStatus: 409, wantCode: "version_conflict", wantField: "version", wantMessage: "the device was changed by someone else; read it again and retry"},
		{name: "job finished", err: fmt.Errorf("cancel j1: %w", bulk.ErrJobFinished), field: "job_id",
			wantStatus: 409, wantCode: "job_finished", wantField: "job_id", wantMessage: "the job has already finished"},
		{name: "unknown devices list their ids", err: fmt.Errorf("enqueue: %w", &bulk.UnknownDevicesError{IDs: []string{"nope1", "nope2"}}), field: "device_ids",
			wantStatus: 422, wantCode: "unknown_devices", wantField: "device_ids", wantMessage: "2 devices are not in the inventory", wantUnknown: []string{"nope1", "nope2"}},
		{name: "import rejected keeps its counts and carries the result", err: fault.Errorf(fault.Rejected, "rows", "import: %d of %d rows rejected, nothing written: %w", 2, 3, device.ErrImportRejected),
			extra: map[string]any{"result": "per-row"}, wantStatus: 422, wantCode: "import_rejected", wantField: "rows",
			wantMessage: "import: 2 of 3 rows rejected, nothing written: import rejected", wantExtra: "per-row"},
		{name: "reworded error keeps its kind", err: fault.Wrap(fmt.Errorf("create device r1: %w", device.ErrExists), fault.Exists, "rows", "a device was created by someone else during the import; nothing was kept"),
			wantStatus: 409, wantCode: "already_exists", wantField: "rows", wantMessage: "a device was created by someone else during the import; nothing was kept"},
		{name: "no identity", err: errNoToken, wantStatus: 401, wantCode: "unauthorized", wantMessage: "a valid bearer token is required"},
		{name: "role too low", err: fault.Errorf(fault.Forbidden, "", "this needs the %s role", "admin"), wantStatus: 403, wantCode: "forbidden", wantMessage: "this needs the admin role"},
		{name: "feature not deployed", err: errNoRetention, wantStatus: 503, wantCode: "unavailable", wantMessage: "retention is not configured on this deployment"},
		{name: "deadline", err: fmt.Errorf("query runs: %w", context.DeadlineExceeded), field: "id",
			wantStatus: 503, wantCode: "timeout", wantMessage: "the request took too long; try again"},
		{name: "cancelled", err: fmt.Errorf("query runs: %w", context.Canceled), wantStatus: 503, wantCode: "timeout", wantMessage: "the request took too long; try again"},
		{name: "error of no kind is internal and logged", err: fmt.Errorf("store credential %v of r1: %w", secret, io.ErrUnexpectedEOF), field: "id",
			extra: map[string]any{"result": "per-row"}, wantStatus: 500, wantCode: "internal", wantMessage: "internal error; it has been logged", wantLogged: true},
		{name: "an internal fault's message is not shown", err: fault.New(fault.Internal, "id", "table netauto-devices is missing"),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error; it has been logged", wantLogged: true},
		{name: "a kind without a row is internal", err: fault.New(fault.Kind(1000), "id", "unheard of"),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error; it has been logged", wantLogged: true},
		{name: "a run-store signal has no kind", err: fmt.Errorf("start run r1: %w", run.ErrLeased),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error; it has been logged", wantLogged: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{opts: Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}}
			rec := httptest.NewRecorder()
			s.failFor(rec, httptest.NewRequest(http.MethodGet, "/v1/devices/r1", nil), tc.err, tc.field, tc.extra)

			var body struct {
				Error      Error           `json:"error"`
				UnknownIDs []string        `json:"unknown_ids"`
				Result     json.RawMessage `json:"result"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "body %s", rec.Body)
			assert.Equal(t, tc.wantStatus, rec.Code, "status for %v", tc.err)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"), "content type")
			assert.Equal(t, tc.wantCode, body.Error.Code, "code for %v", tc.err)
			assert.Equal(t, tc.wantField, body.Error.Field, "field for %v", tc.err)
			assert.Equal(t, tc.wantMessage, body.Error.Message, "message for %v", tc.err)
			assert.Equal(t, tc.wantDetails, body.Error.Details, "details for %v", tc.err)
			assert.Equal(t, tc.wantUnknown, body.UnknownIDs, "unknown_ids for %v", tc.err)
			if tc.wantExtra != "" {
				assert.JSONEq(t, `"`+tc.wantExtra+`"`, string(body.Result), "result for %v", tc.err)
			} else {
				assert.Empty(t, body.Result, "result for %v", tc.err)
			}
			assert.NotContains(t, rec.Body.String(), secret.Password, "the answer holds the secret")
			if tc.wantLogged {
				assert.Contains(t, logs.String(), `"msg":"request failed"`, "an internal error is logged")
				assert.Contains(t, logs.String(), tc.err.Error(), "the log names the error")
				assert.NotContains(t, logs.String(), secret.Password, "the log holds the secret")
			} else {
				assert.Empty(t, logs.String(), "an answered error of kind %s is not logged", fault.KindOf(tc.err))
			}
		})
	}
}
