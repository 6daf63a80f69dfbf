package api_test

// The role × route matrix, generated from openapi.yaml: every operation documents the least role
// it needs in x-netauto-role, and every caller (no token, a token without a role, each role) is
// held to it on every route, through the gateway and on the handler alone.

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/auth"
)

// rolePublic is the x-netauto-role of a route that needs no token.
const rolePublic = "public"

// operation is one path and method of openapi.yaml with the role it documents and, for an
// authenticated one, how scoped roles apply (x-netauto-scope: site or global).
type operation struct {
	method, path, role, scope string
	// headers are the request headers it documents as parameters.
	headers []string
}

func (o operation) String() string { return o.method + " " + o.path }

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// documentedOperations parses openapi.yaml and returns every operation, sorted, failing the test
// when one names no role or a role that is not public, viewer, operator or admin.
func documentedOperations(t testing.TB) []operation {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(api.OpenAPIYAML(), &doc), "parse openapi.yaml")
	var ops []operation
	for path, item := range doc.Paths {
		for key, node := range item {
			if !slices.Contains(httpMethods, key) {
				continue
			}
			var op struct {
				Role       string `yaml:"x-netauto-role"`
				Scope      string `yaml:"x-netauto-scope"`
				Parameters []struct {
					Name string `yaml:"name"`
					In   string `yaml:"in"`
				} `yaml:"parameters"`
			}
			require.NoError(t, node.Decode(&op), "openapi.yaml: %s %s", key, path)
			o := operation{method: strings.ToUpper(key), path: path, role: op.Role, scope: op.Scope}
			for _, p := range op.Parameters {
				if p.In == "header" {
					o.headers = append(o.headers, p.Name)
				}
			}
			if o.role != rolePublic {
				_, ok := auth.ParseRole(o.role)
				require.True(t, ok && o.role == strings.ToLower(o.role),
					"openapi.yaml: %s has x-netauto-role %q; want public, viewer, operator or admin", o, o.role)
				require.True(t, o.scope == scopeSite || o.scope == scopeGlobal,
					"openapi.yaml: %s has x-netauto-scope %q; want site or global", o, o.scope)
			}
			ops = append(ops, o)
		}
	}
	require.NotEmpty(t, ops, "openapi.yaml documents no operation")
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return ops
}

// target is the URL path of o with every path parameter filled with an id that does not exist, so
// an allowed request reads or changes nothing.
func (o operation) target() string {
	var b strings.Builder
	for rest := o.path; rest != ""; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		j := strings.IndexByte(rest[i:], '}')
		b.WriteString(rest[:i])
		b.WriteString("no-such-" + strings.ReplaceAll(rest[i+1:i+j], "_", "-"))
		rest = rest[i+j+1:]
	}
	return b.String()
}

// body is what a request of o carries: an empty JSON object for the methods that take a body,
// which every handler refuses or ignores without writing.
func (o operation) body() (contentType string, body []byte) {
	switch o.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return "application/json", []byte(`{}`)
	}
	return "", nil
}

// roleCaller is one kind of caller of the matrix.
type roleCaller struct {
	name string
	// authenticated is false for the caller without a token (or, on the handler alone, without an
	// identity in the request's context).
	authenticated bool
	// groups are the token's groups; role is the identity's role on the handler alone.
	groups []string
	role   auth.Role
}

var roleCallers = []roleCaller{
	{name: "no token"},
	{name: "token without a role", authenticated: true},
	{name: "viewer", authenticated: true, groups: []string{"viewer"}, role: auth.Viewer},
	{name: "operator", authenticated: true, groups: []string{"operator"}, role: auth.Operator},
	{name: "admin", authenticated: true, groups: []string{"admin"}, role: auth.Admin},
}

// wantStatus is what the caller gets from o by its documented role: 401 without a token, 403 below
// the role, and otherwise the handler's own answer (0: anything but 401, 403 and "no route").
func (c roleCaller) wantStatus(o operation) int {
	switch {
	case o.role == rolePublic:
		return 0
	case !c.authenticated:
		return http.StatusUnauthorized
	case !(auth.Identity{Subject: c.name, Role: c.role}).Can(auth.Role(o.role)):
		return http.StatusForbidden
	}
	return 0
}

