package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunWritesInventoryAndKnownHosts(t *testing.T) {
	dir := t.TempDir()
	inv, kh := filepath.Join(dir, "devices.json"), filepath.Join(dir, "known_hosts")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-count", "4", "-seed", "3", "-platforms", "cisco_iosxe=1,linux=1", "-faults", "refuse=1",
		"-versions", "2", "-inventory", inv, "-known-hosts", kh, "-exit"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v (%s)", err, stderr.String())
	}
	data, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	var devices []struct {
		ID      string `json:"id"`
		HostKey string `json:"host_key"`
		Port    int    `json:"port"`
	}
	if err := json.Unmarshal(data, &devices); err != nil || len(devices) != 4 {
		t.Fatalf("inventory: %v, %d devices", err, len(devices))
	}
	for _, d := range devices {
		if d.ID == "" || d.Port == 0 || !strings.HasPrefix(d.HostKey, "ssh-ed25519 ") {
			t.Errorf("incomplete device %+v", d)
		}
	}
	khData, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(khData), "\n"); n != 4 {
		t.Errorf("known_hosts has %d lines, want 4", n)
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-platforms", "nope", "-exit"},
		{"-faults", "gremlins=1", "-exit"},
		{"-count", "0", "-exit"},
		{"-bogus"},
	} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}
