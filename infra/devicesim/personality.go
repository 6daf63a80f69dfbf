package devicesim

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// personality is how one platform looks and behaves on the wire. The simulator's sessions read
// everything platform-specific from here: a new row is a new platform, with no code elsewhere.
type personality struct {
	prefix        string   // host name prefix
	serverVersion string   // SSH identification string
	kbdOnly       bool     // offers keyboard-interactive only (no "password" method)
	versions      []string // software version table
	model         string
	product       string // first line of "show version"
	more          string // pager prompt
	moreErase     string // written after the pager key press
	// exec says whether the device accepts the SSH exec request (internal/platform's
	// ExecSupported for the real platform).
	exec bool
	// execShell, when set, runs exec commands as a Unix shell does: output lines end in "\n"
	// and the channel closes with the command's exit status. Otherwise exec commands come from
	// the command table, lines end in "\r\n" and no exit status is sent, as on network gear.
	execShell func(s *simSession, w *writer, cmdline string) int
	// prompt renders the prompt for a device.
	prompt func(f *facts) string
	// motd is written when the shell starts, before the first prompt.
	motd func(f *facts) string
	// commands maps canonical command word sequences to handlers.
	commands []command
	// invalid renders the error for an unknown command typed after prompt.
	invalid func(prompt string, words []string) []string
	// enable is the platform's privileged mode (nil: none).
	enable *privilege
}

// facts are a device's deterministic, seeded particulars.
type facts struct {
	hostname, version, serial, model, site, username, product string
	uptimeWeeks, uptimeDays, uptimeHours                      int
	interfaces, routes                                        int
	octet2, octet3                                            int
	mac                                                       [3]int
	// noisy makes the configuration's noise lines (change and save times, ntp clock-period, the
	// byte count) differ at every showing, as they do on a real device (Spec.ConfigNoise).
	noisy bool
	// shown counts the configuration's showings; revision, when non-zero, is a real change in
	// it (Fleet.SetConfigRevision).
	shown, revision atomic.Int64
}

// action is what a command does.
type action int

const (
	actOutput     action = iota // print output (subject to faults and paging)
	actPagingOff                // disable paging (argument "0") or set page length
	actSilent                   // accepted, prints nothing
	actExit                     // close the session
	actInfoOutput               // short informational output, no faults
	actDialog                   // ask the command's dialog, then act on the answers
	actEnable                   // enter privileged mode (asks for the enable secret)
	actDisable                  // leave privileged mode
	actPing                     // a slow ping of the typed address
)

// command is one CLI command, matched IOS-style: each typed word may be a
// prefix of the canonical word; "<n>" matches a number.
type command struct {
	words  []string
	act    action
	output func(f *facts, emit func(string) bool, cfgBytes int)
	// reply, for a settings command, is the line the shell answers it with (nil: none); arg is
	// the number typed for "<n>".
	reply func(arg string) string
	// dialog is what an actDialog command asks.
	dialog *dialog
	// privileged commands are refused at the unprivileged prompt.
	privileged bool
}

func cmd(words string, act action, out func(f *facts, emit func(string) bool, cfgBytes int)) command {
	return command{words: strings.Fields(words), act: act, output: out}
}

// dialogCmd returns a command that runs dl.
func dialogCmd(words string, dl *dialog) command {
	return command{words: strings.Fields(words), act: actDialog, dialog: dl}
}

// priv returns c refused at the unprivileged prompt.
func (c command) priv() command {
	c.privileged = true
	return c
}

// withReply returns c answering with reply in the shell.
func (c command) withReply(reply func(arg string) string) command {
	c.reply = reply
	return c
}

// match finds the command for the typed words. It returns the command and the
// numeric argument, if any.
func match(cmds []command, typed []string) (command, string, bool) {
	for _, c := range cmds {
		if len(c.words) != len(typed) {
			continue
		}
		arg := ""
		ok := true
		for i, w := range c.words {
			t := strings.ToLower(typed[i])
			if w == "<any>" {
				arg = typed[i]
				continue
			}
			if w == "<n>" {
				if _, err := strconv.Atoi(t); err != nil {
					ok = false
					break
				}
				arg = t
				continue
			}
			if t == "" || !strings.HasPrefix(w, t) {
				ok = false
				break
			}
		}
		if ok {
			return c, arg, true
		}
	}
	return command{}, "", false
}

