package device

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/fault"
)

// Store keeps devices. Create fails with ErrExists when the id is taken; Update and Delete fail
// with ErrConflict when the stored version differs from the one given and with ErrNotFound when
// the device is gone.
type Store interface {
	Create(ctx context.Context, d Device) error
	Get(ctx context.Context, id string) (Device, error)
	Update(ctx context.Context, d Device, prevVersion int64) error
	Delete(ctx context.Context, id string, version int64) error
	List(ctx context.Context, f Filter, p Page) ([]Device, string, error)
	// Existing returns the subset of ids that are taken.
	Existing(ctx context.Context, ids []string) (map[string]bool, error)
	// GetMany returns the devices among ids that exist, as a read before a write needs them.
	GetMany(ctx context.Context, ids []string) (map[string]Device, error)
	// Lookup returns the devices among ids that exist, where a change of the last second or
	// so may not show yet (a cheaper read); a device created before the call is found.
	Lookup(ctx context.Context, ids []string) (map[string]Device, error)
	HostKeyStore
}

// SecretStore keeps credentials by name. Get fails with ErrNotFound for an unknown name; Delete
// of an unknown name succeeds.
type SecretStore interface {
	Put(ctx context.Context, name string, c Credential) error
	Get(ctx context.Context, name string) (Credential, error)
	Delete(ctx context.Context, name string) error
}

// SecretBatchReader is a SecretStore that reads many secrets in few calls.
type SecretBatchReader interface {
	// GetMany returns the stored secrets among names, by name; a name without a secret is absent.
	// failed holds the names whose secret could not be read, each with why (never the secret);
	// err is set when the read as a whole failed.
	GetMany(ctx context.Context, names []string) (found map[string]Credential, failed map[string]error, err error)
}

// SecretCache is a SecretStore that keeps the secrets it reads for a while (secrets.Cache), so an
// executor that runs batch after batch reads each device's secret once, not once per run.
type SecretCache interface {
	SecretStore
	// Prefetch reads ahead, in as few calls as its store allows, each secret of want that it
	// does not keep or kept from a read before the time want gives it (name -> not before).
	// Secrets that fail to read are left for GetFresh, which reports their error.
	Prefetch(ctx context.Context, want map[string]time.Time) error
	// GetFresh is Get, reading the secret again when what is kept was read before notBefore.
	GetFresh(ctx context.Context, name string, notBefore time.Time) (Credential, error)
	// Forget drops what is kept of name.
	Forget(name string)
}

// secretSlack is how long after a device's last update its kept secret is not trusted: the
// inventory stamps the update before it stores the new secret, and the executor's clock may
// differ from the API's.
const secretSlack = time.Minute

// Filter narrows a listing; empty fields match everything.
type Filter struct {
	Platform string
	Site     string
	TagKey   string
	TagValue string
	// Sites, when not nil, keeps only devices on one of these sites (a caller's scope); an empty
	// non-nil list matches nothing.
	Sites []string
}

// Page asks for at most Limit devices after Cursor (an opaque token from a previous page).
type Page struct {
	Limit  int
	Cursor string
}

// Page size limits.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
	// MaxImportRows bounds one import request.
	MaxImportRows = 5000
)

// SecretName returns the secret name of a device's own credential.
func SecretName(id string) string { return "devices/" + id }

// ProfileSecretName returns the secret name of a shared credential profile.
func ProfileSecretName(profile string) string { return "profiles/" + profile }

// Profiles resolves the shared credential profiles devices name.
type Profiles interface {
	// Rule returns what decides which devices may use profile name; ErrUnknownProfile (wrapped)
	// when no profile has the name.
	Rule(ctx context.Context, name string) (ProfileRule, error)
	// Credential returns the login of profile name for d after checking again that d may use it:
	// ErrNotFound (wrapped) when the profile or its secret is gone, ErrCredentialNotAllowed
	// (wrapped) when d may not use it.
	Credential(ctx context.Context, name string, d Device) (Credential, error)
}

// ProfileRule decides whether a device may use a credential profile.
type ProfileRule interface {
	// Allows returns nil when d may use the profile and ErrCredentialNotAllowed (wrapped, with a
	// message naming the rule) when not.
	Allows(d Device) error
}

