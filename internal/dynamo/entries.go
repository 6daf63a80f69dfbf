package dynamo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/fault"
	"github.com/netauto/netauto/internal/resources"
	"github.com/netauto/netauto/internal/run"
)

// A finished run's tail ledger item (DEVBYTES#<device> / TAIL#<run id>, runs_table.go) is also
// its entry in its device's history of its command: it carries the command's hash, the run's
// status, its filtered digest and its expiry. Previous and History read these entries, newest
// job first (a run's id starts with its job's time), instead of a by_command index entry: a
// finished run writes one item less. Every finished run has one (bytes 0 without an inline
// tail: such an entry carries the run's TTL, as no byte count depends on it). Runs finished
// before 2026-12-07 are in GSI by_command instead; the stores read it while the table may hold
// such runs (legacyCommands).

// entryItem is a run's entry: its ledger item's attributes and the history's.
type entryItem struct {
	ledgerItem
	// Cmd is commandHash of the run's command (a sequence's summary); Seq, for a run of several
	// commands, sequenceHash of their texts.
	Cmd    []byte   `dynamodbav:"h"`
	Seq    []byte   `dynamodbav:"hs,omitempty"`
	Status string   `dynamodbav:"st"`
	Digest hexBytes `dynamodbav:"fd,omitempty"`
	// Exp is the run's expiry (epoch seconds), which the entry outlives until the TTL stream
	// consumer deletes it with its run; ExpiresAt is the entry's own TTL, set only when it counts
	// no bytes.
	Exp       int64 `dynamodbav:"exp,omitempty"`
	ExpiresAt int64 `dynamodbav:"expires_at,omitempty"`
}

// Entry attribute names that queries filter on.
const (
	entryCmdAttr    = "h"
	entrySeqAttr    = "hs"
	entryStatusAttr = "st"
)

// commandHash is the 128-bit SHA-256 prefix of a command.
func commandHash(command string) []byte {
	sum := sha256.Sum256([]byte(command))
	return sum[:16]
}

// sequenceHash is, for a run of several commands, the 128-bit SHA-256 prefix of their texts in
// order (run.SameCommands compares them); nil for a run of one.
func sequenceHash(r run.Run) []byte {
	texts := r.CommandTexts()
	if len(texts) < 2 {
		return nil
	}
	h := sha256.New()
	for _, t := range texts {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	return h.Sum(nil)[:16]
}

// runEntry is the entry of finished run r: its ledger item counting n bytes of inline tail, of
// which the run keeps kept itself; marked puts it in the changed set (see changedLag).
func runEntry(r run.Run, n, kept int64, marked bool) (map[string]types.AttributeValue, error) {
	it := entryItem{
		ledgerItem: ledgerItem{PK: counterPrefix + r.DeviceID, SK: tailPrefix + r.ID, DeviceID: r.DeviceID, Bytes: n, Kept: kept},
		Cmd:        commandHash(r.Command), Seq: sequenceHash(r), Status: string(r.Status), Digest: hexBytes(r.FilteredDigest),
		Exp: expiry(r.ExpiresAt),
	}
	if marked {
		it.ChangedPK, it.ChangedSK = changedShardKey(r.DeviceID), r.DeviceID+"#"+r.ID
	}
	if n == 0 {
		it.ExpiresAt = it.Exp
	}
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return nil, fmt.Errorf("marshal entry of run %s: %w", r.ID, err)
	}
	return item, nil
}

// entryRunID is the run id of an entry's sort key.
func entryRunID(sk string) string { return strings.TrimPrefix(sk, tailPrefix) }

// legacyCommands is what a run store knows of whether GSI by_command may hold runs: it did when
// the table's first entry was written (stored then, RETENTION/COMMAND_ENTRIES, and cleared once
// the index is empty). A fresh table never reads the index.
type legacyCommands struct {
	mu     sync.Mutex
	known  bool
	legacy bool
	at     time.Time
}

