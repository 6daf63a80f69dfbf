package gateway

// What the local gateway adds for the static UI: GET /config.json (the API and WebSocket URLs and
// how to sign in, which `make deploy` writes from the template's outputs in AWS) and, only when
// Options.DevSignIn is set (localdev sets it; nothing in AWS does), POST /dev/token: the local
// stand-in for the Cognito hosted UI, issuing a token for an email and a role of the caller's
// choosing.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/netauto/netauto/internal/api"
	"github.com/netauto/netauto/internal/auth"
)

// DevTokenTTL is the lifetime of tokens from the dev sign-in.
const DevTokenTTL = 12 * time.Hour

// UIConfig is the body of /config.json, read by the UI at start-up.
type UIConfig struct {
	// APIURL is the base of the HTTP API (routes under /v1); empty means the UI's own origin.
	APIURL string `json:"api_url"`
	// WSURL is the WebSocket API's URL (the UI appends ?token=).
	WSURL string `json:"ws_url"`
	Auth  UIAuth `json:"auth"`
}

// UIAuth says how the UI signs users in.
type UIAuth struct {
	// Mode is "dev" (the local gateway's /dev/token), "cognito" (hosted UI, authorization code +
	// PKCE) or "token" (paste a token).
	Mode string `json:"mode"`
	// Domain and ClientID name the Cognito hosted UI (mode "cognito").
	Domain   string `json:"domain,omitempty"`
	ClientID string `json:"client_id,omitempty"`
}

func (g *Gateway) serveConfig(w http.ResponseWriter, r *http.Request) {
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	cfg := UIConfig{WSURL: scheme + "://" + r.Host + "/ws", Auth: UIAuth{Mode: "token"}}
	if g.opts.WS == nil {
		cfg.WSURL = ""
	}
	if g.opts.DevSignIn != nil {
		cfg.Auth.Mode = "dev"
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, cfg)
}

// devTokenRequest is the body of POST /dev/token. With Sites, the token grants the role on those
// sites only ("<role>:<site>" groups), to try scoped roles locally.
type devTokenRequest struct {
	Email string   `json:"email"`
	Role  string   `json:"role"`
	Sites []string `json:"sites,omitempty"`
}

// maxDevSites bounds the sites of one dev token.
const maxDevSites = 20

// devGroups returns the groups of a dev token: the role everywhere, or on each of sites; field
// and message name the first problem.
func devGroups(role auth.Role, sites []string) (groups []string, field, msg string) {
	if len(sites) == 0 {
		return []string{string(role)}, "", ""
	}
	if len(sites) > maxDevSites {
		return nil, "sites", fmt.Sprintf("must list at most %d sites", maxDevSites)
	}
	for i, site := range sites {
		g := string(role) + ":" + strings.TrimSpace(site)
		if id, err := auth.FromClaims(map[string]string{"sub": "check", auth.GroupsClaim: g}); err != nil || len(id.Groups()) != 1 {
			return nil, fmt.Sprintf("sites[%d]", i), "must be a site name without spaces, commas, colons, brackets or quotes"
		}
		groups = append(groups, g)
	}
	return groups, "", ""
}

func (g *Gateway) serveDevToken(w http.ResponseWriter, r *http.Request) {
	var in devTokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		api.WriteError(w, http.StatusBadRequest, &api.Error{Code: "invalid_json", Field: "body", Message: "must be {\"email\": \"...\", \"role\": \"viewer|operator|admin\", \"sites\": [\"...\"] (optional)}"})
		return
	}
	in.Email = strings.TrimSpace(in.Email)
	if msg := checkEmail(in.Email); msg != "" {
		api.WriteError(w, http.StatusBadRequest, &api.Error{Code: "invalid", Field: "email", Message: msg})
		return
	}
	role, ok := auth.ParseRole(in.Role)
	if !ok {
		api.WriteError(w, http.StatusBadRequest, &api.Error{Code: "invalid", Field: "role", Message: "must be viewer, operator or admin"})
		return
	}
	groups, field, msg := devGroups(role, in.Sites)
	if msg != "" {
		api.WriteError(w, http.StatusBadRequest, &api.Error{Code: "invalid", Field: field, Message: msg})
		return
	}
	tok, err := g.opts.DevSignIn.Issue(auth.TokenSpec{Subject: in.Email, Email: in.Email, Groups: groups, TTL: DevTokenTTL})
	if err != nil {
		g.opts.Logger.Error("dev sign-in: issue token", "err", err)
		api.WriteError(w, http.StatusInternalServerError, &api.Error{Code: "internal", Message: "could not issue a token"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	api.WriteJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_in": int(DevTokenTTL / time.Second)})
}

// checkEmail returns why s is not a usable sign-in name, or "".
func checkEmail(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > 254:
		return "must be at most 254 characters"
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return "must not contain spaces or control characters"
	case !strings.Contains(s, "@"):
		return "must be an email address"
	}
	return ""
}

// NewUIOrigin serves the static UI from webDir as S3 behind CloudFront does in AWS: on an origin
// of its own, with a config.json (cfg) naming the API and the WebSocket API of another origin,
// so every call the UI makes is cross-origin and must pass the gateway's CORS.
func NewUIOrigin(webDir string, cfg UIConfig) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		api.WriteJSON(w, http.StatusOK, cfg)
	})
	mux.Handle("GET /", http.FileServer(http.Dir(webDir)))
	return mux
}