// Errors of credential profile checks; the profile registry wraps them with a message that names
// the profile and the rule.
var (
	// ErrUnknownProfile means no credential profile has the name a device gives.
	ErrUnknownProfile = fault.New(fault.Invalid, "credential_profile", "no credential profile has this name")
	// ErrCredentialNotAllowed means the device is outside the profile's allowed sites and tags.
	ErrCredentialNotAllowed = fault.New(fault.Invalid, "credential_profile", "the credential profile is not allowed for this device")
)

// JumpHosts tells which jump host ids exist, so a device's chain names only real jump hosts.
type JumpHosts interface {
	// Existing returns the subset of ids that name jump hosts.
	Existing(ctx context.Context, ids []string) (map[string]bool, error)
}

// Inventory is the device inventory service.
type Inventory struct {
	store     Store
	secrets   SecretStore
	profiles  Profiles
	jumpHosts JumpHosts
	now       func() time.Time
}

// UseJumpHosts makes the inventory check devices' jump host chains against j. Without it a device
// that names a jump host is refused.
func (inv *Inventory) UseJumpHosts(j JumpHosts) { inv.jumpHosts = j }

// checkChains returns, for each of ds with a chain naming a jump host that does not exist, a
// *ValidationError naming jump_host_ids; nil entries for the others. One lookup serves them all.
func (inv *Inventory) checkChains(ctx context.Context, ds []Device) ([]error, error) {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.JumpHostIDs...)
	}
	out := make([]error, len(ds))
	if len(ids) == 0 {
		return out, nil
	}
	refuse := func(msg string) error {
		return &ValidationError{Fields: []FieldError{{Field: "jump_host_ids", Message: msg}}}
	}
	if inv.jumpHosts == nil {
		for i, d := range ds {
			if len(d.JumpHostIDs) > 0 {
				out[i] = refuse("jump hosts are not configured on this deployment")
			}
		}
		return out, nil
	}
	exist, err := inv.jumpHosts.Existing(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("check jump hosts: %w", err)
	}
	for i, d := range ds {
		for _, id := range d.JumpHostIDs {
			if !exist[id] {
				out[i] = refuse(fmt.Sprintf("names no jump host %q; every item must be an existing jump host id (admin: /v1/jump-hosts)", id))
				break
			}
		}
	}
	return out, nil
}

// checkChain is checkChains for one device.
func (inv *Inventory) checkChain(ctx context.Context, d Device) error {
	errs, err := inv.checkChains(ctx, []Device{d})
	if err != nil {
		return err
	}
	return errs[0]
}

// UseProfiles makes the inventory resolve and check credential profiles through p. Without it a
// device that names a profile is refused, and has no credential at run time.
func (inv *Inventory) UseProfiles(p Profiles) { inv.profiles = p }

// checkProfile returns nil when d names no profile or one it may use, and a *ValidationError
// naming credential_profile when it names another. rules, when not nil, caches the rules an
// import has already read.
func (inv *Inventory) checkProfile(ctx context.Context, d Device, rules map[string]ProfileRule) error {
	if d.CredentialProfile == "" {
		return nil
	}
	refuse := func(err error) error {
		msg := err.Error()
		if f, ok := fault.As(err); ok {
			msg = f.Public()
		}
		return &ValidationError{Fields: []FieldError{{Field: "credential_profile", Message: msg}}}
	}
	if inv.profiles == nil {
		return refuse(errors.New("credential profiles are not configured on this deployment"))
	}
	rule, ok := rules[d.CredentialProfile]
	if !ok {
		var err error
		if rule, err = inv.profiles.Rule(ctx, d.CredentialProfile); err != nil {
			if errors.Is(err, ErrUnknownProfile) {
				return refuse(err)
			}
			return fmt.Errorf("read credential profile %s: %w", d.CredentialProfile, err)
		}
		if rules != nil {
			rules[d.CredentialProfile] = rule
		}
	}
	if err := rule.Allows(d); err != nil {
		return refuse(err)
	}
	return nil
}

