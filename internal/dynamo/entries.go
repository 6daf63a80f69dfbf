package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/bulk"
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

// entriesEnd sorts after every entry's sort key (tailPrefix is "TAIL#").
const entriesEnd = "TAIL$"

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

// legacyCommands is what a store knows of whether the runs table may hold runs from before
// entries (in GSI by_command, or in by_device's DEV#<device> partitions): RETENTION/
// COMMAND_ENTRIES holds when entries began and the last check's answer. A fresh table answers
// false from the start and for good once legacyGrace has passed (old code finishing runs during
// a deploy writes the indexes a while after entries began); any other answer is checked again
// every legacyRecheck.
type legacyCommands struct {
	mu     sync.Mutex
	known  bool
	legacy bool
	began  time.Time
	at     time.Time
}

// commandEntriesSK is the retention item that records when entries began and whether the
// indexes held runs from before them.
const commandEntriesSK = "COMMAND_ENTRIES"

// legacyRecheck is how long a store keeps an answer before it looks at the indexes again;
// legacyGrace is how long after entries began a false answer is still checked.
const (
	legacyRecheck = 5 * time.Minute
	legacyGrace   = 24 * time.Hour
)

// legacy returns whether Previous, History and the device listings must also read the indexes
// that held runs before entries (legacyCommands).
func (s *RunStore) legacy(ctx context.Context) (bool, error) {
	return s.legacyCmds.get(ctx, s.db, s.table, s.now())
}

// get is legacy for the runs table table, at now.
func (l *legacyCommands) get(ctx context.Context, db API, table string, now time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known {
		if err := l.load(ctx, db, table, now); err != nil {
			return true, err
		}
	}
	switch {
	case !l.legacy && now.Sub(l.began) > legacyGrace:
		return false, nil
	case now.Sub(l.at) < legacyRecheck:
		return l.legacy, nil
	}
	held, err := legacyHeld(ctx, db, table)
	if err != nil {
		return true, err
	}
	if held != l.legacy {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: markerItem(l.began, held)}); err != nil {
			return true, fmt.Errorf("store whether runs from before entries are left: %w", err)
		}
	}
	l.legacy, l.at = held, now
	return held, nil
}

// load reads the marker, writing it first on a table without one.
func (l *legacyCommands) load(ctx context.Context, db API, table string, now time.Time) error {
	for attempt := 0; ; attempt++ {
		it, found, err := getItem[struct {
			At     string `dynamodbav:"at"`
			Legacy *bool  `dynamodbav:"legacy"`
		}](ctx, db, table, retentionKey(commandEntriesSK), "command entries marker")
		if err != nil {
			return err
		}
		if found && it.Legacy != nil {
			began, err := time.Parse(timeLayout, it.At)
			if err != nil {
				return fmt.Errorf("command entries marker: %w", err)
			}
			l.known, l.legacy, l.began, l.at = true, *it.Legacy, began, now
			return nil
		}
		if attempt > 0 {
			return errors.New("command entries marker: written and not read back")
		}
		held, err := legacyHeld(ctx, db, table)
		if err != nil {
			return err
		}
		cond, err := buildCondition(itemAbsent())
		if err != nil {
			return err
		}
		_, err = db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: markerItem(now, held),
			ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("store when command entries began: %w", err)
		}
		// Stored, or by another store meanwhile: read it back.
	}
}

// markerItem is RETENTION/COMMAND_ENTRIES: entries began at began; legacy says runs from before
// them were left at the last check.
func markerItem(began time.Time, legacy bool) map[string]types.AttributeValue {
	item := retentionKey(commandEntriesSK)
	item["at"] = &types.AttributeValueMemberS{Value: began.UTC().Format(timeLayout)}
	item["legacy"] = &types.AttributeValueMemberBOOL{Value: legacy}
	return item
}