// personalities are the simulated platforms by name.
var personalities = map[string]*personality{}

// platformNames returns the simulated platforms' names, sorted.
func platformNames() []string { return slices.Sorted(maps.Keys(personalities)) }

func init() {
	ciscoCommon := func(runCfg string) []command {
		return []command{
			cmd("show version", actOutput, ciscoVersion),
			cmd(runCfg, actOutput, iosConfig).priv(),
			cmd("ping <any>", actPing, nil),
			cmd("show interfaces", actOutput, iosInterfaces),
			cmd("show ip route", actOutput, iosRoutes),
			cmd("show clock", actInfoOutput, func(f *facts, emit func(string) bool, _ int) {
				emit("*12:34:56.789 UTC Mon Jan 6 2025")
			}),
			cmd("terminal length <n>", actPagingOff, nil),
			cmd("terminal width <n>", actSilent, nil),
			cmd("exit", actExit, nil),
			cmd("logout", actExit, nil),
			cmd("quit", actExit, nil),
		}
	}
	caretError := func(msg string) func(string, []string) []string {
		return func(prompt string, _ []string) []string {
			return []string{strings.Repeat(" ", len(prompt)) + "^", msg, ""}
		}
	}
	// IOS asks three times for the enable secret and answers a privileged command at ">" as
	// if it did not exist.
	iosEnable := &privilege{unprivileged: ">", password: "Password: ", tries: 3,
		denied: []string{"% Bad secrets", ""}, refused: caretError("% Invalid input detected at '^' marker.")}
	iosDialogs := []command{
		cmd("enable", actEnable, nil),
		cmd("disable", actDisable, nil),
		dialogCmd("copy running-config startup-config", &dialog{
			asks: []ask{{question: "Destination filename [startup-config]? "}},
			done: []string{"Building configuration...", "[OK]"},
		}).priv(),
		dialogCmd("clear counters", &dialog{
			asks: []ask{{question: `Clear "show interface" counters on all interfaces [confirm]`, accept: confirmAnswer}},
			done: []string{"%CLEAR-5-COUNTERS: Clear counter on all interfaces"},
		}).priv(),
		dialogCmd("copy scp: flash:", scpDialog("%Error opening scp://image.bin (Permission denied)")).priv(),
	}
	ciscoMOTD := func(f *facts) string {
		return "\r\n*************************************************\r\n" +
			"* " + f.hostname + ": authorised access only      \r\n" +
			"*************************************************\r\n\r\n"
	}
	personalities["cisco_ios"] = &personality{
		exec:    true,
		product: "Cisco IOS Software",
		prefix:  "r", serverVersion: "SSH-2.0-Cisco-1.25",
		versions: []string{"15.9(3)M8", "15.7(3)M9", "15.2(4)M11"}, model: "CISCO2911/K9",
		more: " --More-- ", moreErase: strings.Repeat("\b", 10) + strings.Repeat(" ", 10) + strings.Repeat("\b", 10),
		prompt:   func(f *facts) string { return f.hostname + "#" },
		motd:     ciscoMOTD,
		commands: append(ciscoCommon("show running-config"), iosDialogs...),
		invalid:  caretError("% Invalid input detected at '^' marker."),
		enable:   iosEnable,
	}
	personalities["cisco_iosxe"] = &personality{
		exec:    true,
		product: "Cisco IOS XE Software",
		prefix:  "ce", serverVersion: "SSH-2.0-Cisco-1.25",
		versions: []string{"17.9.4a", "17.12.2", "17.6.5"}, model: "C9300-48P",
		more: " --More-- ", moreErase: strings.Repeat("\b", 10) + strings.Repeat(" ", 10) + strings.Repeat("\b", 10),
		prompt:   func(f *facts) string { return f.hostname + "#" },
		motd:     ciscoMOTD,
		commands: append(ciscoCommon("show running-config"), iosDialogs...),
		invalid:  caretError("% Invalid input detected at '^' marker."),
		enable:   iosEnable,
	}
	personalities["cisco_nxos"] = &personality{
		exec:    true,
		product: "Cisco Nexus Operating System (NX-OS) Software",
		prefix:  "nx", serverVersion: "SSH-2.0-OpenSSH_8.3",
		versions: []string{"10.3(4a)", "9.3(12)", "10.2(6)"}, model: "N9K-C93180YC-FX",
		more: " --More-- ", moreErase: "\r          \r",
		prompt: func(f *facts) string { return f.hostname + "#" },
		motd: func(f *facts) string {
			return "Cisco Nexus Operating System (NX-OS) Software\r\nTAC support: http://www.cisco.com/tac\r\n"
		},
		commands: append(ciscoCommon("show running-config"),
			dialogCmd("write erase", &dialog{
				intro: []string{"Warning: This command will erase the startup-configuration."},
				asks:  []ask{{question: "Do you wish to proceed anyway? (y/n)  [n] ", accept: yesAnswer}},
			}),
			dialogCmd("copy scp: bootflash:", scpDialog("% Permission denied"))),
		invalid: caretError("% Invalid command at '^' marker."),
	}
	personalities["cisco_iosxr"] = &personality{
		exec:    true,
		product: "Cisco IOS XR Software",
		prefix:  "xr", serverVersion: "SSH-2.0-Cisco-2.0", kbdOnly: true,
		versions: []string{"7.9.2", "7.11.1", "24.1.1"}, model: "ASR-9901",
		more: " --More-- ", moreErase: strings.Repeat("\b", 10) + strings.Repeat(" ", 10) + strings.Repeat("\b", 10),
		prompt: func(f *facts) string { return "RP/0/RP0/CPU0:" + f.hostname + "#" },
		motd: func(f *facts) string {
			return "\r\n" + f.hostname + " (IOS XR) - unauthorised access prohibited\r\n\r\n"
		},
		commands: append(ciscoCommon("show running-config"), cmd("show route", actOutput, iosRoutes),
			dialogCmd("clear counters", &dialog{
				asks: []ask{{question: `Clear "show interface" counters on all interfaces [confirm]`, accept: confirmAnswer}},
			}),
			dialogCmd("copy scp: harddisk:", scpDialog("%Error opening scp://image.bin (Permission denied)"))),
		invalid: caretError("% Invalid input detected at '^' marker."),
	}
	personalities["arista_eos"] = &personality{
		exec:    true,
		product: "Arista EOS",
		prefix:  "sw", serverVersion: "SSH-2.0-OpenSSH_7.8",
		versions: []string{"4.30.4M", "4.31.2F", "4.29.6M"}, model: "DCS-7050SX3-48YC8",
		more: " --More-- ", moreErase: "\r          \r",
		prompt: func(f *facts) string { return f.hostname + "#" },
		motd: func(f *facts) string {
			return "Last login: Mon Jan  6 12:00:00 2025 from 10.0.0.1\r\n"
		},
		commands: append(ciscoCommon("show running-config"),
			cmd("enable", actEnable, nil),
			cmd("disable", actDisable, nil),
			dialogCmd("write erase", &dialog{
				asks: []ask{{question: "Proceed with erasing startup configuration? [confirm]", accept: confirmAnswer}},
			}).priv(),
			dialogCmd("copy scp: flash:", scpDialog("% Error copying scp: to flash: (Permission denied)")).priv()),
		invalid: func(string, []string) []string {
			return []string{"% Invalid input"}
		},
		enable: &privilege{unprivileged: ">", password: "Password: ", tries: 1, denied: []string{"% Access denied"},
			refused: func(string, []string) []string { return []string{"% Invalid input (privileged mode required)"} }},
	}
	personalities["juniper_junos"] = &personality{
		exec:    true,
		product: "Junos OS",
		prefix:  "mx", serverVersion: "SSH-2.0-OpenSSH_7.5", kbdOnly: true,
		versions: []string{"22.4R3-S2", "23.2R1.14", "21.4R3-S5"}, model: "mx204",
		more: "---(more)---", moreErase: "\r            \r",
		prompt: func(f *facts) string { return f.username + "@" + f.hostname + "> " },
		motd: func(f *facts) string {
			return "--- JUNOS " + f.version + " Kernel 64-bit  JNPR-12.1-20230901\r\n"
		},
		commands: []command{
			cmd("show version", actOutput, junosVersion),
			cmd("show configuration", actOutput, junosConfig),
			cmd("show interfaces", actOutput, junosInterfaces),
			cmd("show route", actOutput, junosRoutes),
			cmd("set cli screen-length <n>", actPagingOff, nil).withReply(func(arg string) string { return "Screen length set to " + arg }),
			cmd("set cli screen-width <n>", actSilent, nil).withReply(func(arg string) string { return "Screen width set to " + arg }),
			cmd("set cli complete-on-space off", actSilent, nil),
			dialogCmd("request system storage cleanup", &dialog{
				intro: []string{"", "Please check the list of files to be deleted below.", "List of files to delete:", "",
					"         Size Date         Name", "        1.2M Jan  6 12:00 /var/log/messages.0.gz", ""},
				asks: []ask{{question: "Delete these files ? [yes,no] (no) ", accept: yesAnswer}},
				done: []string{"", "Deleting files..."},
			}),
			dialogCmd("file copy scp://backup@10.0.0.5/config.tgz /var/tmp/", &dialog{
				asks:    []ask{{question: "backup@10.0.0.5's password: ", hidden: true, accept: passwordAnswer}},
				done:    []string{"config.tgz                              100%  123KB 1.2MB/s   00:00"},
				refused: []string{"error: file-fetch failed", "error: could not fetch local copy of file"},
			}),
			cmd("exit", actExit, nil),
			cmd("quit", actExit, nil),
		},
		invalid: func(prompt string, words []string) []string {
			caret := strings.Repeat(" ", len(prompt)) + "^"
			if len(words) > 0 && (strings.HasPrefix("show", words[0]) || strings.HasPrefix("set", words[0])) {
				return []string{caret, "syntax error, expecting <command>."}
			}
			return []string{caret, "unknown command."}
		},
	}
	personalities["generic"] = &personality{
		exec:    false,
		product: "vFW OS",
		prefix:  "fw", serverVersion: "SSH-2.0-dropbear_2022.83",
		versions: []string{"3.4.0", "3.2.1", "2.9.8"}, model: "vFW-100",
		more: "-- More --", moreErase: "\r          \r",
		prompt: func(f *facts) string { return f.hostname + "> " },
		motd:   func(f *facts) string { return "Welcome to " + f.hostname + "\r\n" },
		commands: []command{
			cmd("show version", actOutput, ciscoVersion),
			cmd("show config", actOutput, iosConfig),
			cmd("show interfaces", actOutput, iosInterfaces),
			cmd("show route", actOutput, iosRoutes),
			dialogCmd("clear counters", &dialog{
				asks: []ask{{question: "Are you sure? (y/n) ", accept: yesAnswer}},
				done: []string{"Counters cleared."},
			}),
			dialogCmd("copy scp: flash:", scpDialog("% Error: permission denied")),
			cmd("exit", actExit, nil),
		},
		invalid: func(_ string, words []string) []string {
			return []string{"% Unknown command: " + strings.Join(words, " ")}
		},
	}
	personalities["linux"] = &personality{
		exec: true, execShell: (*simSession).linux,
		product: "Debian GNU/Linux",
		prefix:  "srv", serverVersion: "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
		versions: []string{"6.1.0-28-amd64", "6.12.12-amd64", "5.10.0-33-amd64"}, model: "x86_64",
		more: "--More--", moreErase: "\r        \r",
		prompt: func(f *facts) string { return f.username + "@" + f.hostname + ":~$ " },
		motd: func(f *facts) string {
			return "Linux " + f.hostname + " " + f.version + " #1 SMP Debian x86_64\r\n\r\nLast login: Mon Jan  6 12:00:00 2025\r\n"
		},
		commands: []command{
			cmd("exit", actExit, nil),
			cmd("logout", actExit, nil),
		},
		invalid: func(_ string, words []string) []string {
			return []string{"-bash: " + words[0] + ": command not found"}
		},
	}
}

