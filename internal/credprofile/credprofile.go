// Package credprofile is NetAuto's registry of credential profiles: shared logins (a user name
// and a write-only secret) that devices name instead of holding a secret of their own, each
// limited to the devices of some sites or tags. Metadata lives in a Store, the secret in the
// device secret store under device.ProfileSecretName. It imports no AWS SDK.
package credprofile

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/fault"
)

// AnySite in a profile's allowed sites lets every device use the profile.
const AnySite = "*"

// Limits on a profile's fields.
const (
	MaxSites    = 100
	MaxTagSets  = 32
	MaxUsedByID = 20
)

// Profile is a credential profile's metadata. The secret is never part of it; HasSecret says
// whether one is stored.
type Profile struct {
	ID string
	// Username, when set, is the user name devices log in as with this profile; empty keeps
	// each device's own username.
	Username string
	// AllowedSites are the sites whose devices may use the profile; AnySite allows every device.
	AllowedSites []string
	// AllowedTags are tag sets: a device carrying every tag of one set may use the profile.
	AllowedTags []map[string]string
	HasSecret   bool
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// HasEnableSecret says an enable secret (privileged mode) is stored with the secret.
	HasEnableSecret bool
}

// Allows implements device.ProfileRule: d may use the profile when its site is among the
// allowed sites (or they hold AnySite) or it carries every tag of one allowed tag set.
func (p Profile) Allows(d device.Device) error {
	for _, s := range p.AllowedSites {
		if s == AnySite || (d.Site != "" && s == d.Site) {
			return nil
		}
	}
	for _, set := range p.AllowedTags {
		if len(set) > 0 && hasAll(d.Tags, set) {
			return nil
		}
	}
	return fault.Wrap(device.ErrCredentialNotAllowed, fault.Invalid, "credential_profile",
		fmt.Sprintf("credential profile %q is not allowed for this device: its site %q is not among the profile's allowed sites %s and its tags match none of its allowed tag sets %s",
			p.ID, d.Site, quoteList(p.AllowedSites), formatTagSets(p.AllowedTags)))
}