// NewInventory returns an Inventory over store and secrets.
func NewInventory(store Store, secrets SecretStore) (*Inventory, error) {
	if store == nil || secrets == nil {
		return nil, errors.New("new inventory: store and secret store are required")
	}
	return &Inventory{store: store, secrets: secrets, now: func() time.Time { return time.Now().UTC() }}, nil
}

// Input is a device to create with its write-only credential.
type Input struct {
	Device
	Credential
}

// Normalize fills defaults (port 22, platform linux, auth method password, empty tags).
func (in *Input) Normalize() {
	if in.Port == 0 {
		in.Port = DefaultPort
	}
	if in.Platform == "" {
		in.Platform = DefaultPlatform
	}
	if in.AuthMethod == "" {
		if in.PrivateKey != "" {
			in.AuthMethod = AuthPrivateKey
		} else {
			in.AuthMethod = AuthPassword
		}
	}
	if in.Tags == nil {
		in.Tags = map[string]string{}
	}
}

// Validate checks the device and its credential.
func (in *Input) Validate() error {
	var fields []FieldError
	if err := in.Device.Validate(); err != nil {
		fields = append(fields, err.(*ValidationError).Fields...)
	}
	if err := ValidateCredential(in.AuthMethod, in.Credential, in.CredentialProfile); err != nil {
		fields = append(fields, err.(*ValidationError).Fields...)
	}
	if len(fields) > 0 {
		return &ValidationError{Fields: fields}
	}
	return nil
}

// Create validates and stores a new device and its credential.
func (inv *Inventory) Create(ctx context.Context, in Input) (Device, error) {
	in.Normalize()
	if err := in.Validate(); err != nil {
		return Device{}, err
	}
	d := in.Device
	if err := inv.checkProfile(ctx, d, nil); err != nil {
		return Device{}, err
	}
	if err := inv.checkChain(ctx, d); err != nil {
		return Device{}, err
	}
	now := inv.now()
	d.CreatedAt, d.UpdatedAt, d.Version = now, now, 1
	d.HasCredential, d.HasEnableSecret = !in.Credential.Empty(), in.EnableSecret != ""
	if err := inv.store.Create(ctx, d); err != nil {
		return Device{}, fmt.Errorf("create device %s: %w", d.ID, err)
	}
	if d.HasCredential || d.HasEnableSecret {
		cred := in.Credential
		cred.For = Address(d)
		if err := inv.secrets.Put(ctx, SecretName(d.ID), cred); err != nil {
			// Roll back so no device is left pointing at a credential that was never stored.
			if derr := inv.store.Delete(ctx, d.ID, d.Version); derr != nil {
				return Device{}, fmt.Errorf("store credential of %s: %w (and roll back the device: %v)", d.ID, err, derr)
			}
			return Device{}, fmt.Errorf("store credential of %s: %w", d.ID, err)
		}
	}
	return d, nil
}

// Current returns device id as stored now (strongly consistent); ErrNotFound when it is gone.
func (inv *Inventory) Current(ctx context.Context, id string) (Device, error) {
	d, err := inv.store.Get(ctx, id)
	if err != nil {
		return Device{}, fmt.Errorf("read device %s: %w", id, err)
	}
	return d, nil
}

// GetMany returns the devices among ids that exist, keyed by id, read with the store's Lookup:
// runs, policy checks and listings read many devices and change none, so a change of the last
// second or so may not show yet.
func (inv *Inventory) GetMany(ctx context.Context, ids []string) (map[string]Device, error) {
	ds, err := inv.store.Lookup(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("get %d devices: %w", len(ids), err)
	}
	return ds, nil
}

// Get returns one device.
func (inv *Inventory) Get(ctx context.Context, id string) (Device, error) {
	d, err := inv.store.Get(ctx, id)
	if err != nil {
		return Device{}, fmt.Errorf("get device %s: %w", id, err)
	}
	return d, nil
}

// List returns a page of devices matching f and the cursor of the next page ("" at the end).
func (inv *Inventory) List(ctx context.Context, f Filter, p Page) ([]Device, string, error) {
	if p.Limit <= 0 {
		p.Limit = DefaultPageSize
	}
	if p.Limit > MaxPageSize {
		p.Limit = MaxPageSize
	}
	ds, next, err := inv.store.List(ctx, f, p)
	if err != nil {
		return nil, "", fmt.Errorf("list devices: %w", err)
	}
	return ds, next, nil
}

