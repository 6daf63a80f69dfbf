package fault_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// TestFaultKindSurvivesWrapping checks the kinds the edge reads through %w, errors.Join and a
// reworded fault, and that the sentinels stay matchable with errors.Is.
func TestFaultKindSurvivesWrapping(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want fault.Kind
		is   error
	}{
		{name: "two %w layers", err: fmt.Errorf("a: %w", fmt.Errorf("b: %w", bulk.ErrJobNotFound)), want: fault.NotFound, is: bulk.ErrJobNotFound},
		{name: "joined with an internal error", err: errors.Join(errors.New("log flush"), device.ErrConflict), want: fault.Conflict, is: device.ErrConflict},
		{name: "reworded", err: fault.Wrap(device.ErrExists, fault.Exists, "rows", "taken"), want: fault.Exists, is: device.ErrExists},
		{name: "Errorf with %w", err: fault.Errorf(fault.Rejected, "rows", "import: %w", device.ErrImportRejected), want: fault.Rejected, is: device.ErrImportRejected},
		{name: "the outermost kind wins", err: fault.Wrap(context.DeadlineExceeded, fault.Unavailable, "", "down"), want: fault.Unavailable, is: context.DeadlineExceeded},
		{name: "nil", err: nil, want: fault.Internal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, fault.KindOf(tc.err), "kind of %v", tc.err)
			if tc.is != nil {
				assert.ErrorIs(t, tc.err, tc.is)
			}
		})
	}
}

// TestErrorTexts checks what each constructor says: New and Wrap their message, Errorf its
// formatted text, as fmt.Errorf would.
func TestErrorTexts(t *testing.T) {
	cause := errors.New("conditional check failed")
	tests := []struct {
		name      string
		err       *fault.Error
		wantText  string
		wantField string
		wantCause error
	}{
		{name: "New", err: fault.New(fault.NotFound, "id", "no such thing"), wantText: "no such thing", wantField: "id"},
		{name: "Wrap hides the cause's text", err: fault.Wrap(cause, fault.Conflict, "version", "changed"), wantText: "changed", wantField: "version", wantCause: cause},
		{name: "Errorf with %w", err: fault.Errorf(fault.Invalid, "rows", "row %d: %w", 3, cause), wantText: "row 3: conditional check failed", wantField: "rows", wantCause: cause},
		{name: "Errorf without %w has no cause", err: fault.Errorf(fault.Invalid, "", "row %d", 3), wantText: "row 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.wantText, tc.err.Error(), "text")
			assert.Equal(t, tc.wantText, tc.err.Public(), "message for the caller")
			assert.Equal(t, tc.wantField, tc.err.Field(), "field")
			if tc.wantCause != nil {
				assert.ErrorIs(t, tc.err, tc.wantCause)
			} else {
				assert.NoError(t, errors.Unwrap(tc.err), "cause")
			}
		})
	}
}
