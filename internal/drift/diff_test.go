package drift

import (
	"bytes"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/run"
)

// apply rebuilds the new side's lines from the old side's and the hunks, checking every context
// and deleted line against the old side: a diff that does not apply fails the test.
func apply(t *testing.T, old []string, hunks []Hunk) []string {
	t.Helper()
	var out []string
	pos := 0 // next old line (0-based)
	for _, h := range hunks {
		start := h.OldStart - 1
		if h.OldLines == 0 {
			start = h.OldStart
		}
		require.GreaterOrEqual(t, start, pos, "hunks are in order")
		out = append(out, old[pos:start]...)
		pos = start
		var oldN, newN int
		for _, l := range h.Lines {
			switch l.Op {
			case Context, Delete:
				require.Less(t, pos, len(old), "hunk runs past the old side")
				require.Equal(t, old[pos], l.Text, "old line %d", pos+1)
				if l.Op == Context {
					out = append(out, l.Text)
					newN++
				}
				pos++
				oldN++
			case Add:
				out = append(out, l.Text)
				newN++
			}
		}
		require.Equal(t, h.OldLines, oldN, "old_lines of a hunk")
		require.Equal(t, h.NewLines, newN, "new_lines of a hunk")
	}
	return append(out, old[pos:]...)
}

func lines(s string) []string {
	var out []string
	for _, l := range run.Lines([]byte(s), nil) {
		out = append(out, string(l))
	}
	return out
}

func TestDiffCorrectness(t *testing.T) {
	base := "hostname r1\n!\ninterface Gi1\n ip address 10.0.0.1 255.255.255.0\n no shutdown\n!\ninterface Gi2\n shutdown\n!\nrouter ospf 1\n network 10.0.0.0 0.0.0.255 area 0\n!\nline vty 0 4\n transport input ssh\n!\nend\n"
	tests := []struct {
		name     string
		old, new string
		want     []Line // the changed lines, in order
	}{
		{"identical", base, base, nil},
		{"inserted block", base, strings.Replace(base, "!\nrouter ospf", "!\ninterface Gi3\n description new\n!\nrouter ospf", 1),
			[]Line{{Add, "interface Gi3"}, {Add, " description new"}, {Add, "!"}}},
		{"deleted block", base, strings.Replace(base, "interface Gi2\n shutdown\n!\n", "", 1),
			[]Line{{Delete, "interface Gi2"}, {Delete, " shutdown"}, {Delete, "!"}}},
		{"changed line", base, strings.Replace(base, "interface Gi2\n shutdown\n", "interface Gi2\n no shutdown\n", 1),
			[]Line{{Delete, " shutdown"}, {Add, " no shutdown"}}},
		{"moved block", base, strings.Replace(strings.Replace(base, "line vty 0 4\n transport input ssh\n!\n", "", 1), "hostname r1\n!\n", "hostname r1\n!\nline vty 0 4\n transport input ssh\n!\n", 1),
			nil /* checked by applying */},
		{"CRLF against LF", base, strings.ReplaceAll(base, "\n", "\r\n"), nil},
		{"CRLF against LF with a change", base, strings.ReplaceAll(strings.Replace(base, "hostname r1", "hostname r2", 1), "\n", "\r\n"),
			[]Line{{Delete, "hostname r1"}, {Add, "hostname r2"}}},
		{"no final newline", base, strings.TrimSuffix(base, "\n"), nil},
		{"from empty", "", "a\nb\n", []Line{{Add, "a"}, {Add, "b"}}},
		{"to empty", "a\nb\n", "", []Line{{Delete, "a"}, {Delete, "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hunks, err := Diff([]byte(tt.old), []byte(tt.new), nil, nil, 3)
			require.NoError(t, err, "diff")
			assert.Equal(t, lines(tt.new), apply(t, lines(tt.old), hunks), "applying the hunks to the old side gives the new side")
			var changed []Line
			for _, h := range hunks {
				for _, l := range h.Lines {
					if l.Op != Context {
						changed = append(changed, l)
					}
				}
			}
			if tt.name == "moved block" {
				require.NotEmpty(t, changed, "a moved block is a change")
				assert.LessOrEqual(t, len(changed), 6, "a moved 3-line block is at most deleted and added once")
				return
			}
			// Which of two equal lines ("!") a diff deletes is its choice: compare the sets.
			assert.ElementsMatch(t, tt.want, changed, "changed lines")
			sameDigest := run.NewLineDigest(nil)
			_, _ = sameDigest.Write([]byte(tt.old))
			other := run.NewLineDigest(nil)
			_, _ = other.Write([]byte(tt.new))
			assert.Equal(t, len(hunks) == 0, sameDigest.Sum() == other.Sum(), "equal line digests exactly when there is no hunk")
		})
	}
}

func TestDiffHunkShape(t *testing.T) {
	var old, new strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&old, "line %d\n", i)
		switch i {
		case 5:
			new.WriteString("line five\n")
		case 30:
			// deleted
		default:
			fmt.Fprintf(&new, "line %d\n", i)
		}
	}
	hunks, err := Diff([]byte(old.String()), []byte(new.String()), nil, nil, 3)
	require.NoError(t, err, "diff")
	require.Len(t, hunks, 2, "two changes far apart are two hunks")
	assert.Equal(t, Hunk{OldStart: 2, OldLines: 7, NewStart: 2, NewLines: 7, Lines: hunks[0].Lines}, hunks[0], "first hunk")
	assert.Equal(t, Hunk{OldStart: 27, OldLines: 7, NewStart: 27, NewLines: 6, Lines: hunks[1].Lines}, hunks[1], "second hunk")
	var buf bytes.Buffer
	require.NoError(t, WriteUnified(&buf, "a", "b", hunks), "write")
	assert.Contains(t, buf.String(), "--- a\n+++ b\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n", "unified text")
	assert.Contains(t, buf.String(), "@@ -27,7 +27,6 @@\n", "second header")

	hunks, err = Diff([]byte(old.String()), []byte(new.String()), nil, nil, 20)
	require.NoError(t, err, "diff")
	require.Len(t, hunks, 1, "with 20 lines of context the changes join")

	_, err = Diff(make([]byte, MaxOutputBytes+1), nil, nil, nil, 3)
	require.ErrorIs(t, err, ErrTooLarge, "an output over 1 MiB is refused")
}

