package gateway

// CORS as API Gateway HTTP API's CorsConfiguration answers it, from resources.HTTPAPICORS() (the
// data template.yaml's HttpApi is checked against) and the deployment's allowed origins:
//
//   - A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered by the
//     gateway itself, before the authorizer and without invoking the handler: 204, and, when the
//     origin, the method and every requested header are allowed, Access-Control-Allow-Origin (the
//     request's origin), -Allow-Methods, -Allow-Headers and -Max-Age. Otherwise the 204 carries
//     no CORS header and the browser refuses the request.
//   - Any other request with an allowed Origin gets Access-Control-Allow-Origin and
//     Access-Control-Expose-Headers on its response, refusals by the authorizer included. CORS
//     headers the handler returns are dropped, as API Gateway ignores an integration's.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/netauto/netauto/internal/resources"
)

// cors applies a CORS configuration to the routes it wraps.
type cors struct {
	cfg     resources.CORS
	origins []string // normalised; "*" allows any origin
}

// newCORS validates the allowed origins: each "*" or scheme://host[:port] with nothing after.
func newCORS(cfg resources.CORS, origins []string) (*cors, error) {
	c := &cors{cfg: cfg}
	for _, o := range origins {
		n, err := NormalizeOrigin(o)
		if err != nil {
			return nil, err
		}
		c.origins = append(c.origins, n)
	}
	return c, nil
}

// NormalizeOrigin returns o as browsers send it in the Origin header (lower-case scheme and
// host, no default port, no trailing slash), or an error naming what is wrong; "*" stands for
// any origin.
func NormalizeOrigin(o string) (string, error) {
	o = strings.TrimSpace(o)
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("origin %q must be scheme://host[:port], e.g. https://ui.example.com or http://127.0.0.1:8081", o)
	}
	host := strings.ToLower(u.Host)
	if p := u.Port(); (u.Scheme == "http" && p == "80") || (u.Scheme == "https" && p == "443") {
		host = strings.ToLower(u.Hostname())
	}
	return strings.ToLower(u.Scheme) + "://" + host, nil
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or "" if it is not
// allowed.
func (c *cors) allowOrigin(origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.origins {
		if o == "*" {
			return "*"
		}
		if o == origin {
			return origin
		}
	}
	return ""
}

// preflight reports whether r is a CORS preflight.
func preflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// wrap answers preflights for next and adds CORS headers to its other responses.
func (c *cors) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if preflight(r) {
			c.answerPreflight(w, r)
			return
		}
		if allow := c.allowOrigin(r.Header.Get("Origin")); allow != "" {
			w = &corsWriter{ResponseWriter: w, set: func(h http.Header) {
				h.Set("Access-Control-Allow-Origin", allow)
				if len(c.cfg.ExposeHeaders) > 0 {
					h.Set("Access-Control-Expose-Headers", strings.Join(c.cfg.ExposeHeaders, ","))
				}
			}}
		} else {
			w = &corsWriter{ResponseWriter: w, set: func(http.Header) {}}
		}
		w.Header().Add("Vary", "Origin")
		next(w, r)
	}
}

func (c *cors) answerPreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	allow := c.allowOrigin(r.Header.Get("Origin"))
	if allow != "" && c.methodAllowed(r.Header.Get("Access-Control-Request-Method")) && c.headersAllowed(r.Header.Values("Access-Control-Request-Headers")) {
		h.Set("Access-Control-Allow-Origin", allow)
		h.Set("Access-Control-Allow-Methods", strings.Join(c.cfg.AllowMethods, ","))
		if len(c.cfg.AllowHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(c.cfg.AllowHeaders, ","))
		}
		if c.cfg.MaxAgeSeconds > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(c.cfg.MaxAgeSeconds))
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (c *cors) methodAllowed(m string) bool {
	return slices.Contains(c.cfg.AllowMethods, strings.TrimSpace(m)) || slices.Contains(c.cfg.AllowMethods, "*")
}

// headersAllowed reports whether every header named in Access-Control-Request-Headers is allowed.
func (c *cors) headersAllowed(values []string) bool {
	for _, v := range values {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if !slices.ContainsFunc(c.cfg.AllowHeaders, func(a string) bool { return a == "*" || strings.EqualFold(a, name) }) {
				return false
			}
		}
	}
	return true
}

// corsWriter replaces whatever Access-Control-* headers the handler set with the gateway's own
// when the status is written.
type corsWriter struct {
	http.ResponseWriter
	set         func(http.Header)
	wroteHeader bool
}

func (cw *corsWriter) WriteHeader(status int) {
	if !cw.wroteHeader {
		cw.wroteHeader = true
		h := cw.ResponseWriter.Header()
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				delete(h, k)
			}
		}
		cw.set(h)
	}
	cw.ResponseWriter.WriteHeader(status)
}

func (cw *corsWriter) Write(b []byte) (int, error) {
	if !cw.wroteHeader {
		cw.WriteHeader(http.StatusOK)
	}
	return cw.ResponseWriter.Write(b)
}
