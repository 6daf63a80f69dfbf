package dynamo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// Outputs stored once (run.Share): a body lives under BLOB#<sha256> as a head item (its
// generation, size, expiry and, while a deleter holds it, a dying token), one data item per
// generation, and one reference item per run that uses it. The protocol, and why it never
// loses a referenced body nor keeps an unreferenced one, is in docs/retention.md ("Outputs
// stored once").
//
//	BLOB#<key>   HEAD          {gen, size, expires_at, dying?, chk?} (+ gsi2pk=BLOBCHK#<shard>,
//	                           gsi2sk=<key> while a deleter may have left it unreferenced)
//	BLOB#<key>   DATA#<gen>    {data}: the body; never expires by TTL (the HEAD's TTL deletion
//	                           takes it, see ForgetTTLBlob)
//	BLOB#<key>   REF#<run id>#<attempt>
//	                           {device_id, expires_at}: that attempt of run <run id> references
//	                           the body (per attempt: an attempt that lost its run drops its own
//	                           reference, never the one of the attempt holding the run)
//	STORED#<nn>  BLOBS         {bytes}: bytes of bodies stored, in blobShards shards
const (
	blobPrefix     = "BLOB#"
	blobHeadSK     = "HEAD"
	blobDataPrefix = "DATA#"
	blobRefPrefix  = "REF#"
	blobCheckPK    = "BLOBCHK#"
	storedPrefix   = "STORED#"
	storedSK       = "BLOBS"
	blobShards     = 16
	// blobGrace is how long a body's head outlives the latest expiry of the runs referencing it
	// (and a reference its run): more than DynamoDB TTL's usual lag, so the TTL back-stop never
	// takes a body before its references.
	blobGrace = 7 * 24 * time.Hour
	// blobAttempts bounds how often a writer retries against concurrent deleters and writers.
	blobAttempts = 8
)

// blobHead is a body's head item.
type blobHead struct {
	Gen       string `dynamodbav:"gen"`
	Size      int64  `dynamodbav:"size"`
	ExpiresAt int64  `dynamodbav:"expires_at,omitempty"`
	Dying     string `dynamodbav:"dying,omitempty"`
	Check     string `dynamodbav:"chk,omitempty"`
}

// sharedRef is what a run item records of the body it references.
type sharedRef struct {
	Key   string
	Gen   string
	Noise []byte // the run's noise lines, run.EncodeNoise
	Kept  int64  // bytes the run keeps itself: its encoded noise lines
}

// blobStore runs the store-once protocol on the runs table.
type blobStore struct {
	db    API
	table string
	// token makes dying and check tokens and generations; tests may replace it.
	token func() string
}

func newBlobStore(db API, table string) *blobStore {
	return &blobStore{db: db, table: table, token: randomToken}
}

// randomToken is 64 random bits in hex: generations and tokens of deleters.
func randomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func blobKeyOf(key, sk string) map[string]types.AttributeValue { return itemKey(blobPrefix+key, sk) }

// refSK is the sort key of the reference attempt makes of run runID to a body.
func refSK(runID string, attempt int) string {
	return fmt.Sprintf("%s%s#%d", blobRefPrefix, runID, attempt)
}

// blobShard is the shard of the stored-bytes counter and of the check set a body belongs to.
func blobShard(key string) int { return shardOf(key, blobShards) }

func storedKey(shard int) map[string]types.AttributeValue {
	return itemKey(fmt.Sprintf("%s%02d", storedPrefix, shard), storedSK)
}

func blobCheckShard(i int) string { return fmt.Sprintf("%s%02d", blobCheckPK, i) }

// headExpiry is the expiry a head must have at least while run r references it (0: none), and
// refExpiry a reference's.
func headExpiry(r run.Run) int64 {
	if r.ExpiresAt.IsZero() {
		return 0
	}
	return r.ExpiresAt.Add(2 * blobGrace).Unix()
}

func refExpiry(r run.Run) int64 {
	if r.ExpiresAt.IsZero() {
		return 0
	}
	return r.ExpiresAt.Add(blobGrace).Unix()
}

