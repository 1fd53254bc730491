package lambdaesm

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// shard is one shard's reader state, its lanes (the concurrent batches of
// ParallelizationFactor) and its checkpoint tracker. Everything but id,
// kick and lanes is guarded by Mapping.mu.
type shard struct {
	id    string
	kick  chan struct{} // wakes an idle reader
	lanes []*lane

	iter     *string
	lastRead string // sequence number of the last record read
	closed   bool   // the shard's end was read
	// caughtUpAt is the start of the last read that found nothing more.
	caughtUpAt   time.Time
	millisBehind int64

	// entries are the records read and not yet part of the checkpoint, in
	// read (= sequence) order; entries[0] has index base.
	entries    []entry
	base, next uint64
	checkpoint string

	iteratorAge                     time.Duration
	invocations, retries, discarded int
}

type entry struct {
	seq  string
	done bool
}

func (sh *shard) wake() {
	select {
	case sh.kick <- struct{}{}:
	default:
	}
}

// laneOf assigns a partition key to one of n lanes: the same key always to
// the same lane, so that its records keep their order.
func laneOf(key string, n int) int {
	if n == 1 {
		return 0
	}
	h := md5.Sum([]byte(key))
	return int(binary.BigEndian.Uint64(h[:8]) % uint64(n))
}

// readShard polls the shard until ctx ends or the shard is closed: it reads
// while records are available and waits PollInterval (or a wake-up) after a
// read that found nothing, and it stops reading while maxPending records are
// waiting to be processed.
func (m *Mapping) readShard(ctx context.Context, sh *shard) {
	log := m.log.With("shard", sh.id)
	failures := 0
	for {
		m.mu.Lock()
		for len(sh.entries) >= m.maxPending {
			if err := m.waitLocked(ctx, 0); err != nil {
				m.mu.Unlock()
				return
			}
		}
		limit := min(10000, m.maxPending-len(sh.entries))
		iter, after := sh.iter, sh.lastRead
		m.mu.Unlock()

		if iter == nil { // expired earlier: position again after the last record read
			it, err := m.iterator(ctx, sh.id, after)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				failures++
				log.Warn("shard iterator failed; retrying", "err", err, "attempt", failures)
				if sleepCtx(ctx, m.backoff(failures)) != nil {
					return
				}
				continue
			}
			iter = it
		}
		start := time.Now()
		out, err := m.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(limit))})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var expired *ktypes.ExpiredIteratorException
			if errors.As(err, &expired) {
				iter = nil
			}
			m.mu.Lock()
			sh.iter = iter
			m.mu.Unlock()
			failures++
			log.Warn("get records failed; retrying", "err", err, "attempt", failures)
			if sleepCtx(ctx, m.backoff(failures)) != nil {
				return
			}
			continue
		}
		failures = 0
		recs := make([]*record, 0, len(out.Records))
		for _, r := range out.Records {
			rec, err := m.newRecord(sh.id, r, start)
			if err != nil { // cannot happen with valid JSON types; skip nothing silently
				log.Error("record not renderable; stopping the shard", "err", err)
				return
			}
			recs = append(recs, rec)
		}
		m.mu.Lock()
		m.dispatchLocked(sh, recs)
		sh.iter = out.NextShardIterator
		sh.millisBehind = aws.ToInt64(out.MillisBehindLatest)
		idle := len(recs) == 0 && sh.millisBehind == 0
		if idle {
			sh.caughtUpAt = start
		}
		if out.NextShardIterator == nil {
			sh.closed = true
			log.Info("shard closed")
		}
		m.notifyLocked()
		closed := sh.closed
		m.mu.Unlock()
		if closed {
			return
		}
		if len(recs) == 0 {
			t := time.NewTimer(m.cfg.PollInterval)
			select {
			case <-t.C:
			case <-sh.kick:
			case <-ctx.Done():
				t.Stop()
				return
			}
			t.Stop()
		}
	}
}

func (m *Mapping) newRecord(shardID string, r ktypes.Record, readAt time.Time) (*record, error) {
	seq, key := aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey)
	arrival := aws.ToTime(r.ApproximateArrivalTimestamp)
	ev, err := m.eventRecord(shardID, seq, key, r.Data, arrival)
	if err != nil {
		return nil, err
	}
	return &record{seq: seq, key: key, arrival: arrival, readAt: readAt, event: ev}, nil
}

// dispatchLocked adds records to the shard's tracker and to their lanes.
func (m *Mapping) dispatchLocked(sh *shard, recs []*record) {
	for _, r := range recs {
		r.idx = sh.next
		sh.next++
		sh.entries = append(sh.entries, entry{seq: r.seq})
		sh.lastRead = r.seq
		ln := sh.lanes[laneOf(r.key, len(sh.lanes))]
		ln.queue = append(ln.queue, r)
	}
}

// doneLocked marks records processed (or discarded) and moves the
// checkpoint over the processed prefix.
func (m *Mapping) doneLocked(sh *shard, recs []*record) {
	for _, r := range recs {
		sh.entries[r.idx-sh.base].done = true
	}
	n := 0
	for n < len(sh.entries) && sh.entries[n].done {
		sh.checkpoint = sh.entries[n].seq
		n++
	}
	sh.entries = sh.entries[n:]
	sh.base += uint64(n)
	if len(recs) > 0 {
		sh.iteratorAge = time.Since(recs[len(recs)-1].arrival)
	}
	m.notifyLocked()
}
