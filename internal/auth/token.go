package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/netauto/netauto/internal/fault"
)

// Local token settings: the issuer and audience the local gateway checks, as API Gateway's JWT
// authorizer checks the user pool's.
const (
	LocalIssuer   = "netauto-local"
	LocalAudience = "netauto"
)

// Signer issues RS256 tokens with one key; it is the local stand-in for the identity provider.
type Signer struct {
	key *rsa.PrivateKey
	kid string
}

// LoadOrCreateSigner reads the PEM key at path, or creates a new 2048-bit key there (mode 0600).
func LoadOrCreateSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, gerr := rsa.GenerateKey(rand.Reader, 2048)
		if gerr != nil {
			return nil, fmt.Errorf("generate signing key: %w", gerr)
		}
		data = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(key)})
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create key folder: %w", err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("write signing key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("signing key %s is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse signing key %s: %w", path, err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s is not RSA", path)
	}
	return NewSigner(key), nil
}

// NewSigner returns a Signer for key.
func NewSigner(key *rsa.PrivateKey) *Signer {
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := base64.RawURLEncoding.EncodeToString(der[len(der)-12:])
	return &Signer{key: key, kid: "local-" + sum}
}

func mustPKCS8(key *rsa.PrivateKey) []byte {
	b, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return b
}

// TokenSpec describes a token to issue.
type TokenSpec struct {
	Subject string
	Email   string
	// EmailUnverified issues the email with email_verified false: it then never names the caller.
	EmailUnverified bool
	Groups          []string
	Issuer          string
	Audience        string
	TTL             time.Duration
	// Now is the issue time; zero means time.Now().
	Now time.Time
}

// Issue signs a token for spec (defaults: local issuer and audience, 12 h).
func (s *Signer) Issue(spec TokenSpec) (string, error) {
	if spec.Issuer == "" {
		spec.Issuer = LocalIssuer
	}
	if spec.Audience == "" {
		spec.Audience = LocalAudience
	}
	if spec.TTL == 0 {
		spec.TTL = 12 * time.Hour
	}
	if spec.Now.IsZero() {
		spec.Now = time.Now()
	}
	claims := jwt.MapClaims{
		"sub": spec.Subject, "iss": spec.Issuer, "aud": spec.Audience,
		"iat": spec.Now.Unix(), "nbf": spec.Now.Unix(), "exp": spec.Now.Add(spec.TTL).Unix(),
		"token_use": "id",
	}
	if spec.Email != "" {
		claims["email"] = spec.Email
		claims["email_verified"] = !spec.EmailUnverified
	}
	if len(spec.Groups) > 0 {
		claims[GroupsClaim] = spec.Groups
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// JWKS returns the signer's public key as a JSON Web Key Set.
func (s *Signer) JWKS() []byte {
	pub := s.key.PublicKey
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": s.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	b, _ := json.Marshal(set)
	return b
}

// Verifier checks tokens as API Gateway's JWT authorizer does: RS256 signature by a known key,
// issuer, audience (aud or client_id), expiry and not-before.
type Verifier struct {
	keys     map[string]*rsa.PublicKey
	issuer   string
	audience string
}

// NewVerifier returns a Verifier trusting the signer's key.
func NewVerifier(s *Signer, issuer, audience string) *Verifier {
	return &Verifier{keys: map[string]*rsa.PublicKey{s.kid: &s.key.PublicKey}, issuer: issuer, audience: audience}
}

// ErrUnauthorized is returned (wrapped) for every rejected token; the wrapped text says why and
// the JWT library's sentinels (jwt.ErrTokenExpired, ...) stay visible to errors.Is.
var ErrUnauthorized = fault.New(fault.Unauthorized, "", "unauthorized")

// ErrUnknownKey is returned (wrapped, under ErrUnauthorized) for a token signed by a key the
// verifier does not hold: after a key rotation, a reason to fetch the key set again.
var ErrUnknownKey = errors.New("unknown signing key")

// Verify validates raw and returns its claims flattened as API Gateway passes them to a function.
func (v *Verifier) Verify(raw string) (map[string]string, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := v.keys[kid]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
		}
		return key, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(v.issuer), jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if !audienceMatches(claims, v.audience) {
		return nil, fmt.Errorf("%w: %w (want %q)", ErrUnauthorized, jwt.ErrTokenInvalidAudience, v.audience)
	}
	return flatten(claims), nil
}

func audienceMatches(claims jwt.MapClaims, want string) bool {
	if aud, err := claims.GetAudience(); err == nil {
		for _, a := range aud {
			if a == want {
				return true
			}
		}
	}
	cid, _ := claims["client_id"].(string)
	return cid == want
}

// flatten renders claims the way API Gateway's HTTP API does: strings as they are, numbers as
// decimal text, arrays as "[a b]".
func flatten(claims jwt.MapClaims) map[string]string {
	out := make(map[string]string, len(claims))
	for k, v := range claims {
		switch x := v.(type) {
		case string:
			out[k] = x
		case float64:
			out[k] = big.NewFloat(x).Text('f', -1)
		case bool:
			out[k] = fmt.Sprint(x)
		case []any:
			parts := make([]string, 0, len(x))
			for _, e := range x {
				parts = append(parts, fmt.Sprint(e))
			}
			out[k] = "[" + strings.Join(parts, " ") + "]"
		default:
			b, _ := json.Marshal(x)
			out[k] = string(b)
		}
	}
	return out
}
