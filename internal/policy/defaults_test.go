package policy_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/policy"
)

// TestDefaultPolicy checks the built-in policy against every platform profile: what operators
// may and may not run, in every spelling a user or an attacker might try. rule is the rule that
// must decide a refusal ("" when any refusal will do).
func TestDefaultPolicy(t *testing.T) {
	type tc struct {
		name     string
		platform string
		command  string
		role     auth.Role
		allowed  bool
		rule     string
	}
	op, admin, viewer := auth.Operator, auth.Admin, auth.Viewer
	tests := []tc{
		// cisco_ios
		{"ios show version", "cisco_ios", "show version", op, true, ""},
		{"ios abbreviated show run", "cisco_ios", "sh run", op, true, ""},
		{"ios upper case", "cisco_ios", "SHOW IP INTERFACE BRIEF", op, true, ""},
		{"ios extra whitespace", "cisco_ios", "  show \t  ip   route  ", op, true, ""},
		{"ios include filter", "cisco_ios", "show running-config | include hostname", op, true, ""},
		{"ios abbreviated filters", "cisco_ios", "sh run | i host", op, true, ""},
		{"ios section filter", "cisco_ios", "sh run | s router bgp", op, true, ""},
		{"ios ping", "cisco_ios", "ping 10.0.0.1 repeat 5", op, true, ""},
		{"ios reload", "cisco_ios", "reload", op, false, "deny-reload"},
		{"ios rel abbreviation", "cisco_ios", "rel", op, false, "deny-reload"},
		{"ios reload in upper case", "cisco_ios", "RELOAD IN 5", op, false, "deny-reload"},
		{"ios write erase", "cisco_ios", "write erase", op, false, "deny-write-erase"},
		{"ios wr er abbreviation", "cisco_ios", "wr er", op, false, "deny-write-erase"},
		{"ios erase startup-config", "cisco_ios", "erase startup-config", op, false, "deny-erase"},
		{"ios erase nvram", "cisco_ios", "erase nvram:", op, false, "deny-erase"},
		{"ios format flash", "cisco_ios", "format flash:", op, false, "deny-erase"},
		{"ios delete", "cisco_ios", "delete /force flash:config.text", op, false, "deny-erase"},
		{"ios conf t", "cisco_ios", "conf t", op, false, "deny-configure"},
		{"ios configure terminal", "cisco_ios", "configure terminal", op, false, "deny-configure"},
		{"ios config t", "cisco_ios", "config t", op, false, "deny-configure"},
		{"ios copy to startup", "cisco_ios", "copy running-config startup-config", op, false, "deny-configure"},
		{"ios tclsh", "cisco_ios", "tclsh", op, false, "deny-shell"},
		{"ios enable", "cisco_ios", "enable", op, false, "deny-enable"},
		{"ios en abbreviation", "cisco_ios", "en", op, false, "deny-enable"},
		{"ios clear bgp", "cisco_ios", "clear ip bgp *", op, false, "deny-clear"},
		{"ios debug all", "cisco_ios", "debug all", op, false, "deny-debug"},
		{"ios redirect filter", "cisco_ios", "show run | redirect flash:x", op, false, "deny-output-pipe"},
		{"ios tee filter", "cisco_ios", "sh run | tee flash:x", op, false, "deny-output-pipe"},
		{"ios append abbreviated", "cisco_ios", "sh run | ap flash:x", op, false, "deny-output-pipe"},
		{"ios chained with semicolon", "cisco_ios", "show version ; reload", op, false, "deny-reload"},
		{"ios chained without spaces", "cisco_ios", "sh ver;rel", op, false, "deny-reload"},
		{"ios include then reload", "cisco_ios", "show run | include x ; wr er", op, false, "deny-write-erase"},
		{"ios redirect to file", "cisco_ios", "show run > flash:x", op, false, "deny-redirect"},
		{"ios unknown command", "cisco_ios", "undebug all", op, false, policy.DefaultDenyRule},
		{"ios zero-width space", "cisco_ios", "re\u200bload", op, false, "deny-reload"},
		{"ios admin reload", "cisco_ios", "reload", admin, true, ""},
		{"ios admin chained", "cisco_ios", "conf t ; wr er", admin, true, ""},
		{"ios viewer show", "cisco_ios", "show version", viewer, false, policy.DefaultDenyRule},
		// cisco_iosxe
		{"iosxe show", "cisco_iosxe", "show ip bgp summary", op, true, ""},
		{"iosxe guestshell", "cisco_iosxe", "guestshell run bash", op, false, "deny-shell"},
		{"iosxe reload abbreviated", "cisco_iosxe", "relo", op, false, "deny-reload"},
		{"iosxe wr erase mixed case", "cisco_iosxe", "Wr ErAsE", op, false, "deny-write-erase"},
		{"iosxe count filter", "cisco_iosxe", "show ip route | count", op, true, ""},
		// cisco_nxos
		{"nxos show", "cisco_nxos", "show interface brief", op, true, ""},
		{"nxos grep filter", "cisco_nxos", "show run | grep bgp", op, true, ""},
		{"nxos json filter", "cisco_nxos", "show version | json", op, true, ""},
		{"nxos two filters", "cisco_nxos", "show run | grep bgp | no-more", op, true, ""},
		{"nxos run bash", "cisco_nxos", "run bash", op, false, "deny-shell"},
		{"nxos bash", "cisco_nxos", "bash", op, false, "deny-shell"},
		{"nxos python", "cisco_nxos", "python", op, false, "deny-shell"},
		{"nxos vsh filter", "cisco_nxos", "show clock | vsh -c reload", op, false, "deny-output-pipe"},
		{"nxos command chaining", "cisco_nxos", "show clock ; reload", op, false, "deny-reload"},
		{"nxos write erase", "cisco_nxos", "write erase", op, false, "deny-write-erase"},
		// cisco_iosxr
		{"iosxr show", "cisco_iosxr", "show bgp summary", op, true, ""},
		{"iosxr run shell", "cisco_iosxr", "run", op, false, "deny-shell"},
		{"iosxr bash", "cisco_iosxr", "bash", op, false, "deny-shell"},
		{"iosxr file filter", "cisco_iosxr", "show run | file disk0:x", op, false, "deny-output-pipe"},
		{"iosxr utility filter", "cisco_iosxr", "show run | utility head", op, false, "deny-output-pipe"},
		{"iosxr reload", "cisco_iosxr", "reload location all", op, false, "deny-reload"},
		{"iosxr format", "cisco_iosxr", "format disk0:", op, false, "deny-erase"},
		// arista_eos
		{"eos show", "arista_eos", "show version", op, true, ""},
		{"eos json filter", "arista_eos", "show interfaces | json", op, true, ""},
		{"eos bash", "arista_eos", "bash", op, false, "deny-shell"},
		{"eos bash abbreviated", "arista_eos", "ba sudo reboot", op, false, "deny-shell"},
		{"eos redirect filter", "arista_eos", "show run | redirect flash:x", op, false, "deny-output-pipe"},
		{"eos conf", "arista_eos", "conf", op, false, "deny-configure"},
		{"eos ping substitution", "arista_eos", "ping $(reboot)", op, false, "deny-substitution"},
		// juniper_junos
		{"junos show", "juniper_junos", "show interfaces terse", op, true, ""},
		{"junos no-more", "juniper_junos", "show configuration | no-more", op, true, ""},
		{"junos display set", "juniper_junos", "show configuration | display set", op, true, ""},
		{"junos match", "juniper_junos", "sh int terse | m ge-", op, true, ""},
		{"junos request system reboot", "juniper_junos", "request system reboot", op, false, "deny-junos-reboot"},
		{"junos abbreviated reboot", "juniper_junos", "req sys reb", op, false, "deny-junos-reboot"},
		{"junos power-off", "juniper_junos", "request system power-off", op, false, "deny-junos-reboot"},
		{"junos halt", "juniper_junos", "request system halt", op, false, "deny-junos-reboot"},
		{"junos zeroize", "juniper_junos", "request system zeroize", op, false, "deny-junos-zeroize"},
		{"junos start shell", "juniper_junos", "start shell", op, false, "deny-junos-shell"},
		{"junos start sh abbreviated", "juniper_junos", "st sh", op, false, "deny-junos-shell"},
		{"junos configure", "juniper_junos", "configure exclusive", op, false, "deny-junos-configure"},
		{"junos edit", "juniper_junos", "edit", op, false, "deny-junos-configure"},
		{"junos set", "juniper_junos", "set system host-name x", op, false, "deny-junos-configure"},
		{"junos file delete", "juniper_junos", "file delete /var/log/messages", op, false, "deny-junos-file"},
		{"junos save filter", "juniper_junos", "show log messages | save /tmp/x", op, false, "deny-output-pipe"},
		{"junos s is save", "juniper_junos", "show log messages | s /tmp/x", op, false, "deny-output-pipe"},
		{"junos clear", "juniper_junos", "clear bgp neighbor all", op, false, "deny-clear"},
		// generic
		{"generic show", "generic", "show version", op, true, ""},
		{"generic display", "generic", "display current-configuration", op, true, ""},
		{"generic include", "generic", "show run | include x", op, true, ""},
		{"generic takes no abbreviations", "generic", "sh -c reboot", op, false, "deny-linux-shell"},
		{"generic reload", "generic", "reload", op, false, "deny-reload"},
		{"generic reboot", "generic", "reboot", op, false, "deny-linux-reboot"},
		{"generic and-chain", "generic", "show version && reboot", op, false, "deny-linux-reboot"},
		{"generic backquotes", "generic", "show `reboot`", op, false, "deny-substitution"},
		// linux
		{"linux uptime", "linux", "uptime", op, true, ""},
		{"linux uname", "linux", "uname -a", op, true, ""},
		{"linux df", "linux", "df -h", op, true, ""},
		{"linux ip a", "linux", "ip a", op, true, ""},
		{"linux ip route show", "linux", "ip route show table main", op, true, ""},
		{"linux ip brief", "linux", "ip -br addr", op, true, ""},
		{"linux ss", "linux", "ss -tlnp", op, true, ""},
		{"linux ps piped to grep", "linux", "ps aux | grep sshd", op, true, ""},
		{"linux cat cpuinfo", "linux", "cat /proc/cpuinfo", op, true, ""},
		{"linux systemctl status", "linux", "systemctl status sshd", op, true, ""},
		{"linux ping", "linux", "ping -c 3 10.0.0.1", op, true, ""},
		{"linux free then uptime", "linux", "free -m; uptime", op, true, ""},
		{"linux reboot", "linux", "reboot", op, false, "deny-linux-reboot"},
		{"linux shutdown", "linux", "shutdown -h now", op, false, "deny-linux-reboot"},
		{"linux init 0", "linux", "init 0", op, false, "deny-linux-init"},
		{"linux init 6", "linux", "init 6", op, false, "deny-linux-init"},
		{"linux systemctl reboot", "linux", "systemctl reboot", op, false, "deny-linux-systemctl-power"},
		{"linux rm", "linux", "rm -rf /", op, false, "deny-linux-erase"},
		{"linux dd", "linux", "dd if=/dev/zero of=/dev/sda", op, false, "deny-linux-erase"},
		{"linux bash", "linux", "bash -i", op, false, "deny-linux-shell"},
		{"linux sh -c", "linux", "sh -c 'reboot'", op, false, "deny-linux-shell"},
		{"linux python", "linux", "python3 -c 'import os'", op, false, "deny-linux-shell"},
		{"linux sudo", "linux", "sudo reboot", op, false, "deny-linux-shell"},
		{"linux semicolon", "linux", "uptime;reboot", op, false, "deny-linux-reboot"},
		{"linux and-and", "linux", "uptime && rm -rf /", op, false, "deny-linux-erase"},
		{"linux or-or", "linux", "false || reboot", op, false, ""},
		{"linux pipe into shell", "linux", "uptime | sh", op, false, "deny-linux-shell"},
		{"linux background", "linux", "uptime & reboot", op, false, "deny-linux-reboot"},
		{"linux substitution", "linux", "echo $(reboot)", op, false, ""},
		{"linux substitution alone", "linux", "uptime $(reboot)", op, false, "deny-substitution"},
		{"linux backquotes", "linux", "uptime `reboot`", op, false, "deny-substitution"},
		{"linux subshell", "linux", "uptime (reboot)", op, false, "deny-linux-reboot"},
		{"linux redirect", "linux", "uptime > /etc/motd", op, false, "deny-redirect"},
		{"linux newline", "linux", "uptime\nreboot", op, false, "deny-linux-reboot"},
		{"linux ip link set", "linux", "ip link set eth0 down", op, false, policy.DefaultDenyRule},
		{"linux ip addr add", "linux", "ip a add 10.0.0.1/24 dev eth0", op, false, policy.DefaultDenyRule},
		{"linux cat shadow", "linux", "cat /etc/shadow", op, false, policy.DefaultDenyRule},
		{"linux cat two files", "linux", "cat /proc/cpuinfo /etc/shadow", op, false, policy.DefaultDenyRule},
		{"linux hostname set", "linux", "hostname evil", op, false, policy.DefaultDenyRule},
		{"linux date set", "linux", "date -s 2020-01-01", op, false, policy.DefaultDenyRule},
		{"linux ss kill", "linux", "ss -K dst 10.0.0.1", op, false, policy.DefaultDenyRule},
		{"linux quoted reboot", "linux", "\"reboot\"", op, false, policy.DefaultDenyRule},
		{"linux variable trick", "linux", "cat${IFS}/etc/shadow", op, false, ""},
		{"linux no abbreviations", "linux", "up", op, false, policy.DefaultDenyRule},
		{"linux full path", "linux", "/sbin/reboot", op, false, policy.DefaultDenyRule},
		{"linux admin anything", "linux", "sudo reboot", admin, true, ""},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.platform] = true
		t.Run(tt.name, func(t *testing.T) {
			d := policy.DefaultSet.Check(tt.command, tt.platform, tt.role)
			assert.Equal(t, tt.allowed, d.Allowed, "decision %+v", d)
			if !tt.allowed {
				assert.NotEmpty(t, d.Rule)
				assert.NotEmpty(t, d.Reason)
			}
			if tt.rule != "" {
				assert.Equal(t, tt.rule, d.Rule, "decision %+v", d)
			}
		})
	}
	require.GreaterOrEqual(t, len(tests), 60)
	for _, p := range platform.Known() {
		assert.True(t, covered[p], "no case for platform %s", p)
	}
}

