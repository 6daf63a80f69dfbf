package devicesim

import (
	"bytes"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lockedBuffer is a CommandLog a test can read while the fleet writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStateFileBringsTheFleetBack(t *testing.T) {
	mix := []DeviceSpec{
		{Platform: "cisco_iosxe"}, {Platform: "linux", Legacy: true},
		{Platform: "arista_eos", Fault: FaultChangedHostKey}, {Platform: "cisco_iosxe", Fault: FaultRefuse},
	}
	tests := []struct {
		name string
		// second is the fleet started on the first one's state file.
		second []DeviceSpec
		// same lists the indexes of devices that must come back with their port and keys.
		same []int
	}{
		{name: "the same fleet comes back on its ports with its host keys", second: mix, same: []int{0, 1, 2, 3}},
		{
			name:   "a device of another kind gets a new key; the others are kept",
			second: []DeviceSpec{mix[0], {Platform: "linux"}, mix[2], mix[3]},
			same:   []int{0, 2, 3},
		},
		{name: "a larger fleet keeps the devices it had", second: append(append([]DeviceSpec{}, mix...), DeviceSpec{Platform: "linux"}), same: []int{0, 1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "fleet", "fleet.json")
			first, err := Start(Spec{Seed: 7, Devices: mix, StateFile: state})
			require.NoError(t, err)
			before := first.Inventory()
			require.NoError(t, first.Close())
			lo, hi, ok := stableRange()
			for _, d := range before {
				if ok {
					assert.True(t, d.Port >= lo && d.Port <= hi, "port %d of %s is not below the ephemeral range", d.Port, d.ID)
				}
			}

			second := start(t, Spec{Seed: 7, Devices: tc.second, StateFile: state})
			after := second.Inventory()
			require.Len(t, after, len(tc.second))
			for _, i := range tc.same {
				assert.Equal(t, before[i].Port, after[i].Port, "port of %s", before[i].ID)
				assert.Equal(t, before[i].HostKey, after[i].HostKey, "host key of %s", before[i].ID)
			}
			if len(tc.same) < len(mix) {
				assert.NotEqual(t, before[1].HostKey, after[1].HostKey, "a legacy RSA key was given to an ed25519 device")
			}
			// The remembered inventory entry still reaches the restarted device: the host key
			// the device serves is the one listed.
			out := execOutput(t, before[0], "show version")
			assert.Contains(t, out, "Cisco IOS XE Software")
			if slices.Contains(tc.same, 1) {
				assert.Contains(t, execOutput(t, before[1], "hostname"), after[1].Name)
			}
		})
	}
}

func TestStateFilePortTaken(t *testing.T) {
	state := filepath.Join(t.TempDir(), "fleet.json")
	first, err := Start(Spec{Seed: 1, Count: 1, StateFile: state})
	require.NoError(t, err)
	port := first.Inventory()[0].Port
	require.NoError(t, first.Close())
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err)
	defer ln.Close()

	_, err = Start(Spec{Seed: 1, Count: 1, StateFile: state})
	require.Error(t, err)
	assert.Contains(t, err.Error(), state, "the error does not say where the port is kept")
}

func TestCommandLog(t *testing.T) {
	var log lockedBuffer
	f := start(t, Spec{Seed: 1, Devices: []DeviceSpec{{Platform: "linux"}, {Platform: "cisco_iosxe"}}, CommandLog: &log})
	inv := f.Inventory()
	tests := []struct {
		name string
		run  func(t *testing.T)
		want string
	}{
		{"an exec request", func(t *testing.T) { execOutput(t, inv[0], "seq 2") }, inv[0].ID + "\tseq 2\n"},
		{"shell command lines", func(t *testing.T) {
			tm := openShell(t, inv[1], 24)
			tm.readUntil("#")
			tm.send("terminal length 0\n")
			tm.readUntil("#")
			tm.send("  show   version \n")
			tm.readUntil("#")
		}, inv[1].ID + "\tterminal length 0\n" + inv[1].ID + "\tshow version\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(log.String())
			tc.run(t)
			assert.Equal(t, tc.want, log.String()[before:])
		})
	}
}