// legacyHeld reports whether the indexes hold runs from before entries: any item in GSI
// by_command, or in a DEV#<device> partition of by_device (unfinished runs are under ACTIVE#).
func legacyHeld(ctx context.Context, db API, table string) (bool, error) {
	out, err := db.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(table), IndexName: aws.String(resources.IndexRunsByCommand), Limit: aws.Int32(1)})
	if err != nil {
		return true, fmt.Errorf("scan index %s: %w", resources.IndexRunsByCommand, err)
	}
	if len(out.Items) > 0 || len(out.LastEvaluatedKey) > 0 {
		return true, nil
	}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{
		TableName: aws.String(table), IndexName: aws.String(resources.IndexRunsByDevice),
		FilterExpression:          aws.String("begins_with(#p, :dev)"),
		ProjectionExpression:      aws.String("#p"),
		ExpressionAttributeNames:  map[string]string{"#p": resources.AttrGSI1PK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":dev": &types.AttributeValueMemberS{Value: devIndexPrefix}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return true, fmt.Errorf("scan index %s: %w", resources.IndexRunsByDevice, err)
		}
		if len(page.Items) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// entryQuery is the query of device's entries for command (and, for several commands, their
// sequence hash seq), newest job first, before sort key before ("" for all), of only succeeded
// runs when succeeded.
func entryQuery(table, deviceID, command string, seq []byte, before string, succeeded bool) *dynamodb.QueryInput {
	if before == "" {
		before = entriesEnd
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
			// Every entry read: the previous run, if any, is from before entries.
			legacy, err := s.legacy(ctx)
			if err != nil {
				return run.Run{}, err
			}
			if !legacy {
				return run.Run{}, run.ErrNotFound
			}
			return s.previousIndexed(ctx, r)
		}
		in.ExclusiveStartKey, in.Limit = out.LastEvaluatedKey, aws.Int32(previousNext)
	}
	return run.Run{}, run.ErrNotFound
}

// previousInReq is one PreviousIn lookup and its answer.
type previousInReq struct {
	job string
	r   run.Run
	out run.Run
	ok  bool
}

// PreviousIn returns r's device's run in job when its entry says it succeeded running r's
// commands and has not expired (see bulk.RunStore): lookups that arrive together share one
// BatchGetItem of their entries, eventually consistent (half a read unit each).
func (s *RunStore) PreviousIn(ctx context.Context, job string, r run.Run) (run.Run, bool, error) {
	req := &previousInReq{job: job, r: r}
	if err := s.previousIns.do(ctx, req); err != nil {
		return run.Run{}, false, err
	}
	return req.out, req.ok, nil
}

// previousInMany answers PreviousIn lookups with one read of their entries.
func (s *RunStore) previousInMany(ctx context.Context, reqs []*previousInReq) []error {
	errs := make([]error, len(reqs))
	var keys []map[string]types.AttributeValue
	seen := map[string]bool{}
	for _, req := range reqs {
		sk := tailPrefix + bulk.RunID(req.job, req.r.DeviceID)
		if k := req.r.DeviceID + "\x00" + sk; !seen[k] {
			seen[k] = true
			keys = append(keys, bytesKey(req.r.DeviceID, sk))
		}
	}
	items, err := batchGetWith(ctx, s.db, s.table, keys, nil, false)
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("read previous runs' entries: %w", err)
		}
		return errs
	}
	entries := make(map[string]entryItem, len(items))
	for _, item := range items {
		var e entryItem
		if err := attributevalue.UnmarshalMap(item, &e); err != nil {
			for i := range errs {
				errs[i] = fmt.Errorf("unmarshal entry: %w", err)
			}
			return errs
		}
		entries[e.PK+"\x00"+e.SK] = e
	}
	now := s.now().Unix()
	for _, req := range reqs {
		r, id := req.r, bulk.RunID(req.job, req.r.DeviceID)
		e, found := entries[counterPrefix+r.DeviceID+"\x00"+tailPrefix+id]
		if !found || id == r.ID || e.Status != string(run.Succeeded) || e.Exp > 0 && e.Exp <= now ||
			!bytes.Equal(e.Cmd, commandHash(r.Command)) || !bytes.Equal(e.Seq, sequenceHash(r)) {
			continue
		}
		req.out = run.Run{ID: id, DeviceID: r.DeviceID, Command: r.Command, Status: run.Succeeded, FilteredDigest: string(e.Digest), Commands: textsOnly(r)}
		req.ok = true
	}
	return errs
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

// pagedCursor is a position in a listing read in phases (History: entries, then GSI by_command;
// ListByDevice: unfinished runs, entries, then by_device's runs from before; RunsOfDevice: those,
// then entries): the phase, and in it the sort key of the last entry read or an index's page
// cursor.
type pagedCursor struct {
	Phase int    `json:"p,omitempty"`
	Key   string `json:"k,omitempty"`
	// Dev is deviceTag of the listing's device: another device's cursor is refused.
	Dev string `json:"d"`
}