// newFacts derives a device's particulars from the seed and its index.
func newFacts(seed int64, index int, ds DeviceSpec, p *personality, username string) *facts {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(index)+1))
	const alnum = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
	serial := make([]byte, 11)
	for i := range serial {
		serial[i] = alnum[rng.IntN(len(alnum))]
	}
	return &facts{
		hostname:    fmt.Sprintf("%s%d", p.prefix, index+1),
		version:     p.versions[ds.Version%len(p.versions)],
		serial:      string(serial),
		model:       p.model,
		product:     p.product,
		site:        fmt.Sprintf("site-%02d", index/25+1),
		username:    username,
		uptimeWeeks: rng.IntN(150),
		uptimeDays:  rng.IntN(7),
		uptimeHours: rng.IntN(24),
		interfaces:  8 + rng.IntN(24),
		routes:      10 + rng.IntN(30),
		octet2:      rng.IntN(256),
		octet3:      rng.IntN(256),
		mac:         [3]int{rng.IntN(256), rng.IntN(256), rng.IntN(256)},
	}
}

func (f *facts) uptime() string {
	return fmt.Sprintf("%d weeks, %d days, %d hours, %d minutes", f.uptimeWeeks, f.uptimeDays, f.uptimeHours, (f.uptimeWeeks*7+f.uptimeDays)%60)
}

