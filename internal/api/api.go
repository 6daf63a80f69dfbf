// Package api is NetAuto's HTTPS API as one http.Handler. The api Lambda serves it behind API
// Gateway through an event adapter, and the local gateway serves the very same handler.
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
)

// Version is NetAuto's API version string reported by the health route.
const Version = "0.1.0"

// Options configures the handler.
type Options struct {
	// Logger receives one line per failed request; default slog.Default().
	Logger *slog.Logger
	// Health is added to the health route's answer under "deployment": where the function runs and
	// which backing services (or local stand-ins) it uses. It must hold no secrets.
	Health map[string]any
}

// Server is the API handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
}

// New returns the API handler.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/health", s.health)
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
	WriteJSON(w, http.StatusOK, map[string]any{
		"status":     "ok",
		"version":    Version,
		"deployment": s.opts.Health,
	})
}

// Error is the body of every error answer: {"error": {"code", "message", "field"}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
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

// WriteJSON writes v as a JSON body with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
