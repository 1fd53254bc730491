package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ferry-migrate/ferry/load"
)

// Several processes can share one backfill: the coordinator (`ferry
// backfill`) exports the snapshot and plans the chunks, workers (`ferry
// backfill --join`, on any machine) import the snapshot, and every process,
// the coordinator too, takes chunks through leases in the control table
// (load.LeaseStore, the way the Kinesis Client Library shares shards).
//
// A chunk's lease item is its done marker too: sk "done:<table>:<chunk>"
// under the backfill's state id. While a worker copies the chunk the item
// holds the lease (owner, counter, expiry, renewed by load.LeaseStore.Keep);
// when the chunk's rows are durable, load.LeaseStore.Finish stores the
// chunk's result ({"Rows":…,"Worker":…}) and frees the lease in one write,
// conditional on the counter the worker last saw. So:
//
//   - a worker that lost its lease (taken over after it expired: the worker
//     was stopped, or cut off from DynamoDB for longer than the lease) stops
//     writing the chunk (Keep cancels the context it copies under), and its
//     Finish fails: only the worker that holds the lease at the end records
//     the chunk, and the chunk is counted done once;
//   - the rows a lost worker wrote are the same row images at the same
//     version as the new owner's (one snapshot), so writing a chunk twice is
//     exact in effect;
//   - a worker killed with -9 leaves leases that expire: whoever finds one
//     expired takes it over (TakeOver, conditional on the counter read).

// chunkLeases is what the backfill needs of the chunks' leases
// (*load.LeaseStore, which documents each call). It is safe for
// concurrent use. Acquire fails with load.ErrLeaseHeld when the lease is
// held or finished; TakeOver and Finish with load.ErrLeaseLost when the
// lease changed since the caller saw it.
type chunkLeases interface {
	Owner() string
	Duration() time.Duration
	Acquire(ctx context.Context, key string) (load.Lease, error)
	Get(ctx context.Context, key string) (load.Lease, bool, error)
	TakeOver(ctx context.Context, l load.Lease) (load.Lease, error)
	Release(ctx context.Context, l load.Lease) error
	Finish(ctx context.Context, l load.Lease, value []byte) error
	Keep(ctx context.Context, l load.Lease) (context.Context, func() (load.Lease, error))
}

// chunkOutcome is what became of one attempt at a leased chunk.
type chunkOutcome int

const (
	chunkFinished   chunkOutcome = iota // copied and recorded done by this worker
	chunkDoneElse                       // recorded done by another worker (or an earlier run)
	chunkBusy                           // another worker holds a live lease: look again later
	chunkLost                           // the lease was lost while copying: not recorded; look again later
	chunkUnrecorded                     // copied, but the copy asked not to record it done (rows failed under stop)
)

func (o chunkOutcome) String() string {
	return [...]string{"finished", "done elsewhere", "busy", "lost", "unrecorded"}[o]
}

// chunkKey is the control-table sk of a chunk's lease and done marker.
func chunkKey(table string, chunk int) string {
	return fmt.Sprintf("done:%s:%d", table, chunk)
}

// chunkResult is the value of a done marker.
type chunkResult struct {
	Rows   int64
	Worker string `json:",omitempty"` // who recorded it ("" for a run without leases)
}

// claimChunk takes the lease of key: free (or new) → acquired; held and
// expired → taken over; held and live → busy, with the time its lease runs
// out; finished → done elsewhere. A race lost to another worker is busy
// (wait 0: look again).
func claimChunk(ctx context.Context, leases chunkLeases, key string, now func() time.Time) (load.Lease, chunkOutcome, time.Duration, error) {
	l, err := leases.Acquire(ctx, key)
	if err == nil {
		return l, chunkFinished, 0, nil
	}
	if !errors.Is(err, load.ErrLeaseHeld) {
		return load.Lease{}, 0, 0, err
	}
	seen, found, err := leases.Get(ctx, key)
	switch {
	case err != nil:
		return load.Lease{}, 0, 0, err
	case !found: // deleted in between (a --restart elsewhere): look again
		return load.Lease{}, chunkBusy, 0, nil
	case seen.Done():
		return load.Lease{}, chunkDoneElse, 0, nil
	case seen.Free(): // released in between
		return load.Lease{}, chunkBusy, 0, nil
	case !seen.Expired(now()):
		return load.Lease{}, chunkBusy, seen.Expires.Sub(now()), nil
	}
	l, err = leases.TakeOver(ctx, seen)
	switch {
	case errors.Is(err, load.ErrLeaseLost), errors.Is(err, load.ErrLeaseHeld):
		return load.Lease{}, chunkBusy, 0, nil // another worker was first, or its owner renewed
	case err != nil:
		return load.Lease{}, 0, 0, err
	}
	return l, chunkFinished, 0, nil
}

// chunkAttempt is what leasedChunk did.
type chunkAttempt struct {
	out  chunkOutcome
	wait time.Duration // chunkBusy: until the holder's lease runs out
	lost error         // chunkLost: why (load.ErrLeaseLost wrapped)
}

// leasedChunk copies the chunk of key under its lease: it claims the lease
// (claimChunk), runs copy under a context that ends when the lease is lost
// (load.LeaseStore.Keep), and records the chunk done with the value copy
// returns (load.LeaseStore.Finish) while the lease is unchanged. copy
// returns a nil value to leave the chunk undone (the lease is released).
//
// Its outcome is chunkFinished only when this call recorded the chunk: a
// chunk is counted by one worker once. A copy that failed because the lease
// was lost is chunkLost, not an error. Any other error of copy is returned, after the
// lease was released (best effort) so that another worker can take the
// chunk at once.
func leasedChunk(ctx context.Context, leases chunkLeases, key string, now func() time.Time,
	copy func(ctx context.Context) ([]byte, error)) (chunkAttempt, error) {
	l, out, wait, err := claimChunk(ctx, leases, key, now)
	if err != nil || out != chunkFinished {
		return chunkAttempt{out: out, wait: wait}, err
	}
	held, stop := leases.Keep(ctx, l)
	value, cerr := copy(held)
	last, lost := stop()
	if lost != nil {
		// Whatever copy returned, the chunk is no longer this worker's.
		return chunkAttempt{out: chunkLost, lost: lost}, nil
	}
	if cerr != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leases.Duration())
		defer cancel()
		if rerr := leases.Release(rctx, last); rerr != nil && !errors.Is(rerr, load.ErrLeaseLost) {
			cerr = errors.Join(cerr, rerr)
		}
		return chunkAttempt{}, cerr
	}
	if value == nil {
		if err := leases.Release(ctx, last); err != nil && !errors.Is(err, load.ErrLeaseLost) {
			return chunkAttempt{}, err
		}
		return chunkAttempt{out: chunkUnrecorded}, nil
	}
	switch err := leases.Finish(ctx, last, value); {
	case errors.Is(err, load.ErrLeaseLost):
		return chunkAttempt{out: chunkLost, lost: err}, nil
	case err != nil:
		return chunkAttempt{}, err
	}
	return chunkAttempt{out: chunkFinished}, nil
}

// doneValue is the done marker's value of a chunk of rows copied by worker.
func doneValue(rows int64, worker string) []byte {
	b, _ := json.Marshal(chunkResult{Rows: rows, Worker: worker})
	return b
}
