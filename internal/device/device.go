// Package device is NetAuto's device inventory domain: what a device is, how its fields are
// validated, and the inventory operations the API offers (create, get, update, delete, list,
// import) over small storage and secret interfaces this package owns. It imports no AWS SDK.
package device

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/platform"
)

// AuthMethod is how NetAuto authenticates to a device.
type AuthMethod string

// Authentication methods.
const (
	AuthPassword            AuthMethod = "password"
	AuthKeyboardInteractive AuthMethod = "keyboard-interactive"
	AuthPrivateKey          AuthMethod = "private-key"
)

// Limits on device fields.
const (
	MaxIDLen        = 64
	MaxNameLen      = 128
	MaxHostLen      = 253
	MaxUsernameLen  = 64
	MaxSiteLen      = 64
	MaxTags         = 32
	MaxTagKeyLen    = 64
	MaxTagValueLen  = 256
	MaxHostKeyLen   = 16 << 10
	MaxPasswordLen  = 1024
	MaxPrivateKey   = 32 << 10
	MaxProfileLen   = 64
	MaxJumpHosts    = 3
	DefaultPort     = 22
	DefaultPlatform = "linux"
)

// Device is one inventory entry. Credentials are never part of it: they live in a secret store
// and the device only knows whether it has one (HasCredential) or which profile it uses.
type Device struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Host       string            `json:"host"`
	Port       int               `json:"port"`
	Platform   string            `json:"platform"`
	Username   string            `json:"username"`
	AuthMethod AuthMethod        `json:"auth_method"`
	Tags       map[string]string `json:"tags"`
	Site       string            `json:"site"`
	// HostKey is the device's pinned SSH host key in authorized_keys form ("ssh-ed25519 AAAA...").
	HostKey string `json:"host_key,omitempty"`
	// HostKeyLearnedAt is when a connection pinned HostKey (trust on first use) or an admin
	// accepted it; nil when the key was set by hand or none is pinned.
	HostKeyLearnedAt *time.Time `json:"host_key_learned_at,omitempty"`
	// PendingHostKey is the key the device offered instead of its pinned one, waiting for an
	// admin to accept it.
	PendingHostKey *PendingHostKey `json:"pending_host_key,omitempty"`
	// TrustOnFirstUse lets the first connection learn and pin the host key when none is pinned.
	TrustOnFirstUse bool `json:"trust_on_first_use"`
	// LegacyAlgorithms enables older key exchanges and host key types for old gear.
	LegacyAlgorithms bool `json:"legacy_algorithms"`
	// CredentialProfile names a shared credential set used instead of a per-device secret.
	CredentialProfile string `json:"credential_profile,omitempty"`
	// JumpHostIDs is the ordered chain of jump hosts the device is reached through, the first
	// dialled directly and each next one through the one before; empty for a direct connection.
	JumpHostIDs []string `json:"jump_host_ids,omitempty"`
	// HasEnableSecret is true when the device's own enable secret (privileged mode) is stored,
	// beside its credential or on its own when the device logs in with a profile.
	HasEnableSecret bool `json:"has_enable_secret"`
	// HasCredential is true when a per-device secret is stored.
	HasCredential bool      `json:"has_credential"`
	Version       int64     `json:"version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Credential is a device's secret material. It is write-only: accepted by create, update and
// import, stored through a SecretStore, never returned, logged or put in an error.
type Credential struct {
	// Login, when set, replaces the device's username: a credential profile's user name.
	Login      string `json:"login,omitempty"`
	Password   string `json:"password,omitempty"`
	PrivateKey string `json:"private_key,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
	// EnableSecret is what the device's privileged mode asks for (Cisco's `enable`). It is no
	// login: Empty ignores it.
	EnableSecret string `json:"enable_secret,omitempty"`
	// For is the address (Address) of the device a device's own credential was stored for, so
	// that a device read before a change of host or port is never sent the credential stored
	// after it; empty for a profile's credential and for one stored before addresses were kept.
	For string `json:"for,omitempty"`
}

// Address is d's host and port as a credential is bound to them (Credential.For).
func Address(d Device) string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// OwnSecret reports whether d's credential holds a secret of its own (its login, or an enable
// secret beside a profile's login), shared with no other device.
func (d Device) OwnSecret() bool { return d.CredentialProfile == "" || d.HasEnableSecret }

// ForOther reports whether c, d's credential, was stored for another address than d's: d was
// read before a change of host or port, and c must not be sent to it.
func (c Credential) ForOther(d Device) bool { return c.For != "" && c.For != Address(d) }

// Empty reports whether c holds no login secret (password, key or passphrase).
func (c Credential) Empty() bool {
	return c.Password == "" && c.PrivateKey == "" && c.Passphrase == ""
}

