package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/internal/auth"
)

// keyedSigner returns a signer and its private key, so a test can also sign tokens the signer
// would never issue (no expiry, another algorithm) with the same key and key id.
func keyedSigner(t *testing.T) (*auth.Signer, *rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	s, err := auth.LoadOrCreateSigner(path)
	require.NoError(t, err)
	tok, err := s.Issue(auth.TokenSpec{Subject: "probe"})
	require.NoError(t, err)
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	kid, _ := parsed.Header["kid"].(string)
	require.NotEmpty(t, kid, "the signer's tokens name their key")
	return s, key, kid
}

// TestGatewayNamesWhyATokenIsRefused sends tokens the real JWT library refuses for each reason
// and checks the gateway's 401 names that reason, never echoing the token.
func TestGatewayNamesWhyATokenIsRefused(t *testing.T) {
	signer, key, kid := keyedSigner(t)
	other := newSigner(t)
	gw, err := gateway.New(gateway.Options{
		API: func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
		},
		Verifier: auth.NewVerifier(signer, auth.LocalIssuer, auth.LocalAudience),
	})
	require.NoError(t, err)
	srv := httptest.NewServer(gw)
	defer srv.Close()

	issue := func(s *auth.Signer, spec auth.TokenSpec) string {
		t.Helper()
		if spec.Subject == "" {
			spec.Subject = "u1"
		}
		tok, err := s.Issue(spec)
		require.NoError(t, err)
		return tok
	}
	sign := func(method jwt.SigningMethod, k any, claims jwt.MapClaims) string {
		t.Helper()
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		require.NoError(t, err)
		return s
	}
	now := time.Now()
	valid := jwt.MapClaims{"sub": "u1", "iss": auth.LocalIssuer, "aud": auth.LocalAudience, "exp": now.Add(time.Hour).Unix()}
	good := issue(signer, auth.TokenSpec{})
	parts := strings.Split(good, ".")
	sig := []byte(parts[2])
	// Another base64 letter in the middle: still well formed, no longer the signature.
	if sig[len(sig)/2] == 'A' {
		sig[len(sig)/2] = 'B'
	} else {
		sig[len(sig)/2] = 'A'
	}
	tampered := parts[0] + "." + parts[1] + "." + string(sig)
	unknownAlg := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"XY512","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2]

	tests := []struct {
		name       string
		token      string
		wantReason string
	}{
		{name: "expired", token: issue(signer, auth.TokenSpec{Now: now.Add(-2 * time.Hour), TTL: time.Hour}), wantReason: "it has expired"},
		{name: "not valid yet", token: issue(signer, auth.TokenSpec{Now: now.Add(time.Hour)}), wantReason: "it is not valid yet"},
		{name: "another audience", token: issue(signer, auth.TokenSpec{Audience: "someone-else"}), wantReason: "it is for another audience"},
		{name: "another issuer", token: issue(signer, auth.TokenSpec{Issuer: "someone-else"}), wantReason: "it is from another issuer"},
		{name: "signature does not verify", token: tampered, wantReason: "its signature is invalid"},
		{name: "algorithm not allowed", token: sign(jwt.SigningMethodHS256, []byte("secret"), valid), wantReason: "its signature is invalid"},
		{name: "unknown key", token: issue(other, auth.TokenSpec{}), wantReason: "it is signed by an unknown key"},
		{name: "unknown algorithm", token: unknownAlg, wantReason: "it uses an unsupported signing method"},
		{name: "malformed", token: "abc.def.ghi", wantReason: "it is malformed"},
		{name: "no expiry", token: sign(jwt.SigningMethodRS256, key, jwt.MapClaims{"sub": "u1", "iss": auth.LocalIssuer, "aud": auth.LocalAudience}), wantReason: "it is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/devices", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			var body struct {
				Error struct{ Code, Message string }
			}
			require.NoError(t, json.Unmarshal(raw, &body), "body %s", raw)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "status for a token refused because %s", tc.wantReason)
			assert.Equal(t, `Bearer error="invalid_token"`, resp.Header.Get("WWW-Authenticate"), "WWW-Authenticate")
			assert.Equal(t, "unauthorized", body.Error.Code, "error code")
			assert.Equal(t, "the bearer token was rejected: "+tc.wantReason, body.Error.Message, "error message")
			assert.NotContains(t, string(raw), tc.token, "the answer echoes the token")
		})
	}
}