// deviceTag is a short tag of a device id for its listings' cursors.
func deviceTag(deviceID string) string {
	sum := sha256.Sum256([]byte(deviceID))
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

// decodePaged reads a cursor of a listing of device's runs in phases 0..phases-1 ("" is the
// start); kind tells the listings' cursors apart.
func decodePaged(kind, cursor, deviceID string, phases int) (pagedCursor, error) {
	cur := pagedCursor{Dev: deviceTag(deviceID)}
	if cursor == "" {
		return cur, nil
	}
	b, err := decodeOpaque(kind, cursor)
	if err != nil || json.Unmarshal(b, &cur) != nil || cur.Phase < 0 || cur.Phase >= phases || cur.Dev != deviceTag(deviceID) {
		return pagedCursor{}, fault.ErrBadCursor
	}
	return cur, nil
}

// encode is the cursor c of a listing of kind.
func (c pagedCursor) encode(kind string) (string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode cursor: %w", err)
	}
	return encodeOpaque(kind, b), nil
}

// Cursor kinds.
const (
	historyKind = "h"
	devRunsKind = "l"
	capRunsKind = "r"
)

// entryReads bounds the pages one listing page reads of a device's entries while it fills up;
// historyMinRead is the least a History page reads, past other commands' entries.
const (
	entryReads     = 8
	historyMinRead = 25
)

// readEntries reads up to limit entries of query in (its ExclusiveStartKey the position to go on
// from), each page at least minRead of them (more than limit when a filter skips many), returning
// their runs' ids, the sort key to go on from and whether none is left. With stopAtLedger, a
// ledger item of a run from before entries (no command hash) ends the read, as done: newest job
// first, every entry sorts before them.
func readEntries(ctx context.Context, db API, in *dynamodb.QueryInput, limit, minRead int, stopAtLedger bool, what string) (ids []string, last string, done bool, err error) {
	if key, ok := in.ExclusiveStartKey[resources.AttrSK].(*types.AttributeValueMemberS); ok {
		last = key.Value
	}
	for reads := 0; len(ids) < limit && reads < entryReads; reads++ {
		in.Limit = aws.Int32(int32(max(limit-len(ids), minRead)))
		out, err := db.Query(ctx, in)
		if err != nil {
			return nil, "", false, fmt.Errorf("query %s: %w", what, err)
		}
		for _, item := range out.Items {
			if len(ids) == limit {
				return ids, last, false, nil
			}
			if _, entry := item[entryCmdAttr]; stopAtLedger && !entry {
				return ids, last, true, nil
			}
			if sk, ok := item[resources.AttrSK].(*types.AttributeValueMemberS); ok {
				ids, last = append(ids, entryRunID(sk.Value)), sk.Value
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return ids, last, true, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
		if sk, ok := out.LastEvaluatedKey[resources.AttrSK].(*types.AttributeValueMemberS); ok {
			last = sk.Value
		}
	}
	return ids, last, false, nil
}

// deviceEntriesQuery is the query of a device's entries, newest job first or, forward, oldest
// first, after sort key after ("" for the start): only entries, or (withLedger) the ledger items
// of runs from before entries too.
func deviceEntriesQuery(table, deviceID, after string, forward, withLedger bool) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(table),
		KeyConditionExpression:   aws.String("#pk = :pk AND begins_with(#sk, :t)"),
		ExpressionAttributeNames: map[string]string{"#pk": resources.AttrPK, "#sk": resources.AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: counterPrefix + deviceID},
			":t":  &types.AttributeValueMemberS{Value: tailPrefix},
		},
		ScanIndexForward: aws.Bool(forward),
	}
	if !withLedger {
		in.FilterExpression = aws.String("attribute_exists(#h)")
		in.ExpressionAttributeNames["#h"] = entryCmdAttr
	}
	if after != "" {
		in.ExclusiveStartKey = bytesKey(deviceID, after)
	}
	return in
}

// entryPosition reports whether key is a position among entries (a cursor's, checked before it
// goes to DynamoDB as a start key).
func entryPosition(key string) bool {
	return strings.HasPrefix(key, tailPrefix) && len(key) > len(tailPrefix) && key < entriesEnd
}

