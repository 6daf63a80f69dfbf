// Command devicesim serves a fleet of simulated SSH network devices on
// loopback (one TCP port per device) until SIGINT or SIGTERM, after writing
// the fleet's inventory (JSON array for POST /v1/devices/import) and an
// OpenSSH known_hosts file.
//
// Usage:
//
//	go run ./infra/cmd/devicesim -count 20 -seed 1 \
//	    -platforms cisco_iosxe=3,arista_eos=1,juniper_junos=1,linux=1 \
//	    -faults refuse=1,slow_drip=1 -versions 2 \
//	    -inventory .state/devices.json -known-hosts .state/known_hosts
//
// Flags:
//
//	-count N               number of devices (default 20)
//	-seed N                seed for host names' details, serials and host keys (default 1)
//	-platforms MIX         platform=weight list, assigned round-robin by weight
//	-faults MIX            fault=count list; faults: refuse, wrong_credentials,
//	                       changed_host_key, hang_before_banner, hang_mid_output,
//	                       slow_drip, endless_output, disconnect_mid_output,
//	                       exec_unsupported, large_output, paging_ignored, otp_prompt
//	-versions N            distinct software versions per platform (1-3)
//	-legacy N              devices that only speak legacy algorithms
//	-addr IP               loopback address to listen on (default 127.0.0.1)
//	-base-port P           device i listens on P+i (default: ports chosen by the OS)
//	-username, -password   credentials of every device
//	-large-output-bytes N  configuration size of large_output devices (default 5 MiB)
//	-drip D                delay per line of slow_drip devices (default 100ms)
//	-inventory FILE        write the inventory JSON here ("-" = stdout)
//	-known-hosts FILE      write known_hosts here
//	-exit                  write the files and exit instead of serving
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/netauto/netauto/infra/devicesim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devicesim:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devicesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		spec                         devicesim.Spec
		platforms, faults            string
		inventory, knownHosts        string
		exitAfterWrite               bool
		largeOutputBytes, faultAfter int
		drip                         time.Duration
	)
	fs.IntVar(&spec.Count, "count", 20, "number of devices")
	fs.Int64Var(&spec.Seed, "seed", 1, "seed for deterministic device details and host keys")
	fs.StringVar(&platforms, "platforms", "cisco_iosxe", "platform mix, e.g. cisco_iosxe=3,arista_eos=1,linux=1")
	fs.StringVar(&faults, "faults", "", "fault mix, e.g. refuse=1,slow_drip=2")
	fs.IntVar(&spec.Versions, "versions", 1, "distinct software versions per platform (1-3)")
	fs.IntVar(&spec.Legacy, "legacy", 0, "devices that only speak legacy algorithms")
	fs.IntVar(&spec.Unprivileged, "unprivileged", 0, "devices (cisco_ios, cisco_iosxe, arista_eos) that log in at > and need enable")
	fs.StringVar(&spec.EnableSecret, "enable-secret", "netauto-enable", "enable secret of the unprivileged devices")
	fs.StringVar(&spec.Address, "addr", "127.0.0.1", "loopback address to listen on")
	fs.IntVar(&spec.BasePort, "base-port", 0, "device i listens on base-port+i (0: OS-chosen ports)")
	fs.StringVar(&spec.Username, "username", "netauto", "user name of every device")
	fs.StringVar(&spec.Password, "password", "netauto-sim", "password of every device")
	fs.IntVar(&largeOutputBytes, "large-output-bytes", 5<<20, "configuration size of large_output devices")
	fs.IntVar(&faultAfter, "fault-after-lines", 5, "lines before hang_mid_output / disconnect_mid_output strike")
	fs.DurationVar(&drip, "drip", 100*time.Millisecond, "delay per output line of slow_drip devices")
	fs.StringVar(&inventory, "inventory", "", "write the inventory JSON to this file (- for stdout)")
	fs.StringVar(&knownHosts, "known-hosts", "", "write an OpenSSH known_hosts file")
	fs.BoolVar(&exitAfterWrite, "exit", false, "write the files and exit instead of serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if spec.Platforms, err = devicesim.ParsePlatforms(platforms); err != nil {
		return err
	}
	if spec.Faults, err = devicesim.ParseFaults(faults); err != nil {
		return err
	}
	spec.LargeOutputBytes, spec.DripInterval, spec.FaultAfterLines = largeOutputBytes, drip, faultAfter

	fleet, err := devicesim.Start(spec)
	if err != nil {
		return fmt.Errorf("start fleet: %w", err)
	}
	defer fleet.Close()

	if err := writeFile(inventory, stdout, fleet.WriteInventory); err != nil {
		return err
	}
	if err := writeFile(knownHosts, stdout, fleet.WriteKnownHosts); err != nil {
		return err
	}
	inv := fleet.Inventory()
	fmt.Fprintf(stderr, "devicesim: %d devices on %s, ports %d..%d\n", len(inv), spec.Address, inv[0].Port, inv[len(inv)-1].Port)
	if exitAfterWrite {
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(stderr, "devicesim: stopping")
	return fleet.Close()
}

// writeFile writes with fn to path ("-" = stdout, "" = nowhere).
func writeFile(path string, stdout io.Writer, fn func(io.Writer) error) error {
	switch path {
	case "":
		return nil
	case "-":
		return fn(stdout)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := fn(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
