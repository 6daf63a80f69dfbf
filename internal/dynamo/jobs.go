package dynamo

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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

// Item layout of the jobs table:
//
//	JOB#<id>  META           the job: command, options, status, batches_done (jobs before
//	                         2026-12-07), cancel_requested, stop_status, bk (the batch layout,
//	                         jobs_batches.go) and the counts it was created with (c_<status>:
//	                         every device queued). No progress write touches it.
//	JOB#<id>  META#DONE      a slim job's (bk 3) done batches, a number set that FinishBatch
//	                         adds each batch to (counted once however often it is added);
//	                         JobControl reads it with META in one Query
//	JOB#<id>#C<nn> COUNTS    one of the job's countShards count shards: the moves of the batches
//	                         b with b % countShards == nn, as c_<status> sums (bk 2 and before,
//	                         added to in the record's transaction) or, for slim batches, as one
//	                         entry k<b> per batch (its counts at its latest version, see
//	                         syncCounts). A job's counts are META's plus every shard's, read
//	                         together (GetJob). Each shard has its own partition key, so no
//	                         partition takes every progress write of a job
//	JOB#<id>#B<00000> BATCH#<00000>
//	                         one batch: state (pending|sent|done), lease, updated_at (epoch ms of
//	                         its last change: every write to it sets it), resent_at (epoch ms of
//	                         the watchdog's re-send, if any) and its devices' states (before
//	                         2026-12-07 under JOB#<id>). A slim batch (bk 3) holds each device's
//	                         state by its position in IDS (s<i>: status code, d<i>: the rest
//	                         packed, jobs_pack.go) and a version v; earlier ones hold device_ids
//	                         and devs, a map from device id to {s: status, why: reason, ms, q:
//	                         the seq of the event that last moved it (bulk's progressseq.go), h:
//	                         output digest, c: per-command results, chg: drift flag}. The run id
//	                         is bulk.RunID(job, device), never stored
//	JOB#<id>#B<00000> IDS    a slim batch's device_ids, written once
//	JOB#<id>  LOC            which batch holds each device, by fingerprint (jobs_lookup.go)
//	CMDJOB#<key> LAST        {job}: the newest job that ran the commands key names
//	                         (bulk.CommandsKey), swapped in by each enqueue (SwapLastJob); it
//	                         expires with that job
//	UNFINISHED JOB#<id>      one per job until it ends (written with the job, deleted when it
//	                         ends), with the job's requested_by: the watchdog lists unfinished
//	                         jobs from this partition and the enqueuer counts a requester's, so
//	                         their cost follows the unfinished jobs, not the history
//	DROPPED_ANSWERS ANS#<key> secret answers nothing names any more whose delete has not
//	                         succeeded yet (dropped.go); the watchdog deletes them
//	JOB#<id>  EVT#<seq>      written before the progress contract's version 2 (an event log);
//	                         nothing reads them, and they expire with their job
//
// Device ids may contain dots, so device paths in update expressions use placeholders written
// here rather than the expression builder (which splits names on dots).
const (
	jobPrefix   = "JOB#"
	jobMetaSK   = "META"
	batchPrefix = "BATCH#"
	countsSK    = "COUNTS"
	countShards = 8

	batchPending = "pending"
	batchSent    = "sent"
	batchDone    = "done"
)

// JobStore keeps bulk jobs in the jobs table; it implements bulk.ExecStore.
type JobStore struct {
	db      API
	table   string
	now     func() time.Time
	layouts *batchLayouts
	ids     *batchIDCache
	// layout is the batch layout CreateJob writes (jobs_batches.go): layoutSlim but in tests,
	// which hold jobs created by earlier code and in flight across the upgrade to the same
	// contract.
	layout int
}

// NewJobStore returns a store over the named jobs table.
func NewJobStore(db API, table string) (*JobStore, error) {
	if db == nil || table == "" {
		return nil, errors.New("new job store: client and table name are required")
	}
	return &JobStore{db: db, table: table, now: func() time.Time { return time.Now().UTC() }, layouts: newBatchLayouts(), ids: newBatchIDCache(), layout: layoutSlim}, nil
}

