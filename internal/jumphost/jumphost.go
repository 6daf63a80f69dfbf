// Package jumphost is NetAuto's registry of jump hosts: SSH bastions that devices reach their
// targets through, named in a device's ordered jump_host_ids chain. A jump host has its own
// address, login, write-only credential (in the device secret store under SecretName) and host
// key, pinned or learned on first use with the same rules as a device's. It imports no AWS SDK.
package jumphost

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// MaxUsedByID bounds the device ids an in-use refusal names.
const MaxUsedByID = 20

// SecretName returns the secret name of a jump host's credential.
func SecretName(id string) string { return "jump-hosts/" + id }

// JumpHost is a jump host's metadata. The credential is never part of it; HasCredential says
// whether one is stored.
type JumpHost struct {
	ID         string
	Host       string
	Port       int
	Username   string
	AuthMethod device.AuthMethod
	// HostKey is the pinned SSH host key in authorized_keys form.
	HostKey string
	// HostKeyLearnedAt is when a connection pinned HostKey on first use or an admin accepted it.
	HostKeyLearnedAt *time.Time
	// PendingHostKey is the key the host offered instead of its pinned one, waiting for an admin.
	PendingHostKey *device.PendingHostKey
	// TrustOnFirstUse lets the first connection learn and pin the host key when none is pinned.
	TrustOnFirstUse bool
	HasCredential   bool
	Version         int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Errors the registry returns; adapters wrap them.
var (
	// ErrNotFound means no jump host has the id.
	ErrNotFound = fault.New(fault.NotFound, "id", "no jump host with this id")
	// ErrExists means a jump host with the id already exists.
	ErrExists = fault.New(fault.Exists, "id", "a jump host with this id already exists")
	// ErrConflict means the stored version differs from the one the write was based on.
	ErrConflict = fault.New(fault.Conflict, "version", "the jump host was changed by someone else; read it again and retry")
	// ErrHostKeyNotPending means an accept named no pending key of the jump host.
	ErrHostKeyNotPending = fault.New(fault.Conflict, "fingerprint", "the jump host has no pending host key with this fingerprint")
)

// InUseError refuses to delete a jump host that devices still name in their chains.
type InUseError struct {
	// ID is the jump host; Count is how many devices name it, DeviceIDs some of them.
	ID        string
	Count     int
	DeviceIDs []string
}

// Error implements error.
func (e *InUseError) Error() string { return e.Public() }

// Kind implements fault.Described: a conflict with the inventory's state.
func (e *InUseError) Kind() fault.Kind { return fault.Conflict }

// Field implements fault.Described.
func (e *InUseError) Field() string { return "id" }

// Public implements fault.Described.
func (e *InUseError) Public() string {
	noun := "devices use"
	if e.Count == 1 {
		noun = "device uses"
	}
	more := ""
	if e.Count > len(e.DeviceIDs) {
		more = ", …"
	}
	return fmt.Sprintf("%d %s jump host %q in its jump_host_ids (%s%s); take it out of their chains first", e.Count, noun, e.ID, strings.Join(e.DeviceIDs, ", "), more)
}

// Store keeps jump host metadata. Create fails with ErrExists when the id is taken; Get, Update
// and Delete with ErrNotFound when it is gone; Update and Delete with ErrConflict when the stored
// version differs.
type Store interface {
	Create(ctx context.Context, h JumpHost) error
	Get(ctx context.Context, id string) (JumpHost, error)
	Update(ctx context.Context, h JumpHost, prevVersion int64) error
	Delete(ctx context.Context, id string, version int64) error
	// List returns every jump host, by id.
	List(ctx context.Context) ([]JumpHost, error)
	// UsedBy counts the devices whose chain names id and returns up to limit of their ids.
	UsedBy(ctx context.Context, id string, limit int) (count int, ids []string, err error)
	// PinHostKey sets key as the host key of jump host id, learned at at, when it has none, and
	// returns the host key afterwards; won is set only for the write that pinned it.
	PinHostKey(ctx context.Context, id, key string, at time.Time) (pinned string, won bool, err error)
	// SetPendingHostKey records p as the jump host's pending host key.
	SetPendingHostKey(ctx context.Context, id string, p device.PendingHostKey) error
	// AcceptHostKey pins the pending key p and clears it, provided the stored pending key still
	// has p's fingerprint (ErrHostKeyNotPending otherwise).
	AcceptHostKey(ctx context.Context, id string, p device.PendingHostKey, at time.Time) (JumpHost, error)
}

// Registry is the jump host service. It implements device.JumpHosts.
type Registry struct {
	store   Store
	secrets device.SecretStore
	now     func() time.Time
}

// NewRegistry returns a registry over store and secrets.
func NewRegistry(store Store, secrets device.SecretStore) (*Registry, error) {
	if store == nil || secrets == nil {
		return nil, errors.New("new jump host registry: store and secret store are required")
	}
	return &Registry{store: store, secrets: secrets, now: func() time.Time { return time.Now().UTC() }}, nil
}

// Input is a jump host to create with its write-only credential.
type Input struct {
	JumpHost
	Credential device.Credential
}

// Patch changes some fields of a jump host; nil fields stay. A password or private key replaces
// the whole credential. Version, when given, must match the stored one.
type Patch struct {
	Host            *string
	Port            *int
	Username        *string
	AuthMethod      *device.AuthMethod
	HostKey         *string
	TrustOnFirstUse *bool
	Password        *string
	PrivateKey      *string
	Passphrase      *string
	Version         *int64
}

// probe carries h's fields through device validation, so a jump host's id, address, login, auth
// method and host key follow exactly the rules of a device's.
func probe(h JumpHost) []device.FieldError {
	d := device.Device{
		ID: h.ID, Name: "probe", Host: h.Host, Port: h.Port, Platform: device.DefaultPlatform,
		Username: h.Username, AuthMethod: h.AuthMethod, HostKey: h.HostKey,
	}
	var v *device.ValidationError
	if err := d.Validate(); !errors.As(err, &v) {
		return nil
	}
	return v.Fields
}

func normalize(h *JumpHost, c device.Credential) {
	if h.Port == 0 {
		h.Port = device.DefaultPort
	}
	if h.AuthMethod == "" {
		h.AuthMethod = device.AuthPassword
		if c.PrivateKey != "" {
			h.AuthMethod = device.AuthPrivateKey
		}
	}
}

// validateCredential checks a jump host's credential: one is required, and it must fit the auth
// method.
func validateCredential(method device.AuthMethod, c device.Credential) []device.FieldError {
	var fs []device.FieldError
	switch {
	case method == device.AuthPrivateKey && c.PrivateKey == "":
		fs = append(fs, device.FieldError{Field: "private_key", Message: "is required with auth_method private-key"})
	case method != device.AuthPrivateKey && c.Password == "":
		fs = append(fs, device.FieldError{Field: "password", Message: "is required with auth_method " + string(method) + " (or give a private_key)"})
	}
	if err := device.ValidateCredential(method, c, ""); err != nil {
		var v *device.ValidationError
		if errors.As(err, &v) {
			fs = append(fs, v.Fields...)
		}
	}
	if c.Passphrase != "" && c.PrivateKey == "" {
		fs = append(fs, device.FieldError{Field: "passphrase", Message: "is only used with a private_key"})
	}
	return fs
}

// Create validates and stores a new jump host and its credential.
func (r *Registry) Create(ctx context.Context, in Input) (JumpHost, error) {
	h := in.JumpHost
	normalize(&h, in.Credential)
	if err := device.Invalid(append(probe(h), validateCredential(h.AuthMethod, in.Credential)...)); err != nil {
		return JumpHost{}, err
	}
	now := r.now()
	h.CreatedAt, h.UpdatedAt, h.Version, h.HasCredential = now, now, 1, true
	h.HostKeyLearnedAt, h.PendingHostKey = nil, nil
	if err := r.store.Create(ctx, h); err != nil {
		return JumpHost{}, fmt.Errorf("create jump host %s: %w", h.ID, err)
	}
	if err := r.secrets.Put(ctx, SecretName(h.ID), in.Credential); err != nil {
		// Roll back so no jump host is left without the credential it was created with.
		if derr := r.store.Delete(ctx, h.ID, h.Version); derr != nil {
			return JumpHost{}, fmt.Errorf("store credential of jump host %s: %w (and roll back the jump host: %v)", h.ID, err, derr)
		}
		return JumpHost{}, fmt.Errorf("store credential of jump host %s: %w", h.ID, err)
	}
	return h, nil
}

// Get returns one jump host.
func (r *Registry) Get(ctx context.Context, id string) (JumpHost, error) {
	h, err := r.store.Get(ctx, id)
	if err != nil {
		return JumpHost{}, fmt.Errorf("get jump host %s: %w", id, err)
	}
	return h, nil
}

// List returns every jump host by id.
func (r *Registry) List(ctx context.Context) ([]JumpHost, error) {
	hs, err := r.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list jump hosts: %w", err)
	}
	return hs, nil
}

