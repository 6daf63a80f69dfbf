package devicesim

import (
	"crypto"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// fleetState is what Spec.StateFile keeps so a restarted fleet comes back the same: each
// device's port and host keys.
type fleetState struct {
	Devices []savedDevice `json:"devices"`
}

// savedDevice is one device's entry in the state file.
type savedDevice struct {
	ID string `json:"id"`
	// Kind is the device's platform, fault and algorithms: an entry is reused only by a device
	// of the same kind (a legacy device needs an RSA key, say).
	Kind string `json:"kind"`
	Port int    `json:"port"`
	// HostKey is the served private host key (OpenSSH PEM).
	HostKey string `json:"host_key"`
	// ListedKey is the public key the inventory lists, when it differs from the served one
	// (FaultChangedHostKey), in authorized_keys format.
	ListedKey string `json:"listed_key,omitempty"`
}

func (ds DeviceSpec) kind() string {
	return fmt.Sprintf("%s/%s/%t", ds.Platform, ds.Fault, ds.Legacy)
}

// readState reads a state file; a missing file is an empty state.
func readState(path string) (map[string]savedDevice, error) {
	out := map[string]savedDevice{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read fleet state: %w", err)
	}
	var st fleetState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("fleet state %s: %w", path, err)
	}
	for _, d := range st.Devices {
		out[d.ID] = d
	}
	return out, nil
}

// writeState replaces the state file with the running fleet's ports and keys, keeping the
// entries of devices this fleet does not run (a smaller fleet started on a larger one's file).
func (f *Fleet) writeState(path string, old map[string]savedDevice) error {
	kept := map[string]bool{}
	var st fleetState
	for _, d := range f.devices {
		st.Devices = append(st.Devices, d.saved)
		kept[d.saved.ID] = true
	}
	for id, d := range old {
		if !kept[id] {
			st.Devices = append(st.Devices, d)
		}
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode fleet state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create fleet state folder: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write fleet state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write fleet state: %w", err)
	}
	return nil
}

// hostKeys returns the signer a device serves and the public key written in the inventory
// (they differ for FaultChangedHostKey), taken from saved when it holds a device of the same
// kind, and the entry to save.
func hostKeys(seed int64, index int, ds DeviceSpec, saved savedDevice, reuse bool) (ssh.Signer, ssh.PublicKey, savedDevice, error) {
	rec := savedDevice{Kind: ds.kind()}
	var servedKey crypto.Signer
	if reuse && saved.HostKey != "" {
		raw, err := ssh.ParseRawPrivateKey([]byte(saved.HostKey))
		if err != nil {
			return nil, nil, rec, fmt.Errorf("saved host key: %w", err)
		}
		k, ok := raw.(crypto.Signer)
		if !ok {
			return nil, nil, rec, fmt.Errorf("saved host key: unsupported type %T", raw)
		}
		servedKey = k
	} else {
		k, err := newHostKey(seed, index, ds, "host")
		if err != nil {
			return nil, nil, rec, err
		}
		servedKey = k
	}
	block, err := ssh.MarshalPrivateKey(servedKey, "")
	if err != nil {
		return nil, nil, rec, fmt.Errorf("encode host key: %w", err)
	}
	rec.HostKey = string(pem.EncodeToMemory(block))
	served, err := signerFor(servedKey, ds)
	if err != nil {
		return nil, nil, rec, err
	}
	if ds.Fault != FaultChangedHostKey {
		return served, served.PublicKey(), rec, nil
	}
	var listed ssh.PublicKey
	if reuse && saved.ListedKey != "" {
		if listed, _, _, _, err = ssh.ParseAuthorizedKey([]byte(saved.ListedKey)); err != nil {
			return nil, nil, rec, fmt.Errorf("saved listed key: %w", err)
		}
	} else {
		k, err := newHostKey(seed, index, ds, "listed")
		if err != nil {
			return nil, nil, rec, err
		}
		s, err := signerFor(k, ds)
		if err != nil {
			return nil, nil, rec, err
		}
		listed = s.PublicKey()
	}
	rec.ListedKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(listed)))
	return served, listed, rec, nil
}

// newHostKey makes a device's host key: ed25519 derived from the seed, index and variant, or a
// fresh RSA key for a legacy device (RSA key generation is not deterministic, so only a state
// file brings a legacy device's key back).
func newHostKey(seed int64, index int, ds DeviceSpec, variant string) (crypto.Signer, error) {
	if ds.Legacy {
		key, err := rsa.GenerateKey(crand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("generate rsa host key: %w", err)
		}
		return key, nil
	}
	s := sha256.Sum256(fmt.Appendf(nil, "devicesim/%d/%d/%s", seed, index, variant))
	return ed25519.NewKeyFromSeed(s[:]), nil
}

// signerFor makes the SSH signer of a host key; a legacy device signs with ssh-rsa (SHA-1) only.
func signerFor(key crypto.Signer, ds DeviceSpec) (ssh.Signer, error) {
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("host key signer: %w", err)
	}
	if !ds.Legacy {
		return signer, nil
	}
	as, ok := signer.(ssh.AlgorithmSigner)
	if !ok {
		return nil, errors.New("rsa signer without algorithms")
	}
	return ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSA})
}

// stableRange is where ports that must stay a device's own across restarts are drawn from: below
// the kernel's ephemeral range, from which outgoing connections take their local ports and
// could take a device's while the fleet is down. ok is false when there is no room below it.
func stableRange() (lo, hi int, ok bool) {
	lo, hi = 10000, ephemeralLow()-1
	return lo, hi, hi-lo >= 1000
}

// ephemeralLow returns the start of the kernel's ephemeral port range (32768 when unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 32768
	}
	return n
}
