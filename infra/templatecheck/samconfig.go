package templatecheck

// The samconfig check reads samconfig.toml's parameter_overrides the way SAM CLI does (a port of
// samcli.cli.types.CfnParameterOverridesType, SAM CLI 1.164.0) and holds every value to the
// template parameter's constraints, and to what is written: SAM CLI splits an override at the
// first space outside quotes, so `RetentionScheduleExpression=cron(0 0 * * ? *)` reaches
// CloudFormation as "cron(0" without any error from SAM CLI.

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// CheckSamconfig names the problems of the samconfig check.
const CheckSamconfig = "samconfig"

// SAM CLI's override grammar (samcli/cli/types.py): a key of letters, digits and quotes, "=",
// then a value that is a double-quoted or single-quoted string (backslash escapes anything) or
// a run of characters other than space, double quote and backslash (or backslash escapes).
// Go's regexp picks the same submatches as Python's backtracking re for these patterns (leftmost
// first), so FindAllStringSubmatch behaves as re.findall.
const (
	overrideKey   = `([A-Za-z0-9"']+)`
	overrideValue = `("(?:\\.|[^"\\]+)*"|'(?:\\.|[^'\\]+)*'|(?:\\.|[^ "\\]+)+)`
)

var overridePatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?:ParameterKey=` + overrideKey + `,ParameterValue=` + overrideValue + `)`),
	regexp.MustCompile(`(?: )` + overrideKey + `=` + overrideValue),
}

// ParseParameterOverrides returns the parameters SAM CLI hands CloudFormation for a
// parameter_overrides value as decoded from TOML: a string of space-separated Key=Value pairs
// (or ParameterKey=K,ParameterValue=V), a list of such strings (nested lists are flattened), or a
// table of keys to values. Quotes wrapping a key or value are removed, and \ followed by a space
// or a quote stands for that character. An item SAM CLI rejects is an error, as are file://
// references, which this port does not follow.
func ParseParameterOverrides(v any) (map[string]string, error) {
	var keys []string
	raw := map[string]string{}
	set := func(k, val string) {
		if _, ok := raw[k]; !ok {
			keys = append(keys, k)
		}
		raw[k] = val
	}
	var add func(v any) error
	add = func(v any) error {
		switch x := v.(type) {
		case nil:
			return nil
		case []any:
			for _, e := range x {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		case []map[string]any:
			for _, e := range x {
				if err := add(e); err != nil {
					return err
				}
			}
			return nil
		case string:
			if strings.HasPrefix(x, "file://") {
				return fmt.Errorf("parameter override %q: file:// references are not followed by this check", x)
			}
			normalized := " " + strings.TrimSpace(x)
			for _, p := range overridePatterns {
				if ms := p.FindAllStringSubmatch(normalized, -1); len(ms) > 0 {
					for _, m := range ms {
						set(m[1], m[2])
					}
					return nil
				}
			}
			return fmt.Errorf("parameter override %q is not a valid format: want Key=Value, ParameterKey=Key,ParameterValue=Value or file://FILE", x)
		case map[string]any:
			for _, k := range sortedKeys(x) {
				switch val := x[k].(type) {
				case string:
					set(k, val)
				case int64:
					set(k, strconv.FormatInt(val, 10))
				case []any:
					var parts []string
					for _, e := range val {
						s, ok := e.(string)
						if !ok {
							return fmt.Errorf("parameter override %s: list item %v is not a string", k, e)
						}
						if s != "" {
							parts = append(parts, strings.TrimSpace(s))
						}
					}
					set(k, strings.Join(parts, ","))
				default:
					return fmt.Errorf("parameter override %s: value %v (%T) is not a string, whole number or list of strings", k, val, val)
				}
			}
			return nil
		}
		return fmt.Errorf("parameter override %v (%T) is not a string, list or table", v, v)
	}
	if err := add(v); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[unquoteOverride(k)] = unquoteOverride(raw[k])
	}
	return out, nil
}

// unquoteOverride is SAM CLI's _unquote_wrapped_quotes: drop one pair of wrapping quotes, then
// turn \<space>, \" and \' into the character.
func unquoteOverride(s string) string {
	if s != "" && s[0] == s[len(s)-1] && (s[0] == '"' || s[0] == '\'') {
		// Python's value[1:-1] of a one-character string is empty.
		if len(s) == 1 {
			s = ""
		} else {
			s = s[1 : len(s)-1]
		}
	}
	return strings.NewReplacer(`\ `, " ", `\"`, `"`, `\'`, "'").Replace(s)
}

var overrideKeyPattern = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// QuoteOverride writes key=value as one samconfig.toml parameter_overrides item that SAM CLI
// reads back as exactly value: the value in double quotes. A value with a double quote or a
// backslash cannot be written so (SAM CLI would change it) and is an error.
func QuoteOverride(key, value string) (string, error) {
	if !overrideKeyPattern.MatchString(key) {
		return "", fmt.Errorf("parameter override key %q: must be letters and digits", key)
	}
	if strings.ContainsAny(value, "\"\\\n") {
		return "", fmt.Errorf("parameter override %s=%q: a value with a double quote, backslash or newline cannot be passed through SAM CLI unchanged", key, value)
	}
	return key + `="` + value + `"`, nil
}