// Update applies pa to jump host id. As for a device, a new host or port drops the stored
// credential unless the same request gives a new one: a credential goes only to the host it was
// stored for. A new credential is stored after the metadata, so a refused update never rotates it.
func (r *Registry) Update(ctx context.Context, id string, pa Patch) (JumpHost, error) {
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return JumpHost{}, fmt.Errorf("update jump host %s: %w", id, err)
	}
	if pa.Version != nil && *pa.Version != cur.Version {
		return JumpHost{}, fmt.Errorf("update jump host %s: version %d given, stored version is %d: %w", id, *pa.Version, cur.Version, ErrConflict)
	}
	h := cur
	set(&h.Host, pa.Host)
	set(&h.Port, pa.Port)
	set(&h.Username, pa.Username)
	set(&h.AuthMethod, pa.AuthMethod)
	set(&h.HostKey, pa.HostKey)
	set(&h.TrustOnFirstUse, pa.TrustOnFirstUse)
	if h.HostKey != cur.HostKey {
		// A key set by hand was not learned, and supersedes any key waiting for acceptance.
		h.HostKeyLearnedAt, h.PendingHostKey = nil, nil
	}
	cred, newCred := device.PatchCredential(pa.Password, pa.PrivateKey, pa.Passphrase)
	moved := h.Host != cur.Host || h.Port != cur.Port
	if moved && cred.Password == "" && cred.PrivateKey == "" {
		// A passphrase alone is no credential for the new address.
		cred, newCred, h.HasCredential = device.Credential{}, false, false
	}
	fs := probe(h)
	if newCred {
		fs = append(fs, validateCredential(h.AuthMethod, cred)...)
		h.HasCredential = true
	}
	if err := device.Invalid(fs); err != nil {
		return JumpHost{}, err
	}
	h.Version, h.UpdatedAt = cur.Version+1, r.now()
	if err := r.store.Update(ctx, h, cur.Version); err != nil {
		return JumpHost{}, fmt.Errorf("update jump host %s: %w", id, err)
	}
	switch {
	case newCred:
		if err := r.secrets.Put(ctx, SecretName(id), cred); err != nil {
			return JumpHost{}, fmt.Errorf("store credential of jump host %s: %w", id, err)
		}
	case cur.HasCredential && !h.HasCredential:
		if err := r.secrets.Delete(ctx, SecretName(id)); err != nil {
			return JumpHost{}, fmt.Errorf("delete credential of jump host %s: %w", id, err)
		}
	}
	return h, nil
}