func ciscoVersion(f *facts, emit func(string) bool, _ int) {
	lines := []string{
		f.product + ", Version " + f.version,
		"Cisco IOS Software, " + f.model + " Software, Version " + f.version + ", RELEASE SOFTWARE (fc2)",
		"Technical Support: http://www.cisco.com/techsupport",
		"Copyright (c) 1986-2024 by Cisco Systems, Inc.",
		"Compiled Tue 10-Dec-24 09:12 by mcpre",
		"",
		"ROM: System Bootstrap, Version 17.9.1r, RELEASE SOFTWARE (P)",
		"BOOTLDR: System Bootstrap, Version 17.9.1r",
		"",
		f.hostname + " uptime is " + f.uptime(),
		"Uptime for this control processor is " + f.uptime(),
		"System returned to ROM by Reload Command",
		"System image file is \"flash:packages.conf\"",
		"Last reload reason: Reload Command",
		"",
		"cisco " + f.model + " (X86) processor with 1419044K/6147K bytes of memory.",
		"Processor board ID " + f.serial,
		fmt.Sprintf("%d Gigabit Ethernet interfaces", f.interfaces),
		"2048K bytes of non-volatile configuration memory.",
		"8388608K bytes of physical memory.",
		"1638400K bytes of Crash Files at crashinfo:.",
		"11264000K bytes of Flash at flash:.",
		"",
		fmt.Sprintf("Base Ethernet MAC Address          : 00:1e:7a:%02x:%02x:%02x", f.mac[0], f.mac[1], f.mac[2]),
		"Motherboard Assembly Number        : 73-18775-03",
		"Motherboard Serial Number          : " + f.serial,
		"Model Revision Number              : B0",
		"Model Number                       : " + f.model,
		"System Serial Number               : " + f.serial,
		"",
		"Switch Ports Model              SW Version        SW Image",
		"------ ----- -----              ----------        ----------",
		fmt.Sprintf("*    1 %-5d %-18s %-17s CAT9K_IOSXE", f.interfaces, f.model, f.version),
		"",
		"Configuration register is 0x102",
	}
	for _, l := range lines {
		if !emit(l) {
			return
		}
	}
}

