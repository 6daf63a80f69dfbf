package templatecheck

// The CORS check: the HTTP API's CorsConfiguration is resources.HTTPAPICORS() (what the local
// gateway answers with), it allows the UI's CloudFront origin and no other, and no route with an
// authorizer catches the browser's preflight before API Gateway can answer it.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/netauto/netauto/internal/resources"
)

// CheckCORS names the problems of the CORS check.
const CheckCORS = "cors"

// corsKeys are the properties of a SAM HttpApi CorsConfiguration.
var corsKeys = []string{"AllowOrigins", "AllowMethods", "AllowHeaders", "ExposeHeaders", "MaxAge", "AllowCredentials"}

func checkCORS(t *Template) []Problem {
	var ps []Problem
	bad := func(path, format string, args ...any) {
		ps = append(ps, Problem{Check: CheckCORS, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	id := resources.HTTPAPI
	r, ok := t.Resources[id]
	if !ok || r.Type != "AWS::Serverless::HttpApi" {
		bad("Resources."+id, "the template has no AWS::Serverless::HttpApi %s, whose CORS configuration resources.HTTPAPICORS() describes", id)
		return ps
	}
	path := "Resources." + id + ".Properties.CorsConfiguration"
	cc, ok := r.Properties["CorsConfiguration"].(map[string]any)
	if !ok {
		bad(path, "is %v, want a mapping equal to resources.HTTPAPICORS() with the UI's origin", r.Properties["CorsConfiguration"])
		return ps
	}
	for _, k := range sortedKeys(cc) {
		if !slices.Contains(corsKeys, k) {
			bad(path+"."+k, "is not a CorsConfiguration property (want one of %s)", strings.Join(corsKeys, ", "))
		}
	}
	want := resources.HTTPAPICORS()
	lists := []struct {
		key      string
		want     []string
		foldCase bool
	}{
		{"AllowMethods", want.AllowMethods, false},
		{"AllowHeaders", want.AllowHeaders, true},
		{"ExposeHeaders", want.ExposeHeaders, true},
	}
	for _, l := range lists {
		got := toStrings(cc[l.key])
		if got == nil {
			bad(path+"."+l.key, "is %v, want the list %v", cc[l.key], l.want)
			continue
		}
		if missing, extra := setDiff(l.want, got, l.foldCase); len(missing)+len(extra) > 0 {
			bad(path+"."+l.key, "is %v, want %v as resources.HTTPAPICORS() says (missing %v, not in the data %v)", got, l.want, missing, extra)
		}
	}
	if !numEq(cc["MaxAge"], want.MaxAgeSeconds) {
		bad(path+".MaxAge", "is %v, want %d", cc["MaxAge"], want.MaxAgeSeconds)
	}
	if c, set := cc["AllowCredentials"]; set && c != false {
		bad(path+".AllowCredentials", "is %v: the UI sends a bearer token, never cookies; leave it unset", c)
	}
	return append(ps, checkCORSOrigins(t, path+".AllowOrigins", cc["AllowOrigins"])...)
}

// checkCORSOrigins wants the UI's own origin only: https:// and the domain of a CloudFront
// distribution in the template.
func checkCORSOrigins(t *Template, path string, v any) []Problem {
	var ps []Problem
	bad := func(format string, args ...any) {
		ps = append(ps, Problem{Check: CheckCORS, Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	origins := toSlice(v)
	if len(origins) == 0 {
		bad("is %v, want the UI's origin (!Sub \"https://${<Distribution>.DomainName}\")", v)
		return ps
	}
	for i, o := range origins {
		fn, arg, _ := intrinsic(o)
		s, _ := arg.(string)
		if fn != "Fn::Sub" || !strings.HasPrefix(s, "https://${") || !strings.HasSuffix(s, ".DomainName}") {
			bad("[%d] is %v, want the UI's origin: !Sub \"https://${<Distribution>.DomainName}\"", i, o)
			continue
		}
		dist := strings.TrimSuffix(strings.TrimPrefix(s, "https://${"), ".DomainName}")
		if r, ok := t.Resources[dist]; !ok || r.Type != "AWS::CloudFront::Distribution" {
			bad("[%d] names %q, which is not a CloudFront distribution of the template (the UI is served by one)", i, dist)
		}
	}
	return ps
}

// apiMethods are the allowed methods a route can declare (all but OPTIONS, which API Gateway
// answers).
func apiMethods() []string {
	var out []string
	for _, m := range resources.HTTPAPICORS().AllowMethods {
		if m != "OPTIONS" {
			out = append(out, m)
		}
	}
	return out
}

// setDiff returns what want has that got lacks and what got has that want lacks, optionally
// ignoring case.
func setDiff(want, got []string, foldCase bool) (missing, extra []string) {
	norm := func(s string) string {
		if foldCase {
			return strings.ToLower(s)
		}
		return s
	}
	in := func(list []string, s string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return norm(x) == norm(s) })
	}
	for _, w := range want {
		if !in(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !in(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