// Patch changes some fields of a device; nil fields stay as they are. Tags, when given, replace
// the whole tag map. Version, when given, must match the stored version (optimistic concurrency);
// without it the update still fails with ErrConflict if the device changes between read and write.
type Patch struct {
	Name              *string            `json:"name"`
	Host              *string            `json:"host"`
	Port              *int               `json:"port"`
	Platform          *string            `json:"platform"`
	Username          *string            `json:"username"`
	AuthMethod        *AuthMethod        `json:"auth_method"`
	Tags              *map[string]string `json:"tags"`
	Site              *string            `json:"site"`
	HostKey           *string            `json:"host_key"`
	TrustOnFirstUse   *bool              `json:"trust_on_first_use"`
	LegacyAlgorithms  *bool              `json:"legacy_algorithms"`
	CredentialProfile *string            `json:"credential_profile"`
	JumpHostIDs       *[]string          `json:"jump_host_ids"`
	Password          *string            `json:"password"`
	PrivateKey        *string            `json:"private_key"`
	Passphrase        *string            `json:"passphrase"`
	EnableSecret      *string            `json:"enable_secret"`
	Version           *int64             `json:"version"`
}

func (p Patch) credential() (Credential, bool) {
	return PatchCredential(p.Password, p.PrivateKey, p.Passphrase)
}

// PatchCredential is the login credential a patch's password, private key and passphrase give
// (nil: not given), and whether it gives any of them: the patches of devices, credential profiles
// and jump hosts replace a stored login only when one is given.
func PatchCredential(password, privateKey, passphrase *string) (Credential, bool) {
	var c Credential
	set := false
	for _, f := range []struct{ src, dst *string }{{password, &c.Password}, {privateKey, &c.PrivateKey}, {passphrase, &c.Passphrase}} {
		if f.src != nil {
			*f.dst = *f.src
			set = true
		}
	}
	return c, set
}

// Invalid is a *ValidationError of fs, nil when fs is empty.
func Invalid(fs []FieldError) error {
	if len(fs) == 0 {
		return nil
	}
	return &ValidationError{Fields: fs}
}

