package platform

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
)

// NoiseFilter marks output lines that change without any change on the device (timestamps,
// uptimes, byte counts of the configuration), so that comparing two runs' outputs ignores them.
type NoiseFilter struct {
	// Pattern is an RE2 regular expression matched against each output line (without its line
	// ending); a matching line is noise.
	Pattern string `json:"pattern"`
	// Command is an RE2 regular expression matched against the run's command; empty matches
	// every command.
	Command string `json:"command,omitempty"`
	// Description says what the line is.
	Description string `json:"description,omitempty"`
	// Builtin is set on the profile's own filters, which admins cannot remove.
	Builtin bool `json:"-"`
}

// NoiseFilters returns the profile's built-in filters.
func (p Profile) NoiseFilters() []NoiseFilter { return slices.Clone(p.noise) }

// Noise is the compiled set of filters that applies to one command on one platform. The nil
// *Noise treats no line as noise.
type Noise struct {
	ms []matcher
}

// matcher is one compiled filter. prefix and needle, when set, are literals every line the
// pattern matches begins with and contains: checked first, so that most lines never enter the
// expression (docs/performance.md).
type matcher struct {
	re             *regexp.Regexp
	prefix, needle []byte
}

// requiredLiterals returns, for a pattern that is a concatenation, the literal every matching
// line begins with when the pattern is anchored at the line's start ("^! Last change" gives
// "! Last change"), and the longest literal part every match contains (" uptime is " of
// `^\S+ uptime is `). Either is "" when there is none; case-folded literals are never taken.
func requiredLiterals(pattern string) (prefix, needle string) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	switch {
	case err != nil:
		return "", ""
	case re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0:
		return "", string(re.Rune) // a bare literal, matched anywhere in the line
	case re.Op != syntax.OpConcat:
		return "", ""
	}
	for i, s := range re.Sub {
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			continue
		}
		lit := string(s.Rune)
		if i == 1 && (re.Sub[0].Op == syntax.OpBeginText || re.Sub[0].Op == syntax.OpBeginLine) {
			prefix = lit
		} else if len(lit) > len(needle) || len(lit) == len(needle) && strings.TrimSpace(needle) == "" {
			needle = lit // the longest; of equal ones, not blanks, which nearly every line holds
		}
	}
	return prefix, needle
}

// CompileNoise returns the filters among fs whose command expression matches command, compiled.
// Each is kept apart rather than joined into one alternation: most are anchored, which Go's
// regexp matches many times faster alone (docs/performance.md). Invalid expressions are an error
// (stored filters are validated, so this means a bug).
func CompileNoise(command string, fs []NoiseFilter) (*Noise, error) {
	var ms []matcher
	for _, f := range fs {
		if f.Command != "" {
			cre, err := regexp.Compile(f.Command)
			if err != nil {
				return nil, fmt.Errorf("compile filter command %q: %w", f.Command, err)
			}
			if !cre.MatchString(command) {
				continue
			}
		}
		re, err := regexp.Compile(f.Pattern)
		if err != nil {
			return nil, fmt.Errorf("compile filter pattern %q: %w", f.Pattern, err)
		}
		prefix, needle := requiredLiterals(f.Pattern)
		ms = append(ms, matcher{re: re, prefix: []byte(prefix), needle: []byte(needle)})
	}
	if len(ms) == 0 {
		return nil, nil
	}
	return &Noise{ms: ms}, nil
}

// Noise reports whether line (without its line ending) is noise.
func (n *Noise) Noise(line []byte) bool {
	if n == nil {
		return false
	}
	for _, m := range n.ms {
		if len(m.prefix) > 0 && !bytes.HasPrefix(line, m.prefix) || len(m.needle) > 0 && !bytes.Contains(line, m.needle) {
			continue
		}
		if m.re.Match(line) {
			return true
		}
	}
	return false
}

// Shared noise lines.
var (
	// Cisco-style configuration headers: the byte count and the change and save timestamps.
	ciscoConfigNoise = []NoiseFilter{
		{Pattern: `^Current configuration : \d+ bytes$`, Description: "size of the configuration"},
		{Pattern: `^! Last configuration change at `, Description: "time of the last configuration change"},
		{Pattern: `^! NVRAM config last updated at `, Description: "time the configuration was last saved"},
		{Pattern: `^! No configuration change since last restart`, Description: "change marker after a restart"},
		{Pattern: `^ntp clock-period \d+$`, Description: "clock drift correction the device rewrites itself"},
	}
	// Uptime lines of show version and friends.
	uptimeNoise = []NoiseFilter{
		{Pattern: `^\S+ uptime is `, Description: "device uptime"},
		{Pattern: `^Uptime for this control processor is `, Description: "uptime of the route processor"},
		{Pattern: `^\s*[Uu]ptime\s*:`, Description: "uptime"},
	}
	// A clock line on its own: "*10:15:32.123 UTC Mon Dec 7 2026" (show clock) or
	// "Mon Dec  7 10:15:32.123 UTC" (the time IOS-XR prints before each command's output).
	clockNoise = []NoiseFilter{
		{Pattern: `^\*?\.?\d{1,2}:\d{2}:\d{2}(\.\d+)? \S+ (Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{4}$`, Description: "show clock"},
		{Pattern: `^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +\d{1,2} \d{2}:\d{2}:\d{2}(\.\d+)?( \S+)?( \d{4})?$`, Description: "a timestamp line"},
	}
	nxosNoise = []NoiseFilter{
		{Pattern: `^!\s?Time: `, Description: "time the configuration was shown"},
		{Pattern: `^!\s?Running configuration last done at: `, Description: "time of the last configuration change"},
	}
	iosxrNoise = []NoiseFilter{
		{Pattern: `^!! Last configuration change at `, Description: "time of the last configuration change"},
	}
	eosNoise = []NoiseFilter{
		{Pattern: `^! Startup-config last modified at `, Description: "time the configuration was last saved"},
		{Pattern: `^! Time: `, Description: "time the configuration was shown"},
		{Pattern: `^Free memory: `, Description: "free memory in show version"},
		{Pattern: `^Timezone: `, Description: "show clock's time zone line"},
	}
	junosNoise = []NoiseFilter{
		{Pattern: `^## Last (commit|changed): `, Description: "time of the last commit"},
		{Pattern: `^(Current time|System booted|Protocols started|Last configured): `, Description: "show system uptime"},
		{Pattern: `^ ?\d{1,2}:\d{2}(:\d{2})?[AP]M +up `, Description: "uptime summary line"},
	}
	linuxNoise = []NoiseFilter{
		{Pattern: `^ ?\d{2}:\d{2}:\d{2} up `, Description: "uptime"},
		{Pattern: `^Last login: `, Description: "last login banner"},
	}
)

// noiseOf joins filter sets into a profile's built-in list.
func noiseOf(sets ...[]NoiseFilter) []NoiseFilter {
	var out []NoiseFilter
	for _, s := range sets {
		for _, f := range s {
			f.Builtin = true
			out = append(out, f)
		}
	}
	return out
}
