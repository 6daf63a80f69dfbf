package apiwire

import "time"

// JumpHost is a jump host as the API returns it. The credential is write-only: HasCredential
// says whether one is stored, the credential itself is never returned.
type JumpHost struct {
	ID         string `json:"id"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	Username   string `json:"username"`
	AuthMethod string `json:"auth_method"`
	HostKey    string `json:"host_key,omitempty"`
	// HostKeyFingerprint is HostKey's SHA-256 fingerprint ("SHA256:...").
	HostKeyFingerprint string `json:"host_key_fingerprint,omitempty"`
	// HostKeyLearnedAt is when the key was pinned on first use or accepted by an admin.
	HostKeyLearnedAt *time.Time `json:"host_key_learned_at,omitempty"`
	// PendingHostKey is a key the jump host offered instead of its pinned one, refused until an
	// admin accepts it.
	PendingHostKey  *PendingHostKey `json:"pending_host_key,omitempty"`
	TrustOnFirstUse bool            `json:"trust_on_first_use"`
	HasCredential   bool            `json:"has_credential"`
	Version         int64           `json:"version"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// JumpHostInput is the body of POST /v1/jump-hosts: the jump host and its write-only credential
// (a password, or a private key with an optional passphrase). A zero Port means 22.
type JumpHostInput struct {
	ID              string `json:"id"`
	Host            string `json:"host"`
	Port            int    `json:"port,omitempty"`
	Username        string `json:"username"`
	AuthMethod      string `json:"auth_method,omitempty"`
	HostKey         string `json:"host_key,omitempty"`
	TrustOnFirstUse bool   `json:"trust_on_first_use,omitempty"`
	Password        string `json:"password,omitempty"`
	PrivateKey      string `json:"private_key,omitempty"`
	Passphrase      string `json:"passphrase,omitempty"`
}

// JumpHostPatch is the body of PATCH /v1/jump-hosts/{id}: nil fields stay; a password or private
// key replaces the whole credential; a new host or port drops it unless one is given too.
type JumpHostPatch struct {
	Host            *string `json:"host,omitempty"`
	Port            *int    `json:"port,omitempty"`
	Username        *string `json:"username,omitempty"`
	AuthMethod      *string `json:"auth_method,omitempty"`
	HostKey         *string `json:"host_key,omitempty"`
	TrustOnFirstUse *bool   `json:"trust_on_first_use,omitempty"`
	Password        *string `json:"password,omitempty"`
	PrivateKey      *string `json:"private_key,omitempty"`
	Passphrase      *string `json:"passphrase,omitempty"`
	Version         *int64  `json:"version,omitempty"`
}

// JumpHostList is the body of GET /v1/jump-hosts: every jump host, by id.
type JumpHostList struct {
	Items []JumpHost `json:"items"`
}

// JumpHostInUseBody is the body of a 409 jump_host_in_use to DELETE /v1/jump-hosts/{id}: the
// error, how many devices name the jump host in their chains, and some of them.
type JumpHostInUseBody struct {
	Error       Error    `json:"error"`
	DeviceCount int      `json:"device_count,omitempty"`
	DeviceIDs   []string `json:"device_ids,omitempty"`
}