// commandEntriesSK is the retention item that records when entries began and whether GSI
// by_command held runs then.
const commandEntriesSK = "COMMAND_ENTRIES"

// legacy returns whether Previous and History must also read GSI by_command. The first call
// reads (and, on a table without it, writes) RETENTION/COMMAND_ENTRIES; a store keeps a false
// answer for good and a true one for legacyRecheck, then scans the index again and stores false
// once it is empty.
func (s *RunStore) legacy(ctx context.Context) (bool, error) {
	l := &s.legacyCmds
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.known && (!l.legacy || s.now().Sub(l.at) < legacyRecheck):
		return l.legacy, nil
	case l.known:
		// The index may have emptied since (its runs purged or expired): then it is never read
		// again.
		held, err := indexHolds(ctx, s.db, s.table, resources.IndexRunsByCommand)
		if err != nil {
			return true, err
		}
		if !held {
			item := retentionKey(commandEntriesSK)
			item["at"] = &types.AttributeValueMemberS{Value: s.now().Format(timeLayout)}
			item["legacy"] = &types.AttributeValueMemberBOOL{Value: false}
			if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
				return true, fmt.Errorf("store that GSI by_command is empty: %w", err)
			}
		}
		l.legacy, l.at = held, s.now()
		return held, nil
	}
	for attempt := 0; ; attempt++ {
		it, found, err := getItem[struct {
			Legacy *bool `dynamodbav:"legacy"`
		}](ctx, s.db, s.table, retentionKey(commandEntriesSK), "command entries marker")
		if err != nil {
			return true, err
		}
		if found && it.Legacy != nil {
			l.known, l.legacy, l.at = true, *it.Legacy, s.now()
			return l.legacy, nil
		}
		if attempt > 0 {
			return true, errors.New("command entries marker: written and not read back")
		}
		held, err := indexHolds(ctx, s.db, s.table, resources.IndexRunsByCommand)
		if err != nil {
			return true, err
		}
		item := retentionKey(commandEntriesSK)
		item["at"] = &types.AttributeValueMemberS{Value: s.now().Format(timeLayout)}
		item["legacy"] = &types.AttributeValueMemberBOOL{Value: held}
		cond, err := buildCondition(itemAbsent())
		if err != nil {
			return true, err
		}
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item,
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()})
		if err != nil && !isConditionFailed(err) {
			return true, fmt.Errorf("store when command entries began: %w", err)
		}
		// Stored, or by another store meanwhile: read it back.
	}
}

// legacyRecheck is how long a store keeps its answer that GSI by_command may hold runs before it
// reads the marker again (the purge clears it).
const legacyRecheck = time.Hour

// indexHolds reports whether a sparse index holds any item: a one-item scan.
func indexHolds(ctx context.Context, db API, table, index string) (bool, error) {
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), IndexName: aws.String(index), Limit: aws.Int32(1)})
	if err != nil {
		return true, fmt.Errorf("scan index %s: %w", index, err)
	}
	return len(out.Items) > 0 || len(out.LastEvaluatedKey) > 0, nil
}

// entryQuery is the query of device's entries for command (and, for several commands, their
// sequence hash seq), newest job first, before sort key before ("" for all), of only succeeded
// runs when succeeded.
func entryQuery(table, deviceID, command string, seq []byte, before string, succeeded bool) *dynamodb.QueryInput {
	if before == "" {
		before = tailPrefix + "\xff"
	}
	filter := "#h = :h"
	names := map[string]string{"#pk": resources.AttrPK, "#sk": resources.AttrSK, "#h": entryCmdAttr}
	values := map[string]types.AttributeValue{
		":pk": &types.AttributeValueMemberS{Value: counterPrefix + deviceID},
		":lo": &types.AttributeValueMemberS{Value: tailPrefix},
		":hi": &types.AttributeValueMemberS{Value: before},
		":h":  &types.AttributeValueMemberB{Value: commandHash(command)},
	}
	if seq != nil {
		filter += " AND #hs = :hs"
		names["#hs"], values[":hs"] = entrySeqAttr, &types.AttributeValueMemberB{Value: seq}
	} else if succeeded {
		filter += " AND attribute_not_exists(#hs)"
		names["#hs"] = entrySeqAttr
	}
	if succeeded {
		filter += " AND #st = :ok"
		names["#st"], values[":ok"] = entryStatusAttr, &types.AttributeValueMemberS{Value: string(run.Succeeded)}
	}
	return &dynamodb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		FilterExpression:       aws.String(filter), ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		ScanIndexForward: aws.Bool(false),
	}
}

