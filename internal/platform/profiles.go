package platform

// Shared building blocks of the prompt patterns. A host name is 1-63
// characters of letters, digits and . _ - / : @; configuration sub-modes add a
// parenthesised suffix such as "(config-if)".
const (
	hostChars  = `[\w.\-@/:]`
	subMode    = `(\([\w.\-@/:+]{0,40}\))?`
	ciscoMore  = `^\s*-+\s?More\s?-+\s*$`
	ciscoFails = "% Invalid input detected"
	// ciscoEnable is the question IOS-like CLIs ask for the enable secret.
	ciscoEnable = `^Password:\s?$`
)

// specs is the profile table. To add a platform, append an entry (and, for
// tests, a personality in infra/devicesim).
var specs = []spec{
	{
		name:           "linux",
		description:    "Linux / Unix host (OpenSSH), command on the exec channel",
		mode:           ModeExec,
		execSupported:  true,
		execExitStatus: true,
		prompt:         `^[\w.\-@:~/\[\] ]{1,120}[$#]\s?$`,
		more:           `^--More--(\(\d+%\))?\s*$`,
		errorMarkers:   nil, // the exit status tells
		noise:          noiseOf(linuxNoise, clockNoise),
	},
	ios("cisco_ios", "Cisco IOS"),
	ios("cisco_iosxe", "Cisco IOS-XE"),
	{
		name:          "cisco_nxos",
		description:   "Cisco NX-OS",
		mode:          ModeShell,
		execSupported: true,
		prompt:        `^` + hostChars + `{1,63}(\(maint-mode\))?` + subMode + `[>#]\s?$`,
		pagingDisable: []string{"terminal length 0", "terminal width 511"},
		more:          ciscoMore,
		errorMarkers:  []string{"% Invalid command", ciscoFails, "% Incomplete command", "% Ambiguous command", "% Invalid parameter", "% Permission denied", "% Error"},
		noise:         noiseOf(nxosNoise, ciscoConfigNoise, uptimeNoise, clockNoise),
	},
	{
		name:          "cisco_iosxr",
		description:   "Cisco IOS-XR (prompt carries the node, e.g. RP/0/RP0/CPU0:xr1#)",
		mode:          ModeShell,
		execSupported: true,
		prompt:        `^` + hostChars + `{1,100}` + subMode + `#\s?$`,
		pagingDisable: []string{"terminal length 0", "terminal width 512"},
		more:          ciscoMore,
		errorMarkers:  []string{ciscoFails, "% Incomplete command", "% Ambiguous command", "%Error", "% This command is not authorized", "% Permission denied"},
		noise:         noiseOf(iosxrNoise, ciscoConfigNoise, uptimeNoise, clockNoise),
	},
	{
		name:           "arista_eos",
		description:    "Arista EOS",
		mode:           ModeShell,
		execSupported:  true,
		prompt:         `^` + hostChars + `{1,63}` + subMode + `[>#]\s?$`,
		pagingDisable:  []string{"terminal length 0", "terminal width 32767"},
		more:           ciscoMore,
		errorMarkers:   []string{"% Invalid input", "% Incomplete command", "% Ambiguous command", "% Unavailable command", "% Not supported", "% Error", "% Authorization denied"},
		noise:          noiseOf(eosNoise, ciscoConfigNoise, uptimeNoise, clockNoise),
		enable:         "enable",
		enablePassword: ciscoEnable,
		unprivileged:   ">",
		privileged:     "#",
	},
	{
		name:          "juniper_junos",
		description:   "Juniper Junos (operational mode, user@host>)",
		mode:          ModeShell,
		execSupported: true,
		prompt:        `^[\w.\-@()/:]{1,63}[>#%]\s?$`,
		pagingDisable: []string{"set cli screen-length 0", "set cli screen-width 511", "set cli complete-on-space off"},
		more:          `^-{2,3}\s?\(more( \d+%)?\)\s?-{2,3}\s*$`,
		errorMarkers:  []string{"syntax error", "unknown command", "is ambiguous", "No valid completions", "error: "},
		noise:         noiseOf(junosNoise, clockNoise),
	},
	{
		name:          "generic",
		description:   "Any prompt-driven CLI: no paging command, answers any pager prompt",
		mode:          ModeShell,
		execSupported: false,
		prompt:        `^[\w.\-@()/:~\[\] ]{1,120}[>#$%]\s?$`,
		more:          `(?i)^\s*-*\s?\(?more( \d+%)?\)?\s?-*\s*$`,
		errorMarkers:  []string{"% Invalid", "% Unknown command", "% Incomplete command", "% Ambiguous command", "% Error", "syntax error", "Invalid command", "Unknown command", "command not found"},
		noise:         noiseOf(ciscoConfigNoise, nxosNoise, iosxrNoise, eosNoise, junosNoise, uptimeNoise, clockNoise),
	},
}

// ios is the profile of Cisco IOS and IOS-XE, which share their CLI: "r1>" until "enable"
// and the enable secret, "r1#" after.
func ios(name, description string) spec {
	return spec{
		name:          name,
		description:   description,
		mode:          ModeShell,
		execSupported: true,
		prompt:        `^` + hostChars + `{1,63}` + subMode + `[>#]\s?$`,
		pagingDisable: []string{"terminal length 0", "terminal width 511"},
		more:          ciscoMore,
		errorMarkers: []string{ciscoFails, "% Incomplete command", "% Ambiguous command", "% Unknown command",
			"% Bad IP address", "%Error", "% Error", "% Permission denied", "% Authorization failed"},
		enable:         "enable",
		enablePassword: ciscoEnable,
		unprivileged:   ">",
		privileged:     "#",
		noise:          noiseOf(ciscoConfigNoise, uptimeNoise, clockNoise),
	}
}
