package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// The stream check reads every shard of a stream from its start, folds the
// events per row as of the snapshot LSN (events after it are checked for order
// only), and compares the folded rows with the source rows of the snapshot,
// rendered the way the mapping renders an event's after image. When sync is
// running, it first waits until sync's checkpoint has passed the snapshot, so
// that every change the snapshot saw is on the stream. A second read of the
// stream fetches the stream's values of the rows that differ (the first keeps
// only a hash per column).

// checkStream verifies one stream.
func (v *verifier) checkStream(ctx context.Context, name string) StreamReport {
	sr := StreamReport{Stream: name, Findings: []Finding{}}
	var tcs []*tableCheck
	var fts []FoldTable
	for _, tc := range v.tables {
		if tc.tp.Stream != name {
			continue
		}
		tcs = append(tcs, tc)
		sr.Tables = append(sr.Tables, tc.rep.Table)
		ft := FoldTable{Name: tc.rep.Table, PK: tc.tp.Source.PKNames()}
		for _, c := range tc.tp.Columns {
			ft.Columns = append(ft.Columns, c.Name)
		}
		fts = append(fts, ft)
	}
	if err := v.streamCheck(ctx, &sr, tcs, fts); err != nil {
		sr.Error = err.Error()
	}
	SortFindings(sr.Findings)
	return sr
}

func (v *verifier) streamCheck(ctx context.Context, sr *StreamReport, tcs []*tableCheck, fts []FoldTable) error {
	for _, tc := range tcs {
		if tc.chunks == nil {
			chunks, _, err := v.conns[0].PlanChunks(ctx, tc.tp.Source, v.cfg.ChunkRows)
			if err != nil {
				return err
			}
			tc.chunks = chunks
		}
	}
	if v.syncRunning {
		cp, ok, err := v.waitCheckpoint(ctx, v.snapLSN)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("sync's checkpoint (%s) did not reach the snapshot (%s) within %s: the stream may still lack changes", cp, v.snapLSN, v.cfg.Wait)
		}
	}
	fold := NewFolder(fts, v.snapLSN, v.cfg.MaxFindings)
	if v.txSnap.Xmax != 0 {
		fold.Visible = v.txSnap.Visible
	}
	meta, err := describeStream(ctx, v.cfg.Kinesis, sr.Stream)
	if err != nil {
		return err
	}
	oldest := map[string]extract.Position{} // shard → its oldest event held
	shards, err := v.readStreamShards(ctx, sr.Stream, func(shard string, ev Event) {
		if _, ok := oldest[shard]; !ok {
			oldest[shard] = ev.Pos
		}
		for _, a := range v.kept[ev.Table] { // keep_dropped: not compared
			delete(ev.After, a)
		}
		fold.Apply(ev)
	})
	if err != nil {
		return err
	}
	sr.Shards = shards
	sr.HeldFrom = heldFrom(oldest)
	if v.history != nil {
		sr.Trimmed = trimmedBy(*v.history, meta, oldest, v.cfg.Now())
	}
	var mu sync.Mutex
	var kept []Finding // the first MaxFindings in report order
	truncated := false
	add := func(fd Finding) {
		var dropped bool
		kept, dropped = keepSmallest(kept, fd, v.cfg.MaxFindings, compareFindings)
		truncated = truncated || dropped
	}
	err = v.readSource(ctx, tcs, func(_ int, tc *tableCheck, row extract.Row) error {
		img, err := afterImage(tc.tp, row)
		mu.Lock()
		defer mu.Unlock()
		sr.SourceRows++
		if err != nil {
			// The row has no event form (as it has no item): a finding, and
			// its key's events are not extra.
			if kimg, kerr := afterImage(tc.tp, keyColumnsOnly(tc.tp, row)); kerr == nil {
				fold.Compare(tc.rep.Table, kimg)
			}
			fd := Finding{Kind: KindUnconvertible, Table: tc.rep.Table, Key: tc.tp.KeyString(row), Reason: err.Error()}
			if v.cfg.DeadLetters.relabel(&fd) {
				sr.DeadLettered++
			} else {
				sr.Unconvertible++
			}
			add(fd)
			return nil
		}
		_, fd := fold.Compare(tc.rep.Table, img)
		if fd == nil {
			sr.Matching++
			return nil
		}
		fd.Key = tc.tp.KeyString(row)
		switch {
		case v.cfg.DeadLetters.relabel(fd):
			sr.DeadLettered++
		case fd.Kind == KindMissing && sr.Trimmed != "":
			// Its only events (the backfill's, at least) have expired.
			sr.Expired++
			return nil
		case fd.Kind == KindMissing:
			sr.Missing++
		default:
			sr.Differing++
		}
		add(*fd)
		return nil
	})
	if err != nil {
		return err
	}
	fold.Leftovers(func(fd Finding) {
		sr.Extra++
		add(fd)
	})
	for _, fd := range fold.Findings {
		add(fd)
	}
	diffKeys := map[string]bool{}
	for _, fd := range kept {
		if fd.rowKey != "" {
			diffKeys[fd.rowKey] = true
		}
	}
	if len(diffKeys) > 0 {
		again := NewFolder(fts, v.snapLSN, v.cfg.MaxFindings)
		again.Keep(diffKeys)
		if _, err := v.readStream(ctx, sr.Stream, func(ev Event) { again.Apply(ev) }); err != nil {
			return err
		}
		for i := range kept {
			if kept[i].rowKey != "" {
				again.Fill(kept[i].rowKey, &kept[i])
			}
		}
	}
	sr.Events, sr.Keys, sr.AfterSnapshot = fold.Events, fold.Keys(), fold.AfterCutoff
	sr.Duplicates, sr.Inversions = fold.Duplicates, fold.Inversions
	sr.Findings = kept
	if sr.Findings == nil {
		sr.Findings = []Finding{}
	}
	sr.FindingsTruncated = truncated || fold.Truncated
	return nil
}

