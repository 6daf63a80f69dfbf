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
	j := &jwksVerifier{url: idp.URL, issuer: issuer, audience: "netauto", client: idp.Client()}

	_, err = j.Verify(issue(oldKey))
	require.NoError(t, err, "a token of the published key")
	require.EqualValues(t, 1, fetches.Load(), "key set fetches before the rotation")

	current.Store(newKey)
	j.mu.Lock()
	j.fetched = time.Now().Add(-2 * time.Minute) // past the once-a-minute bound on refetches
	j.mu.Unlock()
	claims, err := j.Verify(issue(newKey))
	require.NoError(t, err, "a token of the rotated-in key")
	assert.Equal(t, "u1", claims["sub"], "subject of the rotated-in key's token")
	assert.EqualValues(t, 2, fetches.Load(), "key set fetches after the rotation")

	_, err = j.Verify(issue(oldKey))
	assert.ErrorIs(t, err, auth.ErrUnauthorized, "a token of the retired key")
	assert.ErrorIs(t, err, auth.ErrUnknownKey, "a token of the retired key")
	assert.EqualValues(t, 2, fetches.Load(), "a retired key within the minute fetches nothing")
}
