// Package api is NetAuto's HTTPS API as one http.Handler. The api Lambda serves it behind API
// Gateway through an event adapter, and the local gateway serves the very same handler.
//
// Authentication happens in front of the handler (API Gateway's JWT authorizer in AWS, the local
// gateway's check locally); the handler reads the caller's identity from the request context and
// enforces roles.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"gopkg.in/yaml.v3"

	"github.com/netauto/netauto/internal/apiwire"
	"github.com/netauto/netauto/internal/audit"
	"github.com/netauto/netauto/internal/auth"
	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/drift"
	"github.com/netauto/netauto/internal/fault"
)

// Version is NetAuto's API version string reported by the health route.
const Version = "0.1.0"

//go:embed openapi.yaml
var openAPIYAML []byte

// OpenAPIYAML returns the OpenAPI 3 document of this API.
func OpenAPIYAML() []byte { return openAPIYAML }

// Devices is the inventory the API serves; *device.Inventory implements it.
type Devices interface {
	Create(ctx context.Context, in device.Input) (device.Device, error)
	Get(ctx context.Context, id string) (device.Device, error)
	List(ctx context.Context, f device.Filter, p device.Page) ([]device.Device, string, error)
	Update(ctx context.Context, id string, p device.Patch) (device.Device, error)
	Delete(ctx context.Context, id string) error
	// GetMany returns the devices among ids that exist.
	GetMany(ctx context.Context, ids []string) (map[string]device.Device, error)
	Import(ctx context.Context, rows []device.Input, mode device.ImportMode) (device.ImportResult, error)
	// BulkUpdate applies set to every device of ids that may allows, all or nothing.
	BulkUpdate(ctx context.Context, ids []string, set device.BulkSet, may func(device.Device) bool) ([]device.Device, error)
	// AcceptHostKey pins the device's pending host key when fingerprint names it.
	AcceptHostKey(ctx context.Context, id, fingerprint string) (device.Device, error)
}

// Options configures the handler.
type Options struct {
	// Logger receives one line per failed request; default slog.Default().
	Logger *slog.Logger
	// Health is added to the health route's answer under "deployment": where the function runs and
	// which backing services (or local stand-ins) it uses. It must hold no secrets.
	Health map[string]any
	// Devices is the inventory; required.
	Devices Devices
	// Bulk, Jobs and Runs serve runs and bulk jobs; required.
	Bulk Bulk
	Jobs Jobs
	Runs Runs
	// Retention serves GET /v1/retention and POST /v1/retention/purge; nil answers them 503.
	Retention Retention
	// Usage counts output bytes for GET /v1/retention and GET /v1/devices/{id}; nil leaves the
	// counts out.
	Usage Usage
	// Profiles serves /v1/credential-profiles; nil answers them 503.
	Profiles CredentialProfiles
	// JumpHosts serves /v1/jump-hosts; nil answers them 503.
	JumpHosts JumpHosts
	// Audit receives one entry per mutating request; nil logs the entries only.
	Audit audit.Recorder
	// AuditLog serves GET /v1/audit; nil answers it 503.
	AuditLog AuditLog
	// MaxJobDevices bounds the devices of one run or bulk job by the caller's role (operator,
	// admin); a role without an entry has no bound beyond the request limit.
	MaxJobDevices map[auth.Role]int
	// SavedJobs serves /v1/saved-jobs; nil answers them 503.
	SavedJobs SavedJobs
	// Policy keeps the command policy; nil serves the built-in defaults, which then apply to
	// every run, and refuses changes.
	Policy Policies
	// Filters keeps the admins' noise filters per platform; nil serves the built-in filters
	// alone and refuses changes.
	Filters drift.FilterStore
	// Webhooks serves /v1/webhooks and WebhookTester their test deliveries; nil answers them 503.
	Webhooks      Webhooks
	WebhookTester WebhookTester
}

// errNoToken answers a request that reached an authenticated route without an identity.
var errNoToken = fault.Wrap(auth.ErrNoIdentity, fault.Unauthorized, "", "a valid bearer token is required")

// Server is the API handler.
type Server struct {
	opts        Options
	mux         *http.ServeMux
	openAPIJSON []byte
}

