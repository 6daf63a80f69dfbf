// Package policy is NetAuto's command policy: an ordered list of rules that says which commands a
// role may run on which device platforms. A command is normalised (case, whitespace) and cut into
// segments at every chaining operator (;, &&, ||, pipes, redirections, command substitution), and
// every segment must be allowed: the first rule that matches a segment decides it, and a segment
// no rule matches is denied. Patterns match command words by prefix on platforms whose CLI takes
// abbreviations, so `rel` is `reload` and `wr er` is `write erase`.
//
// The package imports no AWS SDK; the rules are stored by an adapter (internal/dynamo).
package policy

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/platform"
)

// Effect is what a matching rule does to a command.
type Effect string

// Effects.
const (
	Allow Effect = "allow"
	Deny  Effect = "deny"
)

// DefaultDenyRule is the rule id a refusal names when no rule matched a segment of the command.
const DefaultDenyRule = "default-deny"

// Limits of a policy.
const (
	MaxRules      = 500
	MaxIDLen      = 64
	MaxPatternLen = 512
	MaxReasonLen  = 256
	maxPatternEls = 64
)

// Rule is one rule of the policy.
type Rule struct {
	// ID names the rule in refusals; unique, 1-64 of a-z 0-9 . _ -.
	ID string `json:"id"`
	// Effect is allow or deny.
	Effect Effect `json:"effect"`
	// Roles the rule applies to (viewer, operator, admin); empty: every role.
	Roles []string `json:"roles,omitempty"`
	// Platforms the rule applies to (device platform profiles); empty: every platform.
	Platforms []string `json:"platforms,omitempty"`
	// Pattern is matched against each normalised segment of a command (see package doc and
	// docs/policy.md): words separated by spaces, `{a,b}` one of (an empty alternative makes the
	// word optional), `*` any one word, `**` any words, and a final `$` for the segment's end;
	// without `$` the pattern matches the segment's first words.
	Pattern string `json:"pattern"`
	// Reason is told to a caller the rule refuses.
	Reason string `json:"reason,omitempty"`
}

// Policy is the stored rule list.
type Policy struct {
	Rules []Rule
	// Version counts stored changes; 0 is the built-in defaults, which were never stored.
	Version   int64
	UpdatedAt time.Time
	UpdatedBy string
}

// Decision is the answer for one command on one platform for one role.
type Decision struct {
	Allowed bool
	// Rule is the id of the rule that decided: for a refusal the rule that denied the first
	// refused segment (DefaultDenyRule when none matched it).
	Rule string
	// Reason is the refusing rule's reason.
	Reason string
	// Segment is the refused segment, normalised.
	Segment string
}

// Set is a validated, compiled policy, safe for concurrent use.
type Set struct {
	rules []compiled
}

type compiled struct {
	Rule
	roles     map[string]bool
	platforms map[string]bool
	els       []element
}

// Compile validates rules and compiles them; the error names every rejected field
// (rules[3].pattern) as a *device.ValidationError.
func Compile(rules []Rule) (*Set, error) {
	var errs []device.FieldError
	bad := func(i int, field, format string, args ...any) {
		errs = append(errs, device.FieldError{Field: fmt.Sprintf("rules[%d].%s", i, field), Message: fmt.Sprintf(format, args...)})
	}
	if len(rules) > MaxRules {
		return nil, &device.ValidationError{Fields: []device.FieldError{{Field: "rules", Message: fmt.Sprintf("must hold at most %d rules", MaxRules)}}}
	}
	seen := map[string]int{}
	set := &Set{rules: make([]compiled, 0, len(rules))}
	for i, r := range rules {
		c := compiled{Rule: r}
		switch {
		case r.ID == "":
			bad(i, "id", "is required")
		case len(r.ID) > MaxIDLen || !validID(r.ID):
			bad(i, "id", "must be 1-%d characters of a-z, 0-9, '.', '_' and '-'", MaxIDLen)
		case r.ID == DefaultDenyRule:
			bad(i, "id", "%q is reserved for commands no rule matches", DefaultDenyRule)
		default:
			if j, dup := seen[r.ID]; dup {
				bad(i, "id", "repeats the id of rules[%d]", j)
			}
			seen[r.ID] = i
		}
		if r.Effect != Allow && r.Effect != Deny {
			bad(i, "effect", "must be allow or deny")
		}
		if len(r.Roles) > 0 {
			c.roles = map[string]bool{}
		}
		for j, role := range r.Roles {
			if _, ok := auth.ParseRole(role); !ok || role != strings.ToLower(role) {
				bad(i, fmt.Sprintf("roles[%d]", j), "must be viewer, operator or admin")
			}
			c.roles[role] = true
		}
		if len(r.Platforms) > 0 {
			c.platforms = map[string]bool{}
		}
		for j, p := range r.Platforms {
			if !platform.IsKnown(p) {
				bad(i, fmt.Sprintf("platforms[%d]", j), "must be one of %s", strings.Join(platform.Known(), ", "))
			}
			c.platforms[p] = true
		}
		if len(r.Reason) > MaxReasonLen || !printable(r.Reason) {
			bad(i, "reason", "must be at most %d printable characters", MaxReasonLen)
		}
		els, err := parsePattern(r.Pattern)
		if err != nil {
			bad(i, "pattern", "%s", err.Error())
		}
		c.els = els
		set.rules = append(set.rules, c)
	}
	if len(errs) > 0 {
		return nil, &device.ValidationError{Fields: errs}
	}
	return set, nil
}

