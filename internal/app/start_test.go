package app

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestMemoryLimit(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantLimit int64
		wantSet   bool
	}{
		{name: "a 512 MB function", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"}, wantLimit: 512 << 20 * 9 / 10, wantSet: true},
		{name: "GOMEMLIMIT set: the runtime's own", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "GOMEMLIMIT": "300MiB"}},
		{name: "outside Lambda", env: map[string]string{}},
		{name: "not a number", env: map[string]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit, set := memoryLimit(func(k string) string { return tc.env[k] })
			assert.Equal(t, tc.wantSet, set, "set")
			assert.Equal(t, tc.wantLimit, limit, "limit")
		})
	}
}
