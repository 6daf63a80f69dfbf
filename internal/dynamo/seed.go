package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/netauto/netauto/internal/run"
)

// SeedRun is one finished run and its whole output (at most run.ChunkSize bytes: one chunk) for
// SeedRuns.
type SeedRun struct {
	Run    run.Run
	Output []byte
}

// SeedRuns bulk-loads finished runs in the run store's exact layout with BatchWriteItem from
// `workers` goroutines: each run item with its output inline and the tail ledger item that counts
// it (marked changed, as a finish would). It is a loader for benchmarks and tests on a table that
// holds none of these runs yet.
func (s *RunStore) SeedRuns(ctx context.Context, runs []SeedRun, workers int) error {
	var reqs []types.WriteRequest
	for _, sr := range runs {
		r := sr.Run
		if !r.Status.Terminal() {
			return fmt.Errorf("seed run %s: status %q is not terminal", r.ID, r.Status)
		}
		if len(sr.Output) > run.ChunkSize {
			return fmt.Errorf("seed run %s: output over one chunk", r.ID)
		}
		r.Bytes = int64(len(sr.Output))
		r.Chunks = 0
		if len(sr.Output) > 0 {
			r.Chunks = 1
		}
		item, tail, err := finishedItems(r, sr.Output) // under one chunk: all of it is the inline tail
		if err != nil {
			return err
		}
		reqs = appendPuts(reqs, item, tail)
	}
	return batchWriteParallel(ctx, s.db, s.table, reqs, workers)
}