// reference makes run r (its attempt) reference the body sh: its reference item first, then a live head (one
// found, revived from a deleter, or created with the body). A deleter that misses the reference
// has marked the head dying before the reference was written, so this writer sees the mark and
// revives the head (or, if the deleter won, creates the body anew).
func (b *blobStore) reference(ctx context.Context, r run.Run, sh run.Shared) (sharedRef, error) {
	noise := run.EncodeNoise(sh.Noise)
	ref := sharedRef{Key: sh.Key, Noise: noise, Kept: int64(len(noise))}
	item, err := attributevalue.MarshalMap(struct {
		PK        string `dynamodbav:"pk"`
		SK        string `dynamodbav:"sk"`
		DeviceID  string `dynamodbav:"device_id"`
		ExpiresAt int64  `dynamodbav:"expires_at,omitempty"`
	}{blobPrefix + sh.Key, refSK(r.ID, r.Attempt), r.DeviceID, refExpiry(r)})
	if err != nil {
		return ref, fmt.Errorf("marshal reference of run %s: %w", r.ID, err)
	}
	if _, err := b.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(b.table), Item: item}); err != nil {
		return ref, fmt.Errorf("reference output %s from run %s: %w", sh.Key, r.ID, err)
	}
	want := headExpiry(r)
	for range blobAttempts {
		head, found, err := getItem[blobHead](ctx, b.db, b.table, blobKeyOf(sh.Key, blobHeadSK), "output "+sh.Key)
		if err != nil {
			return ref, err
		}
		var ok bool
		switch {
		case !found:
			head.Gen, ok, err = b.create(ctx, sh, want)
		case head.Dying != "":
			ok, err = b.update(ctx, sh.Key, expression.Remove(expression.Name("dying")), expression.Name("dying").Equal(expression.Value(head.Dying)))
			if ok && short(head, want) {
				ok, err = b.raise(ctx, sh.Key, head.Gen, want)
			}
		case short(head, want):
			ok, err = b.raise(ctx, sh.Key, head.Gen, want)
		default:
			ok = true
		}
		if err != nil {
			return ref, err
		}
		if ok {
			ref.Gen = head.Gen
			return ref, nil
		}
	}
	return ref, fmt.Errorf("reference output %s from run %s: still contended after %d attempts", sh.Key, r.ID, blobAttempts)
}

// dropEarlierRefs deletes the references earlier attempts of run r made to body key: an attempt
// that took the run over holds it, so none of them can write the run item any more, and one that
// died between its reference and its finish (or whose finish failed) would keep the body until
// the reference's TTL, for good when runs never expire. It needs no check of the body: r's own
// reference is written.
func (b *blobStore) dropEarlierRefs(ctx context.Context, key string, r run.Run) error {
	for a := 1; a < r.Attempt; a++ {
		if _, err := b.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(b.table), Key: blobKeyOf(key, refSK(r.ID, a))}); err != nil {
			return fmt.Errorf("drop reference of attempt %d of run %s to output %s: %w", a, r.ID, key, err)
		}
	}
	return nil
}

// short reports whether a head expires before want (0: the referencing run never expires).
func short(head blobHead, want int64) bool {
	return head.ExpiresAt != 0 && (want == 0 || want > head.ExpiresAt)
}

// raise moves a head's expiry a grace past want, so that nightly references raise it about once
// a grace period rather than every time; want 0 takes the expiry away.
func (b *blobStore) raise(ctx context.Context, key, gen string, want int64) (bool, error) {
	upd := expression.Set(expression.Name(resources.TTLAttribute), expression.Value(want+int64(blobGrace/time.Second)))
	if want == 0 {
		upd = expression.Remove(expression.Name(resources.TTLAttribute))
	}
	return b.update(ctx, key, upd, expression.Name("gen").Equal(expression.Value(gen)))
}

// update applies upd to a head on condition cond; false when the condition failed.
func (b *blobStore) update(ctx context.Context, key string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (bool, error) {
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return false, fmt.Errorf("build update: %w", err)
	}
	_, err = b.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(b.table), Key: blobKeyOf(key, blobHeadSK),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("update output %s: %w", key, err)
	}
	return true, nil
}

// create stores a body that has no head, a new generation, with the stored-bytes counter, in
// one transaction, and returns its generation; false when a head appeared meanwhile.
func (b *blobStore) create(ctx context.Context, sh run.Shared, expiresAt int64) (string, bool, error) {
	gen := b.token()
	if expiresAt != 0 {
		expiresAt += int64(blobGrace / time.Second) // as raise does
	}
	head, err := attributevalue.MarshalMap(struct {
		PK string `dynamodbav:"pk"`
		SK string `dynamodbav:"sk"`
		blobHead
	}{blobPrefix + sh.Key, blobHeadSK, blobHead{Gen: gen, Size: int64(len(sh.Body)), ExpiresAt: expiresAt}})
	if err != nil {
		return "", false, fmt.Errorf("marshal output %s: %w", sh.Key, err)
	}
	data, err := attributevalue.MarshalMap(struct {
		PK   string `dynamodbav:"pk"`
		SK   string `dynamodbav:"sk"`
		Data []byte `dynamodbav:"data"`
	}{blobPrefix + sh.Key, blobDataPrefix + gen, sh.Body})
	if err != nil {
		return "", false, fmt.Errorf("marshal output %s: %w", sh.Key, err)
	}
	absent, err := buildCondition(itemAbsent())
	if err != nil {
		return "", false, err
	}
	add, err := b.storedAdd(sh.Key, int64(len(sh.Body)))
	if err != nil {
		return "", false, err
	}
	err = transact(ctx, b.db,
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(b.table), Item: head,
			ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names()}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(b.table), Item: data}},
		add)
	if onlyConditionFailed(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("store output %s: %w", sh.Key, err)
	}
	return gen, true, nil
}

