package platform

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNoiseFiltersPerProfile: each profile's built-in filters take the lines its devices print
// that change by themselves, and leave the configuration lines around them alone.
func TestNoiseFiltersPerProfile(t *testing.T) {
	iosNoise := []string{
		"Current configuration : 4189 bytes",
		"! Last configuration change at 02:14:07 UTC Mon Dec 7 2026 by admin",
		"! NVRAM config last updated at 23:59:01 UTC Sun Dec 6 2026 by admin",
		"! No configuration change since last restart",
		"ntp clock-period 36028797018963968",
		"r1 uptime is 3 weeks, 2 days, 4 hours, 12 minutes",
		"*02:14:07.123 UTC Mon Dec 7 2026",
	}
	iosReal := []string{"hostname r1", "interface GigabitEthernet1", " ip address 10.0.0.1 255.255.255.0", "ntp server 10.0.0.5", "!", "version 17.9", "banner motd ^C uptime is not a promise ^C"}
	tests := []struct {
		platform string
		noise    []string
		real     []string
	}{
		{"cisco_ios", iosNoise, iosReal},
		{"cisco_iosxe", iosNoise, iosReal},
		{"cisco_nxos", []string{
			"!Time: Mon Dec  7 02:14:07 2026",
			"!Running configuration last done at: Sun Dec  6 23:10:44 2026",
			"Kernel uptime is 12 day(s), 3 hour(s), 41 minute(s), 2 second(s)",
		}, []string{"!Command: show running-config", "version 10.3(4a)", "feature bgp", "interface Ethernet1/1", "  no shutdown"}},
		{"cisco_iosxr", []string{
			"Mon Dec  7 02:14:07.123 UTC",
			"!! Last configuration change at Sun Dec  6 23:10:44 2026 by admin",
			"System uptime is 12 days 3 hours 41 minutes",
		}, []string{"!! IOS XR Configuration 7.9.2", "hostname xr1", "router bgp 65000", " bgp router-id 10.0.0.1"}},
		{"arista_eos", []string{
			"! Startup-config last modified at  Mon Dec  7 02:14:07 2026 by admin",
			"Uptime: 3 weeks, 2 days, 4 hours and 12 minutes",
			"Free memory: 2871148 kB",
			"Timezone: UTC",
			"Mon Dec  7 02:14:07 2026",
		}, []string{"! Command: show running-config", "! device: sw1 (vEOS-lab, EOS-4.31.2F)", "hostname sw1", "interface Ethernet1", "   description uplink"}},
		{"juniper_junos", []string{
			"## Last commit: 2026-12-07 02:14:07 UTC by admin",
			"## Last changed: 2026-12-07 02:14:07 UTC",
			"Current time: 2026-12-07 02:14:07 UTC",
			"System booted: 2026-11-14 22:01:40 UTC (3w1d 04:12 ago)",
			" 2:14AM  up 23 days,  4:12, 1 users, load averages: 0.21, 0.19, 0.18",
		}, []string{"version 23.4R1.9;", "system {", "    host-name mx1;", "## Secret-data follows"}},
		{"linux", []string{
			" 02:14:07 up 23 days,  4:12,  1 user,  load average: 0.21, 0.19, 0.18",
			"Last login: Mon Dec  7 02:10:01 2026 from 10.0.0.9",
		}, []string{"PRETTY_NAME=\"Debian GNU/Linux 13\"", "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500", "up"}},
		{"generic", []string{
			"! Last configuration change at 02:14:07 UTC Mon Dec 7 2026",
			"## Last commit: 2026-12-07 02:14:07 UTC by admin",
			"!Time: Mon Dec  7 02:14:07 2026",
			"fw7 uptime is 3 days",
		}, []string{"set system host-name fw7", "interface port1", "config system global"}},
	}
	require.Len(t, tests, len(Known()), "every profile has a case")
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			p, ok := Lookup(tt.platform)
			require.True(t, ok, "no profile %s", tt.platform)
			require.NotEmpty(t, p.NoiseFilters(), "built-in noise filters of %s", tt.platform)
			for _, f := range p.NoiseFilters() {
				assert.True(t, f.Builtin, "filter %q of %s is built in", f.Pattern, tt.platform)
				assert.NotEmpty(t, f.Description, "filter %q has a description", f.Pattern)
			}
			n, err := CompileNoise("show running-config", p.NoiseFilters())
			require.NoError(t, err, "compile %s's filters", tt.platform)
			for _, l := range tt.noise {
				assert.True(t, n.Noise([]byte(l)), "%s: %q is noise", tt.platform, l)
			}
			for _, l := range append(tt.real, "") {
				assert.False(t, n.Noise([]byte(l)), "%s: %q is not noise", tt.platform, l)
			}
		})
	}
}

// TestCompileNoiseCommandPattern: a filter with a command expression applies only to the
// commands it matches; a nil Noise calls nothing noise.
func TestCompileNoiseCommandPattern(t *testing.T) {
	fs := []NoiseFilter{
		{Pattern: `^! Time: `, Command: `^show run`},
		{Pattern: `^Packets: \d+$`},
	}
	tests := []struct {
		name, command, line string
		noise               bool
	}{
		{"command matches", "show running-config", "! Time: 02:14", true},
		{"command differs", "show startup-config", "! Time: 02:14", false},
		{"filter for every command", "show interfaces", "Packets: 12", true},
		{"not a noise line", "show running-config", "hostname r1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := CompileNoise(tt.command, fs)
			require.NoError(t, err, "compile")
			assert.Equal(t, tt.noise, n.Noise([]byte(tt.line)), "noise of %q under %q", tt.line, tt.command)
		})
	}
	none, err := CompileNoise("show clock", []NoiseFilter{{Pattern: "x", Command: "^never$"}})
	require.NoError(t, err, "compile")
	require.Nil(t, none, "no filter applies")
	assert.False(t, none.Noise([]byte("x")), "a nil Noise calls a line noise")
	_, err = CompileNoise("show clock", []NoiseFilter{{Pattern: "("}})
	require.Error(t, err, "an invalid stored pattern is an error")
}

// TestRequiredLiterals: the literals checked before a filter's expression are only ever ones
// every matching line begins with or contains.
func TestRequiredLiterals(t *testing.T) {
	tests := []struct{ pattern, prefix, needle string }{
		{`^! Last configuration change at `, "! Last configuration change at ", ""},
		{`^Current configuration : \d+ bytes$`, "Current configuration : ", " bytes"},
		{`(?m)^ntp clock-period \d+$`, "ntp clock-period ", ""},
		{`^\S+ uptime is `, "", " uptime is "},
		{`(?i)^uptime:`, "", ""},
		{`^a|^b`, "", ""},
		{`Last configuration change`, "", "Last configuration change"},
		{`x\d+ Last configuration`, "", " Last configuration"},
		{`^(Current|Last) time: `, "", " time: "},
		{`^(Mon|Tue) +\d \d:\d$`, "", ":"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			prefix, needle := requiredLiterals(tt.pattern)
			assert.Equal(t, []string{tt.prefix, tt.needle}, []string{prefix, needle}, "literals of %q", tt.pattern)
		})
	}
	n, err := CompileNoise("x", []NoiseFilter{{Pattern: `^a|^b`}, {Pattern: `(?i)^UPTIME:`}})
	require.NoError(t, err, "compile")
	assert.True(t, n.Noise([]byte("b1")), "an alternation is matched whole")
	assert.True(t, n.Noise([]byte("uptime: 3 days")), "a case-folded pattern is matched whole")
}
