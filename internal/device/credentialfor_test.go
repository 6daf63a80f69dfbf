package device

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secretMap is a SecretStore over a map.
type secretMap map[string]Credential

func (m secretMap) Put(_ context.Context, name string, c Credential) error { m[name] = c; return nil }
func (m secretMap) Delete(_ context.Context, name string) error            { delete(m, name); return nil }
func (m secretMap) Get(_ context.Context, name string) (Credential, error) {
	c, ok := m[name]
	if !ok {
		return Credential{}, ErrNotFound
	}
	return c, nil
}

// oneProfile hands every device the same login.
type oneProfile struct{ Profiles }

func (oneProfile) Credential(context.Context, string, Device) (Credential, error) {
	return Credential{Login: "netops", Password: "profile-pw"}, nil
}

// TestCredentialForBinding: the credential CredentialFor returns names the address the device's
// own secret was stored for, a profile's login with the device's own enable secret included, so
// the executor can tell a device read before a move (ForOther); a profile's login alone names
// none.
func TestCredentialForBinding(t *testing.T) {
	secrets := secretMap{}
	inv, err := NewInventory(struct{ Store }{}, secrets)
	require.NoError(t, err)
	inv.UseProfiles(oneProfile{})
	ctx := context.Background()
	own := Device{ID: "own", Host: "192.0.2.1", Port: 22, HasCredential: true}
	withEnable := Device{ID: "en", Host: "192.0.2.2", Port: 2222, CredentialProfile: "lab", HasEnableSecret: true}
	profileOnly := Device{ID: "prof", Host: "192.0.2.3", Port: 22, CredentialProfile: "lab"}
	secrets[SecretName("own")] = Credential{Password: "pw", For: Address(own)}
	secrets[SecretName("en")] = Credential{EnableSecret: "en-pw", For: Address(withEnable)}
	moved := withEnable
	moved.Host = "192.0.2.99"

	tests := []struct {
		name      string
		d         Device
		wantFor   string
		wantOther bool
		wantOwn   bool
	}{
		{name: "its own secret", d: own, wantFor: "192.0.2.1:22", wantOwn: true},
		{name: "a profile's login with its own enable secret", d: withEnable, wantFor: "192.0.2.2:2222", wantOwn: true},
		{name: "the same, read before it moved", d: moved, wantFor: "192.0.2.2:2222", wantOther: true, wantOwn: true},
		{name: "a profile's login alone", d: profileOnly, wantFor: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := inv.CredentialFor(ctx, tt.d)
			require.NoError(t, err)
			assert.Equal(t, tt.wantFor, c.For, "address the credential is for")
			assert.Equal(t, tt.wantOther, c.ForOther(tt.d), "stored for another address")
			assert.Equal(t, tt.wantOwn, tt.d.OwnSecret(), "a secret of its own")
		})
	}
}
