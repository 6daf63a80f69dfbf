package sshexec

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/sshdtest"
)

// TestAuthRefused pins the two ways a device refuses authentication that the wrong-password
// cases do not reach: it allows none of the target's methods (nothing is ever sent), and it
// disconnects after the first refused attempt instead of answering with a failure.
func TestAuthRefused(t *testing.T) {
	keys := sshdtest.ClientKeys(t)
	// The fleet has no authorised keys, so its devices do not offer publickey at all.
	f := startFleet(t, devicesim.Spec{Seed: 5, Devices: []devicesim.DeviceSpec{{Platform: "linux"}}})
	noPublicKey := targetFor(f.Inventory()[0])
	noPublicKey.AuthMethod = AuthPublicKey
	noPublicKey.PrivateKeyPEM = keys.PEM

	tests := []struct {
		name   string
		target Target
	}{
		{"no method in common", noPublicKey},
		{"disconnect after the first refusal", oneTryServer(t)},
	}
	r := newRunner(t, fastOpts)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, out := runCmd(t, r, tt.target, "true")
			requireOutcome(t, res, StatusAuthFailed, ReasonAuthRejected, out)
		})
	}
}

// oneTryServer starts an SSH server that refuses every password and disconnects after the
// first refused attempt (MaxAuthTries 1), and returns a target for it.
func oneTryServer(t *testing.T) Target {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err, "generate host key")
	signer, err := ssh.NewSignerFromKey(priv)
	require.NoError(t, err, "host key signer")
	cfg := &ssh.ServerConfig{
		MaxAuthTries: 1,
		PasswordCallback: func(ssh.ConnMetadata, []byte) (*ssh.Permissions, error) {
			return nil, errors.New("wrong password")
		},
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err, "listen")
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				_, _, _, _ = ssh.NewServerConn(conn, cfg)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	addr := ln.Addr().(*net.TCPAddr)
	return Target{
		Host: "127.0.0.1", Port: addr.Port, Platform: "linux", Username: "netauto",
		AuthMethod: AuthPassword, Password: "not-the-password",
		HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))),
	}
}
