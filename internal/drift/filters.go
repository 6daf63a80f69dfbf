package drift

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/platform"
	"github.com/netauto/netauto/internal/run"
)

// Limits of the filters admins add.
const (
	// MaxCustomFilters is the most filters an admin may add to one platform.
	MaxCustomFilters = 50
	// MaxFilterPatternLen bounds a filter's pattern and command expressions.
	MaxFilterPatternLen = 300
	// MaxFilterDescriptionLen bounds a filter's description.
	MaxFilterDescriptionLen = 200
)

// ErrUnknownPlatform names a platform that has no profile.
var ErrUnknownPlatform = fault.New(fault.NotFound, "name", "no platform has this name")

// FilterStore keeps the filters admins add, per platform; *dynamo.FilterStore implements it.
type FilterStore interface {
	// CustomFilters returns every platform's admin filters (platforms without any are absent).
	CustomFilters(ctx context.Context) (map[string][]platform.NoiseFilter, error)
	// PutCustomFilters replaces one platform's admin filters.
	PutCustomFilters(ctx context.Context, platformName string, fs []platform.NoiseFilter) error
}

// ValidateFilters checks admin filters; the error is a *device.ValidationError naming every
// rejected field (filters[2].pattern).
func ValidateFilters(fs []platform.NoiseFilter) error {
	if len(fs) > MaxCustomFilters {
		return &device.ValidationError{Fields: []device.FieldError{{Field: "filters", Message: fmt.Sprintf("must hold at most %d filters", MaxCustomFilters)}}}
	}
	var errs []device.FieldError
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, device.FieldError{Field: fmt.Sprintf("filters[%d].%s", i, field), Message: fmt.Sprintf(format, args...)})
	}
	for i, f := range fs {
		for _, e := range []struct {
			field, expr string
			required    bool
		}{{"pattern", f.Pattern, true}, {"command", f.Command, false}} {
			switch {
			case e.expr == "" && e.required:
				bad(i, e.field, "is required")
			case len(e.expr) > MaxFilterPatternLen:
				bad(i, e.field, "must be at most %d characters", MaxFilterPatternLen)
			case !device.Printable(e.expr):
				bad(i, e.field, "must be valid UTF-8 without control or invisible characters (write them as escapes such as \\x1b)")
			case e.expr != "":
				re, err := regexp.Compile(e.expr)
				switch {
				case err != nil:
					bad(i, e.field, "is not a valid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				case e.field == "pattern" && re.MatchString(""):
					bad(i, e.field, "matches an empty line, so it would hide every blank line; anchor it to some text")
				}
			}
		}
		switch {
		case len(f.Description) > MaxFilterDescriptionLen:
			bad(i, "description", "must be at most %d characters", MaxFilterDescriptionLen)
		case !device.Printable(f.Description):
			bad(i, "description", "must be valid UTF-8 without control or invisible characters")
		}
	}
	if len(errs) > 0 {
		return &device.ValidationError{Fields: errs}
	}
	return nil
}

// Filters returns a platform's filters: its built-in ones, then custom's for it.
func Filters(platformName string, custom map[string][]platform.NoiseFilter) ([]platform.NoiseFilter, error) {
	p, ok := platform.Lookup(platformName)
	if !ok {
		return nil, ErrUnknownPlatform
	}
	out := p.NoiseFilters()
	for _, f := range custom[platformName] {
		f.Builtin = false
		out = append(out, f)
	}
	return out, nil
}

// Noises compiles the noise filters of one command per platform, each platform once, for
// the runs of one batch or the two sides of a diff. The zero value is not usable; see NewNoises.
type Noises struct {
	custom map[string][]platform.NoiseFilter
	mu     sync.Mutex
	byKey  map[string]*platform.Noise
}

// NewNoises returns Noises over the admins' filters custom (nil: built-in filters only).
func NewNoises(custom map[string][]platform.NoiseFilter) *Noises {
	return &Noises{custom: custom, byKey: map[string]*platform.Noise{}}
}

// For returns the noise of command on platformName; an unknown platform has no noise lines.
func (n *Noises) For(platformName, command string) (*platform.Noise, error) {
	key := platformName + "\x00" + command
	n.mu.Lock()
	defer n.mu.Unlock()
	if nz, ok := n.byKey[key]; ok {
		return nz, nil
	}
	fs, err := Filters(platformName, n.custom)
	if err != nil {
		fs = nil
	}
	nz, err := platform.CompileNoise(command, fs)
	if err != nil {
		return nil, err
	}
	n.byKey[key] = nz
	return nz, nil
}

// ForCommands returns the noise of a run of commands (a sequence, or one command) on
// platformName: a line is noise when it is noise for any of them. A sequence's output is one
// stream, and each command's filters are anchored to lines of its own output, so they seldom
// meet another command's lines; filtering by the first command alone (the run's summary) would
// leave the noise of every later command in its digest and diffs.
func (n *Noises) ForCommands(platformName string, commands []string) (run.LineFilter, error) {
	var fs anyNoise
	seen := map[string]bool{}
	for _, c := range commands {
		if seen[c] {
			continue
		}
		seen[c] = true
		nz, err := n.For(platformName, c)
		if err != nil {
			return nil, err
		}
		fs = append(fs, nz)
	}
	if len(fs) == 1 {
		return fs[0], nil
	}
	return fs, nil
}

// anyNoise calls a line noise when any of its filters does.
type anyNoise []*platform.Noise

// Noise implements run.LineFilter.
func (a anyNoise) Noise(line []byte) bool {
	for _, nz := range a {
		if nz.Noise(line) {
			return true
		}
	}
	return false
}
