package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestContextAttributesReachEveryLine(t *testing.T) {
	var buf bytes.Buffer
	logger := New(&buf, slog.LevelInfo)
	ctx := With(context.Background(), "request_id", "r1")
	ctx = With(ctx, "job_id", "j1", "device_id", "d1")
	logger.InfoContext(ctx, "device done", "status", "succeeded")
	logger.DebugContext(ctx, "hidden")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("want one JSON line, got %q: %v", buf.String(), err)
	}
	for k, want := range map[string]string{"msg": "device done", "request_id": "r1", "job_id": "j1", "device_id": "d1", "status": "succeeded"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %s", k, line[k], want)
		}
	}
}
