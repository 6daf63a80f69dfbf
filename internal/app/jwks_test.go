package app

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/auth"
)

// TestJWKSVerifierRefetchesForAnUnknownKey rotates the issuer's key: a token signed by the new
// key is accepted once the verifier fetches the key set again, which it does because the old set
// refuses the token with auth.ErrUnknownKey; a token of the old key stays refused after.
func TestJWKSVerifierRefetchesForAnUnknownKey(t *testing.T) {
	const issuer = "https://idp.example.test/pool"
	oldKey, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "old.pem"))
	require.NoError(t, err)
	newKey, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "new.pem"))
	require.NoError(t, err)
	var current atomic.Pointer[auth.Signer]
	current.Store(oldKey)
	var fetches atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write(current.Load().JWKS())
	}))
	defer idp.Close()
	issue := func(s *auth.Signer) string {
		t.Helper()
		tok, err := s.Issue(auth.TokenSpec{Subject: "u1", Issuer: issuer, Audience: "netauto"})
		require.NoError(t, err)
		return tok
	}
	clock := time.Now()
	j := &jwksVerifier{url: idp.URL, issuer: issuer, audience: "netauto", client: idp.Client(), now: func() time.Time { return clock }}

	_, err = j.Verify(issue(oldKey))
	require.NoError(t, err, "a token of the published key")
	require.EqualValues(t, 1, fetches.Load(), "key set fetches before the rotation")

	current.Store(newKey)
	clock = clock.Add(2 * time.Minute) // past the once-a-minute bound on refetches
	claims, err := j.Verify(issue(newKey))
	require.NoError(t, err, "a token of the rotated-in key")
	assert.Equal(t, "u1", claims["sub"], "subject of the rotated-in key's token")
	assert.EqualValues(t, 2, fetches.Load(), "key set fetches after the rotation")

	_, err = j.Verify(issue(oldKey))
	assert.ErrorIs(t, err, auth.ErrUnauthorized, "a token of the retired key")
	assert.ErrorIs(t, err, auth.ErrUnknownKey, "a token of the retired key")
	assert.EqualValues(t, 2, fetches.Load(), "a retired key within the minute fetches nothing")
}

// jwksIdP is an identity provider whose published key set the test changes; it counts fetches
// and fails them while down is set.
type jwksIdP struct {
	srv     *httptest.Server
	keys    atomic.Pointer[[]byte]
	down    atomic.Bool
	fetches atomic.Int32
}

func newJWKSIdP(t *testing.T) *jwksIdP {
	t.Helper()
	p := &jwksIdP{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.fetches.Add(1)
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write(*p.keys.Load())
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *jwksIdP) publish(s *auth.Signer) {
	b := s.JWKS()
	p.keys.Store(&b)
}

// TestJWKSVerifierDropsRetiredKeys retires a key without any token naming an unknown one: the
// scheduled refresh drops it, so its tokens are refused within the refresh period. While the
// issuer is unreachable the old set serves until it is an hour old, then nothing is accepted.
func TestJWKSVerifierDropsRetiredKeys(t *testing.T) {
	const issuer = "https://idp.example.test/pool"
	oldKey, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "old.pem"))
	require.NoError(t, err)
	newKey, err := auth.LoadOrCreateSigner(filepath.Join(t.TempDir(), "new.pem"))
	require.NoError(t, err)
	idp := newJWKSIdP(t)
	idp.publish(oldKey)
	start := time.Now()
	clock := start
	j := &jwksVerifier{url: idp.srv.URL, issuer: issuer, audience: "netauto", client: idp.srv.Client(), now: func() time.Time { return clock }}
	issue := func(s *auth.Signer) string {
		t.Helper()
		tok, err := s.Issue(auth.TokenSpec{Subject: "u1", Issuer: issuer, Audience: "netauto", TTL: 24 * time.Hour})
		require.NoError(t, err)
		return tok
	}
	oldTok, newTok := issue(oldKey), issue(newKey)

	_, err = j.Verify(oldTok)
	require.NoError(t, err, "a token of the published key")
	idp.publish(newKey) // the issuer retires the old key
	clock = start.Add(jwksRefresh - time.Second)
	_, err = j.Verify(oldTok)
	assert.NoError(t, err, "within the refresh period the old set still serves")
	assert.EqualValues(t, 1, idp.fetches.Load(), "fetches within the refresh period")

	clock = start.Add(jwksRefresh)
	_, err = j.Verify(oldTok)
	assert.ErrorIs(t, err, auth.ErrUnknownKey, "a token of the retired key after the refresh")
	_, err = j.Verify(newTok)
	assert.NoError(t, err, "a token of the new key")
	assert.EqualValues(t, 2, idp.fetches.Load(), "fetches after the refresh period")

	idp.down.Store(true)
	refreshed := clock
	clock = refreshed.Add(jwksRefresh + time.Minute)
	_, err = j.Verify(newTok)
	assert.NoError(t, err, "the issuer is unreachable: the last set serves while under an hour old")
	clock = refreshed.Add(jwksMaxStale)
	_, err = j.Verify(newTok)
	require.Error(t, err, "the issuer has been unreachable for an hour")
	assert.NotErrorIs(t, err, auth.ErrUnauthorized, "an unverifiable token is the server's problem, not the caller's")
	idp.down.Store(false)
	clock = clock.Add(time.Minute)
	_, err = j.Verify(newTok)
	assert.NoError(t, err, "the issuer is back")
}