// overrideCommands are the samconfig.toml sections whose parameter_overrides sam deploy reads.
var overrideCommands = []string{"deploy", "sync", "global"}

// CheckSamconfigData checks samconfig.toml content against the template: every environment's
// parameter_overrides parse as SAM CLI parses them, name template parameters, meet each
// parameter's constraints, and reach CloudFormation as written.
func CheckSamconfigData(t *Template, data []byte) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckSamconfig, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		bad("samconfig.toml", "parse: %v", err)
		return ps
	}
	for _, env := range sortedKeys(doc) {
		section, ok := doc[env].(map[string]any)
		if !ok {
			continue // version = 0.1
		}
		for _, cmd := range overrideCommands {
			po, ok := asMap(asMap(section[cmd])["parameters"])["parameter_overrides"]
			if !ok {
				continue
			}
			path := fmt.Sprintf("samconfig.toml[%s.%s.parameters].parameter_overrides", env, cmd)
			params, err := ParseParameterOverrides(po)
			if err != nil {
				bad(path, "SAM CLI rejects it: %v", err)
				continue
			}
			written := writtenOverrides(po)
			for _, k := range sortedKeys(params) {
				v := params[k]
				decl, ok := t.Parameters[k]
				if !ok {
					bad(path+"."+k, "%q is not a parameter of the template", k)
					continue
				}
				for _, msg := range parameterViolations(asMap(decl), v) {
					bad(path+"."+k, "SAM CLI passes %q, which %s", v, msg)
				}
				if w, ok := written[k]; ok && w != v {
					bad(path+"."+k, "SAM CLI passes %q, not the %q written: it splits overrides at spaces outside quotes; write '%s=\"%s\"'", v, w, k, w)
				}
			}
		}
	}
	return ps
}

// writtenOverrides returns, for each string item "Key=Value" of a parameter_overrides list, the
// value as its author wrote it (one pair of wrapping quotes removed).
func writtenOverrides(po any) map[string]string {
	out := map[string]string{}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			k, val, ok := strings.Cut(strings.TrimSpace(x), "=")
			if !ok || strings.HasPrefix(k, "ParameterKey") {
				return
			}
			if len(val) > 1 && val[0] == val[len(val)-1] && (val[0] == '"' || val[0] == '\'') {
				val = val[1 : len(val)-1]
			}
			out[strings.Trim(k, `"'`)] = val
		}
	}
	walk(po)
	return out
}

// parameterViolations lists the constraints of a template parameter declaration that value
// breaks, as CloudFormation applies them.
func parameterViolations(decl map[string]any, value string) []string {
	var out []string
	typ, _ := decl["Type"].(string)
	if p, ok := decl["AllowedPattern"].(string); ok && typ == "String" {
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("cannot be checked: AllowedPattern %q: %v", p, err))
		case !re.MatchString(value):
			out = append(out, fmt.Sprintf("does not match AllowedPattern %s", p))
		}
	}
	if av, ok := decl["AllowedValues"].([]any); ok {
		allowed := make([]string, len(av))
		for i, a := range av {
			allowed[i] = fmt.Sprint(a)
		}
		if !slices.Contains(allowed, value) {
			out = append(out, fmt.Sprintf("is not one of AllowedValues [%s]", strings.Join(allowed, ", ")))
		}
	}
	if typ == "Number" {
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			out = append(out, "is not a number (Type Number)")
		} else {
			if m, ok := number(decl["MinValue"]); ok && n < m {
				out = append(out, fmt.Sprintf("is less than MinValue %v", decl["MinValue"]))
			}
			if m, ok := number(decl["MaxValue"]); ok && n > m {
				out = append(out, fmt.Sprintf("is more than MaxValue %v", decl["MaxValue"]))
			}
		}
	}
	if m, ok := number(decl["MinLength"]); ok && float64(len(value)) < m {
		out = append(out, fmt.Sprintf("is shorter than MinLength %v", decl["MinLength"]))
	}
	if m, ok := number(decl["MaxLength"]); ok && float64(len(value)) > m {
		out = append(out, fmt.Sprintf("is longer than MaxLength %v", decl["MaxLength"]))
	}
	return out
}

// number reads a YAML number (or a numeric string) of a parameter declaration.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case uint64:
		return float64(n), true
	case float64:
		return n, true
	case string:
		f, err := strconv.ParseFloat(n, 64)
		return f, err == nil
	}
	return 0, false
}

// checkSamconfig runs the samconfig check on opts.Samconfig, or on the samconfig.toml in
// opts.Root when there is one.
func checkSamconfig(t *Template, opts Options) []Problem {
	path, explicit := opts.Samconfig, opts.Samconfig != ""
	if !explicit {
		if opts.Root == "" {
			return nil
		}
		path = filepath.Join(opts.Root, "samconfig.toml")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return []Problem{{Check: CheckSamconfig, Path: path, Msg: fmt.Sprintf("read: %v", err)}}
	}
	return CheckSamconfigData(t, data)
}
