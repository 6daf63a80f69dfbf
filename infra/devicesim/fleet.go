// Package devicesim is an SSH device simulator: one process serves a fleet of
// simulated network devices on loopback, one TCP port per device (all on the
// same address, 127.0.0.1 by default), each with a platform personality
// (banner, prompt, echo, CRLF, paging with --More--, show commands whose
// output differs per device, error markers, exec channel accepted or refused)
// and an optional fault mode.
//
// Tests start a fleet in-process:
//
//	fleet, err := devicesim.Start(devicesim.Spec{Count: 10, Seed: 1})
//	if err != nil { ... }
//	defer fleet.Close()
//	for _, d := range fleet.Inventory() { ... d.Host, d.Port, d.Password, d.HostKey ... }
//
// The same library backs the devicesim command (infra/cmd/devicesim).
package devicesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/netauto/netauto/internal/apiwire"
)

// Fault is a misbehaviour a simulated device can be given.
type Fault string

// The fault modes. A device has at most one.
const (
	// FaultNone is a healthy device.
	FaultNone Fault = ""
	// FaultRefuse: nothing listens on the device's port (connection refused).
	FaultRefuse Fault = "refuse"
	// FaultWrongCredentials: the device accepts none of the inventory's credentials.
	FaultWrongCredentials Fault = "wrong_credentials"
	// FaultChangedHostKey: the device presents a host key other than the inventory's.
	FaultChangedHostKey Fault = "changed_host_key"
	// FaultHangBeforeBanner: TCP is accepted but no SSH banner is ever sent.
	FaultHangBeforeBanner Fault = "hang_before_banner"
	// FaultHangMidOutput: a command's output stops after a few lines and the
	// device then stays silent with the connection open.
	FaultHangMidOutput Fault = "hang_mid_output"
	// FaultSlowDrip: output arrives one line per Spec.DripInterval, so a
	// command takes far longer than usual without ever going idle.
	FaultSlowDrip Fault = "slow_drip"
	// FaultEndlessOutput: every command prints forever.
	FaultEndlessOutput Fault = "endless_output"
	// FaultDisconnectMidOutput: the TCP connection is dropped after a few
	// lines of output.
	FaultDisconnectMidOutput Fault = "disconnect_mid_output"
	// FaultExecUnsupported: exec channel requests are refused even where the
	// platform normally accepts them.
	FaultExecUnsupported Fault = "exec_unsupported"
	// FaultLargeOutput: the running configuration is Spec.LargeOutputBytes
	// long (5 MiB by default).
	FaultLargeOutput Fault = "large_output"
	// FaultPagingIgnored: the paging-disable command is accepted but paging
	// stays on, so the client must answer --More--.
	FaultPagingIgnored Fault = "paging_ignored"
	// FaultOTPPrompt: the device offers keyboard-interactive only and, after a correct password,
	// asks a hidden "Verification code: " question that no answer passes.
	FaultOTPPrompt Fault = "otp_prompt"
	// FaultEchoSecrets: the device echoes what is typed at hidden questions (the enable
	// secret, a dialog's password), as a broken terminal setting does.
	FaultEchoSecrets Fault = "echo_secrets"
)

// Faults lists every fault mode (without FaultNone).
func Faults() []Fault {
	return []Fault{FaultRefuse, FaultWrongCredentials, FaultChangedHostKey, FaultHangBeforeBanner,
		FaultHangMidOutput, FaultSlowDrip, FaultEndlessOutput, FaultDisconnectMidOutput,
		FaultExecUnsupported, FaultLargeOutput, FaultPagingIgnored, FaultOTPPrompt, FaultEchoSecrets}
}

// Weighted is a name with a weight, used for the platform mix.
type Weighted struct {
	Name   string
	Weight int
}

// FaultCount asks for Count devices with the given fault.
type FaultCount struct {
	Fault Fault
	Count int
}

// DeviceSpec describes one device explicitly (see Spec.Devices).
type DeviceSpec struct {
	// Platform names the device's personality: one per platform of internal/platform.
	Platform string
	// Fault is the device's fault mode (FaultNone for a healthy device).
	Fault Fault
	// Version selects the software version: an index into the platform's
	// version table (taken modulo its length).
	Version int
	// Legacy makes the device speak only diffie-hellman-group14-sha1 with an
	// ssh-rsa (SHA-1) host key, like older network gear.
	Legacy bool
	// Unprivileged logs the device in at its unprivileged prompt ("r1>"); "enable" with
	// the fleet's EnableSecret leads to the privileged one. Only platforms with a privileged
	// mode (cisco_ios, cisco_iosxe, arista_eos) have it.
	Unprivileged bool
}