func set[T any](dst, src *T) {
	if src != nil {
		*dst = *src
	}
}

// Delete removes a jump host and its credential; *InUseError while devices name it.
func (r *Registry) Delete(ctx context.Context, id string) error {
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("delete jump host %s: %w", id, err)
	}
	n, users, err := r.store.UsedBy(ctx, id, MaxUsedByID)
	if err != nil {
		return fmt.Errorf("delete jump host %s: find devices using it: %w", id, err)
	}
	if n > 0 {
		return &InUseError{ID: id, Count: n, DeviceIDs: users}
	}
	if err := r.store.Delete(ctx, id, cur.Version); err != nil {
		return fmt.Errorf("delete jump host %s: %w", id, err)
	}
	if err := r.secrets.Delete(ctx, SecretName(id)); err != nil {
		return fmt.Errorf("delete credential of jump host %s: %w", id, err)
	}
	return nil
}

// Existing implements device.JumpHosts: the subset of ids that name jump hosts.
func (r *Registry) Existing(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	hs, err := r.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list jump hosts: %w", err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	for _, h := range hs {
		if want[h.ID] {
			out[h.ID] = true
		}
	}
	return out, nil
}

// Credential returns the stored credential of jump host id; device.ErrNotFound (wrapped) when
// none is stored.
func (r *Registry) Credential(ctx context.Context, h JumpHost) (device.Credential, error) {
	if !h.HasCredential {
		return device.Credential{}, fmt.Errorf("credential of jump host %s: none stored: %w", h.ID, device.ErrNotFound)
	}
	c, err := r.secrets.Get(ctx, SecretName(h.ID))
	if err != nil {
		return device.Credential{}, fmt.Errorf("credential of jump host %s: %w", h.ID, err)
	}
	return c, nil
}