// TestDefaultsDenyOperatorsEverywhere: on every platform profile operators are refused a reboot,
// an erase, configuration mode and a shell by the default policy, whatever the platform's words
// (on network CLIs "sh -c reboot" is a harmless "show", so it is tested per platform above).
func TestDefaultsDenyOperatorsEverywhere(t *testing.T) {
	dangerous := []string{
		"reload", "rel", "request system reboot", "reboot", "write erase", "wr er", "erase startup-config",
		"request system zeroize", "rm -rf /", "conf t", "configure", "start shell", "bash",
		"show version ; reboot", "show version | sh", "x $(reboot)",
	}
	for _, p := range platform.Known() {
		for _, c := range dangerous {
			t.Run(p+"/"+c, func(t *testing.T) {
				d := policy.DefaultSet.Check(c, p, auth.Operator)
				assert.False(t, d.Allowed, "decision %+v", d)
			})
		}
	}
}

func TestSegments(t *testing.T) {
	tests := []struct {
		name, platform, command string
		want                    [][]string
	}{
		{"case and space", "cisco_ios", "  SH\tRun  ", [][]string{{"sh", "run"}}},
		{"network pipe", "cisco_ios", "sh run|i x", [][]string{{"sh", "run"}, {"|", "i", "x"}}},
		{"linux pipe", "linux", "ps|grep x", [][]string{{"ps"}, {"grep", "x"}}},
		{"or-or", "cisco_ios", "a || b", [][]string{{"a"}, {"b"}}},
		{"redirect", "linux", "a >> f", [][]string{{"a"}, {">", "f"}}},
		{"substitution", "linux", "a $(b) c", [][]string{{"a"}, {"$("}, {"b"}, {"c"}}},
		{"empty", "linux", " ; ;", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, policy.Segments(tt.command, tt.platform))
		})
	}
}

