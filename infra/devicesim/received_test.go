package devicesim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/ssh"
)

func TestReceivedRecordsAuthAndCommands(t *testing.T) {
	f := start(t, Spec{Seed: 3, Devices: []DeviceSpec{{Platform: "arista_eos"}, {Platform: "cisco_iosxe"}}})
	inv := f.Inventory()
	assert.Empty(t, f.Received(inv[0].ID), "nothing received before any client")

	execOutput(t, inv[0], "show version")
	got := f.Received(inv[0].ID)
	require.NotEmpty(t, got.Auth, "auth attempts recorded")
	last := got.Auth[len(got.Auth)-1]
	assert.Equal(t, AuthAttempt{Method: "password", User: inv[0].Username, Secret: inv[0].Password}, last, "the password the client sent")
	assert.Equal(t, []string{"show version"}, got.Commands, "exec command recorded")

	sh := openShell(t, inv[1], 24)
	sh.readUntil("#")
	sh.send("show clock\n")
	sh.readUntil("#")
	assert.Equal(t, []string{"show clock"}, f.Received(inv[1].ID).Commands, "shell command line recorded")
	assert.Empty(t, f.Received("sim-9999"), "unknown device")
}

func TestChangeHostKey(t *testing.T) {
	f := start(t, Spec{Seed: 4, Devices: []DeviceSpec{{Platform: "arista_eos"}}})
	before := f.Inventory()[0]
	newKey, err := f.ChangeHostKey(before.ID)
	require.NoError(t, err)
	assert.NotEqual(t, before.HostKey, newKey, "a new key")
	after := f.Inventory()[0]
	assert.Equal(t, newKey, after.HostKey, "the inventory lists the new key")

	// A client that pinned the old key is refused before it authenticates.
	old, _, _, _, err := ssh.ParseAuthorizedKey([]byte(before.HostKey))
	require.NoError(t, err)
	cfg := &ssh.ClientConfig{
		User: before.Username, Auth: []ssh.AuthMethod{ssh.Password(before.Password)},
		HostKeyCallback: ssh.FixedHostKey(old), HostKeyAlgorithms: []string{old.Type()}, Timeout: 5 * time.Second,
	}
	_, err = ssh.Dial("tcp", before.Addr(), cfg)
	require.Error(t, err, "the old key no longer matches")
	assert.Empty(t, f.Received(before.ID).Auth, "no credential reached the device")

	assert.NotEmpty(t, execOutput(t, after, "show version"), "the new key works")
	assert.NotEmpty(t, f.Received(before.ID).Auth, "now it authenticated")

	_, err = f.ChangeHostKey("sim-9999")
	assert.Error(t, err, "unknown device")
}