// Update applies p to device id and returns the stored result.
func (inv *Inventory) Update(ctx context.Context, id string, p Patch) (Device, error) {
	cur, err := inv.store.Get(ctx, id)
	if err != nil {
		return Device{}, fmt.Errorf("update device %s: %w", id, err)
	}
	if p.Version != nil && *p.Version != cur.Version {
		return Device{}, fmt.Errorf("update device %s: version %d given, stored version is %d: %w", id, *p.Version, cur.Version, ErrConflict)
	}
	d := cur
	setIf(&d.Name, p.Name)
	setIf(&d.Host, p.Host)
	setIf(&d.Port, p.Port)
	setIf(&d.Platform, p.Platform)
	setIf(&d.Username, p.Username)
	setIf(&d.AuthMethod, p.AuthMethod)
	setIf(&d.Tags, p.Tags)
	setIf(&d.Site, p.Site)
	setIf(&d.HostKey, p.HostKey)
	if d.HostKey != cur.HostKey {
		// A key set by hand was not learned, and supersedes any key waiting for acceptance.
		d.HostKeyLearnedAt, d.PendingHostKey = nil, nil
	}
	setIf(&d.TrustOnFirstUse, p.TrustOnFirstUse)
	setIf(&d.LegacyAlgorithms, p.LegacyAlgorithms)
	setIf(&d.CredentialProfile, p.CredentialProfile)
	setIf(&d.JumpHostIDs, p.JumpHostIDs)
	if len(d.JumpHostIDs) == 0 {
		d.JumpHostIDs = nil
	}
	if d.Tags == nil {
		d.Tags = map[string]string{}
	}
	cred, newCred := p.credential()
	enable, newEnable := "", p.EnableSecret != nil
	if newEnable {
		enable = *p.EnableSecret
	}
	if d.Host != cur.Host || d.Port != cur.Port {
		if !newEnable {
			// The enable secret goes only to the host it was stored for, like the login.
			d.HasEnableSecret = false
		}
		// A credential goes only to the host it was stored for: a new address drops the device's
		// own secret and its profile unless this same request gives a new secret or names the
		// profile again (checked below against the profile's allowed sites and tags).
		if cred.Password == "" && cred.PrivateKey == "" {
			// A passphrase alone is no secret for the new host.
			cred, newCred, d.HasCredential = Credential{}, false, false
		}
		if p.CredentialProfile == nil {
			d.CredentialProfile = ""
		}
	}
	if err := d.Validate(); err != nil {
		return Device{}, err
	}
	if newCred {
		// Checked against the profile the device ends up with, so a new credential for a device
		// that keeps its profile is refused as on create.
		if err := ValidateCredential(d.AuthMethod, cred, d.CredentialProfile); err != nil {
			return Device{}, err
		}
		d.HasCredential = !cred.Empty()
	}
	if d.CredentialProfile != "" && !newCred && p.CredentialProfile != nil {
		// Switching to a profile drops the device's own secret.
		d.HasCredential = false
	}
	if newEnable {
		if err := ValidateCredential(d.AuthMethod, Credential{EnableSecret: enable}, ""); err != nil {
			return Device{}, err
		}
		d.HasEnableSecret = enable != ""
	}
	// Checked on every update: a new site or tags can take the device out of its profile's reach.
	if err := inv.checkProfile(ctx, d, nil); err != nil {
		return Device{}, err
	}
	if p.JumpHostIDs != nil {
		if err := inv.checkChain(ctx, d); err != nil {
			return Device{}, err
		}
	}
	d.Version = cur.Version + 1
	d.UpdatedAt = inv.now()
	if err := inv.store.Update(ctx, d, cur.Version); err != nil {
		return Device{}, fmt.Errorf("update device %s: %w", id, err)
	}
	if newCred || newEnable || cur.HasCredential != d.HasCredential || cur.HasEnableSecret != d.HasEnableSecret {
		if newCred && cred.Empty() {
			newCred = false // an emptied credential is a dropped one
		}
		if err := inv.storeSecret(ctx, cur, d, cred, newCred, enable, newEnable); err != nil {
			return Device{}, err
		}
	}
	return d, nil
}

// storeSecret writes the secret device d keeps after an update of cur: its login (cred when
// newCred, else the stored one while d still has it) and its enable secret (enable when
// newEnable, else the stored one while d still has it), or deletes it when d keeps neither.
func (inv *Inventory) storeSecret(ctx context.Context, cur, d Device, cred Credential, newCred bool, enable string, newEnable bool) error {
	name := SecretName(d.ID)
	if !d.HasCredential && !d.HasEnableSecret {
		if !cur.HasCredential && !cur.HasEnableSecret {
			return nil
		}
		if err := inv.secrets.Delete(ctx, name); err != nil {
			return fmt.Errorf("delete credential of %s: %w", d.ID, err)
		}
		return nil
	}
	var old Credential
	if (d.HasCredential && !newCred) || (d.HasEnableSecret && !newEnable) {
		var err error
		if old, err = inv.secrets.Get(ctx, name); err != nil {
			return fmt.Errorf("read credential of %s: %w", d.ID, err)
		}
	}
	var out Credential
	switch {
	case newCred:
		out = cred
	case d.HasCredential:
		out = old
	}
	out.Login, out.EnableSecret, out.For = "", "", Address(d)
	if newEnable {
		out.EnableSecret = enable
	} else if d.HasEnableSecret {
		out.EnableSecret = old.EnableSecret
	}
	if err := inv.secrets.Put(ctx, name, out); err != nil {
		return fmt.Errorf("store credential of %s: %w", d.ID, err)
	}
	return nil
}

