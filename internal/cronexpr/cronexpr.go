// Package cronexpr validates NetAuto's retention schedule (NET_AUTO_RETENTION_CRON) and translates
// it into an Amazon EventBridge schedule expression.
//
// Accepted input is the common subset of what the local scheduler (robfig/cron's standard parser)
// and EventBridge can both express, with the same meaning in UTC:
//
//	@yearly @annually @monthly @weekly @daily @midnight @hourly
//	@every <duration>          whole minutes, e.g. @every 6h or @every 90m
//	m h dom mon dow            5-field cron: *, n, a-b, */s, a-b/s, n/s and lists; month and
//	                           day-of-week names (JAN, MON); day-of-week 0-6 (0 is Sunday; 7 is refused, as
//	                           the local scheduler refuses it)
//
// EventBridge cron has six fields (a year is added) and needs `?` in day-of-month or day-of-week,
// numbers days of the week 1-7 from Sunday and has no step in day-of-week; the translation handles
// all three. A 5-field expression that restricts both day-of-month and day-of-week (standard cron
// runs when either matches) has no EventBridge equivalent and is rejected.
package cronexpr

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	minuteField = field{name: "minute", min: 0, max: 59}
	hourField   = field{name: "hour", min: 0, max: 23}
	domField    = field{name: "day-of-month", min: 1, max: 31}
	monthField  = field{name: "month", min: 1, max: 12, names: map[string]int{
		"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6, "JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12}}
	dowField = field{name: "day-of-week", min: 0, max: 6, names: map[string]int{
		"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}}
)

var dayNames = []string{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}

var descriptors = map[string]string{
	"@yearly":   "cron(0 0 1 1 ? *)",
	"@annually": "cron(0 0 1 1 ? *)",
	"@monthly":  "cron(0 0 1 * ? *)",
	"@weekly":   "cron(0 0 ? * SUN *)",
	"@daily":    "cron(0 0 * * ? *)",
	"@midnight": "cron(0 0 * * ? *)",
	"@hourly":   "cron(0 * * * ? *)",
}

// Validate reports whether expr is an accepted schedule; the error says what is wrong.
func Validate(expr string) error {
	_, err := EventBridge(expr)
	return err
}

// EventBridge translates expr into an EventBridge schedule expression (cron(...) or rate(...)).
func EventBridge(expr string) (string, error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return "", errors.New("empty schedule")
	}
	if strings.HasPrefix(s, "@") {
		return descriptor(s)
	}
	f := strings.Fields(s)
	if len(f) != 5 {
		return "", fmt.Errorf("want 5 fields (minute hour day-of-month month day-of-week) or @daily/@hourly/@every, got %d fields", len(f))
	}
	if strings.Contains(s, "TZ=") {
		return "", errors.New("time zones are not supported: schedules run in UTC")
	}
	minute, err := plain(f[0], minuteField)
	if err != nil {
		return "", err
	}
	hour, err := plain(f[1], hourField)
	if err != nil {
		return "", err
	}
	month, err := plain(f[3], monthField)
	if err != nil {
		return "", err
	}
	domAny := f[2] == "*" || f[2] == "?"
	dowAny := f[4] == "*" || f[4] == "?"
	dom, dow := "?", "?"
	switch {
	case !domAny && !dowAny:
		return "", errors.New("day-of-month and day-of-week are both restricted: standard cron runs when either matches, which EventBridge cannot express; restrict one and leave the other *")
	case dowAny:
		if dom, err = plain(f[2], domField); err != nil {
			return "", err
		}
		if domAny {
			dom = "*"
		}
	default:
		if dow, err = weekdays(f[4]); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("cron(%s %s %s %s %s *)", minute, hour, dom, month, dow), nil
}

func descriptor(s string) (string, error) {
	if out, ok := descriptors[strings.ToLower(s)]; ok {
		return out, nil
	}
	rest, ok := strings.CutPrefix(s, "@every ")
	if !ok {
		return "", fmt.Errorf("unknown descriptor %q: use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(rest))
	if err != nil {
		return "", fmt.Errorf("@every: %w", err)
	}
	if d < time.Minute || d%time.Minute != 0 {
		return "", fmt.Errorf("@every %s: EventBridge rates are whole minutes, at least 1", d)
	}
	m := int64(d / time.Minute)
	switch {
	case m%(24*60) == 0:
		return rate(m/(24*60), "day"), nil
	case m%60 == 0:
		return rate(m/60, "hour"), nil
	default:
		return rate(m, "minute"), nil
	}
}

func rate(n int64, unit string) string {
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("rate(%d %s)", n, unit)
}

// plain validates a minute, hour, day-of-month or month field and writes it for EventBridge:
// the same text with names kept and `*/s` written `<min>/s`.
func plain(s string, f field) (string, error) {
	if _, err := expand(s, f); err != nil {
		return "", err
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		rng, _, hasStep := strings.Cut(p, "/")
		switch {
		case hasStep && rng == "*":
			parts[i] = strconv.Itoa(f.min) + p[1:]
		case hasStep && strings.Contains(rng, "-"):
			// EventBridge documents steps only from a start value: list a stepped range.
			set, _ := expand(p, f)
			vals := make([]int, 0, len(set))
			for v := range set {
				vals = append(vals, v)
			}
			slices.Sort(vals)
			strs := make([]string, len(vals))
			for j, v := range vals {
				strs[j] = strconv.Itoa(v)
			}
			parts[i] = strings.Join(strs, ",")
		}
	}
	return strings.ToUpper(strings.Join(parts, ",")), nil
}

// weekdays expands a day-of-week field and writes it as EventBridge day names, runs of three or
// more consecutive days as ranges (MON-FRI).
func weekdays(s string) (string, error) {
	set, err := expand(s, dowField)
	if err != nil {
		return "", err
	}
	days := make([]int, 0, 7)
	for v := range set {
		days = append(days, v)
	}
	slices.Sort(days)
	days = slices.Compact(days)
	var out []string
	for i := 0; i < len(days); {
		j := i
		for j+1 < len(days) && days[j+1] == days[j]+1 {
			j++
		}
		if j-i >= 2 {
			out = append(out, dayNames[days[i]]+"-"+dayNames[days[j]])
		} else {
			for k := i; k <= j; k++ {
				out = append(out, dayNames[days[k]])
			}
		}
		i = j + 1
	}
	return strings.Join(out, ","), nil
}

// expand returns the set of values a field matches, or an error naming the field.
func expand(s string, f field) (map[int]bool, error) {
	set := map[int]bool{}
	if s == "" {
		return nil, fmt.Errorf("%s: empty", f.name)
	}
	for _, part := range strings.Split(s, ",") {
		if err := expandPart(part, f, set); err != nil {
			return nil, fmt.Errorf("%s %q: %w", f.name, s, err)
		}
	}
	return set, nil
}

func expandPart(part string, f field, set map[int]bool) error {
	rng, stepText, hasStep := strings.Cut(part, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepText)
		if err != nil || n < 1 || n > f.max {
			return fmt.Errorf("step %q must be a number from 1 to %d", stepText, f.max)
		}
		step = n
	}
	lo, hi := f.min, f.max
	switch {
	case rng == "*":
	case strings.Contains(rng, "-"):
		a, b, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = value(a, f); err != nil {
			return err
		}
		if hi, err = value(b, f); err != nil {
			return err
		}
		if lo > hi {
			return fmt.Errorf("range %s runs backwards", rng)
		}
	default:
		v, err := value(rng, f)
		if err != nil {
			return err
		}
		lo, hi = v, v
		if hasStep {
			hi = f.max // n/s: from n every s
		}
	}
	for v := lo; v <= hi; v += step {
		set[v] = true
	}
	return nil
}

func value(s string, f field) (int, error) {
	if v, ok := f.names[strings.ToUpper(s)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < f.min || v > f.max {
		return 0, fmt.Errorf("%q is not a %s from %d to %d", s, f.name, f.min, f.max)
	}
	return v, nil
}
