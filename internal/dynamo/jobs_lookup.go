package dynamo

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
)

// A job of more than one batch also has a locator item, written with its batches, that finds a
// device's batch without reading them all:
//
//	JOB#<id>  LOC  size (devices per batch but the last), fp (2 bytes a device, in batch order:
//	               the device id's fingerprint)
//
// Device i is in batch i/size. Looking a device up reads the locator and the batch at each
// position whose fingerprint matches, instead of every batch item; the locator costs one write
// when the job is accepted, none per device (the numbers are in docs/performance.md).
const locatorSK = "LOC"

// fingerprintBytes is the size of one device's fingerprint in the locator.
const fingerprintBytes = 2

// fingerprint is a device id's 16-bit fingerprint. It is stored: never change it.
func fingerprint(deviceID string) uint16 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(deviceID))
	v := h.Sum32()
	return uint16(v ^ v>>16)
}

type locatorItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Size      int    `dynamodbav:"size"`
	FP        []byte `dynamodbav:"fp"`
	ExpiresAt int64  `dynamodbav:"expires_at,omitempty"`
}

// locatorWrite returns the put of a job's locator item; none for a job of one batch (its only
// batch is 0) or batches not cut as bulk.Split cuts them (lookups then read the batches).
func locatorWrite(jobID string, batches [][]string, expires int64) (types.WriteRequest, bool, error) {
	if len(batches) < 2 {
		return types.WriteRequest{}, false, nil
	}
	size := len(batches[0])
	n := 0
	for i, ids := range batches {
		if len(ids) == 0 || len(ids) > size || (len(ids) != size && i != len(batches)-1) {
			return types.WriteRequest{}, false, nil
		}
		n += len(ids)
	}
	fp := make([]byte, 0, n*fingerprintBytes)
	for _, ids := range batches {
		for _, id := range ids {
			f := fingerprint(id)
			fp = append(fp, byte(f>>8), byte(f))
		}
	}
	item, err := attributevalue.MarshalMap(locatorItem{PK: jobPrefix + jobID, SK: locatorSK, Size: size, FP: fp, ExpiresAt: expires})
	if err != nil {
		return types.WriteRequest{}, false, fmt.Errorf("marshal locator of job %s: %w", jobID, err)
	}
	return types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}, true, nil
}

// JobDevice returns a job and one device's state in it (see bulk.JobDeviceReader):
// bulk.ErrJobNotFound for an unknown or expired job, bulk.ErrDeviceNotInJob for a device the
// job does not include.
func (s *JobStore) JobDevice(ctx context.Context, jobID, deviceID string) (bulk.Job, bulk.DeviceState, error) {
	job, err := s.GetJob(ctx, jobID)
	if err != nil {
		return bulk.Job{}, bulk.DeviceState{}, err
	}
	if !job.ExpiresAt.IsZero() && !job.ExpiresAt.After(s.now()) {
		return bulk.Job{}, bulk.DeviceState{}, bulk.ErrJobNotFound // expired, waiting for TTL
	}
	batches, err := s.deviceBatches(ctx, job, deviceID)
	if err != nil {
		return bulk.Job{}, bulk.DeviceState{}, err
	}
	for _, b := range batches {
		st, ok, err := s.batchDevice(ctx, jobID, b, deviceID)
		if err != nil {
			return bulk.Job{}, bulk.DeviceState{}, err
		}
		if ok {
			return job, st, nil
		}
	}
	return bulk.Job{}, bulk.DeviceState{}, fmt.Errorf("device %s of job %s: %w", deviceID, jobID, bulk.ErrDeviceNotInJob)
}

// deviceBatches returns the batches that may hold the device, in order.
func (s *JobStore) deviceBatches(ctx context.Context, job bulk.Job, deviceID string) ([]int, error) {
	if job.Batches <= 1 {
		return []int{0}, nil
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		Key: itemKey(jobPrefix+job.ID, locatorSK),
	})
	if err != nil {
		return nil, fmt.Errorf("get locator of job %s: %w", job.ID, err)
	}
	var loc locatorItem
	if out.Item != nil {
		if err := attributevalue.UnmarshalMap(out.Item, &loc); err != nil {
			return nil, fmt.Errorf("unmarshal locator of job %s: %w", job.ID, err)
		}
	}
	if out.Item == nil || loc.Size <= 0 || len(loc.FP)%fingerprintBytes != 0 {
		return s.scanBatches(ctx, job.ID, deviceID)
	}
	f := fingerprint(deviceID)
	var batches []int
	for i := 0; i < len(loc.FP); i += fingerprintBytes {
		if uint16(loc.FP[i])<<8|uint16(loc.FP[i+1]) != f {
			continue
		}
		if b := i / fingerprintBytes / loc.Size; !slices.Contains(batches, b) {
			batches = append(batches, b)
		}
	}
	return batches, nil
}

// scanBatches finds the device's batch by reading the device ids of every batch: for jobs
// without a locator.
func (s *JobStore) scanBatches(ctx context.Context, jobID, deviceID string) ([]int, error) {
	items, err := s.allBatches(ctx, jobID)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if slices.Contains(it.DeviceIDs, deviceID) {
			return []int{it.Batch}, nil
		}
	}
	return nil, nil
}

// batchDevice reads one device's entry of a batch item; ok is false when the batch does not
// hold it.
func (s *JobStore) batchDevice(ctx context.Context, jobID string, batch int, deviceID string) (bulk.DeviceState, bool, error) {
	layout, err := s.batchLayout(ctx, jobID)
	if err != nil {
		return bulk.DeviceState{}, false, err
	}
	if layout == layoutSlim {
		it, ok, err := s.slimBatchRead(ctx, jobID, batch)
		if err != nil || !ok {
			return bulk.DeviceState{}, false, err
		}
		d, ok := it.Devs[deviceID]
		if !ok {
			return bulk.DeviceState{}, false, nil
		}
		return d.state(jobID, deviceID, batch), true, nil
	}
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return bulk.DeviceState{}, false, err
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true),
		// Placeholders, not the expression builder: device ids may contain dots.
		ProjectionExpression:     aws.String("#devs.#d"),
		ExpressionAttributeNames: map[string]string{"#devs": "devs", "#d": deviceID},
	})
	if err != nil {
		return bulk.DeviceState{}, false, fmt.Errorf("get device %s of batch %d of job %s: %w", deviceID, batch, jobID, err)
	}
	var it struct {
		Devs map[string]devState `dynamodbav:"devs"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return bulk.DeviceState{}, false, fmt.Errorf("unmarshal batch %d of job %s: %w", batch, jobID, err)
	}
	d, ok := it.Devs[deviceID]
	if !ok {
		return bulk.DeviceState{}, false, nil
	}
	return d.state(jobID, deviceID, batch), true, nil
}
