package devicesim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConfigNoiseAndRevision: with ConfigNoise every showing of the configuration differs in its
// noise lines only; SetConfigRevision adds a real line.
func TestConfigNoiseAndRevision(t *testing.T) {
	f, err := Start(Spec{Count: 1, Seed: 3, ConfigNoise: true})
	require.NoError(t, err, "start fleet")
	t.Cleanup(func() { f.Close() })
	d := f.Inventory()[0]
	strip := func(out string) []string {
		var keep []string
		for _, l := range strings.Split(out, "\n") {
			l = strings.TrimSuffix(l, "\r")
			if strings.HasPrefix(l, "! Last configuration change at") || strings.HasPrefix(l, "! NVRAM config last updated at") ||
				strings.HasPrefix(l, "ntp clock-period") || strings.HasPrefix(l, "Current configuration :") {
				continue
			}
			keep = append(keep, l)
		}
		return keep
	}
	a, b := execOutput(t, d, "show running-config"), execOutput(t, d, "show running-config")
	require.Contains(t, a, "! Last configuration change at", "noise lines shown")
	assert.NotEqual(t, a, b, "two showings differ")
	assert.Equal(t, strip(a), strip(b), "only in their noise lines")

	require.True(t, f.SetConfigRevision(d.ID, 2), "the device is the fleet's")
	require.False(t, f.SetConfigRevision("nope", 2), "an unknown id")
	c := execOutput(t, d, "show running-config")
	assert.Contains(t, c, "rack 2", "the real change shows")
	assert.NotEqual(t, strip(a), strip(c), "a real change survives the noise filter")
}
