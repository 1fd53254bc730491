package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// fakeKinesis accepts entries at random and checks the batch rules.
type fakeKinesis struct {
	mu          sync.Mutex
	rng         *rand.Rand
	fail        float64 // share of entries failed
	maxRecs     int
	maxBytes    int
	reqErr      error
	busy        map[string]bool     // stream/key in a call now
	log         map[string][]string // stream/key → data in acceptance order
	sizes       []int               // records per call
	inflight    int
	maxInflight int
	violations  []string
}

func newFakeKinesis(fail float64) *fakeKinesis {
	return &fakeKinesis{rng: rand.New(rand.NewPCG(3, 4)), fail: fail, maxRecs: MaxPutRecordsRecords,
		maxBytes: MaxPutRecordsBytes, busy: map[string]bool{}, log: map[string][]string{}}
}

func (f *fakeKinesis) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	stream := aws.ToString(in.StreamName)
	f.mu.Lock()
	if f.reqErr != nil {
		f.mu.Unlock()
		return nil, f.reqErr
	}
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.sizes = append(f.sizes, len(in.Records))
	n := 0
	keys := map[string]bool{}
	for _, e := range in.Records {
		k := stream + "/" + aws.ToString(e.PartitionKey)
		n += len(e.Data) + len(aws.ToString(e.PartitionKey))
		if keys[k] {
			f.violations = append(f.violations, "two records of one key in a call: "+k)
		}
		if f.busy[k] {
			f.violations = append(f.violations, "key in two calls at once: "+k)
		}
		keys[k] = true
		f.busy[k] = true
	}
	if len(in.Records) > f.maxRecs || n > f.maxBytes {
		f.violations = append(f.violations, fmt.Sprintf("call of %d records, %d bytes", len(in.Records), n))
	}
	f.mu.Unlock()

	time.Sleep(50 * time.Microsecond)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	out := &kinesis.PutRecordsOutput{}
	failed := int32(0)
	for _, e := range in.Records {
		k := stream + "/" + aws.ToString(e.PartitionKey)
		delete(f.busy, k)
		if f.rng.Float64() < f.fail {
			failed++
			out.Records = append(out.Records, types.PutRecordsResultEntry{
				ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("slow down")})
			continue
		}
		f.log[k] = append(f.log[k], string(e.Data))
		out.Records = append(out.Records, types.PutRecordsResultEntry{SequenceNumber: aws.String("1"), ShardId: aws.String("shardId-0")})
	}
	out.FailedRecordCount = &failed
	return out, nil
}

func kcfg(t *testing.T) KinesisConfig {
	return KinesisConfig{Backoff: fastBackoff(), Logger: testLogger(t)}
}

func TestKinesisPutOrder(t *testing.T) {
	f := newFakeKinesis(0.3)
	w := newKinesisWriter(f, kcfg(t))
	var recs []Record
	want := map[string][]string{}
	for i := range 2000 {
		r := Record{Stream: []string{"s1", "s2"}[i%3%2], PartitionKey: fmt.Sprintf("k%d", i%37), Data: fmt.Appendf(nil, "%d", i)}
		recs = append(recs, r)
		k := r.Stream + "/" + r.PartitionKey
		want[k] = append(want[k], string(r.Data))
	}
	failures, err := w.Put(context.Background(), recs)
	if err != nil || len(failures) > 0 {
		t.Fatalf("Put: %v, failures %v", err, failures)
	}
	if len(f.violations) > 0 {
		t.Fatalf("violations: %v", f.violations[:min(5, len(f.violations))])
	}
	for k, w := range want {
		if fmt.Sprint(f.log[k]) != fmt.Sprint(w) {
			t.Fatalf("%s landed as %v, want %v", k, f.log[k], w)
		}
	}
	st := w.Stats()
	if st.Put != 2000 || st.Retries == 0 {
		t.Errorf("stats = %+v, want 2000 put and some retries", st)
	}
	if f.maxInflight > DefaultKinesisWorkers {
		t.Errorf("%d calls in flight, want at most %d", f.maxInflight, DefaultKinesisWorkers)
	}
}