// createBatch creates rows[idx...] (validated, new) with one CreateBatch call, then stores their
// credentials, and reports each row through record. When the batch is refused (an id was taken
// meanwhile, or the store failed) the rows are created one by one instead, so each gets its own
// outcome.
func (inv *Inventory) createBatch(ctx context.Context, bc BatchCreator, rows []Input, idx []int, record func(int, error)) {
	now := inv.now()
	ds := make([]Device, len(idx))
	for k, i := range idx {
		d := rows[i].Device
		d.CreatedAt, d.UpdatedAt, d.Version = now, now, 1
		d.HasCredential, d.HasEnableSecret = !rows[i].Credential.Empty(), rows[i].EnableSecret != ""
		ds[k] = d
	}
	if err := bc.CreateBatch(ctx, ds); err != nil {
		if ctx.Err() != nil {
			for _, i := range idx {
				record(i, err)
			}
			return
		}
		for _, i := range idx {
			_, err := inv.Create(ctx, rows[i])
			record(i, err)
		}
		return
	}
	for k, i := range idx {
		if !ds[k].HasCredential && !ds[k].HasEnableSecret {
			record(i, nil)
			continue
		}
		cred := rows[i].Credential
		cred.For = Address(ds[k])
		if err := inv.secrets.Put(ctx, SecretName(ds[k].ID), cred); err != nil {
			// As in Create: no device is left pointing at a credential that was never stored.
			if derr := inv.store.Delete(ctx, ds[k].ID, ds[k].Version); derr != nil {
				err = fmt.Errorf("%w (and roll back the device: %v)", err, derr)
			}
			record(i, fmt.Errorf("store credential of %s: %w", ds[k].ID, err))
			continue
		}
		record(i, nil)
	}
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// Delete removes a device and its credential.
func (inv *Inventory) Delete(ctx context.Context, id string) error {
	cur, err := inv.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("delete device %s: %w", id, err)
	}
	if err := inv.store.Delete(ctx, id, cur.Version); err != nil {
		return fmt.Errorf("delete device %s: %w", id, err)
	}
	if cur.HasCredential || cur.HasEnableSecret {
		if err := inv.secrets.Delete(ctx, SecretName(id)); err != nil {
			return fmt.Errorf("delete credential of %s: %w", id, err)
		}
	}
	return nil
}

// CredentialFor returns the credential the device authenticates with: its own, or its profile's
// when the profile still allows it. ErrNotFound (wrapped) when it has none.
func (inv *Inventory) CredentialFor(ctx context.Context, d Device) (Credential, error) {
	if d.CredentialProfile != "" {
		if inv.profiles == nil {
			return Credential{}, fmt.Errorf("credential of device %s: profile %s: credential profiles are not configured: %w", d.ID, d.CredentialProfile, ErrNotFound)
		}
		c, err := inv.profiles.Credential(ctx, d.CredentialProfile, d)
		if err != nil {
			return Credential{}, fmt.Errorf("credential of device %s: %w", d.ID, err)
		}
		if d.HasEnableSecret { // the device's own enable secret wins over its profile's
			own, err := inv.ownSecret(ctx, d)
			if err != nil {
				return Credential{}, fmt.Errorf("enable secret of device %s: %w", d.ID, err)
			}
			c.EnableSecret, c.For = own.EnableSecret, own.For
		}
		return c, nil
	}
	if !d.HasCredential {
		return Credential{}, fmt.Errorf("credential of device %s: none stored: %w", d.ID, ErrNotFound)
	}
	c, err := inv.ownSecret(ctx, d)
	if err != nil {
		return Credential{}, fmt.Errorf("credential of device %s: %w", d.ID, err)
	}
	return c, nil
}

// ownSecret reads the device's own secret; from a secret cache, only what it read after the
// device's last update (with secretSlack): a credential kept from before a change of host must
// not reach the new host.
func (inv *Inventory) ownSecret(ctx context.Context, d Device) (Credential, error) {
	if sc, ok := inv.secrets.(SecretCache); ok {
		return sc.GetFresh(ctx, SecretName(d.ID), d.UpdatedAt.Add(secretSlack))
	}
	return inv.secrets.Get(ctx, SecretName(d.ID))
}