// PinHostKey pins key as jump host id's host key unless one is pinned already; it returns the
// key pinned afterwards and whether this call pinned it.
func (r *Registry) PinHostKey(ctx context.Context, id, key string) (string, bool, error) {
	pinned, won, err := r.store.PinHostKey(ctx, id, key, r.now())
	if err != nil {
		return "", false, fmt.Errorf("pin host key of jump host %s: %w", id, err)
	}
	return pinned, won, nil
}

// RecordPendingHostKey records key as the host key jump host id offered instead of its pinned one.
func (r *Registry) RecordPendingHostKey(ctx context.Context, id, key string) error {
	p, err := device.NewPendingHostKey(key, r.now())
	if err != nil {
		return fmt.Errorf("record pending host key of jump host %s: %w", id, err)
	}
	if err := r.store.SetPendingHostKey(ctx, id, p); err != nil {
		return fmt.Errorf("record pending host key of jump host %s: %w", id, err)
	}
	return nil
}

// AcceptHostKey makes the jump host's pending host key its pinned one when fingerprint names it;
// ErrHostKeyNotPending when nothing is pending or the fingerprint differs. The write is
// conditional on the pending key's fingerprint.
func (r *Registry) AcceptHostKey(ctx context.Context, id, fingerprint string) (JumpHost, error) {
	if !device.ValidFingerprint(fingerprint) {
		return JumpHost{}, fault.New(fault.Invalid, "fingerprint", `must be a SHA-256 key fingerprint, "SHA256:" and 43 base64 characters`)
	}
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return JumpHost{}, fmt.Errorf("accept host key of jump host %s: %w", id, err)
	}
	if cur.PendingHostKey == nil || cur.PendingHostKey.Fingerprint != fingerprint {
		return JumpHost{}, fmt.Errorf("accept host key of jump host %s: %w", id, ErrHostKeyNotPending)
	}
	h, err := r.store.AcceptHostKey(ctx, id, *cur.PendingHostKey, r.now())
	if err != nil {
		return JumpHost{}, fmt.Errorf("accept host key of jump host %s: %w", id, err)
	}
	return h, nil
}
