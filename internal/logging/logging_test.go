package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestContextAttributesReachEveryLine(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, slog.LevelInfo)
	ctx := With(context.Background(), "request_id", "r1")
	ctx = With(ctx, "job_id", "j1", "device_id", "d1")
	logger.InfoContext(ctx, "device done", "status", "succeeded")
	logger.DebugContext(ctx, "hidden")

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line), "want one JSON line, got %q", buf.String())
	for k, want := range map[string]string{"msg": "device done", "request_id": "r1", "job_id": "j1", "device_id": "d1", "status": "succeeded"} {
		assert.Equal(t, want, line[k], "attribute %s", k)
	}
}