// checkRoleAnswer holds one answer to what the matrix wants for it.
func checkRoleAnswer(t *testing.T, o operation, c roleCaller, r response) {
	t.Helper()
	var eb errorBody
	want := c.wantStatus(o)
	switch want {
	case http.StatusUnauthorized, http.StatusForbidden:
		require.Equal(t, want, r.Status, "%s as %s (x-netauto-role %s): body %s", o, c.name, o.role, truncate(r.Body))
		r.JSON(t, &eb)
		code := map[int]string{http.StatusUnauthorized: "unauthorized", http.StatusForbidden: "forbidden"}[want]
		assert.Equal(t, code, eb.Error.Code, "%s as %s: error code", o, c.name)
		if want == http.StatusForbidden {
			assert.Contains(t, eb.Error.Message, o.role, "%s as %s: the 403 names the role it needs", o, c.name)
		}
	default:
		assert.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, r.Status,
			"%s as %s (x-netauto-role %s) is refused: %s", o, c.name, o.role, truncate(r.Body))
		if r.Status == http.StatusNotFound {
			r.JSON(t, &eb)
			assert.NotContains(t, eb.Error.Message, "no route", "%s is documented but the handler has no route for it", o)
		}
	}
}

// TestRoleRouteMatrix sends every caller to every operation of openapi.yaml through the local
// gateway (real tokens) and holds each answer to the operation's x-netauto-role.
func TestRoleRouteMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ops := documentedOperations(t)
	for _, c := range roleCallers {
		tok := ""
		if c.authenticated {
			var err error
			tok, err = e.signer.Issue(auth.TokenSpec{Subject: "matrix-" + strings.ReplaceAll(c.name, " ", "-"), Groups: c.groups})
			require.NoError(t, err, "issue a token for %s", c.name)
		}
		for _, o := range ops {
			t.Run(c.name+"/"+o.String(), func(t *testing.T) {
				t.Parallel()
				e := e.forT(t)
				ctype, body := o.body()
				checkRoleAnswer(t, o, c, e.do(tok, o.method, o.target(), ctype, body))
			})
		}
	}
}

// TestHandlerRoleRouteMatrix is the matrix on the api handler alone, without the gateway in front:
// the handler itself answers 401 to a request without an identity and 403 below the role.
func TestHandlerRoleRouteMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ops := documentedOperations(t)
	for _, c := range roleCallers {
		for _, o := range ops {
			t.Run(c.name+"/"+o.String(), func(t *testing.T) {
				t.Parallel()
				e := e.forT(t)
				var id *auth.Identity
				if c.authenticated {
					id = &auth.Identity{Subject: "matrix", Email: "matrix@example.com", Role: c.role}
				}
				ctype, body := o.body()
				checkRoleAnswer(t, o, c, e.serve(id, o.method, o.target(), ctype, body))
			})
		}
	}
}

// TestHandlerRefusesRequestsWithoutIdentity sends each authenticated operation, with the body it
// would take, to the handler with no identity in the request's context: whatever the gateway in
// front does, the handler answers 401 unauthorized itself and writes nothing.
func TestHandlerRefusesRequestsWithoutIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedDevice(e, "seed")
	before := e.snapshot()
	bodies := map[string][]byte{
		"POST /v1/devices":        mustJSON(t, deviceJSON("anon", map[string]any{"password": "anon-secret"})),
		"POST /v1/devices/import": mustJSON(t, []any{deviceJSON("anonimp", map[string]any{"password": "anon-secret"})}),
		"PATCH /v1/devices/{id}":  []byte(`{"site":"changed","password":"anon-secret"}`),
		"POST /v1/runs":           []byte(`{"device_id":"seed","command":"show version"}`),
		"POST /v1/bulk":           []byte(`{"command":"show version","device_ids":["seed"]}`),
	}
	n := 0
	for _, o := range documentedOperations(t) {
		if o.role == rolePublic {
			continue
		}
		n++
		t.Run(o.String(), func(t *testing.T) {
			e := e.forT(t)
			path := strings.ReplaceAll(o.target(), "no-such-id", "seed")
			ctype, body := o.body()
			if b, ok := bodies[o.String()]; ok {
				body = b
			}
			r := e.serve(nil, o.method, path, ctype, body)
			require.Equal(t, http.StatusUnauthorized, r.Status, "%s without an identity: body %s", o, truncate(r.Body))
			var eb errorBody
			r.JSON(t, &eb)
			assert.Equal(t, "unauthorized", eb.Error.Code, "%s without an identity: error code", o)
		})
	}
	require.NotZero(t, n, "openapi.yaml documents no authenticated operation")
	e.assertUnchanged(before, "anon", "anonimp")
	e.assertNoSecrets("anon-secret")
}