// previousPages bounds how many pages Previous reads past other commands' entries and runs that
// did not succeed; previousFirst is how many entries its first page reads (nearly always the
// answer: a device's last run of a command is mostly among its last few), previousNext the
// pages after.
const (
	previousPages = 4
	previousFirst = 4
	previousNext  = 100
)

// Previous returns the newest succeeded run of r's command on r's device, of an earlier job than
// r's, that ran the same commands (run.SameCommands), from the device's entries, eventually
// consistent (a run finished within the last second may not show yet: half a read unit for the
// first page of small entries); run.ErrNotFound when there is none among the entries it reads. The run returned
// holds what drift compares: its id, device, command, status and filtered digest.
func (s *RunStore) Previous(ctx context.Context, r run.Run) (run.Run, error) {
	in := entryQuery(s.table, r.DeviceID, r.Command, sequenceHash(r), tailPrefix+r.ID, true)
	in.Limit = aws.Int32(previousFirst)
	now := s.now().Unix()
	for range previousPages {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return run.Run{}, fmt.Errorf("query previous run of %s: %w", r.ID, err)
		}
		for _, item := range out.Items {
			var e entryItem
			if err := attributevalue.UnmarshalMap(item, &e); err != nil {
				return run.Run{}, fmt.Errorf("unmarshal previous run of %s: %w", r.ID, err)
			}
			id := entryRunID(e.SK)
			if id == r.ID || e.Exp > 0 && e.Exp <= now {
				continue
			}
			return run.Run{ID: id, DeviceID: r.DeviceID, Command: r.Command, Status: run.Succeeded, FilteredDigest: string(e.Digest), Commands: textsOnly(r)}, nil
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey, in.Limit = out.LastEvaluatedKey, aws.Int32(previousNext)
	}
	legacy, err := s.legacy(ctx)
	if err != nil {
		return run.Run{}, err
	}
	if !legacy {
		return run.Run{}, run.ErrNotFound
	}
	return s.previousIndexed(ctx, r)
}

// textsOnly is r's commands without their results: what a previous run found by its sequence
// hash is known to have run.
func textsOnly(r run.Run) []run.CommandResult {
	if len(r.Commands) == 0 {
		return nil
	}
	out := make([]run.CommandResult, len(r.Commands))
	for i, c := range r.Commands {
		out[i] = run.CommandResult{Command: c.Command}
	}
	return out
}

// historyCursor is a position in a device's history of a command: in its entries (E, the sort
// key of the last entry returned) or, once they are read, in GSI by_command (G, a page cursor).
type historyCursor struct {
	E string `json:"e,omitempty"`
	G string `json:"g,omitempty"`
	// Index says the entries are read and the index is next.
	Index bool `json:"i,omitempty"`
}

// historyReads bounds the entry pages one History page reads while it fills up, each of at
// least historyMinRead entries.
const (
	historyReads   = 8
	historyMinRead = 25
)