// iosConfig prints an IOS-style configuration; with cfgBytes > 0 it pads the
// configuration with interface blocks up to that many bytes.
func iosConfig(f *facts, emit func(string) bool, cfgBytes int) {
	n := 0
	out := func(s string) bool { n += len(s) + 1; return emit(s) }
	head := []string{"Building configuration...", "", "Current configuration : 8123 bytes", "!"}
	if f.noisy {
		k := f.shown.Add(1)
		at := fmt.Sprintf("%02d:%02d:%02d UTC Mon Dec 7 2026", k/3600%24, k/60%60, k%60)
		head = []string{"Building configuration...", "", fmt.Sprintf("Current configuration : %d bytes", 8123+k%97), "!",
			"! Last configuration change at " + at + " by netauto", "! NVRAM config last updated at " + at + " by netauto", "!"}
	}
	head = append(head,
		"version "+f.version, "service timestamps debug datetime msec", "service password-encryption", "!",
		"hostname "+f.hostname, "!", "boot-start-marker", "boot-end-marker", "!")
	if rev := f.revision.Load(); rev > 0 {
		head = append(head, fmt.Sprintf("snmp-server location %s rack %d", f.site, rev), "!")
	}
	if f.noisy {
		head = append(head, fmt.Sprintf("ntp clock-period %d", 36028797018963968+f.shown.Load()*7919), "!")
	}
	head = append(head,
		"aaa new-model", "aaa authentication login default local", "!",
		"ip domain name "+f.site+".example.net", "ip name-server 10.0.0.53", "!",
		"username netauto privilege 15 secret 9 $9$abcdefghijklmn$opqrstuvwxyz0123456789", "!",
	)
	for _, l := range head {
		if !out(l) {
			return
		}
	}
	for i := 1; ; i++ {
		if cfgBytes <= 0 && i > f.interfaces {
			break
		}
		if cfgBytes > 0 && n >= cfgBytes-200 {
			break
		}
		block := []string{
			fmt.Sprintf("interface GigabitEthernet1/0/%d", i),
			fmt.Sprintf(" description %s-port-%d", f.hostname, i),
			fmt.Sprintf(" ip address 10.%d.%d.%d 255.255.255.252", f.octet2, i%256, (i*4+1)%256),
			" no shutdown", "!",
		}
		for _, l := range block {
			if !out(l) {
				return
			}
		}
	}
	for _, l := range []string{"ip route 0.0.0.0 0.0.0.0 10.0.0.1", "!", "line vty 0 15", " transport input ssh", "!", "end"} {
		if !out(l) {
			return
		}
	}
}

