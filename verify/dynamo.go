package verify

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/transform"
)

// The DynamoDB check of one target table runs in two passes.
//
// Pass 1 reads every source row of the tables that write to the target (in the
// snapshot, in primary-key chunks over several connections) and, at the same
// time, scans the target once (parallel Scan segments). Both sides are reduced
// to digests per key range: the range of an item is a bucket of the hash of its
// key identity (pk, sk), which both sides compute from the item alone. Hash
// ranges, rather than primary-key ranges, let a scanned item find its range
// without reproducing PostgreSQL's ordering (collations, types) in Go, and
// spread every table evenly. Memory is a few digests per range: independent of
// the table's size. When the sides agree, each row and each item was read once.
//
// Pass 2 compares item by item only the ranges whose digests differ: it scans
// the target again keeping the items of those ranges (at most DrillItems at a
// time; more ranges take more rounds) and re-reads the source in the same
// snapshot (the cheap side), comparing each row of a selected range with its
// item. Items left over are extra.

// bucketsFor picks the number of key ranges of a table: about 512 rows each,
// a power of two between 1 and 4096.
func bucketsFor(rows int64) int {
	n := rows / 512
	if n < 1 {
		return 1
	}
	if n >= 4096 {
		return 4096
	}
	return 1 << bits.Len64(uint64(n-1))
}

// chunkJob is one primary-key chunk of a table to read.
type chunkJob struct {
	tc *tableCheck
	ch extract.Chunk
}

func (v *verifier) checkTarget(ctx context.Context, target string, tcs []*tableCheck) error {
	for _, tc := range tcs {
		chunks, rows, err := v.conns[0].PlanChunks(ctx, tc.tp.Source, v.cfg.ChunkRows)
		if err != nil {
			return err
		}
		tc.chunks = chunks
		tc.nb = bucketsFor(rows)
		tc.exp = make([]Digest, tc.nb)
		tc.act = make([]Digest, tc.nb)
		tc.rep.Ranges = tc.nb
	}
	var unmapped *tableCheck
	if v.all {
		unmapped = &tableCheck{rep: &TableReport{Table: "(unmapped)", Target: target}, max: v.cfg.MaxFindings}
		if spec := v.cfg.Plan.Targets()[target]; spec != nil {
			unmapped.keyNames = []string{spec.PK}
			if spec.SK != "" {
				unmapped.keyNames = append(unmapped.keyNames, spec.SK)
			}
		}
	}
	route := v.router(tcs, unmapped)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return v.digestSource(gctx, tcs) })
	g.Go(func() error { return v.digestTarget(gctx, target, route) })
	if err := g.Wait(); err != nil {
		return err
	}
	if unmapped != nil && unmapped.rep.TargetItems > 0 {
		v.extra = append(v.extra, unmapped)
	}
	return v.drill(ctx, target, tcs, route)
}

// router maps a scanned item to the check of its table: nil for items of
// mapped tables that are not being checked; unmapped (possibly nil) for items
// whose _table is no mapped table.
func (v *verifier) router(tcs []*tableCheck, unmapped *tableCheck) func(transform.Item) *tableCheck {
	byName := map[string]*tableCheck{}
	for _, tc := range tcs {
		if _, dup := byName[tc.tp.Source.Name]; !dup {
			byName[tc.tp.Source.Name] = tc
		}
	}
	return func(item transform.Item) *tableCheck {
		name, _ := item[transform.AttrTable].(*types.AttributeValueMemberS)
		if name != nil {
			if tc := byName[name.Value]; tc != nil {
				return tc
			}
			if v.known[name.Value] {
				return nil
			}
		}
		return unmapped
	}
}

