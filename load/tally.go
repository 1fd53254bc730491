package load

import "sync/atomic"

// Tally is one caller's share of a writer's work: the requests applied (or
// records put) and the retries of the calls it was passed to, counted
// beside the writer's own Stats, which count every call. The backfill keeps
// one per source table, so that a table's counts stay its own while several
// tables share the writers.
//
// A Tally is safe for concurrent use; the zero value is ready; a nil *Tally
// counts nothing.
type Tally struct {
	done, retries atomic.Int64
}

// Done returns the requests applied (DynamoDB) or records put (Kinesis).
func (t *Tally) Done() int64 {
	if t == nil {
		return 0
	}
	return t.done.Load()
}

// Retries returns the retries of unprocessed items or failed entries.
func (t *Tally) Retries() int64 {
	if t == nil {
		return 0
	}
	return t.retries.Load()
}

func (t *Tally) addDone(n int64) {
	if t != nil {
		t.done.Add(n)
	}
}

func (t *Tally) addRetry() {
	if t != nil {
		t.retries.Add(1)
	}
}
