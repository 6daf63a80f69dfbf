package apiwire

import "time"

// CredentialProfile is a credential profile as the API returns it. The secret is write-only:
// HasSecret says whether one is stored, the secret itself is never returned.
type CredentialProfile struct {
	ID           string              `json:"id"`
	Username     string              `json:"username,omitempty"`
	AllowedSites []string            `json:"allowed_sites"`
	AllowedTags  []map[string]string `json:"allowed_tags"`
	HasSecret    bool                `json:"has_secret"`
	HasEnable    bool                `json:"has_enable_secret"`
	Version      int64               `json:"version"`
	CreatedAt    time.Time           `json:"created_at"`
	UpdatedAt    time.Time           `json:"updated_at"`
}

// CredentialProfileInput is the body of POST /v1/credential-profiles: the profile and its
// write-only secret (a password, or a private key with an optional passphrase).
type CredentialProfileInput struct {
	ID           string              `json:"id"`
	Username     string              `json:"username,omitempty"`
	AllowedSites []string            `json:"allowed_sites,omitempty"`
	AllowedTags  []map[string]string `json:"allowed_tags,omitempty"`
	Password     string              `json:"password,omitempty"`
	PrivateKey   string              `json:"private_key,omitempty"`
	Passphrase   string              `json:"passphrase,omitempty"`
	EnableSecret string              `json:"enable_secret,omitempty"`
}

// CredentialProfilePatch is the body of PATCH /v1/credential-profiles/{id}: nil fields stay; a
// password or private key replaces the whole secret (rotation).
type CredentialProfilePatch struct {
	Username     *string              `json:"username,omitempty"`
	AllowedSites *[]string            `json:"allowed_sites,omitempty"`
	AllowedTags  *[]map[string]string `json:"allowed_tags,omitempty"`
	Password     *string              `json:"password,omitempty"`
	PrivateKey   *string              `json:"private_key,omitempty"`
	Passphrase   *string              `json:"passphrase,omitempty"`
	EnableSecret *string              `json:"enable_secret,omitempty"`
	Version      *int64               `json:"version,omitempty"`
}

// CredentialProfileList is the body of GET /v1/credential-profiles: every profile, by id.
type CredentialProfileList struct {
	Items []CredentialProfile `json:"items"`
}

// ProfileInUseBody is the body of a 409 to DELETE /v1/credential-profiles/{id} while devices
// name the profile: the error and some of those devices.
type ProfileInUseBody struct {
	Error     Error    `json:"error"`
	DeviceIDs []string `json:"device_ids,omitempty"`
}