type jobItem struct {
	PK              string       `dynamodbav:"pk"`
	SK              string       `dynamodbav:"sk"`
	GSI1PK          string       `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK          string       `dynamodbav:"gsi1sk,omitempty"`
	ID              string       `dynamodbav:"id"`
	Command         string       `dynamodbav:"command"`
	RequestedBy     string       `dynamodbav:"requested_by"`
	DeviceCount     int          `dynamodbav:"device_count"`
	Batches         int          `dynamodbav:"batches"`
	Status          string       `dynamodbav:"status"`
	Options         bulk.Options `dynamodbav:"options"`
	Seq             int64        `dynamodbav:"seq"`
	Error           string       `dynamodbav:"error,omitempty"`
	CreatedAt       time.Time    `dynamodbav:"created_at"`
	FinishedAt      *time.Time   `dynamodbav:"finished_at,omitempty"`
	CancelRequested bool         `dynamodbav:"cancel_requested"`
	StopStatus      string       `dynamodbav:"stop_status,omitempty"`
	BatchesDone     int          `dynamodbav:"batches_done"`
	ExpiresAt       int64        `dynamodbav:"expires_at,omitempty"`
	Sites           []string     `dynamodbav:"sites,omitempty"`
	Grants          bulk.Grants  `dynamodbav:"grants"`
	// Commands is the job's sequence, secret answers removed; SecretAnswers says they are in the
	// answer store until the job ends.
	Commands      []bulk.Command `dynamodbav:"commands,omitempty"`
	SecretAnswers bool           `dynamodbav:"secret_answers,omitempty"`
	SavedJobID    string         `dynamodbav:"saved_job_id,omitempty"`
	RerunOf       string         `dynamodbav:"rerun_of,omitempty"`
	PreviousJob   string         `dynamodbav:"prev_job,omitempty"`
	// Reruns is appended to by AddRerun, once per re-run.
	Reruns []string       `dynamodbav:"reruns,omitempty"`
	Counts map[string]int `dynamodbav:"-"`
}

func countAttr(s run.Status) string { return "c_" + string(s) }

func jobKey(id string) map[string]types.AttributeValue { return itemKey(jobPrefix+id, jobMetaSK) }

// countsKey is the key of the job's count shard that batch's moves go to.
func countsKey(jobID string, batch int) map[string]types.AttributeValue {
	return itemKey(fmt.Sprintf("%s%s#C%02d", jobPrefix, jobID, batch%countShards), countsSK)
}

// jobKeys are the keys GetJob reads: the job's META, its set of done batches (slim jobs have
// one) and its count shards.
func jobKeys(id string) []map[string]types.AttributeValue {
	keys := []map[string]types.AttributeValue{jobKey(id), doneKey(id)}
	for i := range countShards {
		keys = append(keys, countsKey(id, i))
	}
	return keys
}

// addCounts adds the c_<status> attributes of a count shard (or META) to counts.
func addCounts(counts map[run.Status]int, item map[string]types.AttributeValue) {
	for _, s := range run.Statuses() {
		if v, ok := item[countAttr(s)].(*types.AttributeValueMemberN); ok {
			n, _ := strconv.Atoi(v.Value)
			counts[s] += n
		}
	}
}

func batchSK(i int) string { return fmt.Sprintf("%s%05d", batchPrefix, i) }

func decodeJob(item map[string]types.AttributeValue) (bulk.Job, error) {
	var it jobItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return bulk.Job{}, fmt.Errorf("unmarshal job: %w", err)
	}
	j := bulk.Job{
		ID: it.ID, Command: it.Command, RequestedBy: it.RequestedBy, DeviceCount: it.DeviceCount,
		Batches: it.Batches, Status: bulk.JobStatus(it.Status), Options: it.Options, Seq: it.Seq,
		Error: it.Error, CreatedAt: it.CreatedAt, FinishedAt: it.FinishedAt, CancelRequested: it.CancelRequested,
		StopStatus: bulk.JobStatus(it.StopStatus), BatchesDone: it.BatchesDone, Counts: map[run.Status]int{}, Sites: it.Sites, Grants: it.Grants,
		Commands: it.Commands, SecretAnswers: it.SecretAnswers, SavedJobID: it.SavedJobID, RerunOf: it.RerunOf, Reruns: it.Reruns,
		PreviousJob: it.PreviousJob,
	}
	for _, s := range run.Statuses() {
		j.Counts[s] = 0
	}
	addCounts(j.Counts, item)
	// The job's one sequence number is its job_done event's, derived from its times.
	j.Seq = 0
	if it.FinishedAt != nil {
		j.Seq = bulk.JobDoneSeq(it.CreatedAt, *it.FinishedAt)
	}
	if it.ExpiresAt > 0 {
		j.ExpiresAt = time.Unix(it.ExpiresAt, 0).UTC()
	}
	return j, nil
}

// devState is one device's state in its batch item (a slim batch packs it, jobs_pack.go), kept
// small because each progress record rewrites the whole item (see docs/performance.md). Its
// run's ID is not stored: it is always bulk.RunID(job, device).
type devState struct {
	S   string `dynamodbav:"s"`
	Why string `dynamodbav:"why,omitempty"`
	MS  int64  `dynamodbav:"ms,omitempty"`
	Q   int64  `dynamodbav:"q,omitempty"`
	// H is the output digest (run.OutputDigest) as its 16 raw bytes rather than hex.
	H []byte `dynamodbav:"h,omitempty"`
	// C are the finished device's per-command results (bulk.Change.Commands).
	C []devCmd `dynamodbav:"c,omitempty"`
	// Chg is the run's drift flag (run.Run.Changed), absent when unknown.
	Chg *bool `dynamodbav:"chg,omitempty"`
}

// devCmd is one command's result in a device's state: status, reason, exit status, bytes.
type devCmd struct {
	S   string `dynamodbav:"s"`
	Why string `dynamodbav:"why,omitempty"`
	X   *int   `dynamodbav:"x,omitempty"`
	B   int64  `dynamodbav:"b,omitempty"`
}

func packCommands(cmds []run.CommandResult) []devCmd {
	var out []devCmd
	for _, c := range cmds {
		out = append(out, devCmd{S: string(c.Status), Why: c.Reason, X: c.ExitStatus, B: c.Bytes})
	}
	return out
}

func packDigest(hexDigest string) []byte {
	b, err := hex.DecodeString(hexDigest)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

func (d devState) state(jobID, id string, batch int) bulk.DeviceState {
	st := bulk.DeviceState{DeviceID: id, Status: run.Status(d.S), RunID: bulk.RunID(jobID, id), Reason: d.Why, DurationMS: d.MS, Seq: d.Q, Batch: batch, Changed: d.Chg}
	if len(d.H) > 0 {
		st.OutputDigest = hex.EncodeToString(d.H)
	}
	for _, c := range d.C {
		st.Commands = append(st.Commands, run.CommandResult{Status: run.Status(c.S), Reason: c.Why, ExitStatus: c.X, Bytes: c.B})
	}
	return st
}

type batchItem struct {
	PK        string              `dynamodbav:"pk"`
	SK        string              `dynamodbav:"sk"`
	Batch     int                 `dynamodbav:"batch"`
	DeviceIDs []string            `dynamodbav:"device_ids"`
	State     string              `dynamodbav:"state"`
	Devs      map[string]devState `dynamodbav:"devs"`
	ExpiresAt int64               `dynamodbav:"expires_at,omitempty"`
	// UpdatedAt and ResentAt are epoch milliseconds (see the item layout).
	UpdatedAt int64 `dynamodbav:"updated_at,omitempty"`
	ResentAt  int64 `dynamodbav:"resent_at,omitempty"`
}

// states returns the stored state of each device of the batch of job jobID.
func (it batchItem) states(jobID string) map[string]bulk.DeviceState {
	states := make(map[string]bulk.DeviceState, len(it.Devs))
	for id, d := range it.Devs {
		states[id] = d.state(jobID, id, it.Batch)
	}
	return states
}

// SwapLastJob implements bulk.JobStore: one conditional update of CMDJOB#<key>/LAST that
// returns the job it replaces.
func (s *JobStore) SwapLastJob(ctx context.Context, key, jobID string, expires time.Time) (string, error) {
	upd := expression.Set(expression.Name("job"), expression.Value(jobID))
	if exp := expiry(expires); exp > 0 {
		upd = upd.Set(expression.Name("expires_at"), expression.Value(exp))
	} else {
		upd = upd.Remove(expression.Name("expires_at"))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).
		WithCondition(expression.Or(expression.AttributeNotExists(expression.Name("job")), expression.Name("job").LessThan(expression.Value(jobID)))).Build()
	if err != nil {
		return "", fmt.Errorf("build update: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: itemKey(cmdJobPrefix+key, cmdJobSK),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
		ReturnValues: types.ReturnValueUpdatedOld,
	})
	if isConditionFailed(err) {
		return "", nil // a newer job is recorded
	}
	if err != nil {
		return "", fmt.Errorf("record job %s as its commands' last: %w", jobID, err)
	}
	prev, _ := out.Attributes["job"].(*types.AttributeValueMemberS)
	if prev == nil {
		return "", nil
	}
	return prev.Value, nil
}

// The item that names the newest job of some commands (SwapLastJob).
const (
	cmdJobPrefix = "CMDJOB#"
	cmdJobSK     = "LAST"
)

// CreateJob writes the job's batch items (BatchWriteItem, 25 a call), then the job.
func (s *JobStore) CreateJob(ctx context.Context, j bulk.Job, batches [][]string, sent int) error {
	it := jobItem{
		PK: jobPrefix + j.ID, SK: jobMetaSK, GSI1PK: jobListPK, GSI1SK: j.CreatedAt.UTC().Format(timeLayout) + "#" + j.ID, ID: j.ID, Command: j.Command, RequestedBy: j.RequestedBy,
		DeviceCount: j.DeviceCount, Batches: j.Batches, Status: string(j.Status), Options: j.Options,
		CreatedAt: j.CreatedAt, ExpiresAt: expiry(j.ExpiresAt), Sites: j.Sites, Grants: j.Grants,
		Commands: bulk.Redacted(j.Commands), SecretAnswers: j.SecretAnswers, SavedJobID: j.SavedJobID, RerunOf: j.RerunOf,
		PreviousJob: j.PreviousJob,
	}
	meta, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("marshal job %s: %w", j.ID, err)
	}
	for _, st := range run.Statuses() {
		meta[countAttr(st)] = nv(0)
	}
	meta[countAttr(run.Queued)] = nv(int64(j.DeviceCount))
	if s.layout != layoutShared {
		meta[batchKeysAttr] = nv(int64(s.layout))
	}
	cond, err := buildCondition(itemAbsent())
	if err != nil {
		return err
	}
	createdMS := s.now().UnixMilli()
	var writes []types.WriteRequest
	for i, ids := range batches {
		state := batchSent
		if i >= sent {
			state = batchPending
		}
		if s.layout == layoutSlim {
			w, err := slimBatchWrites(j.ID, i, ids, state, expiry(j.ExpiresAt), createdMS)
			if err != nil {
				return err
			}
			writes = append(writes, w...)
			continue
		}
		devs := make(map[string]devState, len(ids))
		for _, id := range ids {
			devs[id] = devState{S: string(run.Queued)}
		}
		key := ownBatchKey(j.ID, i)
		if s.layout == layoutShared {
			key = sharedBatchKey(j.ID, i)
		}
		item, err := attributevalue.MarshalMap(batchItem{
			PK: key[resources.AttrPK].(*types.AttributeValueMemberS).Value, SK: batchSK(i), Batch: i, DeviceIDs: ids, State: state, Devs: devs,
			ExpiresAt: expiry(j.ExpiresAt), UpdatedAt: createdMS,
		})
		if err != nil {
			return fmt.Errorf("marshal batch %d: %w", i, err)
		}
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	if s.layout == layoutSlim {
		done := doneKey(j.ID)
		if x := expiry(j.ExpiresAt); x > 0 {
			done[resources.TTLAttribute] = nv(x)
		}
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: done}})
	}
	// The count shards exist from the start, so they expire with the job.
	for i := range countShards {
		item := countsKey(j.ID, i)
		if x := expiry(j.ExpiresAt); x > 0 {
			item[resources.TTLAttribute] = nv(x)
		}
		writes = append(writes, types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
	}
	if loc, ok, err := locatorWrite(j.ID, batches, expiry(j.ExpiresAt)); err != nil {
		return err
	} else if ok {
		writes = append(writes, loc)
	}
	// The batches first, the job and its unfinished marker last and together: a job exists, and
	// the watchdog sends its batches, only once all of them are stored. A creation that fails
	// leaves no job to run, only batch items nothing reads, deleted here as far as DynamoDB lets.
	if err := batchWrite(ctx, s.db, s.table, writes); err != nil {
		return fmt.Errorf("put batches of job %s: %w", j.ID, s.dropWrites(ctx, writes, err))
	}
	err = transact(ctx, s.db,
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: meta, ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names()}},
		types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: unfinishedItem(j.ID, j.RequestedBy, expiry(j.ExpiresAt))}},
	)
	var cancelled *types.TransactionCanceledException
	if err != nil && !errors.As(err, &cancelled) {
		// No answer (the context ended, the connection dropped): the job may have been written.
		out, gerr := s.db.GetItem(context.WithoutCancel(ctx), &dynamodb.GetItemInput{TableName: aws.String(s.table),
			Key: itemKey(jobPrefix+j.ID, jobMetaSK), ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String(resources.AttrPK)})
		switch {
		case gerr != nil:
			return fmt.Errorf("put job %s: %w (and whether it was written is unknown: %v)", j.ID, err, gerr)
		case len(out.Item) > 0:
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("put job %s: %w", j.ID, s.dropWrites(ctx, writes, err))
	}
	s.layouts.Add(j.ID, s.layout)
	return nil
}

// dropWrites deletes the items of puts, written or not, after err ended a job's creation; it
// returns err, with the deletion's own error when that failed too (the items then expire).
func (s *JobStore) dropWrites(ctx context.Context, puts []types.WriteRequest, err error) error {
	dels := make([]types.WriteRequest, 0, len(puts))
	for _, w := range puts {
		key := map[string]types.AttributeValue{resources.AttrPK: w.PutRequest.Item[resources.AttrPK], resources.AttrSK: w.PutRequest.Item[resources.AttrSK]}
		dels = append(dels, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key}})
	}
	if derr := batchWrite(context.WithoutCancel(ctx), s.db, s.table, dels); derr != nil {
		return fmt.Errorf("%w (and deleting its batch items: %v)", err, derr)
	}
	return err
}

// jobListPK is the by_created index partition of every job.
const jobListPK = "JOBS"

// ListJobs returns jobs newest first, at most limit, after cursor (see api.Jobs).
func (s *JobStore) ListJobs(ctx context.Context, cursor string, limit int) ([]bulk.JobSummary, string, error) {
	items, next, err := newestFirst[jobItem](ctx, s.db, s.table, resources.IndexJobsByCreated, jobListPK, jobPrefix, jobMetaSK,
		cursor, limit, fault.ErrBadCursor, "jobs")
	if err != nil {
		return nil, "", err
	}
	now := s.now().Unix()
	jobs := make([]bulk.JobSummary, 0, len(items))
	for _, it := range items {
		if it.ExpiresAt > 0 && it.ExpiresAt <= now {
			continue // expired, waiting for TTL
		}
		jobs = append(jobs, bulk.JobSummary{ID: it.ID, Command: it.Command, RequestedBy: it.RequestedBy, DeviceCount: it.DeviceCount,
			Status: bulk.JobStatus(it.Status), Error: it.Error, CreatedAt: it.CreatedAt, FinishedAt: it.FinishedAt, Sites: it.Sites})
	}
	return jobs, next, nil
}

// GetJob returns a job's summary, its counts summed over its count shards, in one BatchGetItem;
// bulk.ErrJobNotFound when there is none, or it has expired.
func (s *JobStore) GetJob(ctx context.Context, id string) (bulk.Job, error) {
	return s.getJob(ctx, id, true)
}

// getJob is GetJob; a job past its expiry is found too unless unexpired is set (a write's read
// back of the job it just changed).
func (s *JobStore) getJob(ctx context.Context, id string, unexpired bool) (bulk.Job, error) {
	items, err := batchGet(ctx, s.db, s.table, jobKeys(id), nil)
	if err != nil {
		return bulk.Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	var meta, done map[string]types.AttributeValue
	shards := make([]map[string]types.AttributeValue, 0, countShards)
	for _, it := range items {
		sk, _ := it[resources.AttrSK].(*types.AttributeValueMemberS)
		switch {
		case sk != nil && sk.Value == jobMetaSK:
			meta = it
		case sk != nil && sk.Value == doneSK:
			done = it
		default:
			shards = append(shards, it)
		}
	}
	if meta == nil {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	s.remember(id, meta)
	j, err := decodeJob(meta)
	if err != nil {
		return bulk.Job{}, err
	}
	if unexpired && s.expired(j) {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	addDone(&j, done)
	for _, it := range shards {
		addCounts(j.Counts, it)
		if err := addCountEntries(j.Counts, it); err != nil {
			return bulk.Job{}, fmt.Errorf("job %s: %w", id, err)
		}
	}
	return j, nil
}

// expired reports whether j is past its expiry: DynamoDB's TTL deletes its items some time
// after, one by one, so a read before then would show a job losing its parts.
func (s *JobStore) expired(j bulk.Job) bool {
	return !j.ExpiresAt.IsZero() && !j.ExpiresAt.After(s.now())
}

// JobControl returns the job as its META item (and a slim job's set of done batches) holds it,
// one small read: status, stop request, options, batches done; its Counts are the ones it was
// created with (bulk.JobStore).
func (s *JobStore) JobControl(ctx context.Context, id string) (bulk.Job, error) {
	return s.jobControl(ctx, id, true)
}

// jobControl is JobControl; a job past its expiry is found too unless unexpired is set.
func (s *JobStore) jobControl(ctx context.Context, id string, unexpired bool) (bulk.Job, error) {
	// The sort keys that start with META's: the job and a slim job's set of done batches.
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(s.table), ConsistentRead: aws.Bool(true),
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :meta)"),
		ExpressionAttributeNames:  map[string]string{"#pk": resources.AttrPK, "#sk": resources.AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": sv(jobPrefix + id), ":meta": sv(jobMetaSK)},
	})
	if err != nil {
		return bulk.Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	var meta, done map[string]types.AttributeValue
	for _, it := range out.Items {
		switch sk, _ := it[resources.AttrSK].(*types.AttributeValueMemberS); {
		case sk != nil && sk.Value == jobMetaSK:
			meta = it
		case sk != nil && sk.Value == doneSK:
			done = it
		}
	}
	if meta == nil {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	s.remember(id, meta)
	j, err := decodeJob(meta)
	if err != nil {
		return bulk.Job{}, err
	}
	if unexpired && s.expired(j) {
		return bulk.Job{}, bulk.ErrJobNotFound
	}
	addDone(&j, done)
	return j, nil
}

// AddRerun appends rerunID to the job's list of re-runs; bulk.ErrJobNotFound when there is no job.
func (s *JobStore) AddRerun(ctx context.Context, jobID, rerunID string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: jobKey(jobID),
		UpdateExpression:    aws.String("SET reruns = list_append(if_not_exists(reruns, :empty), :id)"),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
			":id":    &types.AttributeValueMemberL{Value: []types.AttributeValue{sv(rerunID)}},
		},
	})
	if isConditionFailed(err) {
		return bulk.ErrJobNotFound
	}
	if err != nil {
		return fmt.Errorf("add re-run %s to job %s: %w", rerunID, jobID, err)
	}
	return nil
}

// MarkRunning moves a queued job to running; a job in any other state is left alone.
func (s *JobStore) MarkRunning(ctx context.Context, jobID string) error {
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: jobKey(jobID),
		UpdateExpression:          aws.String("SET #st = :running"),
		ConditionExpression:       aws.String("#st = :queued"),
		ExpressionAttributeNames:  map[string]string{"#st": "status"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":running": sv(string(bulk.JobRunning)), ":queued": sv(string(bulk.JobQueued))},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("mark job %s running: %w", jobID, err)
	}
	return nil
}

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// BatchStates returns the stored state of each device of a batch.
func (s *JobStore) BatchStates(ctx context.Context, jobID string, batch int) (map[string]bulk.DeviceState, error) {
	layout, err := s.batchLayout(ctx, jobID)
	if err != nil {
		return nil, err
	}
	if layout == layoutSlim {
		it, ok, err := s.slimBatchRead(ctx, jobID, batch)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("batch %d of job %s: %w", batch, jobID, bulk.ErrJobNotFound)
		}
		return it.states(jobID), nil
	}
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return nil, err
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("get batch %d of job %s: %w", batch, jobID, err)
	}
	if out.Item == nil {
		return nil, fmt.Errorf("batch %d of job %s: %w", batch, jobID, bulk.ErrJobNotFound)
	}
	var it batchItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return nil, fmt.Errorf("unmarshal batch %d of job %s: %w", batch, jobID, err)
	}
	return it.states(jobID), nil
}

// ClaimBatch takes the batch's lease until until for holder (see bulk.ExecStore): one
// conditional write that also returns the devices' stored states.
func (s *JobStore) ClaimBatch(ctx context.Context, jobID string, batch int, holder string, until time.Time) (bulk.Claim, error) {
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return bulk.Claim{}, err
	}
	now := s.now()
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:    aws.String("SET #lu = :until, #lb = :me, #ua = :now ADD #claims :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(#lu) OR #lu <= :now)"),
		ExpressionAttributeNames: map[string]string{
			"#lu": "lease_until", "#lb": "lease_by", "#claims": "claims", "#ua": attrUpdatedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until": nv(until.UnixMilli()), ":me": sv(holder), ":one": nv(1), ":now": nv(now.UnixMilli()),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if old, ok := conditionFailedItem(err); ok {
		if len(old) == 0 {
			return bulk.Claim{}, fmt.Errorf("batch %d of job %s: %w", batch, jobID, bulk.ErrJobNotFound)
		}
		var held struct {
			LeaseUntil int64 `dynamodbav:"lease_until"`
		}
		if err := attributevalue.UnmarshalMap(old, &held); err != nil {
			return bulk.Claim{}, fmt.Errorf("unmarshal batch %d of job %s: %w", batch, jobID, err)
		}
		return bulk.Claim{HeldUntil: time.UnixMilli(held.LeaseUntil).UTC()}, bulk.ErrBatchLeased
	}
	if err != nil {
		return bulk.Claim{}, fmt.Errorf("claim batch %d of job %s: %w", batch, jobID, err)
	}
	var it struct {
		batchItem
		Claims int `dynamodbav:"claims"`
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
		return bulk.Claim{}, fmt.Errorf("unmarshal batch %d of job %s: %w", batch, jobID, err)
	}
	if layout, err := s.batchLayout(ctx, jobID); err != nil {
		return bulk.Claim{}, err
	} else if layout == layoutSlim {
		ids, err := s.batchIDs(ctx, jobID, batch)
		if err != nil {
			return bulk.Claim{}, err
		}
		if it.batchItem, err = slimBatch(out.Attributes, ids); err != nil {
			return bulk.Claim{}, fmt.Errorf("job %s: %w", jobID, err)
		}
	}
	return bulk.Claim{States: it.states(jobID), First: it.Claims == 1}, nil
}

// ReleaseBatch ends holder's lease on the batch, if it still holds it.
func (s *JobStore) ReleaseBatch(ctx context.Context, jobID string, batch int, holder string) error {
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return err
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:          aws.String("SET #lu = :zero, #ua = :now"),
		ConditionExpression:       aws.String("#lb = :me"),
		ExpressionAttributeNames:  map[string]string{"#lu": "lease_until", "#lb": "lease_by", "#ua": attrUpdatedAt},
		ExpressionAttributeValues: map[string]types.AttributeValue{":zero": nv(0), ":me": sv(holder), ":now": nv(s.now().UnixMilli())},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release batch %d of job %s: %w", batch, jobID, err)
	}
	return nil
}

// Record applies changes to a batch (see bulk.ExecStore): for a slim batch one conditional
// update of its item, then its counts to its count shard (recordSlim); for earlier layouts one
// transaction of the batch item and its count shard. No item every batch of the job writes.
func (s *JobStore) Record(ctx context.Context, jobID string, batch int, changes []bulk.Change) ([]bulk.Event, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	layout, err := s.batchLayout(ctx, jobID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	events := progressEvents(jobID, changes, now)
	if layout == layoutSlim {
		if err := s.recordSlim(ctx, jobID, batch, changes, now); err != nil {
			return nil, err
		}
		return events, nil
	}
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return nil, err
	}
	names := map[string]string{"#devs": "devs", "#s": "s", "#ua": attrUpdatedAt}
	values := map[string]types.AttributeValue{}
	sets := []string{"#ua = :ua"}
	var conds []string
	deltas := map[run.Status]int{}
	values[":ua"] = nv(now.UnixMilli())
	for i, c := range changes {
		d := fmt.Sprintf("#d%d", i)
		names[d] = c.DeviceID
		st, err := attributevalue.MarshalMap(devState{S: string(c.To), Why: c.Reason, MS: c.DurationMS, Q: c.Seq, H: packDigest(c.OutputDigest), C: packCommands(c.Commands), Chg: c.Changed})
		if err != nil {
			return nil, fmt.Errorf("marshal device state: %w", err)
		}
		values[fmt.Sprintf(":v%d", i)] = &types.AttributeValueMemberM{Value: st}
		values[fmt.Sprintf(":f%d", i)] = sv(string(c.From))
		sets = append(sets, fmt.Sprintf("#devs.%s = :v%d", d, i))
		conds = append(conds, fmt.Sprintf("#devs.%s.#s = :f%d", d, i))
		deltas[c.From]--
		deltas[c.To]++
	}
	var adds []string
	shardNames := map[string]string{}
	shardValues := map[string]types.AttributeValue{}
	for st, n := range deltas {
		if n == 0 {
			continue
		}
		k := "#c_" + string(st)
		shardNames[k] = countAttr(st)
		shardValues[":n_"+string(st)] = nv(int64(n))
		adds = append(adds, fmt.Sprintf("%s :n_%s", k, st))
	}
	update := &types.Update{
		TableName: aws.String(s.table), Key: key,
		UpdateExpression:          aws.String("SET " + strings.Join(sets, ", ")),
		ConditionExpression:       aws.String(strings.Join(conds, " AND ")),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if len(adds) == 0 {
		// Nothing to count (a running device recorded again): the batch alone, no transaction.
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: update.TableName, Key: update.Key, UpdateExpression: update.UpdateExpression,
			ConditionExpression: update.ConditionExpression, ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
		if isConditionFailed(err) {
			return nil, s.stateChanged(ctx, jobID, batch)
		}
	} else {
		// A transaction that met another on the same items (a duplicate delivery recording at
		// the same moment) is retried; then its conditions tell whether the device moved.
		err = transact(ctx, s.db, types.TransactWriteItem{Update: update}, types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: countsKey(jobID, batch),
			UpdateExpression:          aws.String("ADD " + strings.Join(adds, ", ")),
			ExpressionAttributeNames:  shardNames,
			ExpressionAttributeValues: shardValues,
		}})
		if err != nil && onlyConditionFailed(err) {
			return nil, s.stateChanged(ctx, jobID, batch)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("record %d changes of job %s: %w", len(changes), jobID, err)
	}
	return events, nil
}

// progressEvents are the progress events of changes recorded at now.
func progressEvents(jobID string, changes []bulk.Change, now time.Time) []bulk.Event {
	events := make([]bulk.Event, len(changes))
	for i, c := range changes {
		events[i] = bulk.Event{
			Type: bulk.EventProgress, JobID: jobID, DeviceID: c.DeviceID, Status: string(c.To), RunID: c.RunID,
			Reason: c.Reason, DurationMS: c.DurationMS, Seq: c.Seq, At: now,
			OutputDigest: hex.EncodeToString(packDigest(c.OutputDigest)), Changed: c.Changed,
		}
	}
	return events
}

// stateChanged is the error of a record whose condition failed: bulk.ErrStateChanged when the
// batch exists (a device moved), bulk.ErrJobNotFound when it does not. A slim batch's counts
// are written again from what it holds (syncCounts): the failed record may be the retry of one
// whose counts were lost.
func (s *JobStore) stateChanged(ctx context.Context, jobID string, batch int) error {
	layout, err := s.batchLayout(ctx, jobID)
	if err != nil {
		return err
	}
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return err
	}
	in := &dynamodb.GetItemInput{TableName: aws.String(s.table), Key: key, ConsistentRead: aws.Bool(true)}
	if layout != layoutSlim {
		in.ProjectionExpression, in.ExpressionAttributeNames = aws.String("#pk"), map[string]string{"#pk": resources.AttrPK}
	}
	out, err := s.db.GetItem(ctx, in)
	switch {
	case err != nil:
		return fmt.Errorf("read batch %d of job %s: %w", batch, jobID, err)
	case out.Item == nil:
		return bulk.ErrJobNotFound
	}
	if layout == layoutSlim {
		if err := s.syncCounts(ctx, jobID, batch, out.Item); err != nil {
			return err
		}
	}
	return bulk.ErrStateChanged
}

// Events returns a page of the job's catch-up (see api.Jobs): the latest state of every device
// whose seq is above bulk.CatchUpFloor(since), at most limit of them, in seq order within the
// page, read in batch order from the cursor's batch and device; the last page ends with the
// job_done event when the job has ended. next is the cursor of the next page ("" on the last).
func (s *JobStore) Events(ctx context.Context, jobID string, since int64, cursor string, limit int) ([]bulk.Event, string, error) {
	j, err := s.JobControl(ctx, jobID)
	if err != nil {
		return nil, "", err
	}
	start, from, err := bulk.ParseEventsCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	floor := bulk.CatchUpFloor(since)
	var out []bulk.Event
	resume := ""
	next, err := s.eachBatch(ctx, j, start, func(int) int { return eventBatchesPerRead }, func(it batchItem) bool {
		first := 0
		if it.Batch == start {
			first = min(from, len(it.DeviceIDs))
		}
		for i := first; i < len(it.DeviceIDs); i++ {
			id := it.DeviceIDs[i]
			d := it.Devs[id]
			if d.Q <= floor {
				continue
			}
			if len(out) == limit {
				resume = bulk.EventsCursor(it.Batch, i)
				return false
			}
			st := d.state(jobID, id, it.Batch)
			out = append(out, bulk.Event{
				Type: bulk.EventProgress, JobID: jobID, DeviceID: id, Status: string(st.Status), RunID: st.RunID,
				Reason: st.Reason, DurationMS: st.DurationMS, OutputDigest: st.OutputDigest, Changed: st.Changed, Seq: st.Seq,
				At: time.UnixMilli(j.CreatedAt.UnixMilli() + st.Seq>>bulk.SeqBatchBits).UTC(),
			})
		}
		return true
	})
	if err != nil {
		return nil, "", err
	}
	if resume != "" {
		next = resume
	}
	slices.SortFunc(out, func(a, b bulk.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	if next == "" && j.Status.Terminal() && j.FinishedAt != nil && j.Seq > floor {
		// The job_done event carries the counts: read them now.
		if j, err = s.GetJob(ctx, jobID); err != nil {
			return nil, "", err
		}
		out = append(out, bulk.JobDoneEvent(j, *j.FinishedAt))
	}
	return out, next, nil
}

// eventBatchesPerRead is how many batch items one query of a catch-up page reads.
const eventBatchesPerRead = 20

// FinishBatch marks a batch done, counting it in the job's batches done once, and returns the job
// as it stands after (see bulk.JobStore): a slim batch in writes that need no transaction
// (finishSlim), earlier ones in a transaction with META's batches_done.
func (s *JobStore) FinishBatch(ctx context.Context, jobID string, batch int) (bulk.Job, error) {
	layout, err := s.batchLayout(ctx, jobID)
	if err != nil {
		return bulk.Job{}, err
	}
	if layout == layoutSlim {
		if err := s.finishSlim(ctx, jobID, batch); err != nil {
			return bulk.Job{}, err
		}
		return s.jobControl(ctx, jobID, false)
	}
	key, err := s.batchKey(ctx, jobID, batch)
	if err != nil {
		return bulk.Job{}, err
	}
	err = transact(ctx, s.db,
		types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: key,
			UpdateExpression:          aws.String("SET #state = :done, #ua = :now"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND #state <> :done"),
			ExpressionAttributeNames:  map[string]string{"#state": "state", "#ua": attrUpdatedAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":done": sv(batchDone), ":now": nv(s.now().UnixMilli())},
		}},
		types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(s.table), Key: jobKey(jobID),
			UpdateExpression:          aws.String("ADD #bd :one"),
			ExpressionAttributeNames:  map[string]string{"#bd": "batches_done"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": nv(1)},
		}},
	)
	if err != nil && !onlyConditionFailed(err) {
		return bulk.Job{}, fmt.Errorf("finish batch %d of job %s: %w", batch, jobID, err)
	}
	return s.jobControl(ctx, jobID, false)
}

// notEnded is the condition that a job item's status (#st) is not one of an ended job's, with
// its values.
func notEnded() (string, map[string]types.AttributeValue) {
	values := map[string]types.AttributeValue{}
	var keys []string
	for i, st := range bulk.TerminalJobStatuses() {
		k := fmt.Sprintf(":ended%d", i)
		values[k] = sv(string(st))
		keys = append(keys, k)
	}
	return "NOT (#st IN (" + strings.Join(keys, ", ") + "))", values
}

// EndJob sets the job's final status and finish time, unless the job has ended (see
// bulk.JobStore); its job_done seq follows from its times (decodeJob).
func (s *JobStore) EndJob(ctx context.Context, jobID string, status bulk.JobStatus, at time.Time) (bulk.Job, error) {
	cond, values := notEnded()
	values[":final"], values[":at"] = sv(string(status)), sv(at.UTC().Format(time.RFC3339Nano))
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: jobKey(jobID),
		UpdateExpression:                    aws.String("SET #st = :final, finished_at = :at"),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND " + cond),
		ExpressionAttributeNames:            map[string]string{"#st": "status"},
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err := stopFailure(err); err != nil {
		return bulk.Job{}, fmt.Errorf("end job %s: %w", jobID, err)
	}
	// Read back with the counts: the job_done event and the job's notices carry them.
	return s.getJob(ctx, jobID, false)
}

// stopFailure turns a failed condition of an update conditioned on a job existing and not having
// ended into bulk.ErrJobNotFound or bulk.ErrJobFinished; other errors are returned as they are.
func stopFailure(err error) error {
	old, ok := conditionFailedItem(err)
	if !ok {
		return err
	}
	if len(old) == 0 {
		return bulk.ErrJobNotFound
	}
	return bulk.ErrJobFinished
}

// RequestStop flags the job to stop with status (the first request's status wins) and records
// message as its error unless message is empty (see bulk.JobStore).
func (s *JobStore) RequestStop(ctx context.Context, jobID string, status bulk.JobStatus, message string) (bulk.Job, error) {
	cond, values := notEnded()
	values[":t"], values[":s"] = &types.AttributeValueMemberBOOL{Value: true}, sv(string(status))
	update := "SET cancel_requested = :t, stop_status = if_not_exists(stop_status, :s)"
	names := map[string]string{"#st": "status"}
	if message != "" {
		update += ", #err = :err"
		names["#err"], values[":err"] = "error", sv(message)
	}
	_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(s.table), Key: jobKey(jobID),
		UpdateExpression:                    aws.String(update),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND " + cond),
		ExpressionAttributeNames:            names,
		ExpressionAttributeValues:           values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err := stopFailure(err); err != nil {
		if errors.Is(err, bulk.ErrJobNotFound) || errors.Is(err, bulk.ErrJobFinished) {
			return bulk.Job{}, err
		}
		return bulk.Job{}, fmt.Errorf("stop job %s: %w", jobID, err)
	}
	// Read back with the counts: the answer to a cancel shows them.
	return s.getJob(ctx, jobID, false)
}

// PendingBatches lists the job's never-sent batches in order.
func (s *JobStore) PendingBatches(ctx context.Context, jobID string) ([]int, error) {
	items, err := s.allBatches(ctx, jobID)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, it := range items {
		if it.State == batchPending {
			out = append(out, it.Batch)
		}
	}
	return out, nil
}

// ClaimPendingBatch marks the first pending batch sent and returns it.
func (s *JobStore) ClaimPendingBatch(ctx context.Context, jobID string) (int, []string, bool, error) {
	items, err := s.allBatches(ctx, jobID)
	if err != nil {
		return 0, nil, false, err
	}
	for _, it := range items {
		if it.State != batchPending {
			continue
		}
		key, err := s.batchKey(ctx, jobID, it.Batch)
		if err != nil {
			return 0, nil, false, err
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: key,
			UpdateExpression:          aws.String("SET #state = :sent, #ua = :now"),
			ConditionExpression:       aws.String("#state = :pending"),
			ExpressionAttributeNames:  map[string]string{"#state": "state", "#ua": attrUpdatedAt},
			ExpressionAttributeValues: map[string]types.AttributeValue{":sent": sv(batchSent), ":pending": sv(batchPending), ":now": nv(s.now().UnixMilli())},
		})
		if isConditionFailed(err) {
			continue // another executor claimed it
		}
		if err != nil {
			return 0, nil, false, fmt.Errorf("claim batch %d of job %s: %w", it.Batch, jobID, err)
		}
		return it.Batch, it.DeviceIDs, true, nil
	}
	return 0, nil, false, nil
}

// Devices returns a page of the job's devices in batch order; the cursor is the next batch. It
// reads the batches the page needs and one more (to know where the next page starts), never the
// rest of the job: a page of a 20,000-device job costs what its devices cost.
func (s *JobStore) Devices(ctx context.Context, jobID string, cursor string, limit int) ([]bulk.DeviceState, string, error) {
	j, err := s.JobControl(ctx, jobID)
	if err != nil {
		return nil, "", err
	}
	start, err := bulk.ParseDevicesCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		limit = bulk.DefaultDevicesPage
	}
	// Batches are the same size but the last, so the job's mean batch size says how many
	// batches the rest of the page takes.
	perBatch := 1
	if j.Batches > 0 && j.DeviceCount > j.Batches {
		perBatch = (j.DeviceCount + j.Batches - 1) / j.Batches
	}
	var out []bulk.DeviceState
	// The batches that fit whole (the first always does), and one to see past the page.
	want := func(int) int {
		n := (limit - len(out)) / perBatch
		if len(out) == 0 {
			n = max(n, 1)
		}
		return min(n+1, maxBatchesPerRead)
	}
	next, err := s.eachBatch(ctx, j, start, want, func(it batchItem) bool {
		if len(out) > 0 && len(out)+len(it.DeviceIDs) > limit {
			return false
		}
		for _, id := range it.DeviceIDs {
			out = append(out, it.Devs[id].state(jobID, id, it.Batch))
		}
		return true
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// maxBatchesPerRead bounds one query of a page of devices (a page holds at most a few thousand
// devices, so this is never the limit that matters for full batches).
const maxBatchesPerRead = 1000