func iosInterfaces(f *facts, emit func(string) bool, _ int) {
	for i := 1; i <= f.interfaces; i++ {
		lines := []string{
			fmt.Sprintf("GigabitEthernet1/0/%d is up, line protocol is up (connected)", i),
			fmt.Sprintf("  Hardware is Gigabit Ethernet, address is 001e.7a%02x.%02x%02x (bia 001e.7a%02x.%02x%02x)", f.mac[0], f.mac[1], i%256, f.mac[0], f.mac[1], i%256),
			fmt.Sprintf("  Description: %s-port-%d", f.hostname, i),
			"  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,",
			"     reliability 255/255, txload 1/255, rxload 1/255",
			fmt.Sprintf("     %d packets input, %d bytes", 1000*i+f.uptimeHours, 64000*i+f.uptimeDays),
		}
		for _, l := range lines {
			if !emit(l) {
				return
			}
		}
	}
}

func iosRoutes(f *facts, emit func(string) bool, _ int) {
	head := []string{
		"Codes: L - local, C - connected, S - static, R - RIP, M - mobile, B - BGP",
		"       D - EIGRP, EX - EIGRP external, O - OSPF, IA - OSPF inter area",
		"",
		"Gateway of last resort is 10.0.0.1 to network 0.0.0.0",
		"",
		"S*    0.0.0.0/0 [1/0] via 10.0.0.1",
	}
	for _, l := range head {
		if !emit(l) {
			return
		}
	}
	for i := 1; i <= f.routes; i++ {
		l := fmt.Sprintf("O     10.%d.%d.0/24 [110/%d] via 10.%d.0.%d, 2w1d, GigabitEthernet1/0/%d", f.octet2, i, 10+i, f.octet2, i%254+1, i%f.interfaces+1)
		if !emit(l) {
			return
		}
	}
}

func junosVersion(f *facts, emit func(string) bool, _ int) {
	lines := []string{
		"Hostname: " + f.hostname,
		"Model: " + f.model,
		"Family: junos",
		"Junos: " + f.version,
		"JUNOS OS Kernel 64-bit  [20230901.abcd_builder_stable_12]",
		"JUNOS OS libs [20230901.abcd_builder_stable_12]",
		"JUNOS OS runtime [20230901.abcd_builder_stable_12]",
		"JUNOS Packet Forwarding Engine Support (MX Common) [" + f.version + "]",
		"JUNOS Routing Software Suite [" + f.version + "]",
		"Serial number: " + f.serial,
		"Uptime: " + f.uptime(),
	}
	for _, l := range lines {
		if !emit(l) {
			return
		}
	}
}

