package devicesim

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// noiseLine matches the lines ConfigNoise varies (as the cisco platforms' noise filters do).
var noiseLine = regexp.MustCompile(`^(! Last configuration change at |! NVRAM config last updated at |ntp clock-period \d+$)`)

// split returns a listing's noise lines and the rest.
func split(listing string) (noise, rest []string) {
	for _, l := range strings.Split(strings.ReplaceAll(listing, "\r\n", "\n"), "\n") {
		if noiseLine.MatchString(l) {
			noise = append(noise, l)
		} else {
			rest = append(rest, l)
		}
	}
	return noise, rest
}

func TestConfigNoiseAndChange(t *testing.T) {
	const listing = "cat /etc/netauto/running.conf"
	tests := []struct {
		name  string
		noise bool
		// change is called between the two listings of the first device.
		change     bool
		wantNoise  int  // noise lines per listing
		noiseDiff  bool // the two listings' noise lines differ
		wantChange bool // the rest differs, by the SNMP contact line
	}{
		{name: "without noise two listings are the same", noise: false, wantNoise: 0},
		{name: "noise lines differ on every listing, nothing else", noise: true, wantNoise: 3, noiseDiff: true},
		{name: "a change shows in the next listing, among the noise", noise: true, change: true, wantNoise: 3, noiseDiff: true, wantChange: true},
		{name: "a change shows without noise too", noise: false, change: true, wantNoise: 0, wantChange: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, Spec{Seed: 21, ConfigNoise: tc.noise, Devices: []DeviceSpec{{Platform: "linux"}, {Platform: "linux"}}})
			inv := f.Inventory()
			first := execOutput(t, inv[0], listing)
			other := execOutput(t, inv[1], listing)
			if tc.change {
				rev, err := f.ChangeConfig(inv[0].ID)
				require.NoError(t, err, "change the configuration")
				assert.Equal(t, 1, rev, "the first change is revision 1")
			}
			second := execOutput(t, inv[0], listing)
			otherAgain := execOutput(t, inv[1], listing)

			n1, rest1 := split(first)
			n2, rest2 := split(second)
			assert.Len(t, n1, tc.wantNoise, "noise lines of the first listing:\n%s", first)
			assert.Len(t, n2, tc.wantNoise, "noise lines of the second listing")
			if tc.noiseDiff {
				for i := range n1 {
					assert.NotEqual(t, n1[i], n2[i], "noise line %d differs between listings", i)
				}
			} else {
				assert.Equal(t, n1, n2, "noise lines")
			}
			if tc.wantChange {
				assert.NotContains(t, first, "snmp-server contact", "no contact line before the change")
				assert.Contains(t, rest2, "snmp-server contact noc-change-1@site-01.example.net", "the change is in the second listing")
				assert.Len(t, rest2, len(rest1)+2, "the change adds its line and a separator, nothing else")
			} else {
				assert.Equal(t, rest1, rest2, "the configuration is the same but for noise")
			}
			_, restOther := split(other)
			_, restOtherAgain := split(otherAgain)
			assert.Equal(t, restOther, restOtherAgain, "another device's configuration never changes")
		})
	}
}

func TestChangeConfigRevisionsAndUnknownDevice(t *testing.T) {
	f := start(t, Spec{Seed: 22, Devices: []DeviceSpec{{Platform: "linux"}}})
	id := f.Inventory()[0].ID
	for want := 1; want <= 3; want++ {
		rev, err := f.ChangeConfig(id)
		require.NoError(t, err, "change %d", want)
		assert.Equal(t, want, rev, "revision")
	}
	assert.Contains(t, execOutput(t, f.Inventory()[0], "cat /etc/netauto/running.conf"), "snmp-server contact noc-change-3@", "the latest revision is listed")
	_, err := f.ChangeConfig("sim-9999")
	assert.Error(t, err, "unknown device")
}