// Spec describes a fleet. The zero value of every field has a sensible
// default, so Spec{Count: 10} is a fleet of ten cisco_iosxe devices.
type Spec struct {
	// Count is the number of devices when Devices is empty.
	Count int
	// Seed makes host names' serial numbers, uptimes, addresses and host keys
	// deterministic: the same seed gives the same fleet.
	Seed int64
	// Platforms is the platform mix, assigned round-robin by weight
	// (default: cisco_iosxe only).
	Platforms []Weighted
	// Faults gives that many devices (picked by a seeded shuffle) a fault.
	Faults []FaultCount
	// Versions is the number of distinct software versions per platform
	// (default 1; at most the size of the platform's version table, 3).
	Versions int
	// Legacy is the number of devices (after the faulty ones in shuffle order)
	// that only speak legacy algorithms.
	Legacy int
	// Unprivileged is the number of devices (after the faulty and legacy ones in shuffle
	// order, among those whose platform has a privileged mode) that log in unprivileged.
	Unprivileged int
	// Devices, when set, lists the devices explicitly and overrides Count,
	// Platforms, Faults, Versions, Legacy and Unprivileged.
	Devices []DeviceSpec

	// Address is the loopback address to listen on (default 127.0.0.1).
	Address string
	// BasePort, when non-zero, puts device i on BasePort+i; otherwise the OS
	// picks a free port per device (or StateFile's port).
	BasePort int
	// StateFile, when set, makes the fleet come back the same after a restart:
	// Start reads each device's port and host keys from it (when it exists and
	// holds a device of the same id, platform, fault and algorithms), draws new
	// devices' ports from below the kernel's ephemeral port range (so no
	// outgoing connection takes them while the fleet is down), and writes the
	// file once every device listens. A saved port that is taken fails Start.
	StateFile string
	// CommandLog, when set, receives one line per command a device runs
	// (exec request or shell command line): "<device id>\t<command>\n".
	CommandLog io.Writer
	// Username and Password are the credentials of every device (defaults
	// "netauto" and "netauto-sim").
	Username, Password string
	// EnableSecret is the enable secret of every Unprivileged device (default
	// "netauto-enable").
	EnableSecret string
	// AuthorizedKeys are client public keys accepted by every device
	// (publickey authentication), optional.
	AuthorizedKeys []ssh.PublicKey

	// ConfigNoise makes every showing of an IOS-style configuration differ in its noise lines
	// (the last change and save times, ntp clock-period, the byte count), as real devices'
	// do; SetConfigRevision makes a real change.
	ConfigNoise bool

	// LargeOutputBytes is the size of the configuration of FaultLargeOutput
	// devices (default 5 MiB).
	LargeOutputBytes int
	// DripInterval is the delay between lines of FaultSlowDrip devices
	// (default 100ms).
	DripInterval time.Duration
	// FaultAfterLines is how many output lines FaultHangMidOutput and
	// FaultDisconnectMidOutput devices send first (default 5).
	FaultAfterLines int
}

// InventoryDevice is one entry of the inventory: the body POST /v1/devices and
// POST /v1/devices/import accept (its JSON form), and what the simulator knows besides.
type InventoryDevice struct {
	apiwire.DeviceInput
	// Fault is the simulated fault (also in Tags["sim_fault"]); not sent to
	// the import endpoint.
	Fault Fault `json:"-"`
	// Version is the simulated software version (also in Tags["os_version"]).
	Version string `json:"-"`
	// Unprivileged is set when the device logs in unprivileged (DeviceSpec.Unprivileged).
	Unprivileged bool `json:"-"`
}

// EnableSecret returns the fleet's enable secret (Spec.EnableSecret or its default).
func (f *Fleet) EnableSecret() string { return f.spec.EnableSecret }

// Addr returns host:port.
func (d InventoryDevice) Addr() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// Fleet is a running set of simulated devices. Close stops it.
type Fleet struct {
	spec    Spec
	devices []*device
	done    chan struct{}
	wg      sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool

	logMu sync.Mutex // serialises CommandLog lines
}