func TestCompileNamesTheField(t *testing.T) {
	good := policy.Rule{ID: "a", Effect: policy.Allow, Pattern: "show"}
	tests := []struct {
		name  string
		rules []policy.Rule
		field string
	}{
		{"missing id", []policy.Rule{{Effect: policy.Allow, Pattern: "x"}}, "rules[0].id"},
		{"bad id", []policy.Rule{good, {ID: "A B", Effect: policy.Allow, Pattern: "x"}}, "rules[1].id"},
		{"duplicate id", []policy.Rule{good, good}, "rules[1].id"},
		{"reserved id", []policy.Rule{{ID: policy.DefaultDenyRule, Effect: policy.Deny, Pattern: "x"}}, "rules[0].id"},
		{"bad effect", []policy.Rule{{ID: "a", Effect: "maybe", Pattern: "x"}}, "rules[0].effect"},
		{"bad role", []policy.Rule{{ID: "a", Effect: policy.Allow, Roles: []string{"root"}, Pattern: "x"}}, "rules[0].roles[0]"},
		{"bad platform", []policy.Rule{{ID: "a", Effect: policy.Allow, Platforms: []string{"linux", "vax"}, Pattern: "x"}}, "rules[0].platforms[1]"},
		{"empty pattern", []policy.Rule{{ID: "a", Effect: policy.Allow, Pattern: " "}}, "rules[0].pattern"},
		{"dollar not last", []policy.Rule{{ID: "a", Effect: policy.Allow, Pattern: "a $ b"}}, "rules[0].pattern"},
		{"unclosed brace", []policy.Rule{{ID: "a", Effect: policy.Allow, Pattern: "{a,b"}}, "rules[0].pattern"},
		{"star in word", []policy.Rule{{ID: "a", Effect: policy.Allow, Pattern: "sh*"}}, "rules[0].pattern"},
		{"control in reason", []policy.Rule{{ID: "a", Effect: policy.Allow, Pattern: "x", Reason: "a\x07"}}, "rules[0].reason"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Compile(tt.rules)
			require.Error(t, err)
			var verr *device.ValidationError
			require.ErrorAs(t, err, &verr)
			var fields []string
			for _, f := range verr.FieldErrors() {
				fields = append(fields, f.Field)
			}
			assert.True(t, slices.Contains(fields, tt.field), "fields %v", fields)
		})
	}
}
