package platform

import (
	"slices"
	"testing"
)

func TestKnownAndLookup(t *testing.T) {
	want := []string{"arista_eos", "cisco_ios", "cisco_iosxe", "cisco_iosxr", "cisco_nxos", "generic", "juniper_junos", "linux"}
	if got := Known(); !slices.Equal(got, want) {
		t.Fatalf("Known() = %v, want %v", got, want)
	}
	for _, name := range want {
		p, ok := Lookup(name)
		if !ok || p.Name != name {
			t.Fatalf("Lookup(%q) = %v, %v", name, p.Name, ok)
		}
		if p.Mode != ModeExec && p.Mode != ModeShell {
			t.Errorf("%s: bad mode %q", name, p.Mode)
		}
	}
	if _, ok := Lookup("cisco_catos"); ok {
		t.Fatal("Lookup of an unknown platform succeeded")
	}
	if IsKnown("") {
		t.Fatal("empty platform is known")
	}
}

func TestLookupReturnsCopies(t *testing.T) {
	p, _ := Lookup("cisco_iosxe")
	p.PagingDisable[0] = "mutated"
	q, _ := Lookup("cisco_iosxe")
	if q.PagingDisable[0] == "mutated" {
		t.Fatal("Lookup exposes the shared table")
	}
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
			if !ok {
				t.Fatalf("no profile %s", tt.platform)
			}
			if got := p.Prompt.MatchString(tt.line); got != tt.want {
				t.Errorf("prompt %q match %q = %v, want %v", p.Prompt, tt.line, got, tt.want)
			}
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
			if !p.More.MatchString(tt.more) {
				t.Errorf("more %q does not match %q", p.More, tt.more)
			}
			if p.ErrorMarker(tt.errLine) == "" {
				t.Errorf("no error marker in %q", tt.errLine)
			}
			if p.ErrorMarker("Cisco IOS XE Software, Version 17.9.4a") != "" {
				t.Error("error marker in a normal line")
			}
		})
	}
}
