package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/apiwire"
)

func TestRunWritesInventoryAndKnownHosts(t *testing.T) {
	dir := t.TempDir()
	inv, kh := filepath.Join(dir, "devices.json"), filepath.Join(dir, "known_hosts")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-count", "4", "-seed", "3", "-platforms", "cisco_iosxe=1,linux=1", "-faults", "refuse=1",
		"-versions", "2", "-inventory", inv, "-known-hosts", kh, "-exit"}, &stdout, &stderr)
	require.NoError(t, err, "run: %s", stderr.String())
	data, err := os.ReadFile(inv)
	require.NoError(t, err)
	// The inventory is an import body: a JSON array of device inputs, nothing else.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var devices []apiwire.DeviceInput
	require.NoError(t, dec.Decode(&devices), "inventory")
	require.Len(t, devices, 4, "inventory devices")
	for _, d := range devices {
		assert.NotEmpty(t, d.ID, "device id")
		assert.NotZero(t, d.Port, "%s: port", d.ID)
		assert.True(t, strings.HasPrefix(d.HostKey, "ssh-ed25519 "), "%s: host key %q", d.ID, d.HostKey)
	}
	khData, err := os.ReadFile(kh)
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(string(khData), "\n"), "known_hosts lines")
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "unknown platform", args: []string{"-platforms", "nope", "-exit"}},
		{name: "unknown fault", args: []string{"-faults", "gremlins=1", "-exit"}},
		{name: "no devices", args: []string{"-count", "0", "-exit"}},
		{name: "unknown flag", args: []string{"-bogus"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			assert.Error(t, run(tc.args, &out, &errOut), "run(%v)", tc.args)
		})
	}
}
