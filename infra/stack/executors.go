package stack

import "runtime"

// ExecutorBatches is how many batches the local executor runs at once (bulk.Executor.MaxBatches):
// one per two CPU cores, at least one. The local event source still takes as many messages at
// once as the deployed one (resources.ExecutorMaxConcurrency), so the next batch is at hand the
// moment one ends.
//
// In AWS each invocation is a Lambda instance with its own CPU, running one batch, and DynamoDB
// takes their writes in parallel. Locally every invocation shares this machine's cores and
// DynamoDB Local's single writer, so batches run side by side only queue their results behind
// each other: one at a time brings each device's result to its browser sooner and ends the job
// no later (docs/performance.md has the measurement).
func ExecutorBatches() int {
	return max(1, runtime.NumCPU()/2)
}