// History returns the finished runs of command on a device, newest job first, at most limit,
// after cursor: from the device's entries, then (runs finished before entries) GSI by_command.
// A page may hold fewer than limit runs and still have a next cursor.
func (s *RunStore) History(ctx context.Context, deviceID, command, cursor string, limit int) ([]run.Run, string, error) {
	var cur historyCursor
	if cursor != "" {
		b, err := decodeOpaque(cursor)
		if err != nil || json.Unmarshal(b, &cur) != nil || cur.E != "" && !strings.HasPrefix(cur.E, tailPrefix) {
			return nil, "", fault.ErrBadCursor
		}
	}
	if cur.Index {
		return s.historyIndexed(ctx, deviceID, command, cur.G, limit)
	}
	in := entryQuery(s.table, deviceID, command, nil, cur.E, false)
	if cur.E != "" {
		in.ExclusiveStartKey = bytesKey(deviceID, cur.E)
	}
	var ids []string
	last := ""
	done := false
	for reads := 0; len(ids) < limit && reads < historyReads; reads++ {
		in.Limit = aws.Int32(int32(max(limit-len(ids), historyMinRead)))
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("query history of device %s: %w", deviceID, err)
		}
		full := false
		for _, item := range out.Items {
			if len(ids) == limit {
				full = true
				break
			}
			if sk, ok := item[resources.AttrSK].(*types.AttributeValueMemberS); ok {
				ids, last = append(ids, entryRunID(sk.Value)), sk.Value
			}
		}
		if full {
			break
		}
		if len(out.LastEvaluatedKey) == 0 {
			done = true
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		if sk, ok := out.LastEvaluatedKey[resources.AttrSK].(*types.AttributeValueMemberS); ok {
			last = sk.Value
		}
	}
	runs, err := s.getRuns(ctx, ids)
	if err != nil {
		return nil, "", err
	}
	next := historyCursor{E: last}
	if done {
		legacy, err := s.legacy(ctx)
		if err != nil {
			return nil, "", err
		}
		if !legacy {
			return runs, "", nil
		}
		if len(runs) < limit { // the page goes on with the runs finished before entries
			more, next, err := s.historyIndexed(ctx, deviceID, command, "", limit-len(runs))
			if err != nil {
				return nil, "", err
			}
			return append(runs, more...), next, nil
		}
		next = historyCursor{Index: true}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return nil, "", fmt.Errorf("encode cursor: %w", err)
	}
	return runs, encodeOpaque(b), nil
}

// getRuns reads the runs of ids, in that order, leaving out those gone or expired.
func (s *RunStore) getRuns(ctx context.Context, ids []string) ([]run.Run, error) {
	if len(ids) == 0 {
		return []run.Run{}, nil
	}
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = runKey(id)
	}
	var items []map[string]types.AttributeValue
	for start := 0; start < len(keys); start += maxBatchGetKeys {
		got, err := batchGet(ctx, s.db, s.table, keys[start:min(start+maxBatchGetKeys, len(keys))], nil)
		if err != nil {
			return nil, fmt.Errorf("read runs: %w", err)
		}
		items = append(items, got...)
	}
	byID := make(map[string]runItem, len(items))
	for _, item := range items {
		var it runItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return nil, fmt.Errorf("unmarshal run: %w", err)
		}
		byID[it.id()] = it
	}
	ordered := make([]runItem, 0, len(ids))
	for _, id := range ids {
		if it, ok := byID[id]; ok {
			ordered = append(ordered, it)
		}
	}
	return s.unexpired(ordered), nil
}

// encodeOpaque and decodeOpaque make a history cursor opaque to clients ("h" tells it from a
// cursor of the index alone, which history pages had before entries).
func encodeOpaque(b []byte) string { return "h" + base64.RawURLEncoding.EncodeToString(b) }

func decodeOpaque(cursor string) ([]byte, error) {
	rest, ok := strings.CutPrefix(cursor, "h")
	if !ok || len(cursor) > maxCursorLen {
		return nil, errors.New("not a history cursor")
	}
	return base64.RawURLEncoding.DecodeString(rest)
}
