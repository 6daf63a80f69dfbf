package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// The cloud metadata addresses (AWS IMDS over IPv4 and IPv6): never reachable, whatever an admin
// allows.
var (
	metadataV4 = netip.MustParseAddr("169.254.169.254")
	metadataV6 = netip.MustParseAddr("fd00:ec2::254")
	// metadataNAT64 and metadata6to4 carry the IPv4 metadata address through a translator: its
	// NAT64 form and the 6to4 prefix of 169.254.169.254.
	metadataNAT64 = netip.MustParseAddr("64:ff9b::a9fe:a9fe")
	metadata6to4  = netip.MustParsePrefix("2002:a9fe:a9fe::/48")
)

// isMetadata reports whether a (without mapping or zone) is the cloud metadata address or a form
// that carries it.
func isMetadata(a netip.Addr) bool {
	return a == metadataV4 || a == metadataV6 || a == metadataNAT64 || metadata6to4.Contains(a)
}

// holdsMetadata reports whether range p contains the cloud metadata address in any of its forms.
func holdsMetadata(p netip.Prefix) bool {
	return p.Contains(metadataV4) || p.Contains(metadataV6) || p.Contains(metadataNAT64) || p.Overlaps(metadata6to4)
}

// loopbackRanges are the addresses that reach the host's own services: loopback, the
// unspecified addresses (a connection to 0.0.0.0 or :: goes to the host itself) and the forms that
// carry them (IPv4-mapped, NAT64, 6to4). In AWS that is the Lambda sandbox: its Runtime API
// (127.0.0.1:9001) and extensions, so no webhook reaches them unless the process runs on a local
// stack (AllowLoopback).
var loopbackRanges = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("::/128"),
	netip.MustParsePrefix("::ffff:127.0.0.0/104"),
	netip.MustParsePrefix("::ffff:0.0.0.0/104"),
	netip.MustParsePrefix("64:ff9b::7f00:0/104"),
	netip.MustParsePrefix("64:ff9b::/104"),
	netip.MustParsePrefix("2002:7f00::/24"),
	netip.MustParsePrefix("2002::/24"),
}

// loopbackRule is what a refusal of a loopback range or address says.
const loopbackRule = "loopback and unspecified addresses (127.0.0.0/8, ::1, 0.0.0.0/8, ::, and their IPv4-mapped, NAT64 and 6to4 forms) are reachable only from a local stack (NET_AUTO_WEBHOOK_ALLOW_LOOPBACK=1): in AWS they reach the Lambda Runtime API and the sandbox's own services"

// isLoopback reports whether a (without mapping or zone) reaches the host itself.
func isLoopback(a netip.Addr) bool {
	for _, p := range loopbackRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// holdsLoopback reports whether range p contains any address that reaches the host itself.
func holdsLoopback(p netip.Prefix) bool {
	for _, l := range loopbackRanges {
		if p.Overlaps(l) {
			return true
		}
	}
	return false
}

// blockedRanges are the address ranges no webhook may reach unless an admin allows a range that
// contains the address, with the reason a refusal names.
var blockedRanges = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified or 'this network'"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("::/128"), "unspecified"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 (may map to a private IPv4 address)"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 (may map to a private IPv4 address)"},
	{netip.MustParsePrefix("2002::/16"), "6to4 (may map to a private IPv4 address)"},
	{netip.MustParsePrefix("fc00::/7"), "unique local (private)"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

// BlockedError is a connection refused because of the address it would have gone to. It names the
// address and why, never the URL.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

// Error implements error.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("address %s is not allowed (%s)", e.Addr, e.Reason)
}

// Blocked reports whether a is an address no webhook may reach on its own, and why. IPv4-mapped
// IPv6 addresses (::ffff:10.0.0.1) are judged as the IPv4 address they carry, and an IPv6 zone
// (fe80::1%eth0) is ignored.
func Blocked(a netip.Addr) (string, bool) {
	a = bare(a)
	if isMetadata(a) {
		return "cloud metadata", true
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.reason, true
		}
	}
	return "", false
}

// dialPolicy decides which addresses one webhook may connect to.
type dialPolicy struct {
	// allowed are the admin's ranges: blocked addresses in them are reachable.
	allowed []netip.Prefix
	// plainHTTP is set for an http URL: only allowed ranges are reachable, so a webhook never
	// sends an unencrypted request over the internet.
	plainHTTP bool
	// loopback is set on a local stack only: loopback addresses in allowed ranges are reachable.
	loopback bool
}

// bare is a without an IPv4 mapping or an IPv6 zone: the address ranges are matched against.
// netip.Prefix.Contains never matches a zoned address, so [::1%25lo] would pass every range.
func bare(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// check refuses an address the webhook may not reach.
func (p dialPolicy) check(a netip.Addr) error {
	a = bare(a)
	if !a.IsValid() {
		return &BlockedError{Addr: a, Reason: "not an IP address"}
	}
	if isMetadata(a) {
		return &BlockedError{Addr: a, Reason: "cloud metadata"}
	}
	if !p.loopback && isLoopback(a) {
		return &BlockedError{Addr: a, Reason: loopbackRule}
	}
	for _, pr := range p.allowed {
		if pr.Contains(a) {
			return nil
		}
	}
	if reason, blocked := Blocked(a); blocked {
		return &BlockedError{Addr: a, Reason: reason + "; allow its range in allow_private_cidrs to reach it"}
	}
	if p.plainHTTP {
		return &BlockedError{Addr: a, Reason: "http is only allowed to addresses in allow_private_cidrs; use https"}
	}
	return nil
}

// control is the net.Dialer Control hook: the last word on the address a socket connects to,
// after every name resolution.
func (p dialPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: not an IP address and port", address)
	}
	return p.check(ap.Addr())
}

// Resolver looks up a host's addresses; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// dialContext resolves the host with resolver, drops every address the policy refuses and dials
// the others in turn; each socket is checked once more by the dialer's Control on the address it
// really connects to, so what a name resolves to between the check and the dial (DNS rebinding)
// cannot get through.
func (p dialPolicy) dialContext(resolver Resolver, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, Control: p.control}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a}
		} else if addrs, err = resolver.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, unwrapDNS(err))
		}
		var errs []error
		for _, a := range addrs {
			if err := p.check(a); err != nil {
				errs = append(errs, err)
				continue
			}
			c, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("resolve %s: no addresses", host)
		}
		return nil, errors.Join(errs...)
	}
}

// unwrapDNS keeps a resolver error's reason and the name, never more.
func unwrapDNS(err error) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		return errors.New(de.Err)
	}
	return err
}

// maxResponseHeaderBytes bounds the response headers a receiver may send.
const maxResponseHeaderBytes = 16 << 10

// newClient returns the HTTP client of one webhook: dials guarded by p, no proxy (a proxy would
// dial for us, unchecked), no redirects followed, bounded times and header sizes, and no
// connection kept (each delivery is one request).
func newClient(p dialPolicy, resolver Resolver, timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:                  nil,
		TLSClientConfig:        tlsConfig,
		DialContext:            p.dialContext(resolver, timeout),
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		DisableKeepAlives:      true,
		ForceAttemptHTTP2:      true,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