func junosConfig(f *facts, emit func(string) bool, cfgBytes int) {
	n := 0
	out := func(s string) bool { n += len(s) + 1; return emit(s) }
	for _, l := range []string{"## Last commit: 2025-01-06 12:00:00 UTC by netauto", "version " + f.version + ";", "system {", "    host-name " + f.hostname + ";", "    services {", "        ssh;", "    }", "}", "interfaces {"} {
		if !out(l) {
			return
		}
	}
	for i := 0; ; i++ {
		if cfgBytes <= 0 && i >= f.interfaces {
			break
		}
		if cfgBytes > 0 && n >= cfgBytes-100 {
			break
		}
		block := []string{
			fmt.Sprintf("    ge-0/0/%d {", i),
			fmt.Sprintf("        description %s-port-%d;", f.hostname, i),
			fmt.Sprintf("        unit 0 { family inet { address 10.%d.%d.1/30; } }", f.octet2, i%256),
			"    }",
		}
		for _, l := range block {
			if !out(l) {
				return
			}
		}
	}
	out("}")
}

func junosInterfaces(f *facts, emit func(string) bool, _ int) {
	for i := 0; i < f.interfaces; i++ {
		lines := []string{
			fmt.Sprintf("Physical interface: ge-0/0/%d, Enabled, Physical link is Up", i),
			fmt.Sprintf("  Interface index: %d, SNMP ifIndex: %d", 148+i, 520+i),
			fmt.Sprintf("  Description: %s-port-%d", f.hostname, i),
			"  Link-level type: Ethernet, MTU: 1514, Speed: 1000mbps",
			fmt.Sprintf("  Current address: 00:05:86:%02x:%02x:%02x", f.mac[0], f.mac[1], i%256),
		}
		for _, l := range lines {
			if !emit(l) {
				return
			}
		}
	}
}

func junosRoutes(f *facts, emit func(string) bool, _ int) {
	if !emit(fmt.Sprintf("inet.0: %d destinations, %d routes (%d active, 0 holddown, 0 hidden)", f.routes, f.routes, f.routes)) {
		return
	}
	emit("+ = Active Route, - = Last Active, * = Both")
	emit("")
	for i := 1; i <= f.routes; i++ {
		if !emit(fmt.Sprintf("10.%d.%d.0/24     *[OSPF/10] 2w1d 04:00:00, metric %d", f.octet2, i, 10+i)) {
			return
		}
		if !emit(fmt.Sprintf("                    >  to 10.%d.0.%d via ge-0/0/%d.0", f.octet2, i%254+1, i%f.interfaces)) {
			return
		}
	}
}

// ipAddr is Linux's `ip addr` (about 1.2 KB): the loopback and two Ethernet interfaces with the
// device's own MAC and addresses, and DHCP lease times that count down as on a real host.
func ipAddr(f *facts, emit func(string) bool) {
	lease := 86400 - int(time.Now().Unix()%86400)
	ls := []string{
		"1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000",
		"    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00",
		"    inet 127.0.0.1/8 scope host lo",
		"       valid_lft forever preferred_lft forever",
		"    inet6 ::1/128 scope host noprefixroute",
		"       valid_lft forever preferred_lft forever",
	}
	for i := range 2 {
		mac := fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", i, f.mac[0]&0xff, f.mac[1]&0xff, f.mac[2]&0xff)
		ls = append(ls,
			fmt.Sprintf("%d: eth%d: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000", i+2, i),
			"    link/ether "+mac+" brd ff:ff:ff:ff:ff:ff",
			fmt.Sprintf("    altname enp0s%d", i+3),
			fmt.Sprintf("    inet 10.%d.%d.%d/24 brd 10.%d.%d.255 scope global dynamic eth%d", f.octet2, f.octet3+i, 10+f.mac[2]%200, f.octet2, f.octet3+i, i),
			fmt.Sprintf("       valid_lft %dsec preferred_lft %dsec", lease, lease),
			fmt.Sprintf("    inet6 fe80::5054:%xff:fe%02x:%02x%02x/64 scope link", i, f.mac[0]&0xff, f.mac[1]&0xff, f.mac[2]&0xff),
			"       valid_lft forever preferred_lft forever",
		)
	}
	for _, l := range ls {
		if !emit(l) {
			return
		}
	}
}
