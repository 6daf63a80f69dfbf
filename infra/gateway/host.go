package gateway

// The local gateway's own exposure: it answers only requests addressed to one of its own host
// names (a DNS-rebinding page reaches it under the attacker's name, and the dev sign-in mints admin
// tokens), and it listens on loopback unless told otherwise.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/netauto/netauto/internal/api"
)

// EnvAllowRemote names the switch ("1") that lets the local gateway listen on a non-loopback
// address, where anyone who can reach the machine reaches the dev sign-in.
const EnvAllowRemote = "NET_AUTO_GATEWAY_ALLOW_REMOTE"

// EnvAllowedHosts names further host names (comma-separated) the local gateway answers to,
// beside localhost, loopback addresses and the host it listens on.
const EnvAllowedHosts = "NET_AUTO_GATEWAY_ALLOWED_HOSTS"

// hostAllowList is the set of Host header names the gateway answers: localhost, any loopback IP
// literal, and the names it was given.
type hostAllowList map[string]bool

// newHostAllowList returns the allow list for the extra names, refusing an entry that is not a
// bare host name or IP address.
func newHostAllowList(extra []string) (hostAllowList, error) {
	h := hostAllowList{"localhost": true}
	for _, e := range extra {
		raw := strings.TrimSpace(e)
		bare := strings.TrimSuffix(strings.TrimPrefix(raw, "["), "]")
		if raw == "" || strings.ContainsAny(raw, "/@ \t") || strings.Contains(raw, ":") && net.ParseIP(bare) == nil {
			return nil, fmt.Errorf("allowed host %q: must be a host name or IP address without port or scheme", e)
		}
		h[strings.TrimSuffix(strings.ToLower(bare), ".")] = true
	}
	return h, nil
}

// normalizeHost lower-cases a Host header value and drops its port, IPv6 brackets and a
// trailing dot.
func normalizeHost(host string) string {
	host = strings.TrimSpace(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// allows reports whether a request's Host header names this gateway.
func (h hostAllowList) allows(host string) bool {
	n := normalizeHost(host)
	if ip := net.ParseIP(n); ip != nil && ip.IsLoopback() {
		return true
	}
	return n != "" && h[n]
}

// wrap answers 421 Misdirected Request, before anything else runs, to a request whose Host is
// not one of the gateway's names: HTTP routes, the dev sign-in, the UI and WebSocket upgrades.
func (h hostAllowList) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.allows(r.Host) {
			api.WriteError(w, http.StatusMisdirectedRequest, &api.Error{Code: "host_not_allowed", Field: "Host",
				Message: fmt.Sprintf("host %q is not a name of this local gateway; add it to %s to allow it", normalizeHost(r.Host), EnvAllowedHosts)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Listen listens on addr, refusing any address that is not loopback (an empty host, 0.0.0.0, a
// LAN address, a name resolving to one) unless allowRemote is set: the local gateway has a dev
// sign-in that issues admin tokens to whoever asks.
func Listen(ctx context.Context, addr string, allowRemote bool) (net.Listener, error) {
	if !allowRemote {
		if err := checkLoopback(ctx, addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !allowRemote && !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return nil, remoteBindError(addr)
	}
	return ln, nil
}

// checkLoopback returns an error unless every address addr's host stands for is loopback.
func checkLoopback(ctx context.Context, addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "" {
		return remoteBindError(addr)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return remoteBindError(addr)
		}
		return nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("listen address %q: resolve %s: %w", addr, host, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return remoteBindError(addr)
		}
	}
	return nil
}

func remoteBindError(addr string) error {
	return fmt.Errorf("refusing to listen on %s: it is not a loopback address, and the local gateway's dev sign-in "+
		"issues admin tokens to anyone who can reach it; listen on 127.0.0.1 (or [::1]), or set %s=1 to expose it on purpose",
		addr, EnvAllowRemote)
}