// String hides the secret in any accidental formatting.
func (c Credential) String() string { return "[credential redacted]" }

// GoString hides the secret in %#v formatting.
func (c Credential) GoString() string { return "device.Credential{redacted}" }

// LogValue hides the secret from log/slog, whose JSON handler would otherwise marshal the fields.
func (c Credential) LogValue() slog.Value { return slog.StringValue("[credential redacted]") }

// FieldError is one rejected field: the field's JSON name and the rule it broke.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every rejected field of one input.
type ValidationError struct {
	Fields []FieldError
}

// Error implements error, naming the first field.
func (e *ValidationError) Error() string {
	if len(e.Fields) == 0 {
		return "invalid device"
	}
	f := e.Fields[0]
	msg := f.Field + ": " + f.Message
	if n := len(e.Fields) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %d more)", n)
	}
	return msg
}

// Kind implements fault.Described: invalid input.
func (e *ValidationError) Kind() fault.Kind { return fault.Invalid }

// Field implements fault.Described: the first rejected field.
func (e *ValidationError) Field() string {
	if len(e.Fields) == 0 {
		return ""
	}
	return e.Fields[0].Field
}

// Public implements fault.Described: the first rejected field's rule.
func (e *ValidationError) Public() string {
	if len(e.Fields) == 0 {
		return e.Error()
	}
	return e.Fields[0].Message
}

// FieldErrors lists every rejected field.
func (e *ValidationError) FieldErrors() []FieldError { return e.Fields }