// TestHiddenChangeAmongNoise: per profile, two outputs whose noise lines all differ and with
// one real change: the filtered diff holds exactly the change and the filtered digests differ;
// without the change they are equal and the diff is empty; raw, the noise shows.
func TestHiddenChangeAmongNoise(t *testing.T) {
	tests := []struct {
		platform        string
		night1, night2  string // noise lines of two nights
		config, changed string
	}{
		{"cisco_ios", "Current configuration : 4189 bytes\n! Last configuration change at 02:14:07 UTC Mon Dec 7 2026\nntp clock-period 36028797018963968\n",
			"Current configuration : 4203 bytes\n! Last configuration change at 02:14:09 UTC Tue Dec 8 2026\nntp clock-period 36028797018963001\n",
			"hostname r1\ninterface Gi1\n shutdown\n", "hostname r1\ninterface Gi1\n no shutdown\n"},
		{"cisco_iosxe", "! NVRAM config last updated at 01:00:00 UTC Mon Dec 7 2026\n", "! NVRAM config last updated at 01:00:07 UTC Tue Dec 8 2026\n",
			"hostname r2\n", "hostname r2-new\n"},
		{"cisco_nxos", "!Time: Mon Dec  7 02:14:07 2026\n", "!Time: Tue Dec  8 02:14:07 2026\n", "feature bgp\n", "feature bgp\nfeature ospf\n"},
		{"cisco_iosxr", "Mon Dec  7 02:14:07.123 UTC\n", "Tue Dec  8 02:14:07.456 UTC\n", "hostname xr1\n", "hostname xr1\nrouter static\n"},
		{"arista_eos", "! Startup-config last modified at  Mon Dec  7 02:14:07 2026 by admin\n", "! Startup-config last modified at  Tue Dec  8 02:14:07 2026 by admin\n",
			"interface Ethernet1\n   description a\n", "interface Ethernet1\n   description b\n"},
		{"juniper_junos", "## Last commit: 2026-12-07 02:14:07 UTC by admin\n", "## Last commit: 2026-12-08 02:14:07 UTC by admin\n", "system {\n    host-name mx1;\n}\n", "system {\n    host-name mx2;\n}\n"},
		{"linux", " 02:14:07 up 23 days,  4:12,  1 user,  load average: 0.21\n", " 02:14:09 up 24 days,  4:12,  1 user,  load average: 0.33\n", "eth0 UP\n", "eth0 DOWN\n"},
		{"generic", "! Last configuration change at 1\n", "! Last configuration change at 2\n", "set a 1\n", "set a 2\n"},
	}
	require.Len(t, tests, len(platform.Known()), "every profile has a case")
	for _, tt := range tests {
		t.Run(tt.platform, func(t *testing.T) {
			nz, err := NewNoises(nil).For(tt.platform, "show running-config")
			require.NoError(t, err, "noise")
			a := tt.night1 + tt.config
			same := tt.night2 + tt.config
			b := tt.night2 + tt.changed
			digest := func(s string) string {
				d := run.NewLineDigest(nz)
				_, _ = d.Write([]byte(s))
				return d.Sum()
			}
			assert.Equal(t, digest(a), digest(same), "only noise differs: same filtered digest")
			hunks, err := Diff([]byte(a), []byte(same), nz, nz, 3)
			require.NoError(t, err, "diff")
			assert.Empty(t, hunks, "only noise differs: no hunk")

			assert.NotEqual(t, digest(a), digest(b), "a real change among noise: the digests differ")
			hunks, err = Diff([]byte(a), []byte(b), nz, nz, 3)
			require.NoError(t, err, "diff")
			require.NotEmpty(t, hunks, "the change shows")
			for _, h := range hunks {
				for _, l := range h.Lines {
					assert.False(t, nz.Noise([]byte(l.Text)), "a noise line %q in the filtered diff", l.Text)
				}
			}
			assert.Equal(t, lines(b)[strings.Count(tt.night2, "\n"):], apply(t, lines(a)[strings.Count(tt.night1, "\n"):], hunks), "the hunks turn the config into the changed one")

			raw, err := Diff([]byte(a), []byte(same), nil, nil, 3)
			require.NoError(t, err, "raw diff")
			assert.NotEmpty(t, raw, "raw, the noise lines differ")
		})
	}
}