func hasAll(tags, set map[string]string) bool {
	for k, v := range set {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "(none)"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func formatTagSets(sets []map[string]string) string {
	if len(sets) == 0 {
		return "(none)"
	}
	out := make([]string, len(sets))
	for i, set := range sets {
		keys := make([]string, 0, len(set))
		for k := range set {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pairs := make([]string, len(keys))
		for j, k := range keys {
			pairs[j] = k + "=" + set[k]
		}
		out[i] = "{" + strings.Join(pairs, ",") + "}"
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// Errors the registry returns; adapters wrap them.
var (
	// ErrNotFound means no profile has the id.
	ErrNotFound = fault.New(fault.NotFound, "id", "no credential profile with this id")
	// ErrExists means a profile with the id already exists.
	ErrExists = fault.New(fault.Exists, "id", "a credential profile with this id already exists")
	// ErrConflict means the stored version differs from the one the write was based on.
	ErrConflict = fault.New(fault.Conflict, "version", "the credential profile was changed by someone else; read it again and retry")
)

// InUseError refuses to delete a profile that devices still name.
type InUseError struct {
	// ID is the profile; DeviceIDs are some of the devices naming it (at most MaxUsedByID).
	ID        string
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
	more := ""
	if len(e.DeviceIDs) >= MaxUsedByID {
		more = " and more"
	}
	return fmt.Sprintf("credential profile %q is used by devices %s%s; give them another profile or their own credential first", e.ID, strings.Join(e.DeviceIDs, ", "), more)
}

// Store keeps profile metadata. Create fails with ErrExists when the id is taken; Get, Update
// and Delete with ErrNotFound when it is gone; Update and Delete with ErrConflict when the
// stored version differs.
type Store interface {
	Create(ctx context.Context, p Profile) error
	Get(ctx context.Context, id string) (Profile, error)
	Update(ctx context.Context, p Profile, prevVersion int64) error
	Delete(ctx context.Context, id string, version int64) error
	// List returns every profile, by id.
	List(ctx context.Context) ([]Profile, error)
	// UsedBy returns up to limit ids of devices that name profile id.
	UsedBy(ctx context.Context, id string, limit int) ([]string, error)
}

// Registry is the credential profile service. It implements device.Profiles.
type Registry struct {
	store   Store
	secrets device.SecretStore
	now     func() time.Time
}

// NewRegistry returns a registry over store and secrets.
func NewRegistry(store Store, secrets device.SecretStore) (*Registry, error) {
	if store == nil || secrets == nil {
		return nil, errors.New("new credential profile registry: store and secret store are required")
	}
	return &Registry{store: store, secrets: secrets, now: func() time.Time { return time.Now().UTC() }}, nil
}

// Input is a profile to create with its write-only secret.
type Input struct {
	Profile
	Secret device.Credential
}

// Patch changes some fields of a profile; nil fields stay. A password or private key rotates
// the secret (the whole secret is replaced). Version, when given, must match the stored one.
type Patch struct {
	Username     *string
	AllowedSites *[]string
	AllowedTags  *[]map[string]string
	Password     *string
	PrivateKey   *string
	Passphrase   *string
	// EnableSecret sets or, empty, removes the enable secret; the login secret stays.
	EnableSecret *string
	Version      *int64
}

// validate checks p's metadata; secret checks the secret.
func validate(p Profile) []device.FieldError {
	var fs []device.FieldError
	add := func(field, format string, args ...any) {
		fs = append(fs, device.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case p.ID == "":
		add("id", "is required")
	case !device.ValidID(p.ID):
		add("id", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", device.MaxProfileLen)
	}
	// The user name, sites and tags follow the device fields' rules: a probe device carries
	// them through device validation.
	probe := func(d device.Device) []device.FieldError {
		d.ID, d.Name, d.Host, d.Port, d.Platform, d.AuthMethod = "probe", "probe", "probe", device.DefaultPort, device.DefaultPlatform, device.AuthPassword
		if d.Username == "" {
			d.Username = "probe"
		}
		if err := d.Validate(); err != nil {
			var v *device.ValidationError
			if errors.As(err, &v) {
				return v.Fields
			}
		}
		return nil
	}
	if p.Username != "" {
		for _, f := range probe(device.Device{Username: p.Username}) {
			add("username", "%s", f.Message)
		}
	}
	if len(p.AllowedSites) > MaxSites {
		add("allowed_sites", "must list at most %d sites", MaxSites)
	}
	for i, s := range p.AllowedSites {
		if s == AnySite {
			continue
		}
		if s == "" {
			add(fmt.Sprintf("allowed_sites[%d]", i), "must not be empty")
			continue
		}
		for _, f := range probe(device.Device{Site: s}) {
			add(fmt.Sprintf("allowed_sites[%d]", i), "%s", f.Message)
		}
	}
	if len(p.AllowedTags) > MaxTagSets {
		add("allowed_tags", "must list at most %d tag sets", MaxTagSets)
	}
	for i, set := range p.AllowedTags {
		field := fmt.Sprintf("allowed_tags[%d]", i)
		if len(set) == 0 {
			add(field, "must hold at least one tag (an empty set would match every device; use allowed_sites [\"*\"] for that)")
			continue
		}
		for _, f := range probe(device.Device{Tags: set}) {
			add(field, "%s", f.Message)
		}
	}
	return fs
}

func validateSecret(c device.Credential) []device.FieldError {
	method := device.AuthPassword
	if c.PrivateKey != "" {
		method = device.AuthPrivateKey
	}
	var fs []device.FieldError
	if c.Password == "" && c.PrivateKey == "" {
		fs = append(fs, device.FieldError{Field: "password", Message: "give a password or a private_key"})
	}
	if c.Password != "" && c.PrivateKey != "" {
		fs = append(fs, device.FieldError{Field: "private_key", Message: "give either a password or a private_key, not both"})
	} else if err := device.ValidateCredential(method, c, ""); err != nil {
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

func normalize(p *Profile) {
	if p.AllowedSites == nil {
		p.AllowedSites = []string{}
	}
	if p.AllowedTags == nil {
		p.AllowedTags = []map[string]string{}
	}
}

// Create validates and stores a new profile and its secret.
func (r *Registry) Create(ctx context.Context, in Input) (Profile, error) {
	p := in.Profile
	normalize(&p)
	if err := device.Invalid(append(validate(p), validateSecret(in.Secret)...)); err != nil {
		return Profile{}, err
	}
	now := r.now()
	p.CreatedAt, p.UpdatedAt, p.Version, p.HasSecret = now, now, 1, true
	p.HasEnableSecret = in.Secret.EnableSecret != ""
	if err := r.store.Create(ctx, p); err != nil {
		return Profile{}, fmt.Errorf("create credential profile %s: %w", p.ID, err)
	}
	if err := r.secrets.Put(ctx, device.ProfileSecretName(p.ID), in.Secret); err != nil {
		// Roll back so no profile is left without the secret it was created with.
		if derr := r.store.Delete(ctx, p.ID, p.Version); derr != nil {
			return Profile{}, fmt.Errorf("store secret of credential profile %s: %w (and roll back the profile: %v)", p.ID, err, derr)
		}
		return Profile{}, fmt.Errorf("store secret of credential profile %s: %w", p.ID, err)
	}
	return p, nil
}

// Get returns one profile.
func (r *Registry) Get(ctx context.Context, id string) (Profile, error) {
	p, err := r.store.Get(ctx, id)
	if err != nil {
		return Profile{}, fmt.Errorf("get credential profile %s: %w", id, err)
	}
	return p, nil
}

// List returns every profile by id.
func (r *Registry) List(ctx context.Context) ([]Profile, error) {
	ps, err := r.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list credential profiles: %w", err)
	}
	return ps, nil
}

// Update applies pa to profile id. A new secret replaces the stored one after the metadata is
// written, so a refused update never rotates the secret.
func (r *Registry) Update(ctx context.Context, id string, pa Patch) (Profile, error) {
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return Profile{}, fmt.Errorf("update credential profile %s: %w", id, err)
	}
	if pa.Version != nil && *pa.Version != cur.Version {
		return Profile{}, fmt.Errorf("update credential profile %s: version %d given, stored version is %d: %w", id, *pa.Version, cur.Version, ErrConflict)
	}
	p := cur
	if pa.Username != nil {
		p.Username = *pa.Username
	}
	if pa.AllowedSites != nil {
		p.AllowedSites = *pa.AllowedSites
	}
	if pa.AllowedTags != nil {
		p.AllowedTags = *pa.AllowedTags
	}
	normalize(&p)
	fs := validate(p)
	secret, rotate := device.PatchCredential(pa.Password, pa.PrivateKey, pa.Passphrase)
	if rotate {
		fs = append(fs, validateSecret(secret)...)
	}
	if pa.EnableSecret != nil {
		if err := device.ValidateCredential(device.AuthPassword, device.Credential{EnableSecret: *pa.EnableSecret}, ""); err != nil {
			fs = append(fs, err.(*device.ValidationError).Fields...)
		}
	}
	if err := device.Invalid(fs); err != nil {
		return Profile{}, err
	}
	p.Version, p.UpdatedAt = cur.Version+1, r.now()
	p.HasSecret = cur.HasSecret || rotate
	if pa.EnableSecret != nil {
		p.HasEnableSecret = *pa.EnableSecret != ""
	}
	keep := (!rotate && cur.HasSecret) || (pa.EnableSecret == nil && cur.HasEnableSecret)
	if keep && (rotate || pa.EnableSecret != nil) {
		// Only one part changes: the other is read back so the secret stays whole.
		old, err := r.secrets.Get(ctx, device.ProfileSecretName(id))
		if err != nil {
			return Profile{}, fmt.Errorf("read secret of credential profile %s: %w", id, err)
		}
		if !rotate {
			secret = old
		}
		if pa.EnableSecret == nil {
			secret.EnableSecret = old.EnableSecret
		}
	}
	if pa.EnableSecret != nil {
		secret.EnableSecret = *pa.EnableSecret
	}
	if err := r.store.Update(ctx, p, cur.Version); err != nil {
		return Profile{}, fmt.Errorf("update credential profile %s: %w", id, err)
	}
	if rotate || pa.EnableSecret != nil {
		if err := r.secrets.Put(ctx, device.ProfileSecretName(id), secret); err != nil {
			return Profile{}, fmt.Errorf("store secret of credential profile %s: %w", id, err)
		}
	}
	return p, nil
}

// Delete removes a profile and its secret; *InUseError while devices name it.
func (r *Registry) Delete(ctx context.Context, id string) error {
	cur, err := r.store.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("delete credential profile %s: %w", id, err)
	}
	users, err := r.store.UsedBy(ctx, id, MaxUsedByID)
	if err != nil {
		return fmt.Errorf("delete credential profile %s: find devices using it: %w", id, err)
	}
	if len(users) > 0 {
		return &InUseError{ID: id, DeviceIDs: users}
	}
	if err := r.store.Delete(ctx, id, cur.Version); err != nil {
		return fmt.Errorf("delete credential profile %s: %w", id, err)
	}
	if err := r.secrets.Delete(ctx, device.ProfileSecretName(id)); err != nil {
		return fmt.Errorf("delete secret of credential profile %s: %w", id, err)
	}
	return nil
}

// Rule implements device.Profiles: the profile itself decides which devices may use it.
func (r *Registry) Rule(ctx context.Context, name string) (device.ProfileRule, error) {
	p, err := r.store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, fault.Wrap(device.ErrUnknownProfile, fault.Invalid, "credential_profile", fmt.Sprintf("no credential profile is named %q; create it first (admin: /v1/credential-profiles)", name))
	}
	if err != nil {
		return nil, fmt.Errorf("read credential profile %s: %w", name, err)
	}
	return p, nil
}

// Credential implements device.Profiles: the profile's secret and user name for d, read only
// when the profile allows d at the time of the call.
func (r *Registry) Credential(ctx context.Context, name string, d device.Device) (device.Credential, error) {
	p, err := r.store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return device.Credential{}, fmt.Errorf("credential profile %s is gone: %w", name, device.ErrNotFound)
	}
	if err != nil {
		return device.Credential{}, fmt.Errorf("read credential profile %s: %w", name, err)
	}
	if err := p.Allows(d); err != nil {
		return device.Credential{}, err
	}
	c, err := r.secrets.Get(ctx, device.ProfileSecretName(name))
	if err != nil {
		return device.Credential{}, fmt.Errorf("secret of credential profile %s: %w", name, err)
	}
	c.Login = p.Username
	return c, nil
}
