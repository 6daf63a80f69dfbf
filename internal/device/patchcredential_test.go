package device

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatchCredential(t *testing.T) {
	pw, key, pass, empty := "pw", "PEM", "phrase", ""
	tests := []struct {
		name                      string
		password, key, passphrase *string
		want                      Credential
		wantSet                   bool
	}{
		{name: "none given", want: Credential{}, wantSet: false},
		{name: "password", password: &pw, want: Credential{Password: "pw"}, wantSet: true},
		{name: "key and passphrase", key: &key, passphrase: &pass, want: Credential{PrivateKey: "PEM", Passphrase: "phrase"}, wantSet: true},
		{name: "passphrase alone", passphrase: &pass, want: Credential{Passphrase: "phrase"}, wantSet: true},
		{name: "empty password is given", password: &empty, want: Credential{}, wantSet: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, set := PatchCredential(tc.password, tc.key, tc.passphrase)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.wantSet, set)
		})
	}
}

func TestInvalid(t *testing.T) {
	require.NoError(t, Invalid(nil))
	require.NoError(t, Invalid([]FieldError{}))
	err := Invalid([]FieldError{{Field: "host", Message: "is required"}})
	var v *ValidationError
	require.True(t, errors.As(err, &v))
	assert.Equal(t, []FieldError{{Field: "host", Message: "is required"}}, v.Fields)
}
