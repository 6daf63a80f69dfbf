package sshexec

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/infra/devicesim"
	"github.com/netauto/netauto/infra/sshdtest"
)

// BenchmarkBastion runs "show version" on 200 simulated devices with 64 workers, directly and
// through one OpenSSH bastion with one Tunnels (one bastion connection, 64 channels), and
// reports both durations and their ratio (bastion throughput / direct throughput).
//
//	go test -run '^$' -bench Bastion -benchtime 1x ./internal/sshexec/
func BenchmarkBastion(b *testing.B) {
	const devices, workers = 200, 64
	bastion := sshdtest.Start(b, "AllowTcpForwarding yes", "MaxStartups 200")
	f := benchFleet(b, "bastion", devicesim.Spec{Count: devices, Seed: 21})
	r, err := New(Options{})
	require.NoError(b, err, "runner")
	devs := f.Inventory()
	hop := Hop{ID: "bastion", Host: "127.0.0.1", Port: bastion.Port, Username: sshdtest.User,
		AuthMethod: AuthPassword, Password: bastion.Password, HostKey: bastion.HostKeyLine()}
	pass := func(tn *Tunnels) time.Duration {
		start := time.Now()
		failures, firstErr := fanout(devs, workers, func(d devicesim.InventoryDevice) error {
			tg := targetFor(d)
			if tn != nil {
				tg.JumpHosts, tg.Tunnels = []Hop{hop}, tn
			}
			if res := r.Run(context.Background(), tg, "show version", nil); res.Status != StatusSucceeded {
				return fmt.Errorf("%s: %s/%s %s", d.ID, res.Status, res.Reason, res.Message)
			}
			return nil
		})
		require.Zero(b, failures, "failed runs; first: %v", firstErr)
		return time.Since(start)
	}
	var direct, via time.Duration
	for range b.N {
		direct += pass(nil)
		tn := r.NewTunnels(workers)
		via += pass(tn)
		require.Equal(b, 1, tn.Stats().Connections, "bastion connections per pass")
		require.NoError(b, tn.Close(), "close tunnels")
	}
	b.ReportMetric(float64(direct.Nanoseconds())/float64(b.N), "direct-ns/op")
	b.ReportMetric(float64(via.Nanoseconds())/float64(b.N), "bastion-ns/op")
	b.ReportMetric(float64(direct)/float64(via), "bastion/direct-throughput")
}