// Start starts the fleet described by spec and returns once every device
// listens. Call Close to stop it.
func Start(spec Spec) (*Fleet, error) {
	spec = withDefaults(spec)
	devSpecs, err := plan(spec)
	if err != nil {
		return nil, err
	}
	saved := map[string]savedDevice{}
	if spec.StateFile != "" {
		if saved, err = readState(spec.StateFile); err != nil {
			return nil, err
		}
	}
	f := &Fleet{spec: spec, done: make(chan struct{}), conns: make(map[net.Conn]struct{})}
	for i, ds := range devSpecs {
		d, err := newDevice(f, i, ds, saved)
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("device %d: %w", i, err)
		}
		f.devices = append(f.devices, d)
	}
	taken := map[int]bool{}
	for _, d := range f.devices {
		taken[d.port] = d.port != 0
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(spec.Seed)))
	for _, d := range f.devices {
		if err := d.listen(taken, rng); err != nil {
			_ = f.Close()
			if spec.StateFile != "" && d.port != 0 {
				err = fmt.Errorf("%w (the port is kept in %s; free it, or remove that file to give the fleet new ports)", err, spec.StateFile)
			}
			return nil, fmt.Errorf("device %s: %w", d.inv.ID, err)
		}
	}
	if spec.StateFile != "" {
		if err := f.writeState(spec.StateFile, saved); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return f, nil
}

// logCommand writes one line to Spec.CommandLog.
func (f *Fleet) logCommand(id, command string) {
	if f.spec.CommandLog == nil {
		return
	}
	line := id + "\t" + strings.ReplaceAll(strings.TrimSpace(command), "\n", " ") + "\n"
	f.logMu.Lock()
	defer f.logMu.Unlock()
	_, _ = io.WriteString(f.spec.CommandLog, line)
}

func withDefaults(s Spec) Spec {
	if len(s.Platforms) == 0 {
		s.Platforms = []Weighted{{Name: "cisco_iosxe", Weight: 1}}
	}
	if s.Versions <= 0 {
		s.Versions = 1
	}
	if s.Address == "" {
		s.Address = "127.0.0.1"
	}
	if s.Username == "" {
		s.Username = "netauto"
	}
	if s.Password == "" {
		s.Password = "netauto-sim"
	}
	if s.EnableSecret == "" {
		s.EnableSecret = "netauto-enable"
	}
	if s.LargeOutputBytes <= 0 {
		s.LargeOutputBytes = 5 << 20
	}
	if s.DripInterval <= 0 {
		s.DripInterval = 100 * time.Millisecond
	}
	if s.FaultAfterLines <= 0 {
		s.FaultAfterLines = 5
	}
	return s
}

// plan turns the mix description into one DeviceSpec per device.
func plan(s Spec) ([]DeviceSpec, error) {
	if len(s.Devices) > 0 {
		for _, d := range s.Devices {
			if err := checkDevice(d); err != nil {
				return nil, err
			}
		}
		return slices.Clone(s.Devices), nil
	}
	if s.Count <= 0 {
		return nil, errors.New("fleet needs Count > 0 or Devices")
	}
	var cycle []string
	for _, w := range s.Platforms {
		if personalities[w.Name] == nil {
			return nil, fmt.Errorf("unknown platform %q (known: %s)", w.Name, strings.Join(platformNames(), ", "))
		}
		if w.Weight < 0 {
			return nil, fmt.Errorf("platform %s: negative weight", w.Name)
		}
		for range w.Weight {
			cycle = append(cycle, w.Name)
		}
	}
	if len(cycle) == 0 {
		return nil, errors.New("platform mix has no weight")
	}
	out := make([]DeviceSpec, s.Count)
	seen := map[string]int{}
	for i := range out {
		p := cycle[i%len(cycle)]
		// Versions alternate within each platform.
		out[i] = DeviceSpec{Platform: p, Version: seen[p] % s.Versions}
		seen[p]++
	}
	// A seeded shuffle decides which devices get a fault or legacy algorithms.
	order := rand.New(rand.NewPCG(uint64(s.Seed), 0x5eed)).Perm(s.Count)
	next := 0
	for _, fc := range s.Faults {
		if !slices.Contains(Faults(), fc.Fault) {
			return nil, fmt.Errorf("unknown fault %q", fc.Fault)
		}
		for range fc.Count {
			if next >= s.Count {
				return nil, fmt.Errorf("more faulty devices than devices (%d)", s.Count)
			}
			out[order[next]].Fault = fc.Fault
			next++
		}
	}
	for range s.Legacy {
		if next >= s.Count {
			return nil, errors.New("more faulty and legacy devices than devices")
		}
		out[order[next]].Legacy = true
		next++
	}
	for left := s.Unprivileged; left > 0; next++ {
		if next >= s.Count {
			return nil, fmt.Errorf("fewer devices with a privileged mode left than %d unprivileged ones", s.Unprivileged)
		}
		if d := &out[order[next]]; personalities[d.Platform].enable != nil {
			d.Unprivileged = true
			left--
		}
	}
	return out, nil
}