// TestLineDigestStreaming: the digest does not depend on how the stream is cut, keeps long lines
// whole and treats a CR before the LF as the line ending, long lines included.
func TestLineDigestStreaming(t *testing.T) {
	long := strings.Repeat("x", run.MaxLineBytes+100)
	text := "a\r\nbb\n" + long + "\r\nccc\nnoise 1\r\n" + "tail"
	want := run.NewLineDigest(nil)
	_, _ = want.Write([]byte(strings.ReplaceAll(text, "\r\n", "\n")))
	for _, step := range []int{1, 2, 3, 7, 4096, len(text)} {
		d := run.NewLineDigest(nil)
		for i := 0; i < len(text); i += step {
			_, _ = d.Write([]byte(text[i:min(len(text), i+step)]))
		}
		assert.Equal(t, want.Sum(), d.Sum(), "digest written %d bytes at a time", step)
	}
	nz, err := platform.CompileNoise("x", []platform.NoiseFilter{{Pattern: `^noise \d$`}})
	require.NoError(t, err, "compile")
	with, without := run.NewLineDigest(nz), run.NewLineDigest(nil)
	_, _ = with.Write([]byte(text))
	_, _ = without.Write([]byte(strings.Replace(text, "noise 1\r\n", "", 1)))
	assert.Equal(t, without.Sum(), with.Sum(), "a noise line is left out")
}

func TestValidateFilters(t *testing.T) {
	tests := []struct {
		name    string
		filters []platform.NoiseFilter
		field   string
	}{
		{"valid", []platform.NoiseFilter{{Pattern: `^! Time: `, Command: `^show run`, Description: "banner"}}, ""},
		{"pattern missing", []platform.NoiseFilter{{Command: "x"}}, "filters[0].pattern"},
		{"pattern invalid", []platform.NoiseFilter{{Pattern: "ok"}, {Pattern: "(unclosed"}}, "filters[1].pattern"},
		{"pattern matches empty line", []platform.NoiseFilter{{Pattern: ".*"}}, "filters[0].pattern"},
		{"pattern too long", []platform.NoiseFilter{{Pattern: strings.Repeat("a", MaxFilterPatternLen+1)}}, "filters[0].pattern"},
		{"command invalid", []platform.NoiseFilter{{Pattern: "a", Command: "[z-a]"}}, "filters[0].command"},
		{"description too long", []platform.NoiseFilter{{Pattern: "a", Description: strings.Repeat("d", MaxFilterDescriptionLen+1)}}, "filters[0].description"},
		{"description with a terminal escape", []platform.NoiseFilter{{Pattern: "a", Description: "\x1b[2J banner"}}, "filters[0].description"},
		{"description with a bidirectional override", []platform.NoiseFilter{{Pattern: "a", Description: "banner \u202e"}}, "filters[0].description"},
		{"pattern with a control character", []platform.NoiseFilter{{Pattern: "^a\tb"}}, "filters[0].pattern"},
		{"command with a control character", []platform.NoiseFilter{{Pattern: "a", Command: "^show\x00"}}, "filters[0].command"},
		{"escapes written as escapes", []platform.NoiseFilter{{Pattern: `^a\tb\x1b`, Command: `^show`}}, ""},
		{"too many", make([]platform.NoiseFilter, MaxCustomFilters+1), "filters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFilters(tt.filters)
			if tt.field == "" {
				require.NoError(t, err, "valid filters")
				return
			}
			require.Error(t, err, "invalid filters")
			assert.Contains(t, err.Error(), tt.field, "the error names the field")
		})
	}
}