// readSource reads every chunk of the tables over the snapshot connections
// and calls row for each row; row is called concurrently from the workers
// (worker is the connection's index).
func (v *verifier) readSource(ctx context.Context, tcs []*tableCheck, row func(worker int, tc *tableCheck, r extract.Row) error) error {
	jobs := make(chan chunkJob)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(jobs)
		for _, tc := range tcs {
			for _, ch := range tc.chunks {
				select {
				case jobs <- chunkJob{tc, ch}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	for i, conn := range v.conns {
		g.Go(func() error {
			for j := range jobs {
				if _, err := conn.ReadChunk(gctx, j.tc.tp.Source, j.ch, func(r extract.Row) error { return row(i, j.tc, r) }); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// scan reads every item of a DynamoDB table with a parallel, strongly
// consistent Scan; visit is called concurrently from the segments.
func (v *verifier) scan(ctx context.Context, table string, visit func(seg int, item transform.Item) error) error {
	if len(v.kept) == 0 {
		return ScanParallel(ctx, v.cfg.Dynamo, table, v.cfg.Segments, visit)
	}
	return ScanParallel(ctx, v.cfg.Dynamo, table, v.cfg.Segments, func(seg int, item transform.Item) error {
		if t, ok := item[transform.AttrTable].(*types.AttributeValueMemberS); ok {
			for _, a := range v.kept[t.Value] {
				delete(item, a)
			}
		}
		return visit(seg, item)
	})
}

// ScanParallel reads every item of a DynamoDB table with a parallel, strongly
// consistent Scan of segments segments; visit is called concurrently (once per
// item, from the item's segment) and may stop the scan with an error.
func ScanParallel(ctx context.Context, client *dynamodb.Client, table string, segments int, visit func(seg int, item transform.Item) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for seg := 0; seg < segments; seg++ {
		g.Go(func() error {
			p := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{
				TableName: aws.String(table), ConsistentRead: aws.Bool(true),
				Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(segments)),
			})
			for p.HasMorePages() {
				page, err := p.NextPage(gctx)
				if err != nil {
					return fmt.Errorf("scan %s segment %d: %w", table, seg, err)
				}
				for _, it := range page.Items {
					if err := visit(seg, it); err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// localDigests are one goroutine's digests, merged into the tables' at the end.
type localDigests map[*tableCheck][]Digest

func (l localDigests) add(tc *tableCheck, b int, h uint64) {
	d := l[tc]
	if d == nil {
		d = make([]Digest, tc.nb)
		l[tc] = d
	}
	d[b].Add(h)
}

func mergeDigests(locals []localDigests, side func(*tableCheck) []Digest) {
	for _, l := range locals {
		for tc, ds := range l {
			dst := side(tc)
			for b := range ds {
				dst[b].Merge(ds[b])
			}
		}
	}
}

// digestSource is pass 1's source side.
func (v *verifier) digestSource(ctx context.Context, tcs []*tableCheck) error {
	locals := make([]localDigests, len(v.conns))
	hashers := make([]hasher, len(v.conns))
	counts := make([]map[*tableCheck]int64, len(v.conns))
	for i := range locals {
		locals[i], counts[i] = localDigests{}, map[*tableCheck]int64{}
	}
	err := v.readSource(ctx, tcs, func(w int, tc *tableCheck, row extract.Row) error {
		counts[w][tc]++
		item, id, err := tc.tp.Item(row, extract.Position{})
		if err != nil {
			pk := pkOfRow(tc.tp, row)
			tc.add(&finding{Finding: Finding{Kind: KindUnconvertible, Table: tc.rep.Table, Key: keyString(tc.tp, pk), Reason: err.Error()}, pk: pk})
			return nil
		}
		locals[w].add(tc, bucketOf(id, tc.nb), hashers[w].item(item, transform.AttrVersion))
		return nil
	})
	if err != nil {
		return err
	}
	mergeDigests(locals, func(tc *tableCheck) []Digest { return tc.exp })
	for _, c := range counts {
		for tc, n := range c {
			tc.rep.SourceRows += n
		}
	}
	return nil
}

// digestTarget is pass 1's DynamoDB side.
func (v *verifier) digestTarget(ctx context.Context, target string, route func(transform.Item) *tableCheck) error {
	segs := v.cfg.Segments
	locals := make([]localDigests, segs)
	hashers := make([]hasher, segs)
	for i := range locals {
		locals[i] = localDigests{}
	}
	err := v.scan(ctx, target, func(seg int, item transform.Item) error {
		tc := route(item)
		switch {
		case tc == nil:
			return nil
		case tc.tp == nil:
			v.addUnmapped(tc, item)
			return nil
		}
		id, key, ok := keyOfItem(tc.tp, item)
		if !ok {
			// An item of this table whose key attributes are not strings cannot
			// have been written by ferry: report it as extra.
			tc.mu.Lock()
			tc.rep.TargetItems++
			tc.mu.Unlock()
			v.addExtra(tc, "", key, item)
			return nil
		}
		locals[seg].add(tc, bucketOf(id, tc.nb), hashers[seg].item(item, transform.AttrVersion))
		return nil
	})
	if err != nil {
		return err
	}
	mergeDigests(locals, func(tc *tableCheck) []Digest { return tc.act })
	for _, l := range locals {
		for tc, ds := range l {
			for _, d := range ds {
				tc.rep.TargetItems += int64(d.Count)
			}
		}
	}
	return nil
}

// addUnmapped records an item whose _table names no mapped table.
func (v *verifier) addUnmapped(tc *tableCheck, item transform.Item) {
	key := transform.Item{}
	for _, k := range tc.keyNames {
		if a, ok := item[k]; ok {
			key[k] = a
		}
	}
	table := "(no _table)"
	if s, ok := item[transform.AttrTable].(*types.AttributeValueMemberS); ok {
		table = s.Value
	}
	tc.mu.Lock()
	tc.rep.TargetItems++
	tc.mu.Unlock()
	rk := renderKey(key)
	tc.add(&finding{Finding: Finding{Kind: KindExtra, Table: table, Key: itemKeyString(rk), ItemKey: rk,
		Reason: "item of no mapped table"}, itemKey: key})
}

// addExtra records an item that no source row explains.
func (v *verifier) addExtra(tc *tableCheck, keyID string, key, item transform.Item) {
	f := &finding{Finding: Finding{Kind: KindExtra, Table: tc.rep.Table, ItemKey: renderKey(key)}, keyID: keyID, itemKey: key}
	if pk, ok := pkOfItem(tc.tp, item); ok {
		f.pk = pk
		f.Key = keyString(tc.tp, pk)
	} else {
		f.Key = itemKeyString(f.ItemKey)
	}
	f.version, f.hasVer = itemVersion(item)
	tc.explainExtra(f, item)
	tc.add(f)
}

// drill compares the ranges whose digests differ item by item, in rounds that
// hold at most DrillItems items.
func (v *verifier) drill(ctx context.Context, target string, tcs []*tableCheck, route func(transform.Item) *tableCheck) error {
	type rng struct {
		tc *tableCheck
		b  int
	}
	var pending []rng
	for _, tc := range tcs {
		tc.sel = make([]bool, tc.nb)
		for b := range tc.nb {
			if tc.exp[b] != tc.act[b] {
				pending = append(pending, rng{tc, b})
				tc.rep.RangesDrilled++
			}
		}
	}
	for len(pending) > 0 {
		held, n := 0, 0
		for n < len(pending) && (n == 0 || held+int(pending[n].tc.act[pending[n].b].Count) <= v.cfg.DrillItems) {
			held += int(pending[n].tc.act[pending[n].b].Count)
			pending[n].tc.sel[pending[n].b] = true
			n++
		}
		var group []*tableCheck
		for _, r := range pending[:n] {
			if len(group) == 0 || group[len(group)-1] != r.tc {
				group = append(group, r.tc)
			}
		}
		if err := v.drillRound(ctx, target, group, route); err != nil {
			return err
		}
		for _, r := range pending[:n] {
			r.tc.sel[r.b] = false
		}
		pending = pending[n:]
	}
	return nil
}

func (v *verifier) drillRound(ctx context.Context, target string, group []*tableCheck, route func(transform.Item) *tableCheck) error {
	inGroup := map[*tableCheck]bool{}
	for _, tc := range group {
		inGroup[tc] = true
		tc.held = map[string]transform.Item{}
	}
	defer func() {
		for _, tc := range group {
			tc.held = nil
		}
	}()
	err := v.scan(ctx, target, func(_ int, item transform.Item) error {
		tc := route(item)
		if tc == nil || !inGroup[tc] {
			return nil
		}
		id, _, ok := keyOfItem(tc.tp, item)
		if !ok || !tc.sel[bucketOf(id, tc.nb)] {
			return nil
		}
		tc.mu.Lock()
		tc.held[id] = item
		tc.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	err = v.readSource(ctx, group, func(_ int, tc *tableCheck, row extract.Row) error {
		key, id, err := tc.tp.Key(row)
		if err != nil || !tc.sel[bucketOf(id, tc.nb)] {
			return nil
		}
		want, _, err := tc.tp.Item(row, extract.Position{})
		if err != nil {
			// Reported as unconvertible (or dead-lettered) in pass 1: the
			// item at its key is that row's stale item, the same finding,
			// not an extra one.
			tc.mu.Lock()
			delete(tc.held, id)
			tc.mu.Unlock()
			return nil
		}
		tc.mu.Lock()
		got, ok := tc.held[id]
		delete(tc.held, id)
		tc.mu.Unlock()
		pk := pkOfRow(tc.tp, row)
		f := &finding{Finding: Finding{Table: tc.rep.Table, Key: keyString(tc.tp, pk), ItemKey: renderKey(key)}, keyID: id, itemKey: key, pk: pk}
		if !ok {
			f.Kind = KindMissing
			tc.add(f)
			return nil
		}
		if diffs := CompareItems(want, got, transform.AttrVersion); len(diffs) > 0 {
			f.Kind, f.Columns = KindDiffers, diffs
			f.version, f.hasVer = itemVersion(got)
			tc.add(f)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, tc := range group {
		for id, item := range tc.held {
			_, key, _ := keyOfItem(tc.tp, item)
			v.addExtra(tc, id, key, item)
		}
	}
	return nil
}
