package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPatchSecret(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	require.NoError(t, os.WriteFile(keyFile, []byte("PEM"), 0o600))
	tests := []struct {
		name                           string
		flags                          secretFlags
		stdin                          string
		password, key, passphrase, err string
	}{
		{name: "none asked for", flags: secretFlags{}},
		{name: "password", flags: secretFlags{passwordStdin: true}, stdin: "pw\n", password: "pw"},
		{name: "key alone", flags: secretFlags{keyFile: keyFile}, key: "PEM"},
		{name: "key and passphrase", flags: secretFlags{keyFile: keyFile, passphraseStdn: true}, stdin: "pass\n", key: "PEM", passphrase: "pass"},
		{name: "password and key", flags: secretFlags{passwordStdin: true, keyFile: keyFile}, err: "--password-stdin: give either a password or a private key, not both"},
		{name: "empty stdin", flags: secretFlags{passwordStdin: true}, err: "--password-stdin: stdin is empty"},
	}
	deref := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	orNil := func(s string) string {
		if s == "" {
			return "<nil>"
		}
		return s
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{io: IO{In: strings.NewReader(tc.stdin)}}
			var password, key, passphrase *string
			err := tc.flags.patchSecret(a, &password, &key, &passphrase)
			if tc.err != "" {
				require.EqualError(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, orNil(tc.password), deref(password), "password")
			assert.Equal(t, orNil(tc.key), deref(key), "key")
			assert.Equal(t, orNil(tc.passphrase), deref(passphrase), "passphrase")
		})
	}
}

func TestRequiredSecret(t *testing.T) {
	var f secretFlags
	_, _, _, err := f.requiredSecret(&app{io: IO{In: strings.NewReader("")}})
	require.EqualError(t, err, "a secret is required: --password-stdin or --private-key-file")
}

func TestPatchVersion(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want *int64
	}{
		{name: "not given", args: nil, want: nil},
		{name: "zero given", args: []string{"--version", "0"}, want: new(int64)},
		{name: "given", args: []string{"--version=7"}, want: func() *int64 { v := int64(7); return &v }()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := &cobra.Command{}
			cmd.Flags().Int64("version", 0, "")
			require.NoError(t, cmd.ParseFlags(tc.args))
			assert.Equal(t, tc.want, patchVersion(cmd))
		})
	}
}

func TestResourceItemPath(t *testing.T) {
	r := resource{path: "/jump-hosts"}
	assert.Equal(t, "/jump-hosts/a%2Fb%20c", r.itemPath("a/b c"))
}