// storedAdd adds delta to the stored-bytes counter shard of body key.
func (b *blobStore) storedAdd(key string, delta int64) (types.TransactWriteItem, error) {
	expr, err := expression.NewBuilder().WithUpdate(expression.Add(expression.Name("bytes"), expression.Value(delta))).Build()
	if err != nil {
		return types.TransactWriteItem{}, fmt.Errorf("build update: %w", err)
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(b.table), Key: storedKey(blobShard(key)), UpdateExpression: expr.Update(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}}, nil
}

// body reads a body of generation gen; run.ErrNotFound when it is gone.
func (b *blobStore) body(ctx context.Context, key, gen string) ([]byte, error) {
	it, found, err := getItem[struct {
		Data []byte `dynamodbav:"data"`
	}](ctx, b.db, b.table, blobKeyOf(key, blobDataPrefix+gen), "output "+key)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, run.ErrNotFound
	}
	return it.Data, nil
}

// unrefItems are the transaction items that drop the reference attempt made of run runID to body
// key and put the head in the check set (so that a crash before checkUnreferenced leaves it
// findable).
func (b *blobStore) unrefItems(key, runID string, attempt int) ([]types.TransactWriteItem, error) {
	upd := expression.Set(expression.Name(resources.AttrGSI2PK), expression.Value(blobCheckShard(blobShard(key)))).
		Set(expression.Name(resources.AttrGSI2SK), expression.Value(key)).
		Set(expression.Name("chk"), expression.Value(b.token()))
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(expression.AttributeExists(expression.Name("gen"))).Build()
	if err != nil {
		return nil, fmt.Errorf("build update: %w", err)
	}
	return []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(b.table), Key: blobKeyOf(key, refSK(runID, attempt))}},
		{Update: &types.Update{TableName: aws.String(b.table), Key: blobKeyOf(key, blobHeadSK),
			UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values()}},
	}, nil
}

// unref drops the reference attempt made of run runID to body key (when its run item is gone
// already or never named it) and deletes the body if that was the last.
func (b *blobStore) unref(ctx context.Context, key, runID string, attempt int) error {
	items, err := b.unrefItems(key, runID, attempt)
	if err != nil {
		return err
	}
	if err := transact(ctx, b.db, items...); err != nil {
		if !onlyConditionFailed(err) {
			return fmt.Errorf("drop reference of run %s to output %s: %w", runID, key, err)
		}
		// No head: the reference is all there is to drop.
		if _, err := b.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(b.table), Key: blobKeyOf(key, refSK(runID, attempt))}); err != nil {
			return fmt.Errorf("drop reference of run %s to output %s: %w", runID, key, err)
		}
		return nil
	}
	_, err = b.checkUnreferenced(ctx, key)
	return err
}

// referenced reports whether any reference item of body key exists (strongly consistent).
func (b *blobStore) referenced(ctx context.Context, key string) (bool, error) {
	kc := expression.Key(resources.AttrPK).Equal(expression.Value(blobPrefix + key)).
		And(expression.Key(resources.AttrSK).BeginsWith(blobRefPrefix))
	expr, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return false, fmt.Errorf("build query: %w", err)
	}
	out, err := b.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(b.table), KeyConditionExpression: expr.KeyCondition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ConsistentRead: aws.Bool(true), Limit: aws.Int32(1), Select: types.SelectCount,
	})
	if err != nil {
		return false, fmt.Errorf("query references of output %s: %w", key, err)
	}
	return out.Count > 0, nil
}

