package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
)

// protectedRoute is one authenticated route with a request that would change (or read) the
// inventory if it were let through.
type protectedRoute struct {
	name   string
	method string
	path   string
	ctype  string
	body   []byte
}

// protectedRoutes are every device route, in an order where each allowed write has its target
// (reads first, delete last). The writes target device seed or create new<suffix> and
// imp<suffix>, so a test can check that nothing happened.
func protectedRoutes(t *testing.T, seed, suffix string) []protectedRoute {
	t.Helper()
	return []protectedRoute{
		{"list", "GET", "/v1/devices", "", nil},
		{"get", "GET", "/v1/devices/" + seed, "", nil},
		{"create", "POST", "/v1/devices", "application/json", mustJSON(t, deviceJSON("new"+suffix, map[string]any{"password": "new-secret"}))},
		{"import", "POST", "/v1/devices/import", "application/json", mustJSON(t, []any{deviceJSON("imp"+suffix, map[string]any{"password": "imp-secret"})})},
		{"patch", "PATCH", "/v1/devices/" + seed, "application/json", []byte(`{"site":"changed","password":"patched-secret"}`)},
		{"delete", "DELETE", "/v1/devices/" + seed, "", nil},
	}
}

// seedDevice creates device id with a credential as admin.
func seedDevice(e *env, id string) {
	e.t.Helper()
	r := e.do(e.tokens[auth.Admin], "POST", "/v1/devices", "application/json", mustJSON(e.t, deviceJSON(id, nil)))
	require.Equal(e.t, http.StatusCreated, r.Status, "seed device %s: %s", id, r.Body)
}

// jwtPart encodes one JWT segment.
func jwtPart(t *testing.T, v any) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString(mustJSON(t, v))
}

// tokenParts splits a compact JWT and decodes its header.
func tokenParts(t *testing.T, tok string) (header map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(tok, ".")
	require.Len(t, parts, 3, "token parts")
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &header))
	return header, parts
}

// trustedKey reads the signer's public key from its JWKS.
func trustedKey(t *testing.T, s *auth.Signer) *rsa.PublicKey {
	t.Helper()
	var set struct {
		Keys []struct{ N, E string }
	}
	require.NoError(t, json.Unmarshal(s.JWKS(), &set), "JWKS")
	require.Len(t, set.Keys, 1, "JWKS keys")
	n, err := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	require.NoError(t, err, "JWKS key's n is not base64url")
	ex, err := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	require.NoError(t, err, "JWKS key's e is not base64url")
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(ex).Int64())}
}

func TestProtectedRoutesRejectBadTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	seedDevice(e, "seed")
	before := e.snapshot()

	issue := func(s *auth.Signer, spec auth.TokenSpec) string {
		t.Helper()
		if spec.Subject == "" {
			spec.Subject = "mallory"
		}
		if spec.Groups == nil {
			spec.Groups = []string{string(auth.Admin)}
		}
		tok, err := s.Issue(spec)
		require.NoError(t, err)
		return tok
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other := auth.NewSigner(otherKey)
	good := issue(e.signer, auth.TokenSpec{})
	header, parts := tokenParts(t, good)
	kid, _ := header["kid"].(string)
	now := time.Now()
	adminClaims := jwt.MapClaims{
		"sub": "mallory", "iss": auth.LocalIssuer, "aud": auth.LocalAudience, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(time.Hour).Unix(), auth.GroupsClaim: []string{"admin"},
	}
	// Another key that claims to be the trusted one (same kid): only the signature tells them apart.
	sameKid := jwt.NewWithClaims(jwt.SigningMethodRS256, adminClaims)
	sameKid.Header["kid"] = kid
	sameKidTok, err := sameKid.SignedString(otherKey)
	require.NoError(t, err)
	// Algorithm confusion: HS256 keyed with the trusted public key (from the signer's JWKS).
	pubDER, err := x509.MarshalPKIXPublicKey(trustedKey(t, e.signer))
	require.NoError(t, err)
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, adminClaims)
	hs.Header["kid"] = kid
	hsTok, err := hs.SignedString(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	require.NoError(t, err)
	noneTok := jwtPart(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + jwtPart(t, adminClaims) + "."
	noneUpperTok := jwtPart(t, map[string]any{"alg": "NONE", "typ": "JWT", "kid": kid}) + "." + jwtPart(t, adminClaims) + "." + parts[2]
	// A viewer token whose payload was swapped for one that claims admin, signature kept.
	_, viewerParts := tokenParts(t, e.tokens[auth.Viewer])
	tampered := viewerParts[0] + "." + jwtPart(t, adminClaims) + "." + viewerParts[2]

	cases := []struct {
		name  string
		token string   // sent as "Bearer <token>" unless empty
		raw   []string // extra header pairs, e.g. a raw Authorization header
	}{
		{name: "missing"},
		{name: "expired", token: issue(e.signer, auth.TokenSpec{Now: now.Add(-2 * time.Hour), TTL: time.Hour})},
		{name: "not valid yet", token: issue(e.signer, auth.TokenSpec{Now: now.Add(time.Hour)})},
		{name: "signed by another signer", token: issue(other, auth.TokenSpec{})},
		{name: "another key with the trusted kid", token: sameKidTok},
		{name: "wrong audience", token: issue(e.signer, auth.TokenSpec{Audience: "someone-else"})},
		{name: "wrong issuer", token: issue(e.signer, auth.TokenSpec{Issuer: "https://evil.example"})},
		{name: "alg none", token: noneTok},
		{name: "alg NONE with a signature", token: noneUpperTok},
		{name: "HS256 keyed with a public key", token: hsTok},
		{name: "payload swapped, signature kept", token: tampered},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + "."},
		{name: "malformed: one segment", token: "not-a-jwt"},
		{name: "malformed: garbage segments", token: "a.b.c"},
		{name: "malformed: four segments", token: good + ".x"},
		{name: "malformed: non-base64 header", token: "!!!." + parts[1] + "." + parts[2]},
		{name: "malformed: header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("hello")) + "." + parts[1] + "." + parts[2]},
		{name: "empty bearer", raw: []string{"Authorization", "Bearer "}},
		{name: "basic scheme", raw: []string{"Authorization", "Basic YWRtaW46YWRtaW4="}},
		{name: "token without scheme", raw: []string{"Authorization", good}},
		{name: "token in another header", raw: []string{"X-Api-Key", good}},
	}
	t.Run("routes", func(t *testing.T) {
		for _, tc := range cases {
			for _, rt := range protectedRoutes(t, "seed", "1") {
				t.Run(tc.name+"/"+rt.name, func(t *testing.T) {
					t.Parallel()
					e := e.forT(t)
					r := e.do(tc.token, rt.method, rt.path, rt.ctype, rt.body, tc.raw...)
					var eb errorBody
					r.JSON(t, &eb)
					assert.Equal(t, http.StatusUnauthorized, r.Status, "%s %s: %s", rt.method, rt.path, r.Body)
					assert.Equal(t, "unauthorized", eb.Error.Code, "%s %s: error code", rt.method, rt.path)
					assert.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer"), "%s %s: WWW-Authenticate = %q", rt.method, rt.path, r.Header.Get("WWW-Authenticate"))
				})
			}
		}
	})
	e.assertUnchanged(before, "new1", "imp1")
	_, err = e.secrets.Get(t.Context(), "devices/seed")
	assert.NoError(t, err, "the seed's credential is gone")
	e.assertNoSecrets("new-secret", "imp-secret", "patched-secret", good)
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	// What a reader (viewer, operator) and an admin get on each route.
	type want struct{ reader, admin int }
	wants := map[string]want{
		"list":   {http.StatusOK, http.StatusOK},
		"get":    {http.StatusOK, http.StatusOK},
		"create": {http.StatusForbidden, http.StatusCreated},
		"import": {http.StatusForbidden, http.StatusCreated},
		"patch":  {http.StatusForbidden, http.StatusOK},
		"delete": {http.StatusForbidden, http.StatusNoContent},
	}
	const (
		nothing = iota
		reader
		admin
	)
	callers := []struct {
		name   string
		groups []string
		level  int
	}{
		{"viewer", []string{"viewer"}, reader},
		{"operator", []string{"operator"}, reader},
		{"admin", []string{"admin"}, admin},
		{"viewer and admin groups", []string{"viewer", "admin"}, admin},
		{"role in other case", []string{"Operator"}, reader},
		{"no groups", nil, nothing},
		{"unknown group", []string{"netops"}, nothing},
		{"group that only looks like a role", []string{"admins"}, nothing},
	}
	// One env; callers take turns, each on its own seed device and new ids.
	e := newEnv(t)
	for i, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			e := e.forT(t)
			seed, suffix := fmt.Sprintf("seed%d", i), fmt.Sprint(i)
			seedDevice(e, seed)
			tok, err := e.signer.Issue(auth.TokenSpec{Subject: c.name, Groups: c.groups})
			require.NoError(t, err)
			for _, rt := range protectedRoutes(t, seed, suffix) {
				w := wants[rt.name]
				expect := http.StatusForbidden
				switch c.level {
				case reader:
					expect = w.reader
				case admin:
					expect = w.admin
				}
				before := e.snapshot()
				r := e.do(tok, rt.method, rt.path, rt.ctype, rt.body)
				if !assert.Equal(t, expect, r.Status, "%s %s: %s", rt.method, rt.path, truncate(r.Body)) {
					continue
				}
				if expect == http.StatusForbidden {
					var eb errorBody
					r.JSON(t, &eb)
					assert.Equal(t, "forbidden", eb.Error.Code, "%s %s: 403 error code", rt.method, rt.path)
					assert.Contains(t, eb.Error.Message, "role", "%s %s: the 403 names the role", rt.method, rt.path)
					e.assertUnchanged(before, "new"+suffix, "imp"+suffix)
					continue
				}
				after := e.snapshot()
				switch rt.name {
				case "create":
					assert.Contains(t, after, "new"+suffix, "create answered 201 but stored nothing")
				case "import":
					assert.Contains(t, after, "imp"+suffix, "import answered 201 but stored nothing")
				case "patch":
					assert.Equal(t, before[seed]+1, after[seed], "patch answered 200: device %s's version", seed)
				case "delete":
					assert.NotContains(t, after, seed, "delete answered 204 but the device is still there")
				}
			}
			if c.level != admin {
				_, err := e.secrets.Get(t.Context(), "devices/"+seed)
				assert.NoError(t, err, "the credential of device %s is gone", seed)
			}
		})
	}
	e.assertNoSecrets("new-secret", "imp-secret", "patched-secret")
}

func TestPublicRoutesNeedNoToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		token  string
		header []string
	}{
		{name: "no token"},
		{name: "garbage token", token: "garbage"},
		{name: "basic auth", header: []string{"Authorization", "Basic Zm9vOmJhcg=="}},
	} {
		for _, path := range []string{"/v1/health", "/v1/openapi.json"} {
			t.Run(tc.name+path, func(t *testing.T) {
				e := e.forT(t)
				r := e.do(tc.token, "GET", path, "", nil, tc.header...)
				require.Equal(t, http.StatusOK, r.Status, "GET %s: %s", path, truncate(r.Body))
				var v map[string]any
				r.JSON(t, &v)
				assert.NotEmpty(t, v, "GET %s: empty document", path)
			})
		}
	}
}
