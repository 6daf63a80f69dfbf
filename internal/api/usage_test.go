package api

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
	"github.com/netauto/netauto/internal/run"
)

// pagedDevices lists n devices, a page of 50 at a time (only List is used).
type pagedDevices struct {
	Devices
	n int
}

func (p pagedDevices) List(_ context.Context, _ device.Filter, pg device.Page) ([]device.Device, string, error) {
	from := 0
	if pg.Cursor != "" {
		_, _ = fmt.Sscan(pg.Cursor, &from)
	}
	var out []device.Device
	for i := from; i < min(from+50, p.n); i++ {
		out = append(out, device.Device{ID: fmt.Sprintf("d-%d", i)})
	}
	if from+50 >= p.n {
		return out, "", nil
	}
	return out, fmt.Sprint(from + 50), nil
}

// throttledUsage fails device d-0's read and holds every other until its context ends, as reads
// do while DynamoDB throttles them; it counts the reads.
type throttledUsage struct {
	calls atomic.Int64
	err   error
}

func (u *throttledUsage) DeviceUsage(ctx context.Context, id string) (run.Usage, error) {
	u.calls.Add(1)
	if id == "d-0" {
		return run.Usage{}, u.err
	}
	<-ctx.Done()
	return run.Usage{}, ctx.Err()
}

func (u *throttledUsage) SharedBytes(context.Context) (int64, error) { return 0, nil }

// TestTotalUsageStopsAtFirstError: a device whose bytes cannot be read ends the sum: the reads
// under way are cancelled, no more are started, and the error is that device's alone.
func TestTotalUsageStopsAtFirstError(t *testing.T) {
	u := &throttledUsage{err: errors.New("throttled")}
	s := &Server{opts: Options{Devices: pagedDevices{n: 1000}, Usage: u}}
	// The deadline only bounds a sum that would not stop by itself.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.totalUsage(ctx)
	require.Error(t, err)
	assert.Equal(t, "usage of device d-0: throttled", err.Error(), "the first error alone")
	assert.LessOrEqual(t, u.calls.Load(), int64(2*usageWorkers), "reads started: no more once one failed")
}