// checkUnreferenced deletes body key if no reference is left: it marks the head dying with a
// token of its own, looks for references again (a writer that referenced the body before the mark
// is seen now; one after it sees the mark and revives the head), and deletes the head and the
// data of the generation it read, with the stored-bytes counter, on condition that its token is
// still there. A body still referenced leaves the check set. It returns the bytes it freed (0:
// it deleted nothing).
func (b *blobStore) checkUnreferenced(ctx context.Context, key string) (int64, error) {
	head, found, err := getItem[blobHead](ctx, b.db, b.table, blobKeyOf(key, blobHeadSK), "output "+key)
	if err != nil || !found {
		return 0, err
	}
	uncheck := func() error {
		if head.Check == "" {
			return nil
		}
		_, err := b.update(ctx, key, expression.Remove(expression.Name(resources.AttrGSI2PK)).Remove(expression.Name(resources.AttrGSI2SK)).Remove(expression.Name("chk")),
			expression.Name("chk").Equal(expression.Value(head.Check)))
		return err
	}
	refs, err := b.referenced(ctx, key)
	if err != nil {
		return 0, err
	}
	if refs {
		return 0, uncheck()
	}
	tok := b.token()
	ok, err := b.update(ctx, key, expression.Set(expression.Name("dying"), expression.Value(tok)), expression.Name("gen").Equal(expression.Value(head.Gen)))
	if err != nil || !ok {
		return 0, err // a new generation, or gone: whoever changed it checks it
	}
	if refs, err = b.referenced(ctx, key); err != nil {
		return 0, err
	}
	if refs {
		ok, err := b.update(ctx, key, expression.Remove(expression.Name("dying")), expression.Name("dying").Equal(expression.Value(tok)))
		if err != nil || !ok {
			return 0, err
		}
		return 0, uncheck()
	}
	cond, err := buildCondition(expression.Name("dying").Equal(expression.Value(tok)))
	if err != nil {
		return 0, err
	}
	sub, err := b.storedAdd(key, -head.Size)
	if err != nil {
		return 0, err
	}
	err = transact(ctx, b.db,
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(b.table), Key: blobKeyOf(key, blobHeadSK),
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(), ExpressionAttributeValues: cond.Values()}},
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(b.table), Key: blobKeyOf(key, blobDataPrefix+head.Gen)}},
		sub)
	if onlyConditionFailed(err) {
		return 0, nil // a writer revived it
	}
	if err != nil {
		return 0, fmt.Errorf("delete output %s: %w", key, err)
	}
	return head.Size, nil
}

// sweep checks every body in the check set (left there by a deleter that stopped before
// checking it): deleted when unreferenced, taken out of the set otherwise. It returns how many
// bodies it deleted and the bytes they held.
func (b *blobStore) sweep(ctx context.Context) (bodies, bytes int64, err error) {
	for shard := range blobShards {
		expr, err := expression.NewBuilder().
			WithKeyCondition(expression.Key(resources.AttrGSI2PK).Equal(expression.Value(blobCheckShard(shard)))).
			WithProjection(expression.NamesList(expression.Name(resources.AttrGSI2SK))).Build()
		if err != nil {
			return bodies, bytes, fmt.Errorf("build query: %w", err)
		}
		items, err := queryAll[struct {
			Key string `dynamodbav:"gsi2sk"`
		}](ctx, b.db, &dynamodb.QueryInput{
			TableName: aws.String(b.table), IndexName: aws.String(resources.IndexRunsByDay),
			KeyConditionExpression: expr.KeyCondition(), ProjectionExpression: expr.Projection(),
			ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		}, "outputs to check")
		if err != nil {
			return bodies, bytes, err
		}
		for _, it := range items {
			if err := ctx.Err(); err != nil {
				return bodies, bytes, err
			}
			freed, err := b.checkUnreferenced(ctx, it.Key)
			if err != nil {
				return bodies, bytes, err
			}
			if freed > 0 {
				bodies++
				bytes += freed
			}
		}
	}
	return bodies, bytes, nil
}

// storedBytes sums the stored-bytes counter's shards (strongly consistent).
func (b *blobStore) storedBytes(ctx context.Context) (int64, error) {
	var total int64
	for shard := range blobShards {
		it, _, err := getItem[struct {
			Bytes int64 `dynamodbav:"bytes"`
		}](ctx, b.db, b.table, storedKey(shard), "stored bytes")
		if err != nil {
			return 0, err
		}
		total += it.Bytes
	}
	return total, nil
}

// forgetTTLHead deletes the data of a head that DynamoDB TTL removed (every reference had gone
// long before), with the stored-bytes counter, exactly once: the data's deletion is conditional.
func (b *blobStore) forgetTTLHead(ctx context.Context, key, gen string, size int64) (bool, error) {
	if key == "" || gen == "" {
		return false, errors.New("forget TTL output: key and generation are required")
	}
	cond, err := buildCondition(itemExists())
	if err != nil {
		return false, err
	}
	sub, err := b.storedAdd(key, -size)
	if err != nil {
		return false, err
	}
	err = transact(ctx, b.db,
		types.TransactWriteItem{Delete: &types.Delete{TableName: aws.String(b.table), Key: blobKeyOf(key, blobDataPrefix+gen),
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()}},
		sub)
	if onlyConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("forget TTL output %s: %w", key, err)
	}
	return true, nil
}

// blobKeyFromPK is the body key of a BLOB# partition key.
func blobKeyFromPK(pk string) (string, bool) { return strings.CutPrefix(pk, blobPrefix) }