func (e *ValidationError) add(field, format string, args ...any) {
	e.Fields = append(e.Fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) orNil() error {
	if len(e.Fields) == 0 {
		return nil
	}
	return e
}

// Errors the inventory returns; adapters wrap them. Each carries its kind and what the caller
// is told.
var (
	// ErrNotFound means no device has the id.
	ErrNotFound = fault.New(fault.NotFound, "id", "no device with this id")
	// ErrExists means a device with the id already exists.
	ErrExists = fault.New(fault.Exists, "id", "a device with this id already exists")
	// ErrConflict means the stored version differs from the one the write was based on.
	ErrConflict = fault.New(fault.Conflict, "version", "the device was changed by someone else; read it again and retry")
)

var (
	idPattern       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	hostnamePattern = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
	tagKeyPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_:/-]*$`)
	profilePattern  = idPattern
)

// ValidID reports whether id is a URL-safe device id.
func ValidID(id string) bool {
	return len(id) <= MaxIDLen && idPattern.MatchString(id)
}

// Printable reports whether free text s is fit to show: it rejects control characters, invalid
// UTF-8 and invisible format characters: bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make a name read
// differently from what it is, zero-width spaces, byte order marks and the like (Unicode category
// Cf). The zero-width joiner and non-joiner stay allowed: scripts and emoji sequences need them.
func Printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
		if unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
			return false
		}
	}
	return true
}

// Validate checks every field of d and returns a *ValidationError naming each bad one.
func (d *Device) Validate() error {
	v := &ValidationError{}
	switch {
	case d.ID == "":
		v.add("id", "is required")
	case !ValidID(d.ID):
		v.add("id", "must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit", MaxIDLen)
	}
	switch {
	case strings.TrimSpace(d.Name) == "":
		v.add("name", "is required")
	case utf8.RuneCountInString(d.Name) > MaxNameLen:
		v.add("name", "must be at most %d characters", MaxNameLen)
	case !Printable(d.Name):
		v.add("name", "must not contain control characters")
	}
	switch {
	case d.Host == "":
		v.add("host", "is required")
	case len(d.Host) > MaxHostLen:
		v.add("host", "must be at most %d characters", MaxHostLen)
	case net.ParseIP(d.Host) == nil && !hostnamePattern.MatchString(d.Host):
		v.add("host", "must be an IPv4 or IPv6 address or a DNS hostname")
	}
	if d.Port < 1 || d.Port > 65535 {
		v.add("port", "must be from 1 to 65535")
	}
	if !platform.IsKnown(d.Platform) {
		v.add("platform", "must be one of %s", strings.Join(platform.Known(), ", "))
	}
	switch {
	case d.Username == "":
		v.add("username", "is required")
	case len(d.Username) > MaxUsernameLen:
		v.add("username", "must be at most %d characters", MaxUsernameLen)
	case !Printable(d.Username) || strings.ContainsAny(d.Username, " \t"):
		v.add("username", "must not contain spaces or control characters")
	}
	switch d.AuthMethod {
	case AuthPassword, AuthKeyboardInteractive, AuthPrivateKey:
	default:
		v.add("auth_method", "must be one of password, keyboard-interactive, private-key")
	}
	validateTags(v, "tags", d.Tags)
	validateSite(v, "site", d.Site)
	if d.HostKey != "" {
		if len(d.HostKey) > MaxHostKeyLen || !Printable(d.HostKey) || !looksLikeAuthorizedKey(d.HostKey) {
			v.add("host_key", "must be one public key in authorized_keys form, e.g. \"ssh-ed25519 AAAA...\"")
		}
	}
	validateChain(v, d.JumpHostIDs)
	if d.CredentialProfile != "" && (len(d.CredentialProfile) > MaxProfileLen || !profilePattern.MatchString(d.CredentialProfile)) {
		v.add("credential_profile", "must be 1-%d characters of letters, digits, '.', '_' or '-'", MaxProfileLen)
	}
	return v.orNil()
}

// validateTags checks a tag map named field: at most MaxTags, keys of the tag key alphabet,
// values printable and bounded.
func validateTags(v *ValidationError, field string, tags map[string]string) {
	if len(tags) > MaxTags {
		v.add(field, "must have at most %d tags", MaxTags)
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := tags[k]
		switch {
		case len(k) > MaxTagKeyLen || !tagKeyPattern.MatchString(k):
			v.add(field, "key %q must be 1-%d characters of letters, digits, '_', ':', '/' or '-'", truncate(k, 80), MaxTagKeyLen)
		case utf8.RuneCountInString(val) > MaxTagValueLen:
			v.add(field+"."+k, "must be at most %d characters", MaxTagValueLen)
		case !Printable(val):
			v.add(field+"."+k, "must not contain control characters")
		}
	}
}

// validateSite checks a site named field.
func validateSite(v *ValidationError, field, site string) {
	switch {
	case utf8.RuneCountInString(site) > MaxSiteLen:
		v.add(field, "must be at most %d characters", MaxSiteLen)
	case !Printable(site):
		v.add(field, "must not contain control characters")
	}
}

// ValidateTerms checks the terms a device selection names by the rules of the device fields they
// match (tags, site, platform; an empty site or platform is no term), each field named under
// prefix ("selector.tags.role").
func ValidateTerms(prefix string, tags map[string]string, site, platformName string) error {
	v := &ValidationError{}
	validateTags(v, prefix+"tags", tags)
	validateSite(v, prefix+"site", site)
	if platformName != "" && !platform.IsKnown(platformName) {
		v.add(prefix+"platform", "must be one of %s", strings.Join(platform.Known(), ", "))
	}
	return v.orNil()
}

// validateChain checks a jump host chain's shape: at most MaxJumpHosts valid ids, none twice.
// Whether the ids name jump hosts is the inventory's check.
func validateChain(v *ValidationError, ids []string) {
	if len(ids) > MaxJumpHosts {
		v.add("jump_host_ids", "must name at most %d jump hosts (the chain is dialled in order)", MaxJumpHosts)
		return
	}
	seen := map[string]bool{}
	for i, id := range ids {
		switch {
		case !ValidID(id):
			v.add("jump_host_ids", "item %d must be a jump host id: 1-%d characters of letters, digits, '.', '_' or '-'", i, MaxIDLen)
			return
		case seen[id]:
			v.add("jump_host_ids", "must not name jump host %q twice", id)
			return
		}
		seen[id] = true
	}
}

// looksLikeAuthorizedKey reports whether s is exactly one public key in authorized_keys form
// that parses (type, base64 blob of that type, optional comment), without options.
func looksLikeAuthorizedKey(s string) bool {
	_, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	return err == nil && len(options) == 0 && len(bytes.TrimSpace(rest)) == 0
}

// ValidateCredential checks c against the device's auth method.
func ValidateCredential(method AuthMethod, c Credential, profile string) error {
	v := &ValidationError{}
	if len(c.Password) > MaxPasswordLen {
		v.add("password", "must be at most %d bytes", MaxPasswordLen)
	}
	if len(c.PrivateKey) > MaxPrivateKey {
		v.add("private_key", "must be at most %d bytes", MaxPrivateKey)
	}
	if len(c.Passphrase) > MaxPasswordLen {
		v.add("passphrase", "must be at most %d bytes", MaxPasswordLen)
	}
	if len(c.EnableSecret) > MaxPasswordLen {
		v.add("enable_secret", "must be at most %d bytes", MaxPasswordLen)
	}
	if c.PrivateKey != "" && !strings.Contains(c.PrivateKey, "PRIVATE KEY-----") {
		v.add("private_key", "must be a PEM or OpenSSH private key")
	}
	if method == AuthPrivateKey && c.Password != "" {
		v.add("password", "is not used with auth_method private-key; give private_key")
	}
	if (method == AuthPassword || method == AuthKeyboardInteractive) && c.PrivateKey != "" {
		v.add("private_key", "is only used with auth_method private-key")
	}
	if !c.Empty() && profile != "" {
		v.add("credential_profile", "give either a credential or a credential_profile, not both")
	}
	return v.orNil()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