// New returns the API handler.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Devices == nil || opts.Bulk == nil || opts.Jobs == nil || opts.Runs == nil {
		return nil, errors.New("new api: devices, bulk, jobs and runs are required")
	}
	var doc any
	if err := yaml.Unmarshal(openAPIYAML, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode openapi document: %w", err)
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), openAPIJSON: js}
	s.mux.HandleFunc("GET /v1/health", s.health)
	s.mux.HandleFunc("GET /v1/openapi.json", s.openAPI)
	s.route("GET /v1/whoami", auth.Viewer, s.whoAmI)

	s.route("POST /v1/devices", auth.Admin, s.createDevice)
	s.route("GET /v1/devices", auth.Viewer, s.listDevices)
	s.route("POST /v1/devices/import", auth.Admin, s.importDevices)
	s.route("POST /v1/devices/last-runs", auth.Viewer, s.lastRuns)
	s.route("POST /v1/devices/bulk-update", auth.Admin, s.bulkUpdateDevices)
	s.route("GET /v1/devices/{id}", auth.Viewer, s.getDevice)
	s.route("PATCH /v1/devices/{id}", auth.Admin, s.updateDevice)
	s.route("DELETE /v1/devices/{id}", auth.Admin, s.deleteDevice)
	s.route("GET /v1/devices/{id}/runs", auth.Viewer, s.deviceRuns)
	s.globalRoute("POST /v1/devices/{id}/host-key/accept", auth.Admin, s.acceptHostKey)

	s.routeProfiles()
	s.routeJumpHosts()

	s.route("POST /v1/runs", auth.Operator, s.createRun)
	s.route("GET /v1/runs/{id}", auth.Viewer, s.getRun)
	s.route("GET /v1/runs/{id}/output", auth.Viewer, s.runOutput)
	s.routeDrift()

	s.route("GET /v1/bulk", auth.Viewer, s.listBulk)
	s.route("POST /v1/bulk", auth.Operator, s.createBulk)
	s.route("GET /v1/bulk/{job_id}", auth.Viewer, s.getBulk)
	s.route("GET /v1/bulk/{job_id}/devices", auth.Viewer, s.bulkDevices)
	s.route("GET /v1/bulk/{job_id}/events", auth.Viewer, s.bulkEvents)
	s.route("POST /v1/bulk/{job_id}/cancel", auth.Operator, s.cancelBulk)
	s.route("POST /v1/bulk/{job_id}/rerun", auth.Operator, s.rerunBulk)
	s.routeSavedJobs()

	s.globalRoute("GET /v1/policy", auth.Admin, s.getPolicy)
	s.globalRoute("PUT /v1/policy", auth.Admin, s.putPolicy)
	s.route("POST /v1/policy/check", auth.Operator, s.checkPolicy)

	s.globalRoute("GET /v1/audit", auth.Admin, s.listAudit)
	s.routeWebhooks()

	s.globalRoute("GET /v1/retention", auth.Viewer, s.getRetention)
	s.globalRoute("POST /v1/retention/purge", auth.Admin, s.purgeRetention)

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, &Error{Code: "not_found", Message: "no route for " + r.Method + " " + r.URL.Path})
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, apiwire.Health{Status: "ok", Version: Version, Deployment: s.opts.Health})
}

func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.openAPIJSON)
}

// Error is the body of every error answer: {"error": {"code", "message", "field"}}. Details
// lists every rejected field when there are several; a refusal by the command policy names its
// Rule and the refused Devices.
type Error struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Field   string              `json:"field,omitempty"`
	Details []device.FieldError `json:"details,omitempty"`
	Rule    string              `json:"rule,omitempty"`
	Devices []string            `json:"devices,omitempty"`
}

// Error implements error.
func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// WriteError writes e with the given status in the API's error shape.
func WriteError(w http.ResponseWriter, status int, e *Error) {
	WriteJSON(w, status, map[string]*Error{"error": e})
}

// noQuery refuses any query parameter of a route that takes none; false when it answered.
func noQuery(w http.ResponseWriter, r *http.Request) bool {
	for k := range r.URL.Query() {
		WriteError(w, http.StatusBadRequest, &Error{Code: "unknown_parameter", Field: k, Message: "is not a known query parameter (none are)"})
		return false
	}
	return true
}

// WriteJSON writes v as a JSON body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