// keyColumnsOnly returns a copy of the row with every column outside the
// primary key NULL.
func keyColumnsOnly(tp *transform.TablePlan, row extract.Row) extract.Row {
	out := make(extract.Row, len(row))
	for i := range out {
		out[i].Null = true
	}
	for _, i := range tp.Source.PK {
		out[i] = row[i]
	}
	return out
}

// afterImage renders a source row as the after image of its event.
func afterImage(tp *transform.TablePlan, row extract.Row) (map[string]json.RawMessage, error) {
	ch := extract.Change{Table: tp.Source, Op: extract.OpRead, After: row}
	_, data, err := tp.Record(&ch, transform.RecordSource{}, time.Time{})
	if err != nil {
		return nil, err
	}
	var env struct {
		After map[string]json.RawMessage `json:"after"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, err
	}
	return env.After, nil
}

// readStream reads every record of every shard of a stream from its start (in
// shard order, each shard in order) and passes the decoded events to fn. It
// returns the number of shards.
func (v *verifier) readStream(ctx context.Context, stream string, fn func(Event)) (int, error) {
	return v.readStreamShards(ctx, stream, func(_ string, ev Event) { fn(ev) })
}

// readStreamShards is readStream whose fn also learns the event's shard.
func (v *verifier) readStreamShards(ctx context.Context, stream string, fn func(shard string, ev Event)) (int, error) {
	return ReadStream(ctx, v.cfg.Kinesis, stream, func(shard string, rec ktypes.Record) error {
		ev, err := DecodeEvent(aws.ToString(rec.PartitionKey), rec.Data)
		if err != nil {
			return fmt.Errorf("stream %s shard %s record %s: %w", stream, shard, aws.ToString(rec.SequenceNumber), err)
		}
		if ev.Op != OpSchema && ev.Op != OpMessage {
			fn(shard, ev)
		}
		return nil
	})
}

// ReadStream reads every record of every shard of a stream, from the trim
// horizon to the latest record, shard after shard; fn may stop it with an
// error. It returns the number of shards. (kinesalite needs StreamName on
// every call, so it is always passed.)
func ReadStream(ctx context.Context, client *kinesis.Client, stream string, fn func(shard string, rec ktypes.Record) error) (int, error) {
	var shards []ktypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := client.ListShards(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("list shards of %s: %w", stream, err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	for _, sh := range shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return 0, fmt.Errorf("shard iterator of %s/%s: %w", stream, aws.ToString(sh.ShardId), err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				return 0, fmt.Errorf("get records of %s/%s: %w", stream, aws.ToString(sh.ShardId), err)
			}
			for _, r := range res.Records {
				if err := fn(aws.ToString(sh.ShardId), r); err != nil {
					return 0, err
				}
			}
			// Caught up: an empty page at the tip (kinesalite returns what it
			// holds; Kinesis says how far behind the tip the page is).
			if len(res.Records) == 0 && aws.ToInt64(res.MillisBehindLatest) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return len(shards), nil
}