// History returns the finished runs of command on a device, newest job first, at most limit,
// after cursor: from the device's entries, then (runs finished before entries) GSI by_command.
// A page may hold fewer than limit runs and still have a next cursor.
func (s *RunStore) History(ctx context.Context, deviceID, command, cursor string, limit int) ([]run.Run, string, error) {
	cur, err := decodePaged(historyKind, cursor, deviceID, 2)
	if err != nil || cur.Phase == 0 && cur.Key != "" && !entryPosition(cur.Key) {
		return nil, "", fault.ErrBadCursor
	}
	var runs []run.Run
	if cur.Phase == 0 {
		in := entryQuery(s.table, deviceID, command, nil, "", false)
		if cur.Key != "" {
			in.ExclusiveStartKey = bytesKey(deviceID, cur.Key)
		}
		ids, last, done, err := readEntries(ctx, s.db, in, limit, historyMinRead, false, "history of device "+deviceID)
		if err != nil {
			return nil, "", err
		}
		if runs, err = s.getRuns(ctx, ids); err != nil {
			return nil, "", err
		}
		if !done {
			next, err := pagedCursor{Key: last, Dev: cur.Dev}.encode(historyKind)
			return runs, next, err
		}
		if legacy, err := s.legacy(ctx); err != nil || !legacy {
			return runs, "", err
		}
		if len(runs) == limit {
			next, err := pagedCursor{Phase: 1, Dev: cur.Dev}.encode(historyKind)
			return runs, next, err
		}
		cur = pagedCursor{Phase: 1, Dev: cur.Dev}
	}
	items, next, err := newestFirstOn[runItem](ctx, s.db, s.table, resources.IndexRunsByCommand, resources.AttrGSI3PK, resources.AttrGSI3SK,
		commandPartition(deviceID, command), runPrefix, runMetaSK, cur.Key, limit-len(runs), fault.ErrBadCursor, "history of device "+deviceID)
	if err != nil {
		return nil, "", err
	}
	runs = append(runs, s.unexpired(items)...)
	if next == "" {
		return runs, "", nil
	}
	next, err = pagedCursor{Phase: 1, Key: next, Dev: cur.Dev}.encode(historyKind)
	return runs, next, err
}

// Phases of ListByDevice.
const (
	listUnfinished = iota
	listEntries
	listLegacy
	listPhases
)

// ListByDevice returns a device's runs, at most limit, after cursor: its unfinished runs (GSI
// by_device, ACTIVE#<device>), newest first; then its finished runs, newest job first (its
// entries, each run read by key); then, while the table may hold them, the runs written before
// entries (by_device, DEV#<device>), newest first. A page may hold fewer than limit runs and
// still have a next cursor.
func (s *RunStore) ListByDevice(ctx context.Context, deviceID, cursor string, limit int) ([]run.Run, string, error) {
	cur, err := decodePaged(devRunsKind, cursor, deviceID, listPhases)
	if err != nil || cur.Phase == listEntries && cur.Key != "" && !entryPosition(cur.Key) {
		return nil, "", fault.ErrBadCursor
	}
	runs := []run.Run{}
	for len(runs) < limit {
		switch cur.Phase {
		case listUnfinished, listLegacy:
			partition := activeIndexPrefix + deviceID
			if cur.Phase == listLegacy {
				if legacy, err := s.legacy(ctx); err != nil || !legacy {
					return runs, "", err
				}
				partition = devIndexPrefix + deviceID
			}
			items, next, err := newestFirst[runItem](ctx, s.db, s.table, resources.IndexRunsByDevice, partition, runPrefix, runMetaSK,
				cur.Key, limit-len(runs), fault.ErrBadCursor, "runs of device "+deviceID)
			if err != nil {
				return nil, "", err
			}
			runs = append(runs, s.unexpired(items)...)
			switch {
			case next != "":
				next, err := pagedCursor{Phase: cur.Phase, Key: next, Dev: cur.Dev}.encode(devRunsKind)
				return runs, next, err
			case cur.Phase == listLegacy:
				return runs, "", nil
			}
			cur = pagedCursor{Phase: listEntries, Dev: cur.Dev}
		case listEntries:
			// While runs from before entries are left, the first of their ledger items ends the
			// entries (they sort after every entry) and the index lists the rest.
			legacy, err := s.legacy(ctx)
			if err != nil {
				return nil, "", err
			}
			ids, last, done, err := readEntries(ctx, s.db, deviceEntriesQuery(s.table, deviceID, cur.Key, false, legacy), limit-len(runs), 1, legacy, "runs of device "+deviceID)
			if err != nil {
				return nil, "", err
			}
			got, err := s.getRuns(ctx, ids)
			if err != nil {
				return nil, "", err
			}
			runs = finishedOnce(runs, got)
			if !done {
				next, err := pagedCursor{Phase: listEntries, Key: last, Dev: cur.Dev}.encode(devRunsKind)
				return runs, next, err
			}
			cur = pagedCursor{Phase: listLegacy, Dev: cur.Dev}
		}
	}
	next, err := cur.encode(devRunsKind)
	return runs, next, err
}

