package apiwire

// NoiseFilter is one noise filter of a platform: output lines matching Pattern, in runs of
// commands matching Command (every command when empty), are left out of comparisons.
type NoiseFilter struct {
	Pattern     string `json:"pattern"`
	Command     string `json:"command"`
	Description string `json:"description"`
	// Builtin is set on the platform's own filters, which cannot be removed.
	Builtin bool `json:"builtin"`
}

// NoiseFilterInput is a filter an admin adds.
type NoiseFilterInput struct {
	Pattern     string `json:"pattern"`
	Command     string `json:"command,omitempty"`
	Description string `json:"description,omitempty"`
}

// NoiseFilterUpdate is the body of PUT /v1/platforms/{name}/filters: the platform's admin
// filters, replacing the ones it had.
type NoiseFilterUpdate struct {
	Filters []NoiseFilterInput `json:"filters"`
}

// Platform is one platform profile as GET /v1/platforms lists it.
type Platform struct {
	Name         string        `json:"name"`
	Description  string        `json:"description"`
	Mode         string        `json:"mode"`
	NoiseFilters []NoiseFilter `json:"noise_filters"`
}

// PlatformList is the body of GET /v1/platforms.
type PlatformList struct {
	Items []Platform `json:"items"`
}

// DiffLine is one line of a hunk: op is context, add or delete; text has no line ending.
type DiffLine struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

// DiffHunk is one stretch of changes with its context lines.
type DiffHunk struct {
	OldStart int        `json:"old_start"`
	OldLines int        `json:"old_lines"`
	NewStart int        `json:"new_start"`
	NewLines int        `json:"new_lines"`
	Lines    []DiffLine `json:"lines"`
}

// Diff is the body of GET /v1/runs/{id}/diff?format=json.
type Diff struct {
	RunID   string     `json:"run_id"`
	Against string     `json:"against"`
	Raw     bool       `json:"raw"`
	Changed bool       `json:"changed"`
	Hunks   []DiffHunk `json:"hunks"`
}
