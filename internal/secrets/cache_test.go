package secrets

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/netauto/netauto/internal/device"
)

// TestGetMany reads many secrets at once from each store: found, missing and failed secrets each
// land in their place, and Secrets Manager is asked at most 20 ids per call.
func TestGetMany(t *testing.T) {
	ctx := context.Background()
	const n = 45
	names := make([]string, 0, n+1)
	for i := range n {
		names = append(names, fmt.Sprintf("devices/d%02d", i))
	}
	names = append(names, "devices/missing")
	stores := []struct {
		name string
		// store returns the store with names' secrets stored and a few of them made to fail
		// (their names in failing) or pending deletion (in deleted, read as missing).
		store func(t *testing.T) (s device.SecretBatchReader, failing, deleted []string, check func(t *testing.T))
	}{
		{"file", func(t *testing.T) (device.SecretBatchReader, []string, []string, func(t *testing.T)) {
			s := newFileStore(t)
			for _, name := range names[:n] {
				require.NoError(t, s.Put(ctx, name, device.Credential{Password: "pw-" + name}))
			}
			return s, nil, nil, func(*testing.T) {}
		}},
		{"secrets manager", func(t *testing.T) (device.SecretBatchReader, []string, []string, func(t *testing.T)) {
			s, fake := newSMStore(t, "netauto/s1/")
			for _, name := range names[:n] {
				require.NoError(t, s.Put(ctx, name, device.Credential{Password: "pw-" + name}))
			}
			require.NoError(t, s.Delete(ctx, "devices/d03"))
			fake.refuse["netauto/s1/devices/d07"] = true
			fake.decryptFails["netauto/s1/devices/d11"] = true
			fake.calls = nil
			return s, []string{"devices/d07", "devices/d11"}, []string{"devices/d03"}, func(t *testing.T) {
				assert.Equal(t, []int{20, 20, 6}, fake.batchSizes, "ids per BatchGetSecretValue call")
				// The two refused with InvalidRequestException are read again one by one, which
				// tells the one pending deletion from the other refusal.
				assert.Equal(t, 3+2*2, len(fake.calls), "calls: %v", fake.calls)
			}
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s, failing, deleted, check := st.store(t)
			found, failed, err := s.GetMany(ctx, names)
			require.NoError(t, err)
			for _, name := range names[:n] {
				switch {
				case contains(failing, name):
					if assert.Contains(t, failed, name) {
						assert.NotContains(t, failed[name].Error(), "pw-", "the error of %s shows a secret", name)
					}
				case contains(deleted, name):
					assert.NotContains(t, found, name, "a secret pending deletion is read as missing")
				default:
					assert.Equal(t, "pw-"+name, found[name].Password, "secret %s", name)
				}
			}
			assert.NotContains(t, found, "devices/missing")
			assert.NotContains(t, failed, "devices/missing", "a missing secret is no failure")
			assert.Len(t, failed, len(failing), "failed: %v", keys(failed))
			check(t)
		})
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// countingStore is a file store that counts its reads.
type countingStore struct {
	*FileStore
	mu          sync.Mutex
	gets, batch int
	batchNames  []string
}

func (c *countingStore) Get(ctx context.Context, name string) (device.Credential, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.FileStore.Get(ctx, name)
}

func (c *countingStore) GetMany(ctx context.Context, names []string) (map[string]device.Credential, map[string]error, error) {
	c.mu.Lock()
	c.batch++
	c.batchNames = append(c.batchNames, names...)
	c.mu.Unlock()
	return c.FileStore.GetMany(ctx, names)
}

// TestCache holds the cache to its bounds (count, age, not-before), to dropping what is written
// or forgotten, and to reading a batch's missing secrets in one call.
func TestCache(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		size int
		run  func(t *testing.T, c *Cache, s *countingStore, clock *time.Time)
	}{
		{"a secret is read once within its TTL", 10, func(t *testing.T, c *Cache, s *countingStore, _ *time.Time) {
			for range 3 {
				got, err := c.Get(ctx, "devices/a")
				require.NoError(t, err)
				assert.Equal(t, "pw-a", got.Password)
			}
			assert.Equal(t, 1, s.gets, "store reads")
		}},
		{"after its TTL it is read again", 10, func(t *testing.T, c *Cache, s *countingStore, clock *time.Time) {
			_, _ = c.Get(ctx, "devices/a")
			*clock = clock.Add(DefaultCacheTTL)
			_, _ = c.Get(ctx, "devices/a")
			assert.Equal(t, 2, s.gets, "store reads")
		}},
		{"the least recently used secret goes past the size", 2, func(t *testing.T, c *Cache, s *countingStore, _ *time.Time) {
			for _, name := range []string{"devices/a", "devices/b", "devices/c", "devices/a"} {
				_, err := c.Get(ctx, name)
				require.NoError(t, err)
			}
			assert.Equal(t, 4, s.gets, "store reads: a was dropped for c")
			assert.Equal(t, 2, c.kept.Len(), "kept secrets")
		}},
		{"a secret read before not-before is read again", 10, func(t *testing.T, c *Cache, s *countingStore, clock *time.Time) {
			_, _ = c.Get(ctx, "devices/a")
			*clock = clock.Add(time.Second)
			_, _ = c.GetFresh(ctx, "devices/a", clock.Add(-time.Millisecond))
			assert.Equal(t, 2, s.gets, "store reads")
			_, _ = c.GetFresh(ctx, "devices/a", clock.Add(-time.Millisecond))
			assert.Equal(t, 2, s.gets, "store reads: the second read is after not-before")
		}},
		{"put and delete drop the kept secret", 10, func(t *testing.T, c *Cache, s *countingStore, _ *time.Time) {
			_, _ = c.Get(ctx, "devices/a")
			require.NoError(t, c.Put(ctx, "devices/a", device.Credential{Password: "rotated"}))
			got, err := c.Get(ctx, "devices/a")
			require.NoError(t, err)
			assert.Equal(t, "rotated", got.Password)
			require.NoError(t, c.Delete(ctx, "devices/a"))
			_, err = c.Get(ctx, "devices/a")
			assert.ErrorIs(t, err, device.ErrNotFound)
		}},
		{"forget drops the kept secret", 10, func(t *testing.T, c *Cache, s *countingStore, _ *time.Time) {
			_, _ = c.Get(ctx, "devices/a")
			require.NoError(t, s.FileStore.Put(ctx, "devices/a", device.Credential{Password: "rotated outside"}))
			got, _ := c.Get(ctx, "devices/a")
			assert.Equal(t, "pw-a", got.Password, "kept")
			c.Forget("devices/a")
			got, _ = c.Get(ctx, "devices/a")
			assert.Equal(t, "rotated outside", got.Password, "read again")
		}},
		{"prefetch reads what is not kept in one call", 10, func(t *testing.T, c *Cache, s *countingStore, _ *time.Time) {
			_, _ = c.Get(ctx, "devices/a")
			require.NoError(t, c.Prefetch(ctx, map[string]time.Time{"devices/a": {}, "devices/b": {}, "devices/c": {}, "devices/missing": {}}))
			assert.Equal(t, 1, s.batch, "batch reads")
			sort.Strings(s.batchNames)
			assert.Equal(t, []string{"devices/b", "devices/c", "devices/missing"}, s.batchNames, "names read in the batch")
			for _, name := range []string{"devices/a", "devices/b", "devices/c"} {
				_, err := c.Get(ctx, name)
				require.NoError(t, err)
			}
			assert.Equal(t, 1, s.gets, "store reads after the prefetch (the first Get's only)")
			_, err := c.Get(ctx, "devices/missing")
			assert.ErrorIs(t, err, device.ErrNotFound, "a missing secret is left to Get")
		}},
		{"prefetch of kept secrets reads nothing", 10, func(t *testing.T, c *Cache, s *countingStore, _ *time.Time) {
			_, _ = c.Get(ctx, "devices/a")
			require.NoError(t, c.Prefetch(ctx, map[string]time.Time{"devices/a": {}}))
			assert.Zero(t, s.batch, "batch reads")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &countingStore{FileStore: newFileStore(t)}
			for _, id := range []string{"a", "b", "c"} {
				require.NoError(t, s.FileStore.Put(ctx, "devices/"+id, device.Credential{Password: "pw-" + id}))
			}
			c, err := NewCache(s, tc.size, DefaultCacheTTL)
			require.NoError(t, err)
			clock := t0
			c.now = func() time.Time { return clock }
			tc.run(t, c, s, &clock)
		})
	}
}

func TestNewCacheRefusesBadBounds(t *testing.T) {
	s := newFileStore(t)
	tests := []struct {
		name string
		size int
		ttl  time.Duration
	}{
		{"no size", 0, time.Minute},
		{"no TTL", 10, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewCache(s, tc.size, tc.ttl)
			assert.Error(t, err)
		})
	}
}

