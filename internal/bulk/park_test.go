package bulk

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/sshexec"
)

// TestParkedWarm: connections parked for a handed-on batch go to that batch's continuation only,
// once, and close when none claims them in time.
func TestParkedWarm(t *testing.T) {
	r, err := sshexec.New(sshexec.Options{})
	require.NoError(t, err)
	newWarm := func() *warmed { return &warmed{hops: &hops{}, tunnels: r.NewTunnels(1)} }
	p := &parkedWarm{ttl: time.Hour}

	assert.Nil(t, p.take("job", 1), "nothing parked")
	p.put("job", 1, nil)
	assert.Nil(t, p.take("job", 1), "nil is not parked")

	w := newWarm()
	p.put("job", 1, w)
	assert.Nil(t, p.take("job", 2), "another batch of the job")
	assert.Nil(t, p.take("other", 1), "the same batch of another job")
	assert.Same(t, w, p.take("job", 1), "the continuation takes them")
	assert.Nil(t, p.take("job", 1), "once")
	w.close()

	w1, w2 := newWarm(), newWarm()
	p.put("job", 3, w1)
	p.put("job", 3, w2) // w1 is closed
	assert.Same(t, w2, p.take("job", 3), "the newer parking wins")
	w2.close()

	short := &parkedWarm{ttl: 10 * time.Millisecond}
	short.put("job", 4, newWarm())
	require.Eventually(t, func() bool {
		short.mu.Lock()
		defer short.mu.Unlock()
		return len(short.m) == 0
	}, 5*time.Second, 5*time.Millisecond, "unclaimed connections are closed and forgotten")
}
