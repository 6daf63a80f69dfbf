package devicesim

import (
	"crypto"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// AuthAttempt is one authentication attempt a device received.
type AuthAttempt struct {
	// Method is "password", "keyboard-interactive" or "publickey".
	Method string
	User   string
	// Secret is what the client sent: the password, the keyboard-interactive answers joined by
	// newlines, or the public key's fingerprint.
	Secret string
}

// Received is what a device received from clients: every authentication attempt and every
// command, in order. Tests use it to prove what was (or was not) sent to a device.
type Received struct {
	Auth     []AuthAttempt
	Commands []string
	// Answers are the lines typed in reply to a device's question (a dialog's answers, the
	// enable secret), in order.
	Answers []string
}

// receiver keeps one device's Received.
type receiver struct {
	mu  sync.Mutex
	got Received
}

func (r *receiver) auth(a AuthAttempt) {
	r.mu.Lock()
	r.got.Auth = append(r.got.Auth, a)
	r.mu.Unlock()
}

func (r *receiver) command(c string) {
	r.mu.Lock()
	r.got.Commands = append(r.got.Commands, c)
	r.mu.Unlock()
}

func (r *receiver) answer(a string) {
	r.mu.Lock()
	r.got.Answers = append(r.got.Answers, a)
	r.mu.Unlock()
}

func (r *receiver) snapshot() Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Received{Auth: slices.Clone(r.got.Auth), Commands: slices.Clone(r.got.Commands), Answers: slices.Clone(r.got.Answers)}
}

// find returns the device with this inventory id.
func (f *Fleet) find(id string) (*device, error) {
	for _, d := range f.devices {
		if d.inv.ID == id {
			return d, nil
		}
	}
	return nil, fmt.Errorf("no simulated device %q", id)
}

// Received returns what the device with this inventory id has received so far (nothing for an
// unknown id).
func (f *Fleet) Received(id string) Received {
	d, err := f.find(id)
	if err != nil {
		return Received{}
	}
	return d.recv.snapshot()
}

// ChangeHostKey gives the device a new random host key of the same type, as a reinstalled or
// replaced device (or a man in the middle) would present, and returns it in authorized_keys
// form. New connections see the new key; the inventory lists it too.
func (f *Fleet) ChangeHostKey(id string) (string, error) {
	d, err := f.find(id)
	if err != nil {
		return "", err
	}
	var key crypto.Signer
	if d.spec.Legacy {
		if key, err = rsa.GenerateKey(crand.Reader, 2048); err != nil {
			return "", fmt.Errorf("generate rsa host key: %w", err)
		}
	} else if _, key, err = ed25519.GenerateKey(crand.Reader); err != nil {
		return "", fmt.Errorf("generate ed25519 host key: %w", err)
	}
	signer, err := signerFor(key, d.spec)
	if err != nil {
		return "", err
	}
	authorized := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	d.config.Store(d.serverConfig(signer))
	f.mu.Lock()
	d.inv.HostKey, d.invKey = authorized, signer.PublicKey()
	f.mu.Unlock()
	return authorized, nil
}
