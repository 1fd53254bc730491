package load

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestTallyCountsEachCallersShare: concurrent calls on one writer, each
// with a Tally of its own, count exactly their own requests and retries;
// the tallies add up to the writer's Stats.
func TestTallyCountsEachCallersShare(t *testing.T) {
	f := newFakeDynamo(0.3)
	dw := newDynamoWriter(f, DynamoConfig{Logger: testLogger(t), Workers: 4, Backoff: fastBackoff()})
	fk := newFakeKinesis(0.3)
	kw := newKinesisWriter(fk, kcfg(t))
	sizes := []int{1, 40, 300, 777}
	dt, kt := make([]Tally, len(sizes)), make([]Tally, len(sizes))
	var wg sync.WaitGroup
	for c, n := range sizes {
		wg.Go(func() {
			var reqs []WriteRequest
			var recs []Record
			for i := range n {
				reqs = append(reqs, putReq(fmt.Sprintf("t%d", c), i, i))
				recs = append(recs, Record{Stream: "s", PartitionKey: fmt.Sprintf("c%d-%d", c, i), Data: []byte("x")})
			}
			if fails, err := dw.WriteCounted(context.Background(), reqs, &dt[c]); err != nil || len(fails) > 0 {
				t.Errorf("caller %d: WriteCounted: %v, failures %v", c, err, fails)
			}
			if fails, err := kw.PutAckedCounted(context.Background(), recs, make([]bool, n), &kt[c]); err != nil || len(fails) > 0 {
				t.Errorf("caller %d: PutAckedCounted: %v, failures %v", c, err, fails)
			}
		})
	}
	wg.Wait()
	var dRetries, kRetries int64
	for c, n := range sizes {
		if dt[c].Done() != int64(n) || kt[c].Done() != int64(n) {
			t.Errorf("caller %d: tallies count %d items and %d records, want %d each", c, dt[c].Done(), kt[c].Done(), n)
		}
		dRetries += dt[c].Retries()
		kRetries += kt[c].Retries()
	}
	if ds, ks := dw.Stats(), kw.Stats(); dRetries != ds.Retries || kRetries != ks.Retries || dRetries == 0 || kRetries == 0 {
		t.Errorf("retries: tallies %d + %d, writers %d + %d (want equal and > 0)", dRetries, kRetries, ds.Retries, ks.Retries)
	}
	var none *Tally
	none.addDone(1)
	none.addRetry()
	if none.Done() != 0 || none.Retries() != 0 {
		t.Error("a nil Tally counted")
	}
}