// finishedOnce appends finished to runs, leaving out of runs any that finished meanwhile: the
// index of unfinished runs lags the table, and a run just finished is read by key among them.
func finishedOnce(runs, finished []run.Run) []run.Run {
	ids := make(map[string]bool, len(finished))
	for _, r := range finished {
		ids[r.ID] = true
	}
	runs = slices.DeleteFunc(runs, func(r run.Run) bool { return ids[r.ID] })
	return append(runs, finished...)
}

// getRuns reads the runs of ids, in that order, leaving out those gone or expired.
func (s *RunStore) getRuns(ctx context.Context, ids []string) ([]run.Run, error) {
	items, err := readRunItems(ctx, s.db, s.table, ids)
	if err != nil {
		return nil, err
	}
	return s.unexpired(items), nil
}

// listedRunAttrs are a run item's attributes but its inline output (tail, tail_z) and noise
// lines: what a listing reads of a run (TestListedRunAttrs keeps it whole).
var listedRunAttrs = []string{"pk", "sk", "id", "device_id", "command", "job_id", "nj", "requested_by", "status", "reason", "message",
	"exit_status", "bytes", "chunks", "truncated", "digest", "content_sha256", "filtered_digest", "changed", "previous_run_id", "attempt",
	"lease_until", "created_at", "started_at", "finished_at", "connect_ms", "auth_ms", "first_byte_ms", "total_ms", "expires_at",
	"tail_size", "cmds", "c1", "blob", "blob_gen", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk"}

// listedRunProjection is the projection of listedRunAttrs.
var listedRunProjection = sync.OnceValues(func() (expression.Expression, error) {
	names := expression.NamesList(expression.Name(listedRunAttrs[0]))
	for _, n := range listedRunAttrs[1:] {
		names = names.AddNames(expression.Name(n))
	}
	expr, err := expression.NewBuilder().WithProjection(names).Build()
	if err != nil {
		return expression.Expression{}, fmt.Errorf("build projection: %w", err)
	}
	return expr, nil
})

// readRunItems reads the run items of ids, in that order, leaving out those gone: eventually
// consistent, without their inline output (listedRunAttrs).
func readRunItems(ctx context.Context, db API, table string, ids []string) ([]runItem, error) {
	keys := make([]map[string]types.AttributeValue, len(ids))
	for i, id := range ids {
		keys[i] = runKey(id)
	}
	proj, err := listedRunProjection()
	if err != nil {
		return nil, err
	}
	var items []map[string]types.AttributeValue
	for start := 0; start < len(keys); start += maxBatchGetKeys {
		got, err := batchGetWith(ctx, db, table, keys[start:min(start+maxBatchGetKeys, len(keys))], &proj, false)
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
	return ordered, nil
}

// encodeOpaque and decodeOpaque make a listing's cursor opaque to clients; kind tells listings'
// cursors apart, and from the index-only cursors these listings had before entries.
func encodeOpaque(kind string, b []byte) string {
	return kind + base64.RawURLEncoding.EncodeToString(b)
}

func decodeOpaque(kind, cursor string) ([]byte, error) {
	rest, ok := strings.CutPrefix(cursor, kind)
	if !ok || len(cursor) > maxCursorLen {
		return nil, errors.New("not a cursor of this listing")
	}
	return base64.RawURLEncoding.DecodeString(rest)
}
