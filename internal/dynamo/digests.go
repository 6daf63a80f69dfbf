package dynamo

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/run"
)

// A batch's digests item (DIGESTS#<job>#<batch>, sk D) holds the filtered digest of every run of
// the batch that succeeded, one attribute per device (d:<device>, 16 bytes), with the hashes of
// the commands they ran (h, hs) and an expiry (expires_at, the runs' TTL). The next job that runs
// the same commands reads it once per batch (about half a read unit for 50 devices) where it
// would read each device's entry (half a unit each). It is written once per batch invocation.
const (
	digestsPrefix      = "DIGESTS#"
	digestsSK          = "D"
	digestDevicePrefix = "d:"
)

// digestsKey is the key of batch's digests item in job.
func digestsKey(job string, batch int) map[string]types.AttributeValue {
	return itemKey(batchPK(digestsPrefix, job, batch), digestsSK)
}

// batchPK is the partition key of a batch's item of the runs table (its digests, its run list):
// prefix, then the job and the batch's number.
func batchPK(prefix, job string, batch int) string {
	return fmt.Sprintf("%s%s#%05d", prefix, job, batch)
}

// RecordDigests adds the filtered digests (by device, in hex) of batch's runs in job that
// succeeded running r's commands, kept until expires (zero: until deleted). Digests of earlier
// invocations of the batch stay.
func (s *RunStore) RecordDigests(ctx context.Context, job string, batch int, r run.Run, digests map[string]string, expires time.Time) error {
	if len(digests) == 0 {
		return nil
	}
	upd := expression.Set(expression.Name(entryCmdAttr), expression.Value(commandHash(r.Command)))
	if seq := sequenceHash(r); seq != nil {
		upd = upd.Set(expression.Name(entrySeqAttr), expression.Value(seq))
	}
	if !expires.IsZero() {
		upd = upd.Set(expression.Name("expires_at"), expression.Value(expires.Unix()))
	}
	for dev, d := range digests {
		raw, err := hex.DecodeString(d)
		if err != nil || len(raw) == 0 {
			continue // not a digest this store wrote: the device is looked up by its entry
		}
		upd = upd.Set(expression.NameNoDotSplit(digestDevicePrefix+dev), expression.Value(raw))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return fmt.Errorf("build digests update: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: digestsKey(job, batch),
		UpdateExpression: expr.Update(), ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if err != nil {
		return fmt.Errorf("record digests of job %s batch %d: %w", job, batch, err)
	}
	return nil
}

// DigestsIn returns the filtered digests (by device, in hex) RecordDigests kept for batch of
// job, when its runs ran r's commands; empty when none are kept, they expired, or the batch ran
// other commands. One eventually consistent read.
func (s *RunStore) DigestsIn(ctx context.Context, job string, batch int, r run.Run) (map[string]string, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: digestsKey(job, batch)})
	if err != nil {
		return nil, fmt.Errorf("read digests of job %s batch %d: %w", job, batch, err)
	}
	var head struct {
		Cmd []byte `dynamodbav:"h"`
		Seq []byte `dynamodbav:"hs"`
		Exp int64  `dynamodbav:"expires_at"`
	}
	if out.Item == nil {
		return map[string]string{}, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &head); err != nil {
		return nil, fmt.Errorf("unmarshal digests of job %s batch %d: %w", job, batch, err)
	}
	if !bytes.Equal(head.Cmd, commandHash(r.Command)) || !bytes.Equal(head.Seq, sequenceHash(r)) || head.Exp > 0 && head.Exp <= s.now().Unix() {
		return map[string]string{}, nil
	}
	digests := make(map[string]string, len(out.Item))
	for name, v := range out.Item {
		b, ok := v.(*types.AttributeValueMemberB)
		if dev, found := strings.CutPrefix(name, digestDevicePrefix); found && ok {
			digests[dev] = hex.EncodeToString(b.Value)
		}
	}
	return digests, nil
}