// TestThrottledBatchReadFallsBackAtOnce: a throttled BatchGetSecretValue is not retried; the
// cache's prefetch reports it and each secret is then read with GetSecretValue.
func TestThrottledBatchReadFallsBackAtOnce(t *testing.T) {
	ctx := context.Background()
	s, fake := newSMStore(t, "netauto/s1/")
	names := []string{"devices/a", "devices/b"}
	for _, name := range names {
		require.NoError(t, s.Put(ctx, name, device.Credential{Password: "pw"}))
	}
	fake.throttleBatch = true
	fake.calls = nil
	c, err := NewCache(s, 10, DefaultCacheTTL)
	require.NoError(t, err)
	err = c.Prefetch(ctx, map[string]time.Time{"devices/a": {}, "devices/b": {}})
	require.Error(t, err, "a throttled batch read")
	assert.Equal(t, []string{"BatchGetSecretValue"}, fake.calls, "calls: the batch read once, not retried")
	for _, name := range names {
		got, err := c.Get(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, "pw", got.Password)
	}
	assert.Equal(t, []string{"BatchGetSecretValue", "GetSecretValue", "GetSecretValue"}, fake.calls, "calls")
}

// BenchmarkCredentialReads1000 counts the Secrets Manager calls that 1,000 devices with their own
// secret cost, in batches of 50 as the executor runs them: one GetSecretValue per device run
// before the cache; with it, the batch's secrets read together (BatchGetSecretValue, 20 at a
// time) and, for a second job within the TTL, nothing.
func BenchmarkCredentialReads1000(b *testing.B) {
	ctx := context.Background()
	const n, batch = 1000, 50
	for b.Loop() {
		s, fake := newSMStore(b, "netauto/bench/")
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("devices/d%04d", i)
			require.NoError(b, s.Put(ctx, names[i], device.Credential{Password: "pw"}))
		}
		fake.calls = nil
		for _, name := range names {
			_, err := s.Get(ctx, name)
			require.NoError(b, err)
		}
		before := len(fake.calls)
		fake.calls = nil
		c, err := NewCache(s, DefaultCacheSize, DefaultCacheTTL)
		require.NoError(b, err)
		job := func() int {
			fake.calls = nil
			for start := 0; start < n; start += batch {
				want := map[string]time.Time{}
				for _, name := range names[start : start+batch] {
					want[name] = time.Time{}
				}
				require.NoError(b, c.Prefetch(ctx, want))
				for _, name := range names[start : start+batch] {
					_, err := c.GetFresh(ctx, name, time.Time{})
					require.NoError(b, err)
				}
			}
			return len(fake.calls)
		}
		first, second := job(), job()
		b.ReportMetric(float64(before), "sm-calls/1000-devices-before")
		b.ReportMetric(float64(first), "sm-calls/1000-devices")
		b.ReportMetric(float64(second), "sm-calls/1000-devices-cached")
	}
}
