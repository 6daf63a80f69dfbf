package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/netauto/netauto/internal/bulk"
	"github.com/netauto/netauto/internal/device"
)

// Queue holds batch messages until a test takes them; it implements bulk.Queue and
// bulk.DelayedQueue.
type Queue struct {
	// Refuse, when set, makes SendAll refuse the messages it returns true for (reported by
	// index, as SQS reports failed entries).
	Refuse func(bulk.Message) bool
	// Err, when set, makes SendAll fail as a whole, as when the queue cannot say which messages
	// went out.
	Err error

	mu   sync.Mutex
	msgs []Sent
	all  int
}

// Sent is one message on the queue and the delay it was sent with.
type Sent struct {
	Message bulk.Message
	Delay   time.Duration
}

var (
	_ bulk.Queue        = (*Queue)(nil)
	_ bulk.DelayedQueue = (*Queue)(nil)
)

// SendAll queues msgs, but those Refuse refuses.
func (q *Queue) SendAll(_ context.Context, msgs []bulk.Message) ([]int, error) {
	if q.Err != nil {
		return nil, q.Err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var failed []int
	for i, m := range msgs {
		if q.Refuse != nil && q.Refuse(m) {
			failed = append(failed, i)
			continue
		}
		q.msgs = append(q.msgs, Sent{Message: m})
		q.all++
	}
	return failed, nil
}

// SendDelayed queues m with its delay (which this queue does not wait for).
func (q *Queue) SendDelayed(_ context.Context, m bulk.Message, delay time.Duration) error {
	if q.Err != nil {
		return q.Err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, Sent{Message: m, Delay: delay})
	q.all++
	return nil
}

// Take removes and returns every queued message, oldest first.
func (q *Queue) Take() []Sent {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.msgs
	q.msgs = nil
	return out
}

// Len returns how many messages are queued.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// SentCount returns how many messages were ever queued.
func (q *Queue) SentCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.all
}

// Devices is an inventory of devices and their credentials; it implements bulk.DeviceSource and
// bulk.Inventory.
type Devices struct {
	mu    sync.Mutex
	reads int
	devs  map[string]device.Device
	creds map[string]device.Credential
}

var (
	_ bulk.DeviceSource = (*Devices)(nil)
	_ bulk.Inventory    = (*Devices)(nil)
)

// NewDevices returns an empty inventory.
func NewDevices() *Devices {
	return &Devices{devs: map[string]device.Device{}, creds: map[string]device.Credential{}}
}

// Put stores a device with its credential (a zero credential: none stored).
func (d *Devices) Put(dev device.Device, cred device.Credential) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.devs[dev.ID] = dev
	if cred != (device.Credential{}) {
		d.creds[dev.ID] = cred
	}
}

// Delete removes a device.
func (d *Devices) Delete(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.devs, id)
	delete(d.creds, id)
}

// GetMany returns the devices among ids that exist, as executors read them (each id counted:
// Reads).
func (d *Devices) GetMany(_ context.Context, ids []string) (map[string]device.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads += len(ids)
	return d.pick(ids), nil
}

// Reads is how many devices GetMany and Current were asked for.
func (d *Devices) Reads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reads
}

// pick returns the devices among ids that exist; the caller holds mu.
func (d *Devices) pick(ids []string) map[string]device.Device {
	out := map[string]device.Device{}
	for _, id := range ids {
		if dev, ok := d.devs[id]; ok {
			out[id] = dev
		}
	}
	return out
}

// CredentialFor returns the device's credential; device.ErrNotFound when none is stored.
func (d *Devices) CredentialFor(_ context.Context, dev device.Device) (device.Credential, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.creds[dev.ID]
	if !ok {
		return device.Credential{}, fmt.Errorf("credential of %s: %w", dev.ID, device.ErrNotFound)
	}
	return c, nil
}

// Current returns device id as stored now (counted: Reads).
func (d *Devices) Current(_ context.Context, id string) (device.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	dev, ok := d.devs[id]
	if !ok {
		return device.Device{}, fmt.Errorf("device %s: %w", id, device.ErrNotFound)
	}
	return dev, nil
}

// Lookup returns the devices among ids that exist, as the enqueue reads them.
func (d *Devices) Lookup(_ context.Context, ids []string) (map[string]device.Device, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pick(ids), nil
}

// PinHostKey pins key as the device's host key unless one is pinned, and returns the pinned key
// and whether this call pinned it.
func (d *Devices) PinHostKey(_ context.Context, id, key string) (string, bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, ok := d.devs[id]
	if !ok {
		return "", false, device.ErrNotFound
	}
	if dev.HostKey != "" {
		return dev.HostKey, false, nil
	}
	now := time.Now().UTC()
	dev.HostKey, dev.HostKeyLearnedAt = key, &now
	dev.Version++
	d.devs[id] = dev
	return key, true, nil
}

// RecordPendingHostKey records key as the key the device offered instead of its pinned one.
func (d *Devices) RecordPendingHostKey(_ context.Context, id, key string) error {
	p, err := device.NewPendingHostKey(key, time.Now())
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, ok := d.devs[id]
	if !ok {
		return device.ErrNotFound
	}
	dev.PendingHostKey = &p
	dev.Version++
	d.devs[id] = dev
	return nil
}

// Get returns one device.
func (d *Devices) Get(id string) (device.Device, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dev, ok := d.devs[id]
	return dev, ok
}

// Existing reports which of ids exist.
func (d *Devices) Existing(_ context.Context, ids []string) (map[string]bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		_, out[id] = d.devs[id]
	}
	return out, nil
}

// Publisher collects published events; it implements bulk.Publisher.
type Publisher struct {
	mu     sync.Mutex
	events []bulk.Event
}

var _ bulk.Publisher = (*Publisher)(nil)

// Publish keeps events.
func (p *Publisher) Publish(_ context.Context, events []bulk.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, events...)
}

// Events returns the events published so far, in order.
func (p *Publisher) Events() []bulk.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}
