package policy

import (
	"errors"
	"strings"
	"unicode"
)

// elementKind is what one word of a pattern matches.
type elementKind int

const (
	// literal matches one word among alts (or none, when optional).
	literal elementKind = iota
	// anyOne matches any one word (*).
	anyOne
	// anyMany matches any number of words, none included (**).
	anyMany
	// end matches the end of the segment ($, last only).
	end
)

type element struct {
	kind     elementKind
	alts     []string
	optional bool
}

// parsePattern compiles a pattern (see Rule.Pattern).
func parsePattern(p string) ([]element, error) {
	switch {
	case strings.TrimSpace(p) == "":
		return nil, errors.New("is required")
	case len(p) > MaxPatternLen:
		return nil, errors.New("must be at most 512 bytes")
	case !printable(p):
		return nil, errors.New("must be printable UTF-8")
	}
	words := strings.Fields(strings.ToLower(p))
	if len(words) > maxPatternEls {
		return nil, errors.New("must have at most 64 words")
	}
	els := make([]element, 0, len(words))
	for i, w := range words {
		switch {
		case w == "$":
			if i != len(words)-1 {
				return nil, errors.New("may have $ only as its last word")
			}
			if i == 0 {
				return nil, errors.New("needs a word before $")
			}
			els = append(els, element{kind: end})
		case w == "*":
			els = append(els, element{kind: anyOne})
		case w == "**":
			els = append(els, element{kind: anyMany})
		case strings.HasPrefix(w, "{"):
			if !strings.HasSuffix(w, "}") || len(w) < 3 {
				return nil, errors.New("has an unclosed {: write alternatives as {a,b} without spaces")
			}
			e := element{kind: literal}
			for _, a := range strings.Split(w[1:len(w)-1], ",") {
				if a == "" {
					e.optional = true
					continue
				}
				if strings.ContainsAny(a, "{}*") {
					return nil, errors.New("has a {, } or * inside {...}")
				}
				e.alts = append(e.alts, a)
			}
			if len(e.alts) == 0 {
				return nil, errors.New("has {} without a word in it")
			}
			els = append(els, e)
		case strings.ContainsAny(w, "{}*"):
			return nil, errors.New("has {, } or * inside a word; * and ** stand alone, alternatives are {a,b}")
		default:
			els = append(els, element{kind: literal, alts: []string{w}})
		}
	}
	return els, nil
}

// matches reports whether els match the start of seg (all of it when els end with $). With abbrev
// a word of the command matches a pattern word it is a prefix of.
func matches(els []element, seg []string, abbrev bool) bool {
	// memo[i*(n+1)+j]: 0 unknown, 1 match, 2 no match for els[i:] against seg[j:]; it keeps **
	// linear in the segment's length.
	n := len(seg)
	memo := make([]uint8, (len(els)+1)*(n+1))
	var at func(i, j int) bool
	at = func(i, j int) bool {
		if i == len(els) {
			return true
		}
		k := i*(n+1) + j
		if memo[k] != 0 {
			return memo[k] == 1
		}
		ok := false
		switch e := els[i]; e.kind {
		case end:
			ok = j == n
		case anyOne:
			ok = j < n && at(i+1, j+1)
		case anyMany:
			ok = at(i+1, j) || (j < n && at(i, j+1))
		case literal:
			ok = (e.optional && at(i+1, j)) || (j < n && e.word(seg[j], abbrev) && at(i+1, j+1))
		}
		memo[k] = 2
		if ok {
			memo[k] = 1
		}
		return ok
	}
	return at(0, 0)
}

func (e element) word(w string, abbrev bool) bool {
	for _, a := range e.alts {
		if w == a || abbrev && strings.HasPrefix(a, w) {
			return true
		}
	}
	return false
}

// Segments normalises command for platform p and cuts it into the segments the policy checks,
// each a list of words. Normalising lower-cases the command and treats every kind of white space
// as a word break. A segment ends at ; newline and ||; | starts a new segment
// ("|"-led on network platforms, where a pipe feeds an output filter, a plain command on Linux,
// where it feeds another program); > and < start a segment led by the redirection; $( and a
// backquote add a "$(" segment before the command inside. On Linux and the generic profile
// (which may be a shell) & ( ) { } end a segment too.
// Invisible format characters break words. Empty segments are dropped.
func Segments(command, p string) [][]string {
	shell := shellLike(p)
	var (
		segs [][]string
		cur  []string
		word strings.Builder
	)
	flushWord := func() {
		if word.Len() > 0 {
			cur = append(cur, word.String())
			word.Reset()
		}
	}
	flush := func() {
		flushWord()
		if len(cur) > 0 {
			segs = append(segs, cur)
		}
		cur = nil
	}
	rs := []rune(strings.ToLower(command))
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '$' && i+1 < len(rs) && rs[i+1] == '(':
			flush()
			segs = append(segs, []string{"$("})
			i++
		case r == '`':
			flush()
			segs = append(segs, []string{"$("})
		case r == ';' || r == '\n' || r == '\r':
			flush()
		case shell && (r == '&' || r == '(' || r == ')' || r == '{' || r == '}'):
			flush()
		case r == '|':
			flush()
			if i+1 < len(rs) && rs[i+1] == '|' {
				i++ // || chains another command everywhere
				continue
			}
			if p != "linux" {
				cur = []string{"|"}
			}
		case r == '>' || r == '<':
			flush()
			cur = []string{string(r)}
			for i+1 < len(rs) && (rs[i+1] == '>' || rs[i+1] == '&') {
				i++ // >> and >& are still a redirection
			}
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			flushWord()
		default:
			word.WriteRune(r)
		}
	}
	flush()
	return segs
}