// PrefetchCredentials reads ahead, in as few calls as the secret store allows, the devices' own
// secrets that CredentialFor will read, when the store is a SecretCache (otherwise it does
// nothing). A secret that fails to read is left to CredentialFor, which reports its error.
func (inv *Inventory) PrefetchCredentials(ctx context.Context, ds []Device) error {
	sc, ok := inv.secrets.(SecretCache)
	if !ok {
		return nil
	}
	want := map[string]time.Time{}
	for _, d := range ds {
		if (d.CredentialProfile == "" && d.HasCredential) || (d.CredentialProfile != "" && d.HasEnableSecret) {
			want[SecretName(d.ID)] = d.UpdatedAt.Add(secretSlack)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if err := sc.Prefetch(ctx, want); err != nil {
		return fmt.Errorf("prefetch credentials: %w", err)
	}
	return nil
}

// RefreshCredential is CredentialFor reading the device's secrets again, not from what the
// secret store kept: for a device that refused a kept credential, which may have been rotated
// since it was read. refreshed is false, and nothing is read, when the store keeps nothing (it
// is no SecretCache): the credential read before was the stored one.
func (inv *Inventory) RefreshCredential(ctx context.Context, d Device) (c Credential, refreshed bool, err error) {
	sc, ok := inv.secrets.(SecretCache)
	if !ok {
		return Credential{}, false, nil
	}
	sc.Forget(SecretName(d.ID))
	if d.CredentialProfile != "" {
		sc.Forget(ProfileSecretName(d.CredentialProfile))
	}
	c, err = inv.CredentialFor(ctx, d)
	return c, err == nil, err
}

// checkImportChains refuses the still-valid rows whose chains name jump hosts that do not exist,
// with one lookup for the whole import.
func (inv *Inventory) checkImportChains(ctx context.Context, rows []Input, res *ImportResult) error {
	var idx []int
	var ds []Device
	for i := range rows {
		if res.Rows[i].Status == RowCreated && len(rows[i].JumpHostIDs) > 0 {
			idx, ds = append(idx, i), append(ds, rows[i].Device)
		}
	}
	errs, err := inv.checkChains(ctx, ds)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	for k, e := range errs {
		if e == nil {
			continue
		}
		res.Rows[idx[k]].Status, res.Rows[idx[k]].Errors = RowInvalid, e.(*ValidationError).Fields
	}
	return nil
}

// ImportMode says what an import does when some rows are rejected.
type ImportMode string

// Import modes.
const (
	// ImportAtomic writes nothing unless every row is valid and new.
	ImportAtomic ImportMode = "atomic"
	// ImportPerRow writes every valid new row and reports the others.
	ImportPerRow ImportMode = "per-row"
)

// Row statuses in an import result.
const (
	RowCreated = "created"
	RowInvalid = "invalid"
	RowExists  = "exists"
	RowSkipped = "skipped"
	RowFailed  = "failed"
)

// RowResult is the outcome of one import row (rows count from 1).
type RowResult struct {
	Row    int          `json:"row"`
	ID     string       `json:"id,omitempty"`
	Status string       `json:"status"`
	Errors []FieldError `json:"errors,omitempty"`
}

// ImportResult is the outcome of an import.
type ImportResult struct {
	Mode    ImportMode  `json:"mode"`
	Created int         `json:"created"`
	Failed  int         `json:"failed"`
	Rows    []RowResult `json:"rows"`
}

// ErrImportRejected is returned (wrapped) by an atomic import that wrote nothing because some
// rows were rejected; the result says which.
var ErrImportRejected = fault.New(fault.Rejected, "rows", "import rejected")

// importWorkers bounds concurrent writes during an import.
const importWorkers = 16

// BatchCreator is a Store that can create several new devices in one all-or-nothing call (a
// DynamoDB transaction). Import uses it when the store offers it: one call per batch instead of
// one per device.
type BatchCreator interface {
	// CreateBatch stores all of ds or none; it fails with ErrExists (wrapped) when an id is taken.
	CreateBatch(ctx context.Context, ds []Device) error
}

// importBatch is how many devices one CreateBatch call carries.
const importBatch = 25

// Import creates many devices at once. Each row is validated and checked against the inventory
// and against the other rows (a repeated id is rejected) before anything is written.
func (inv *Inventory) Import(ctx context.Context, rows []Input, mode ImportMode) (ImportResult, error) {
	res := ImportResult{Mode: mode, Rows: make([]RowResult, len(rows))}
	seen := map[string]int{}
	rules := map[string]ProfileRule{}
	var ids []string
	for i := range rows {
		rows[i].Normalize()
		r := &res.Rows[i]
		r.Row, r.ID, r.Status = i+1, rows[i].ID, RowCreated
		if err := rows[i].Validate(); err != nil {
			r.Status, r.Errors = RowInvalid, err.(*ValidationError).Fields
			continue
		}
		if first, dup := seen[rows[i].ID]; dup {
			r.Status = RowInvalid
			r.Errors = []FieldError{{Field: "id", Message: fmt.Sprintf("repeats the id of row %d", first)}}
			continue
		}
		if err := inv.checkProfile(ctx, rows[i].Device, rules); err != nil {
			var v *ValidationError
			if !errors.As(err, &v) {
				return res, fmt.Errorf("import: %w", err)
			}
			r.Status, r.Errors = RowInvalid, v.Fields
			continue
		}
		seen[rows[i].ID] = i + 1
		ids = append(ids, rows[i].ID)
	}
	if err := inv.checkImportChains(ctx, rows, &res); err != nil {
		return res, err
	}
	ids = ids[:0]
	for i := range res.Rows {
		if res.Rows[i].Status == RowCreated {
			ids = append(ids, res.Rows[i].ID)
		}
	}
	existing, err := inv.store.Existing(ctx, ids)
	if err != nil {
		return res, fmt.Errorf("import: check existing ids: %w", err)
	}
	var todo []int
	for i := range res.Rows {
		r := &res.Rows[i]
		if r.Status != RowCreated {
			continue
		}
		if existing[r.ID] {
			r.Status = RowExists
			r.Errors = []FieldError{{Field: "id", Message: "a device with this id already exists"}}
			continue
		}
		todo = append(todo, i)
	}
	rejected := len(rows) - len(todo)
	if mode == ImportAtomic && rejected > 0 {
		for _, i := range todo {
			res.Rows[i].Status = RowSkipped
		}
		res.Failed = rejected
		return res, fault.Errorf(fault.Rejected, "rows", "import: %d of %d rows rejected, nothing written: %w", rejected, len(rows), ErrImportRejected)
	}

	var mu sync.Mutex
	var created []string
	var firstErr error
	record := func(i int, err error) {
		mu.Lock()
		defer mu.Unlock()
		r := &res.Rows[i]
		switch {
		case err == nil:
			created = append(created, r.ID)
		case errors.Is(err, ErrExists):
			r.Status = RowExists
			r.Errors = []FieldError{{Field: "id", Message: "a device with this id already exists"}}
			if firstErr == nil {
				firstErr = err
			}
		default:
			r.Status = RowFailed
			r.Errors = []FieldError{{Field: "", Message: "could not be stored"}}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	// Writes run on importWorkers goroutines: one row each, or one batch each when the store
	// can create a batch at once.
	sem := make(chan struct{}, importWorkers)
	var wg sync.WaitGroup
	spawn := func(f func()) {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f()
		}()
	}
	if bc, ok := inv.store.(BatchCreator); ok {
		for start := 0; start < len(todo); start += importBatch {
			chunk := todo[start:min(start+importBatch, len(todo))]
			spawn(func() { inv.createBatch(ctx, bc, rows, chunk, record) })
		}
	} else {
		for _, i := range todo {
			spawn(func() {
				_, err := inv.Create(ctx, rows[i])
				record(i, err)
			})
		}
	}
	wg.Wait()
	if mode == ImportAtomic && firstErr != nil {
		// Someone raced us; undo what this import wrote so it stays all-or-nothing.
		for _, id := range created {
			if err := inv.Delete(ctx, id); err != nil && !errors.Is(err, ErrNotFound) {
				return res, fmt.Errorf("import: roll back %s after %v: %w", id, firstErr, err)
			}
		}
		for i := range res.Rows {
			if res.Rows[i].Status == RowCreated {
				res.Rows[i].Status = RowSkipped
			}
		}
		res.Failed = len(rows)
		if errors.Is(firstErr, ErrExists) {
			return res, fault.Wrap(firstErr, fault.Exists, "rows", "a device was created by someone else during the import; nothing was kept")
		}
		return res, fmt.Errorf("import: rolled back: %w", firstErr)
	}
	res.Created = len(created)
	res.Failed = len(rows) - len(created)
	return res, nil
}
