package localdev

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLockState(t *testing.T) {
	dir := t.TempDir()
	release, err := lockState(dir)
	require.NoError(t, err)

	_, err = lockState(dir)
	require.Error(t, err, "a second make dev got the state folder")
	assert.Contains(t, err.Error(), dir)

	release()
	again, err := lockState(dir)
	require.NoError(t, err, "the folder stayed locked after its release")
	again()
}

func TestSeededRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet", "seeded.json")
	require.NoError(t, saveSeeded(path, "devices@1", map[string]bool{"sim-0002": true, "sim-0001": true}))
	tests := []struct {
		name     string
		database string
		want     map[string]bool
	}{
		{"the same database remembers its devices", "devices@1", map[string]bool{"sim-0001": true, "sim-0002": true}},
		{"a new database was never seeded", "devices@2", map[string]bool{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := loadSeeded(path, tc.database)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("no record yet", func(t *testing.T) {
		got, err := loadSeeded(filepath.Join(t.TempDir(), "none.json"), "devices@1")
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("a damaged record is an error, not a reseed", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "seeded.json")
		require.NoError(t, os.WriteFile(bad, []byte("{"), 0o600))
		_, err := loadSeeded(bad, "devices@1")
		require.Error(t, err)
	})
}
