package localdev_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/gateway"
	"github.com/netauto/netauto/infra/localdev"
)

// TestRunRefusesRemoteBind checks that `make dev` refuses a non-loopback gateway or UI address
// before it starts anything, naming the switch that allows it.
func TestRunRefusesRemoteBind(t *testing.T) {
	t.Setenv(gateway.EnvAllowRemote, "")
	tests := []struct {
		name, addr, uiAddr string
	}{
		{"gateway on every interface", "0.0.0.0:0", ""},
		{"gateway on all addresses", ":0", ""},
		{"ui origin on every interface", "127.0.0.1:0", "0.0.0.0:0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(localdev.EnvUIAddr, tt.uiAddr)
			started := false
			err := localdev.Run(context.Background(), localdev.Options{Addr: tt.addr, Memory: true}, func(string) { started = true })
			require.Error(t, err)
			assert.Contains(t, err.Error(), gateway.EnvAllowRemote, "the error names the opt-in")
			assert.False(t, started, "the gateway started")
		})
	}
}