func checkDevice(d DeviceSpec) error {
	if personalities[d.Platform] == nil {
		return fmt.Errorf("unknown platform %q", d.Platform)
	}
	if d.Fault != FaultNone && !slices.Contains(Faults(), d.Fault) {
		return fmt.Errorf("unknown fault %q", d.Fault)
	}
	if d.Unprivileged && personalities[d.Platform].enable == nil {
		return fmt.Errorf("platform %s has no privileged mode to log in without", d.Platform)
	}
	return nil
}

// Inventory returns the fleet's devices in the import format.
func (f *Fleet) Inventory() []InventoryDevice {
	f.mu.Lock() // ChangeHostKey changes a device's entry
	defer f.mu.Unlock()
	out := make([]InventoryDevice, len(f.devices))
	for i, d := range f.devices {
		out[i] = d.inv
		out[i].Tags = make(map[string]string, len(d.inv.Tags))
		for k, v := range d.inv.Tags {
			out[i].Tags[k] = v
		}
	}
	return out
}

// Sessions returns how many shells and commands the device with this inventory id has started
// (0 for an unknown id): a test's count of how often a device really ran something.
func (f *Fleet) Sessions(id string) int {
	for _, d := range f.devices {
		if d.inv.ID == id {
			return int(d.sessions.Load())
		}
	}
	return 0
}

// SetConfigRevision makes a real change in the configuration of the device with this inventory
// id: from now on it carries a line naming rev (0: no such line). It reports whether the id is
// the fleet's.
func (f *Fleet) SetConfigRevision(id string, rev int) bool {
	for _, d := range f.devices {
		if d.inv.ID == id {
			d.facts.revision.Store(int64(rev))
			return true
		}
	}
	return false
}

// WriteInventory writes the inventory as an indented JSON array.
func (f *Fleet) WriteInventory(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(f.Inventory()); err != nil {
		return fmt.Errorf("encode inventory: %w", err)
	}
	return nil
}

// WriteKnownHosts writes an OpenSSH known_hosts file with every device's
// (inventory) host key, e.g. "[127.0.0.1]:40001 ssh-ed25519 AAAA...".
func (f *Fleet) WriteKnownHosts(w io.Writer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.devices {
		line := knownhosts.Line([]string{d.inv.Addr()}, d.invKey)
		if _, err := io.WriteString(w, line+"\n"); err != nil {
			return fmt.Errorf("write known hosts: %w", err)
		}
	}
	return nil
}

// Close stops every device, drops every connection and waits for the
// simulator's goroutines to finish.
func (f *Fleet) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.done)
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	var errs []error
	for _, d := range f.devices {
		if d.holder >= 0 {
			_ = syscall.Close(d.holder)
			d.holder = -1
		}
		if d.ln != nil {
			if err := d.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	f.wg.Wait()
	return errors.Join(errs...)
}

// track registers a live connection so Close can drop it; it reports false
// when the fleet is already closed.
func (f *Fleet) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Fleet) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// ParsePlatforms parses a platform mix such as "cisco_iosxe=3,arista_eos=1,linux"
// (a missing weight is 1).
func ParsePlatforms(s string) ([]Weighted, error) {
	var out []Weighted
	for _, part := range splitList(s) {
		name, weight, err := nameCount(part)
		if err != nil {
			return nil, fmt.Errorf("platform mix: %w", err)
		}
		if personalities[name] == nil {
			return nil, fmt.Errorf("platform mix: unknown platform %q (known: %s)", name, strings.Join(platformNames(), ", "))
		}
		out = append(out, Weighted{Name: name, Weight: weight})
	}
	return out, nil
}

// ParseFaults parses a fault mix such as "refuse=2,slow_drip=1" (a missing
// count is 1).
func ParseFaults(s string) ([]FaultCount, error) {
	var out []FaultCount
	for _, part := range splitList(s) {
		name, n, err := nameCount(part)
		if err != nil {
			return nil, fmt.Errorf("fault mix: %w", err)
		}
		if !slices.Contains(Faults(), Fault(name)) {
			return nil, fmt.Errorf("fault mix: unknown fault %q", name)
		}
		out = append(out, FaultCount{Fault: Fault(name), Count: n})
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func nameCount(s string) (string, int, error) {
	name, num, found := strings.Cut(s, "=")
	if !found {
		return strings.TrimSpace(name), 1, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(num))
	if err != nil || n < 0 {
		return "", 0, fmt.Errorf("bad count in %q", s)
	}
	return strings.TrimSpace(name), n, nil
}