// TestHandlerRoutesAreDocumented reads the routes the handler registers from the package's source
// and holds them to openapi.yaml: every registered route is documented, with the role the handler
// enforces, and every documented operation is registered.
func TestHandlerRoutesAreDocumented(t *testing.T) {
	t.Parallel()
	registered, scopes := registeredRoutes(t)
	documented, documentedScopes := map[string]string{}, map[string]string{}
	for _, o := range documentedOperations(t) {
		documented[o.String()] = o.role
		if o.role != rolePublic {
			documentedScopes[o.String()] = o.scope
		}
	}
	assert.Equal(t, documented, registered, "routes in the handler (right) against x-netauto-role in openapi.yaml (left)")
	assert.Equal(t, documentedScopes, scopes, "route (site) or globalRoute (global) in the handler (right) against x-netauto-scope in openapi.yaml (left)")
}

// Values of x-netauto-scope.
const (
	scopeSite   = "site"
	scopeGlobal = "global"
)

// registeredRoutes parses the non-test Go files of internal/api for s.route(pattern, auth.Role, …)
// (an authenticated, site-scoped route), s.globalRoute(…) (an authenticated route that needs the
// role everywhere) and mux.HandleFunc(pattern, …) (a public one) and returns each pattern with its
// role, and each authenticated pattern with its scope.
func registeredRoutes(t *testing.T) (roles, scopes map[string]string) {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	known := map[string]string{"Viewer": string(auth.Viewer), "Operator": string(auth.Operator), "Admin": string(auth.Admin)}
	out := map[string]string{}
	scopes = map[string]string{}
	kinds := map[string]string{"route": scopeSite, "globalRoute": scopeGlobal}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err, "parse %s", name)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (kinds[sel.Sel.Name] == "" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			pattern, err := strconv.Unquote(lit.Value)
			require.NoError(t, err, "%s: route pattern %s", fset.Position(lit.Pos()), lit.Value)
			if pattern == "/" {
				return true // the catch-all 404
			}
			role := rolePublic
			if kind := kinds[sel.Sel.Name]; kind != "" {
				r, ok := call.Args[1].(*ast.SelectorExpr)
				require.True(t, ok, "%s: the role of %s is not auth.<Role>", fset.Position(call.Pos()), pattern)
				role = known[r.Sel.Name]
				require.NotEmpty(t, role, "%s: %s needs the unknown role %s", fset.Position(call.Pos()), pattern, r.Sel.Name)
				scopes[pattern] = kind
			}
			require.NotContains(t, out, pattern, "%s: %s registered twice", fset.Position(call.Pos()), pattern)
			out[pattern] = role
			return true
		})
	}
	require.NotEmpty(t, out, "found no route registrations in internal/api; this test reads s.route(...), s.globalRoute(...) and mux.HandleFunc(...) calls")
	return out, scopes
}

// serve sends a request straight to the api handler, with id in its context unless it is nil, and
// validates the answer against openapi.yaml like do.
func (e *env) serve(id *auth.Identity, method, path, contentType string, body []byte) response {
	e.t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if id != nil {
		req = req.WithContext(auth.WithIdentity(req.Context(), *id))
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	resp := rec.Result()
	out := rec.Body.Bytes()
	_, _ = e.seen.Write(out)
	e.validate(req, body, resp, out)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: out}
}
