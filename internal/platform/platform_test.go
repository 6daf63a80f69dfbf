package platform

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKnownAndLookup(t *testing.T) {
	want := []string{"arista_eos", "cisco_ios", "cisco_iosxe", "cisco_iosxr", "cisco_nxos", "generic", "juniper_junos", "linux"}
	require.Equal(t, want, Known(), "Known()")
	for _, name := range want {
		p, ok := Lookup(name)
		require.True(t, ok, "Lookup(%q) found nothing", name)
		require.Equal(t, name, p.Name, "Name of Lookup(%q)", name)
		assert.Contains(t, []Mode{ModeExec, ModeShell}, p.Mode, "mode of %s", name)
	}
	_, ok := Lookup("cisco_catos")
	require.False(t, ok, "Lookup of an unknown platform succeeded")
	require.False(t, IsKnown(""), "empty platform is known")
}

func TestLookupReturnsCopies(t *testing.T) {
	p, _ := Lookup("cisco_iosxe")
	p.PagingDisable[0] = "mutated"
	q, _ := Lookup("cisco_iosxe")
	require.NotEqual(t, "mutated", q.PagingDisable[0], "Lookup exposes the shared table")
}

func TestPrompts(t *testing.T) {
	tests := []struct {
		platform string
		line     string
		want     bool
	}{
		{"cisco_ios", "r12#", true},
		{"cisco_ios", "r12>", true},
		{"cisco_iosxe", "r12(config-if)#", true},
		{"cisco_iosxe", "  Hardware is Gigabit Ethernet", false},
		{"cisco_iosxe", "r12# show version", false},
		{"cisco_nxos", "nx3#", true},
		{"cisco_iosxr", "RP/0/RP0/CPU0:xr4#", true},
		{"cisco_iosxr", "RP/0/RP0/CPU0:xr4>", false},
		{"arista_eos", "sw5#", true},
		{"arista_eos", "sw5(config)#", true},
		{"juniper_junos", "admin@mx6> ", true},
		{"juniper_junos", "admin@mx6# ", true},
		{"juniper_junos", "{master:0}", false},
		{"generic", "fw7> ", true},
		{"generic", "fw7$", true},
		{"linux", "admin@srv8:~$ ", true},
	}
	for _, tt := range tests {
		t.Run(tt.platform+"/"+tt.line, func(t *testing.T) {
			p, ok := Lookup(tt.platform)
			require.True(t, ok, "no profile %s", tt.platform)
			assert.Equal(t, tt.want, p.Prompt.MatchString(tt.line), "prompt %q matches %q", p.Prompt, tt.line)
		})
	}
}

func TestMoreAndErrorMarkers(t *testing.T) {
	tests := []struct {
		name, platform, more, errLine string
	}{
		{"ios", "cisco_ios", " --More-- ", "% Invalid input detected at '^' marker."},
		{"nxos", "cisco_nxos", " --More--", "% Invalid command at '^' marker."},
		{"xr", "cisco_iosxr", " --More-- ", "% Invalid input detected at '^' marker."},
		{"eos", "arista_eos", " --More-- ", "% Invalid input"},
		{"junos", "juniper_junos", "---(more)---", "syntax error, expecting <command>."},
		{"junos percent", "juniper_junos", "---(more 45%)---", "unknown command."},
		{"generic", "generic", "-- More --", "% Unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := Lookup(tt.platform)
			assert.Regexp(t, p.More, tt.more, "more prompt of %s", tt.platform)
			assert.NotEmpty(t, p.ErrorMarker(tt.errLine), "error marker in %q", tt.errLine)
			assert.Empty(t, p.ErrorMarker("Cisco IOS XE Software, Version 17.9.4a"), "error marker in a normal line")
		})
	}
}

// TestErrorMarkersPerPlatform: each profile recognises the lines its devices print for a
// rejected command, a refused privilege and a failed operation, and not ordinary output.
func TestErrorMarkersPerPlatform(t *testing.T) {
	tests := []struct {
		platform string
		lines    []string
	}{
		{"cisco_ios", []string{"% Invalid input detected at '^' marker.", "% Incomplete command.", "%Error opening scp://image.bin (Permission denied)", "% Bad secrets"}},
		{"cisco_iosxe", []string{"% Ambiguous command:  \"sh i\"", "% Authorization failed.", "%Error opening tftp://10.0.0.5/x (Timed out)"}},
		{"cisco_nxos", []string{"% Invalid command at '^' marker.", "% Permission denied", "% Invalid parameter detected at '^' marker."}},
		{"cisco_iosxr", []string{"% Invalid input detected at '^' marker.", "% This command is not authorized", "%Error opening scp://image.bin (Permission denied)"}},
		{"arista_eos", []string{"% Invalid input (privileged mode required)", "% Error copying scp: to flash: (Permission denied)", "% Authorization denied for command 'reload'"}},
		{"juniper_junos", []string{"syntax error, expecting <command>.", "unknown command.", "error: file-fetch failed"}},
		{"generic", []string{"% Unknown command: frobnicate", "% Error: permission denied", "sh: frobnicate: command not found"}},
	}
	ordinary := []string{"Building configuration...", "[OK]", "GigabitEthernet1/0/1 is up, line protocol is up", "Success rate is 100 percent (5/5)"}
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			p, ok := Lookup(tt.platform)
			require.True(t, ok, "no profile %s", tt.platform)
			for _, l := range tt.lines {
				if tt.platform == "cisco_ios" && l == "% Bad secrets" {
					assert.Empty(t, p.ErrorMarker(l), "a refused enable is not a command error: %q", l)
					continue
				}
				assert.NotEmpty(t, p.ErrorMarker(l), "error marker in %q", l)
			}
			for _, l := range ordinary {
				assert.Empty(t, p.ErrorMarker(l), "error marker in ordinary output %q", l)
			}
		})
	}
}

// TestEnableData: the platforms with a privileged mode say how to enter it; the others do not.
func TestEnableData(t *testing.T) {
	for _, name := range Known() {
		t.Run(name, func(t *testing.T) {
			p, _ := Lookup(name)
			switch name {
			case "cisco_ios", "cisco_iosxe", "arista_eos":
				require.True(t, p.Enable.Supported(), "privileged mode of %s", name)
				assert.Equal(t, "enable", p.Enable.Command, "enable command")
				assert.Regexp(t, p.Enable.Password, "Password: ", "enable secret question")
				assert.Equal(t, []string{">", "#"}, []string{p.Enable.Unprivileged, p.Enable.Privileged}, "prompt suffixes")
				assert.True(t, p.Prompt.MatchString("r1>") && p.Prompt.MatchString("r1#"), "prompt pattern takes both levels")
			default:
				assert.False(t, p.Enable.Supported(), "%s has no privileged mode to enter", name)
			}
		})
	}
}