// MustCompile is Compile for rule lists known to be valid (the defaults); it panics otherwise.
func MustCompile(rules []Rule) *Set {
	s, err := Compile(rules)
	if err != nil {
		panic(fmt.Sprintf("policy: %v", err))
	}
	return s
}

func validID(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return s != ""
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Check decides whether role may run command on a device of platform p.
func (s *Set) Check(command, p string, role auth.Role) Decision {
	segs := Segments(command, p)
	if len(segs) == 0 {
		return Decision{Rule: DefaultDenyRule, Reason: "the command is empty"}
	}
	abbrev := Abbreviates(p)
	var last Decision
	for _, seg := range segs {
		d := s.segment(seg, p, string(role), abbrev)
		if !d.Allowed {
			return d
		}
		last = d
	}
	return last
}

// DialogReplyRule is the rule that allows a prompt answer that is a plain dialog reply.
const DialogReplyRule = "dialog-reply"

// CheckAnswer decides whether role may send answer to a question a command asks on platform p. A
// plain dialog reply (nothing, y, yes, n, no) is allowed; any other answer reaches the device's
// input like a command (a prompt may match the CLI's own prompt), so it is checked as one.
func (s *Set) CheckAnswer(answer, p string, role auth.Role) Decision {
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "", "y", "yes", "n", "no":
		return Decision{Allowed: true, Rule: DialogReplyRule}
	}
	return s.Check(answer, p, role)
}

func (s *Set) segment(seg []string, p, role string, abbrev bool) Decision {
	for _, r := range s.rules {
		if r.roles != nil && !r.roles[role] {
			continue
		}
		if r.platforms != nil && !r.platforms[p] {
			continue
		}
		if !matches(r.els, seg, abbrev) {
			continue
		}
		if r.Effect == Allow {
			return Decision{Allowed: true, Rule: r.ID}
		}
		return Decision{Rule: r.ID, Reason: r.Reason, Segment: strings.Join(seg, " ")}
	}
	reason := "no rule allows this command"
	if role != "" {
		reason = "no rule allows this command for the " + role + " role"
	}
	return Decision{Rule: DefaultDenyRule, Reason: reason, Segment: strings.Join(seg, " ")}
}

// Abbreviates reports whether platform p's CLI accepts unambiguous prefixes of its keywords: every
// network profile does; a Linux shell does not, and the generic profile may be a shell, where
// "sh" is not "show", so its words match in full.
func Abbreviates(p string) bool { return !shellLike(p) }

// shellLike reports whether p's commands may reach a Unix shell.
func shellLike(p string) bool { return p == "linux" || p == "generic" }

// Rules returns the set's rules in order.
func (s *Set) Rules() []Rule {
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = r.Rule
		out[i].Roles = slices.Clone(r.Roles)
		out[i].Platforms = slices.Clone(r.Platforms)
	}
	return out
}

// ErrNotStored is returned by a store that holds no policy: the defaults apply.
var ErrNotStored = fault.New(fault.NotFound, "", "no policy is stored")