func TestFiltersAndNoises(t *testing.T) {
	custom := map[string][]platform.NoiseFilter{"cisco_ios": {{Pattern: `^! Site banner \d+$`, Command: `^show run`}}}
	fs, err := Filters("cisco_ios", custom)
	require.NoError(t, err, "filters")
	p, _ := platform.Lookup("cisco_ios")
	require.Len(t, fs, len(p.NoiseFilters())+1, "built-ins then the custom filter")
	assert.False(t, fs[len(fs)-1].Builtin, "the custom filter is not built in")
	_, err = Filters("cisco_catos", custom)
	require.ErrorIs(t, err, ErrUnknownPlatform, "unknown platform")

	n := NewNoises(custom)
	nz, err := n.For("cisco_ios", "show running-config")
	require.NoError(t, err, "noise")
	assert.True(t, nz.Noise([]byte("! Site banner 42")), "custom filter applies to its command")
	nz, err = n.For("cisco_ios", "show version")
	require.NoError(t, err, "noise")
	assert.False(t, nz.Noise([]byte("! Site banner 42")), "custom filter does not apply to another command")
	assert.True(t, nz.Noise([]byte("r1 uptime is 2 days")), "built-ins apply to every command")
}

// TestNoisesForCommands: a sequence's noise is every one of its commands' noise, whichever
// command comes first.
func TestNoisesForCommands(t *testing.T) {
	n := NewNoises(map[string][]platform.NoiseFilter{"cisco_ios": {
		{Pattern: `^! Site banner \d+$`, Command: `^show run`},
		{Pattern: `^Clock: `, Command: `^show clock`},
	}})
	tests := []struct {
		name     string
		commands []string
		line     string
		noise    bool
	}{
		{"one command, its filter", []string{"show running-config"}, "! Site banner 42", true},
		{"one command, another's filter", []string{"show version"}, "! Site banner 42", false},
		{"a later command's filter", []string{"show clock", "show running-config"}, "! Site banner 42", true},
		{"the first command's filter", []string{"show clock", "show running-config"}, "Clock: 12:00:00", true},
		{"a real line", []string{"show clock", "show running-config"}, "interface Gi1", false},
		{"a command twice", []string{"show clock", "show clock"}, "Clock: 12:00:00", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nz, err := n.ForCommands("cisco_ios", tt.commands)
			require.NoError(t, err, "noise")
			assert.Equal(t, tt.noise, nz.Noise([]byte(tt.line)), "is %q noise", tt.line)
		})
	}
}

// BenchmarkDiff1MiB diffs two 1 MiB configurations that differ in noise lines throughout and in
// 2% of their interface blocks, with the noise filtered and raw. Besides wall time it reports the
// process's CPU time per diff, which a busy machine inflates less.
func BenchmarkDiff1MiB(b *testing.B) {
	old, new := bigConfigs(1 << 20)
	nz, err := NewNoises(nil).For("cisco_iosxe", "show running-config")
	require.NoError(b, err, "noise")
	for _, tc := range []struct {
		name  string
		noise run.LineFilter
	}{{"filtered", nz}, {"raw", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(old) + len(new)))
			b.ReportAllocs()
			cpu0 := cpuTime(b)
			for b.Loop() {
				hunks, err := Diff(old, new, tc.noise, tc.noise, 3)
				if err != nil || len(hunks) == 0 {
					b.Fatalf("diff: %v, %d hunks", err, len(hunks))
				}
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	require.NoError(tb, syscall.Getrusage(syscall.RUSAGE_SELF, &ru), "getrusage")
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bigConfigs returns two IOS-like configurations of about size bytes each.
func bigConfigs(size int) (old, new []byte) {
	var a, c bytes.Buffer
	for i := 0; a.Len() < size-200; i++ {
		if i%50 == 0 {
			fmt.Fprintf(&a, "! Last configuration change at 02:%02d:07 UTC Mon Dec 7 2026\n", i%60)
			fmt.Fprintf(&c, "! Last configuration change at 03:%02d:09 UTC Tue Dec 8 2026\n", i%60)
		}
		block := fmt.Sprintf("interface GigabitEthernet1/0/%d\n description port %d\n switchport access vlan %d\n", i, i, i%4000)
		a.WriteString(block)
		if i%50 == 7 {
			block = fmt.Sprintf("interface GigabitEthernet1/0/%d\n description port %d moved\n switchport access vlan %d\n shutdown\n", i, i, (i+1)%4000)
		}
		c.WriteString(block)
	}
	return a.Bytes()[:min(a.Len(), size)], c.Bytes()[:min(c.Len(), size)]
}
