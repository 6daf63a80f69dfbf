// Package platform describes how NetAuto talks to each kind of network
// device: whether a command runs on the SSH exec channel or through an
// interactive PTY shell, what the prompt looks like, how paging is turned off,
// what a pager prompt looks like and which strings mark a failed command.
//
// Profiles are plain data (see profiles.go); adding a platform means adding
// one entry to the table. The package imports nothing but the standard library
// so that the device inventory can validate platform names with Known and
// Lookup.
package platform

import (
	"regexp"
	"slices"
	"strings"
)

// Mode says how a command is run on a device.
type Mode string

const (
	// ModeExec runs the command on the SSH exec channel and reads its exit status.
	ModeExec Mode = "exec"
	// ModeShell opens a PTY shell, waits for the prompt, disables paging, sends
	// the command and reads its output up to the next prompt.
	ModeShell Mode = "shell"
)

// Profile is the description of one platform. The zero value is not useful;
// obtain profiles with Lookup.
type Profile struct {
	// Name is the platform identifier stored in the inventory, e.g. "cisco_iosxe".
	Name string
	// Description is a human-readable label.
	Description string
	// Mode is how commands are run.
	Mode Mode
	// ExecSupported reports whether the real platform accepts the SSH exec
	// channel at all (the simulator uses it to refuse exec like the device).
	ExecSupported bool
	// ExecExitStatus reports whether the platform reports an exit status on the
	// exec channel; when true, a session that ends without one is treated as a
	// lost connection.
	ExecExitStatus bool
	// Prompt matches the last line of output (without line ending) when the
	// device waits for input. Patterns are anchored and tolerate one trailing
	// space.
	Prompt *regexp.Regexp
	// PagingDisable are the commands sent after the first prompt, in order, to
	// disable paging and widen the terminal.
	PagingDisable []string
	// More matches the pager prompt (e.g. "--More--") should paging still show
	// up; the engine answers it with a space.
	More *regexp.Regexp
	// ErrorMarkers are substrings that, found near the start of a command's
	// output, mean the device rejected the command.
	ErrorMarkers []string
	// Exit is the command that leaves the shell politely.
	Exit string
	// Enable is how to enter privileged mode; its zero value (Command == "")
	// means the platform has no such mode (users log in with their privileges).
	Enable Enable
	// noise are the built-in noise filters (NoiseFilters).
	noise []NoiseFilter
}

// Enable describes a platform's privileged mode.
type Enable struct {
	// Command enters privileged mode from the unprivileged prompt, e.g. "enable".
	Command string
	// Password matches the question for the enable secret (the last output
	// line, e.g. "Password: ").
	Password *regexp.Regexp
	// Unprivileged and Privileged are the last character of the prompt at each
	// level, e.g. ">" and "#".
	Unprivileged, Privileged string
}

// Supported reports whether the platform has a privileged mode.
func (e Enable) Supported() bool { return e.Command != "" }

// Lookup returns the profile registered under name. Names are matched exactly
// (they are lower-case identifiers).
func Lookup(name string) (Profile, bool) {
	p, ok := registry[name]
	if !ok {
		return Profile{}, false
	}
	p.PagingDisable = slices.Clone(p.PagingDisable)
	p.ErrorMarkers = slices.Clone(p.ErrorMarkers)
	return p, true
}

// Known returns the names of all registered platforms, sorted.
func Known() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// IsKnown reports whether name is a registered platform.
func IsKnown(name string) bool {
	_, ok := registry[name]
	return ok
}

// ErrorMarker returns the first error marker contained in line, or "".
func (p Profile) ErrorMarker(line string) string {
	for _, m := range p.ErrorMarkers {
		if strings.Contains(line, m) {
			return m
		}
	}
	return ""
}

// spec is the source form of a profile: everything is a string so the table
// in profiles.go reads as data.
type spec struct {
	name, description string
	mode              Mode
	execSupported     bool
	execExitStatus    bool
	prompt            string
	pagingDisable     []string
	more              string
	errorMarkers      []string
	// enable, enablePassword, unprivileged, privileged describe privileged mode
	// (all empty when the platform has none).
	enable, enablePassword, unprivileged, privileged string
	// noise are the lines that change without a change on the device (noise.go).
	noise []NoiseFilter
}

var registry = func() map[string]Profile {
	m := make(map[string]Profile, len(specs))
	for _, s := range specs {
		if _, dup := m[s.name]; dup {
			panic("platform: duplicate profile " + s.name)
		}
		m[s.name] = Profile{
			Name:           s.name,
			Description:    s.description,
			Mode:           s.mode,
			ExecSupported:  s.execSupported,
			ExecExitStatus: s.execExitStatus,
			Prompt:         regexp.MustCompile(s.prompt),
			PagingDisable:  s.pagingDisable,
			More:           regexp.MustCompile(s.more),
			ErrorMarkers:   s.errorMarkers,
			Exit:           "exit",
			noise:          s.noise,
		}
		if s.enable != "" {
			p := m[s.name]
			p.Enable = Enable{Command: s.enable, Password: regexp.MustCompile(s.enablePassword),
				Unprivileged: s.unprivileged, Privileged: s.privileged}
			m[s.name] = p
		}
	}
	return m
}()