func TestKinesisPutLimits(t *testing.T) {
	f := newFakeKinesis(0)
	w := newKinesisWriter(f, kcfg(t))
	var recs []Record
	for i := range 1200 {
		recs = append(recs, Record{Stream: "s", PartitionKey: fmt.Sprint(i), Data: []byte("x")})
	}
	big := bytes.Repeat([]byte("b"), 600<<10)
	for i := range 20 {
		recs = append(recs, Record{Stream: "big", PartitionKey: fmt.Sprint(i), Data: big})
	}
	bad := []Record{
		{Stream: "s", PartitionKey: "k", Data: make([]byte, MaxRecordBytes), Ref: "too big"},
		{Stream: "s", PartitionKey: "", Data: []byte("x"), Ref: "no key"},
		{Stream: "s", PartitionKey: strings.Repeat("é", 257), Ref: "long key"},
		{PartitionKey: "k", Ref: "no stream"},
	}
	recs = append(recs, bad...)
	failures, err := w.Put(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != len(bad) {
		t.Fatalf("%d failures, want %d: %v", len(failures), len(bad), failures)
	}
	for i, fl := range failures {
		if fl.Rec.Ref != bad[i].Ref || !errors.Is(fl.Err, ErrInvalidRequest) {
			t.Errorf("failure %d = %v (%v), want %v", i, fl.Rec.Ref, fl.Err, bad[i].Ref)
		}
	}
	if len(f.violations) > 0 {
		t.Fatalf("violations: %v", f.violations[:min(5, len(f.violations))])
	}
	if st := w.Stats(); st.Put != 1220 {
		t.Errorf("put %d, want 1220", st.Put)
	}
	// 1200 small records in 3 calls, 20 × 600 KiB in 3 calls (8 fit in 5 MiB).
	if len(f.sizes) != 6 {
		t.Errorf("calls %v, want 6", f.sizes)
	}
}

func TestKinesisConfigLimits(t *testing.T) {
	f := newFakeKinesis(0)
	f.maxRecs, f.maxBytes = 7, 100
	w := newKinesisWriter(f, KinesisConfig{MaxBatchRecords: 7, MaxBatchBytes: 100, Workers: 1, Logger: testLogger(t)})
	var recs []Record
	for i := range 50 {
		recs = append(recs, Record{Stream: "s", PartitionKey: fmt.Sprintf("%02d", i), Data: make([]byte, 20)})
	}
	if _, err := w.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if len(f.violations) > 0 || f.maxInflight != 1 {
		t.Fatalf("violations %v, max in flight %d", f.violations, f.maxInflight)
	}
	if err := (KinesisConfig{MaxBatchRecords: 501, MaxBatchBytes: -1, Workers: -1}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "MaxBatchRecords") || !strings.Contains(err.Error(), "Workers") {
		t.Errorf("Validate = %v, want all problems", err)
	}
}

func TestKinesisPutErrors(t *testing.T) {
	recs := []Record{{Stream: "s", PartitionKey: "a", Data: []byte("1")}, {Stream: "s", PartitionKey: "a", Data: []byte("2")}}

	f := newFakeKinesis(1)
	cfg := kcfg(t)
	cfg.Backoff.MaxAttempts = 2
	w := newKinesisWriter(f, cfg)
	if _, err := w.Put(context.Background(), recs); !errors.Is(err, ErrRetriesExhausted) {
		t.Errorf("always failing: err = %v, want ErrRetriesExhausted", err)
	}
	if st := w.Stats(); st.Batches != 3 || st.Retries != 2 || st.Put != 0 {
		t.Errorf("stats = %+v, want 3 calls, 2 retries", st)
	}

	f = newFakeKinesis(0)
	f.reqErr = &smithy.GenericAPIError{Code: "ResourceNotFoundException"}
	w = newKinesisWriter(f, kcfg(t))
	if _, err := w.Put(context.Background(), recs); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("err = %v, want the ResourceNotFoundException", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = newKinesisWriter(newFakeKinesis(0), kcfg(t))
	if _, err := w.Put(ctx, recs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

func TestKSchedulerOneRecordPerKey(t *testing.T) {
	recs := []Record{
		{Stream: "s", PartitionKey: "a"}, {Stream: "s", PartitionKey: "b"}, {Stream: "s", PartitionKey: "a"},
		{Stream: "t", PartitionKey: "a"}, {Stream: "s", PartitionKey: "c"},
	}
	s := newKScheduler(recs, 500, MaxPutRecordsBytes)
	for i := range recs {
		s.add(i)
	}
	names := func(b *kbatch) string {
		if b == nil {
			return "nil"
		}
		var keys []string
		for _, r := range b.recs {
			keys = append(keys, r.PartitionKey)
		}
		return b.stream + ":" + strings.Join(keys, ",")
	}
	b1 := s.next()
	b2 := s.next()
	if got := names(b1) + " " + names(b2) + " " + names(s.next()); got != "s:a,b,c t:a nil" {
		t.Fatalf("batches = %s", got)
	}
	s.complete(b2)
	if b := s.next(); b != nil {
		t.Fatalf("batch %s before the first completed", names(b))
	}
	s.complete(b1)
	if got := names(s.next()) + " " + names(s.next()); got != "s:a nil" {
		t.Fatalf("after completion: %s", got)
	}
}
