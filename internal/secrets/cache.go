package secrets

import (
	"context"
	"errors"
	"fmt"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/netauto/netauto/internal/device"
)

// Cache sizes for the executor: a credential is a few hundred bytes to a few kilobytes (an RSA
// key), so 2,000 of them stay within a few megabytes, and 40 batches of 50 devices find theirs
// kept for five minutes. docs/scale.md has the numbers.
const (
	DefaultCacheSize = 2000
	DefaultCacheTTL  = 5 * time.Minute
)

// Cache keeps the secrets read through a store, at most size of them (least recently used go
// first) and each for at most ttl, so an executor that runs batch after batch reads a device's
// secret once, not once per run; Prefetch reads a batch's secrets together when the store is a
// device.SecretBatchReader. Put, Delete and Purge go to the store and drop the name. It implements
// device.SecretCache. A secret rotated outside NetAuto is seen after ttl, or at once by a device
// that refuses the kept one (device.Inventory.RefreshCredential).
type Cache struct {
	store device.SecretStore
	ttl   time.Duration
	kept  *lru.Cache[string, cached]
	now   func() time.Time
}

type cached struct {
	c  device.Credential
	at time.Time
}

// NewCache returns a cache of at most size secrets, each kept at most ttl, over store.
func NewCache(store device.SecretStore, size int, ttl time.Duration) (*Cache, error) {
	if store == nil {
		return nil, errors.New("new secret cache: no store")
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("new secret cache: ttl %s must be positive", ttl)
	}
	kept, err := lru.New[string, cached](size)
	if err != nil {
		return nil, fmt.Errorf("new secret cache: %w", err)
	}
	return &Cache{store: store, ttl: ttl, kept: kept, now: time.Now}, nil
}

// fresh returns the kept secret of name when it was read within ttl and not before notBefore.
func (c *Cache) fresh(name string, notBefore time.Time) (device.Credential, bool) {
	e, ok := c.kept.Get(name)
	if !ok || c.now().Sub(e.at) >= c.ttl || e.at.Before(notBefore) {
		return device.Credential{}, false
	}
	return e.c, true
}

// Get returns the kept secret of name or reads it from the store.
func (c *Cache) Get(ctx context.Context, name string) (device.Credential, error) {
	return c.GetFresh(ctx, name, time.Time{})
}

// GetFresh returns the kept secret of name when it was read at or after notBefore, or reads it
// from the store.
func (c *Cache) GetFresh(ctx context.Context, name string, notBefore time.Time) (device.Credential, error) {
	if cred, ok := c.fresh(name, notBefore); ok {
		return cred, nil
	}
	at := c.now()
	cred, err := c.store.Get(ctx, name)
	if err != nil {
		return device.Credential{}, err
	}
	c.kept.Add(name, cached{c: cred, at: at})
	return cred, nil
}

// Prefetch reads the secrets of want (name -> not before) that are not kept fresh, in one
// GetMany when the store is a device.SecretBatchReader (nothing otherwise: Get reads them one by
// one). Missing secrets and those that failed are not kept, so GetFresh reports them.
func (c *Cache) Prefetch(ctx context.Context, want map[string]time.Time) error {
	br, ok := c.store.(device.SecretBatchReader)
	if !ok {
		return nil
	}
	var names []string
	for name, notBefore := range want {
		if _, ok := c.fresh(name, notBefore); !ok {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	at := c.now()
	found, _, err := br.GetMany(ctx, names)
	for name, cred := range found {
		c.kept.Add(name, cached{c: cred, at: at})
	}
	return err
}

// Forget drops the kept secret of name.
func (c *Cache) Forget(name string) { c.kept.Remove(name) }

// Put stores the secret and drops what was kept of it.
func (c *Cache) Put(ctx context.Context, name string, cred device.Credential) error {
	c.Forget(name)
	defer c.Forget(name) // a Get that raced the write may have kept the old secret
	return c.store.Put(ctx, name, cred)
}

// Delete deletes the secret and drops what was kept of it.
func (c *Cache) Delete(ctx context.Context, name string) error {
	c.Forget(name)
	defer c.Forget(name)
	return c.store.Delete(ctx, name)
}

// Purge deletes the secret at once when the store can (else as Delete does) and drops what was
// kept of it.
func (c *Cache) Purge(ctx context.Context, name string) error {
	c.Forget(name)
	if p, ok := c.store.(interface {
		Purge(ctx context.Context, name string) error
	}); ok {
		return p.Purge(ctx, name)
	}
	return c.store.Delete(ctx, name)
}
