package lambdaesm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestMappingEventShape: the function gets Lambda's documented
// KinesisEvent (with-kinesis.html, "Example event"), and the checkpoint
// reaches the record.
func TestMappingEventShape(t *testing.T) {
	t.Parallel()
	kc, stream := testStream(t, 1)
	f := startFn(t, 1, 30*time.Second)
	before := time.Now()
	p := putRecords(t, kc, stream, put{key: "customer#1", d: directive{ID: "r0"}})[0]
	m := startMapping(t, kc, f.rt, testMapping(stream))
	waitCaughtUp(t, m, 20*time.Second)

	sum, err := kc.DescribeStreamSummary(t.Context(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(sum.StreamDescriptionSummary.StreamARN)
	invs := f.invocations(t)
	if len(invs) != 1 {
		t.Fatalf("%d invocations, want 1", len(invs))
	}
	var ev struct {
		Records []map[string]json.RawMessage
	}
	if err := json.Unmarshal(invs[0].Event, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("event %s: %v", invs[0].Event, err)
	}
	rec := ev.Records[0]
	wantKeys := []string{"awsRegion", "eventID", "eventName", "eventSource", "eventSourceARN", "eventVersion", "invokeIdentityArn", "kinesis"}
	if keys := slices.Sorted(maps.Keys(rec)); !slices.Equal(keys, wantKeys) {
		t.Errorf("record keys %v, want %v", keys, wantKeys)
	}
	str := func(m map[string]json.RawMessage, k string) string {
		var s string
		if err := json.Unmarshal(m[k], &s); err != nil {
			t.Errorf("%s: %s is not a string", k, m[k])
		}
		return s
	}
	for k, want := range map[string]string{
		"awsRegion": "us-east-1", "eventID": "shardId-000000000000:" + p.seq, "eventName": "aws:kinesis:record",
		"eventSource": "aws:kinesis", "eventSourceARN": arn, "eventVersion": "1.0",
	} {
		if got := str(rec, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := str(rec, "invokeIdentityArn"); !strings.HasPrefix(got, "arn:aws:iam::") {
		t.Errorf("invokeIdentityArn = %q", got)
	}
	var kin map[string]json.RawMessage
	if err := json.Unmarshal(rec["kinesis"], &kin); err != nil {
		t.Fatal(err)
	}
	wantKin := []string{"approximateArrivalTimestamp", "data", "kinesisSchemaVersion", "partitionKey", "sequenceNumber"}
	if keys := slices.Sorted(maps.Keys(kin)); !slices.Equal(keys, wantKin) {
		t.Errorf("kinesis keys %v, want %v", keys, wantKin)
	}
	data, err := base64.StdEncoding.DecodeString(str(kin, "data"))
	if err != nil || string(data) != `{"id":"r0"}` {
		t.Errorf("data %q (%v), want base64 of the record", data, err)
	}
	if str(kin, "partitionKey") != "customer#1" || str(kin, "sequenceNumber") != p.seq || str(kin, "kinesisSchemaVersion") != "1.0" {
		t.Errorf("kinesis %v", kin)
	}
	var arrival float64
	if err := json.Unmarshal(kin["approximateArrivalTimestamp"], &arrival); err != nil {
		t.Errorf("approximateArrivalTimestamp %s is not epoch seconds: %v", kin["approximateArrivalTimestamp"], err)
	}
	if at := time.UnixMilli(int64(arrival * 1000)); at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("approximateArrivalTimestamp %v, want between %v and now", at, before)
	}
	if cp := m.Checkpoints()["shardId-000000000000"]; cp != p.seq {
		t.Errorf("checkpoint %s, want %s", cp, p.seq)
	}
}

// TestMappingStartingPosition: TRIM_HORIZON delivers the records already in
// the stream, LATEST only those put after the mapping started, AT_TIMESTAMP
// those that arrived from the timestamp on.
func TestMappingStartingPosition(t *testing.T) {
	t.Parallel()
	kc, stream := testStream(t, 1)
	putRecords(t, kc, stream, put{key: "k", d: directive{ID: "old"}})
	// A timestamp after the first record's arrival (milliseconds, same clock).
	ts := time.Now().Truncate(time.Millisecond).Add(time.Millisecond)
	for time.Now().Before(ts.Add(time.Millisecond)) { // let the clock pass it
	}
	putRecords(t, kc, stream, put{key: "k", d: directive{ID: "mid"}})
	tests := []struct {
		pos  StartingPosition
		want [][]string
	}{
		{TrimHorizon, [][]string{{"old", "mid"}, {"new"}}},
		{Latest, [][]string{{"new"}}},
		{AtTimestamp, [][]string{{"mid"}, {"new"}}},
	}
	var ms []*Mapping
	var fns []*fn
	for _, tt := range tests {
		f := startFn(t, 1, 30*time.Second)
		cfg := testMapping(stream)
		cfg.StartingPosition, cfg.StartingPositionTimestamp = tt.pos, ts
		m := startMapping(t, kc, f.rt, cfg)
		waitCaughtUp(t, m, 20*time.Second)
		ms, fns = append(ms, m), append(fns, f)
	}
	putRecords(t, kc, stream, put{key: "k", d: directive{ID: "new"}})
	for i, tt := range tests {
		waitCaughtUp(t, ms[i], 20*time.Second)
		if got := fns[i].batches(t); !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("%s: batches %s, want %s", tt.pos, joinBatches(got), joinBatches(tt.want))
		}
	}
}

// TestMappingBatchSize: batches never exceed BatchSize nor the payload
// limit, are full when enough records are available, and deliver every
// record once, in order.
func TestMappingBatchSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		batchSize    int
		maxBytes     int // 0: the default 6 MiB
		records      int
		wantBatches  []int
		payloadLimit bool
	}{
		{name: "BatchSize 10 of 25 records", batchSize: 10, records: 25, wantBatches: []int{10, 10, 5}},
		{name: "BatchSize 1", batchSize: 1, records: 3, wantBatches: []int{1, 1, 1}},
		{name: "the payload limit closes batches early", batchSize: 100, maxBytes: 4000, records: 7, wantBatches: []int{3, 3, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kc, stream := testStream(t, 1)
			f := startFn(t, 1, 30*time.Second)
			recs := records("k", 0, tt.records, nil)
			if tt.maxBytes > 0 {
				for i := range recs {
					recs[i].d.Pad = strings.Repeat("x", 500) // 1.2 KB per record in the event: 3 fit in 4000 bytes
				}
			}
			putRecords(t, kc, stream, recs...)
			cfg := testMapping(stream)
			cfg.BatchSize = tt.batchSize
			if tt.maxBytes > 0 {
				cfg.MaxPayloadBytes = tt.maxBytes
			}
			m := startMapping(t, kc, f.rt, cfg)
			waitCaughtUp(t, m, 20*time.Second)
			var sizes []int
			var all []string
			for _, inv := range f.invocations(t) {
				sizes = append(sizes, len(inv.ev.Records))
				all = append(all, inv.ids()...)
				if tt.maxBytes > 0 && len(inv.Event) > tt.maxBytes {
					t.Errorf("payload of %d bytes over the limit %d", len(inv.Event), tt.maxBytes)
				}
			}
			if !slices.Equal(sizes, tt.wantBatches) {
				t.Errorf("batch sizes %v, want %v", sizes, tt.wantBatches)
			}
			var want []string
			for _, r := range recs {
				want = append(want, r.d.ID)
			}
			if !slices.Equal(all, want) {
				t.Errorf("records delivered %v, want %v", all, want)
			}
		})
	}
}

// TestMappingPerShardOrder: each batch holds records of one shard, a
// shard's records arrive in sequence order, once, and a shard has one batch
// in flight at a time.
func TestMappingPerShardOrder(t *testing.T) {
	t.Parallel()
	kc, stream := testStream(t, 2)
	f := startFn(t, 2, 30*time.Second)
	var recs []put
	for i := range 40 {
		recs = append(recs, put{key: fmt.Sprintf("key-%d", i%16), d: directive{ID: fmt.Sprintf("r%d", i), SleepMS: 20}})
	}
	landed := putRecords(t, kc, stream, recs...)
	cfg := testMapping(stream)
	cfg.BatchSize = 5
	m := startMapping(t, kc, f.rt, cfg)
	waitCaughtUp(t, m, 30*time.Second)

	wantByShard := map[string][]string{}
	for _, p := range landed {
		wantByShard[p.shard] = append(wantByShard[p.shard], p.seq)
	}
	if len(wantByShard) != 2 {
		t.Fatalf("records landed on %d shards, want 2", len(wantByShard))
	}
	gotByShard := map[string][]string{}
	invsByShard := map[string][]invocation{}
	for _, inv := range f.invocations(t) {
		shard, _, _ := strings.Cut(inv.ev.Records[0].EventID, ":")
		for _, r := range inv.ev.Records {
			if s, _, _ := strings.Cut(r.EventID, ":"); s != shard {
				t.Errorf("a batch mixes %s and %s", shard, s)
			}
			gotByShard[shard] = append(gotByShard[shard], r.Kinesis.SequenceNumber)
		}
		invsByShard[shard] = append(invsByShard[shard], inv)
	}
	for shard, want := range wantByShard {
		if !slices.Equal(gotByShard[shard], want) {
			t.Errorf("%s: delivered %v, want %v", shard, gotByShard[shard], want)
			for _, inv := range invsByShard[shard] {
				t.Logf("%s: batch %v", shard, inv.ids())
			}
		}
		invs := invsByShard[shard]
		for i := range invs {
			for j := i + 1; j < len(invs); j++ {
				if overlap(invs[i], invs[j]) {
					t.Errorf("%s: two batches in flight at once: %v and %v", shard, invs[i].ids(), invs[j].ids())
				}
			}
		}
		if cp := m.Checkpoints()[shard]; cp != want[len(want)-1] {
			t.Errorf("%s: checkpoint %s, want %s", shard, cp, want[len(want)-1])
		}
	}
}

// TestMappingParallelizationFactor: with ParallelizationFactor 3, batches
// of one shard run concurrently, but one partition key's records are
// delivered in order and never in two batches at once.
func TestMappingParallelizationFactor(t *testing.T) {
	t.Parallel()
	kc, stream := testStream(t, 1)
	f := startFn(t, 3, 30*time.Second)
	var recs []put
	for i := range 48 {
		recs = append(recs, put{key: fmt.Sprintf("key-%d", i%12), d: directive{ID: fmt.Sprintf("r%d", i), SleepMS: 100}})
	}
	landed := putRecords(t, kc, stream, recs...)
	cfg := testMapping(stream)
	cfg.BatchSize = 4
	cfg.ParallelizationFactor = 3
	m := startMapping(t, kc, f.rt, cfg)
	waitCaughtUp(t, m, 30*time.Second)

	invs := f.invocations(t)
	slices.SortFunc(invs, func(a, b invocation) int { return a.Start.Compare(b.Start) })
	gotByKey := map[string][]string{}
	concurrent := 0
	for i, inv := range invs {
		for _, r := range inv.ev.Records {
			gotByKey[r.Kinesis.PartitionKey] = append(gotByKey[r.Kinesis.PartitionKey], r.Kinesis.SequenceNumber)
		}
		for j := i + 1; j < len(invs); j++ {
			if !overlap(inv, invs[j]) {
				continue
			}
			concurrent++
			for _, k := range inv.keys() {
				if slices.Contains(invs[j].keys(), k) {
					t.Errorf("key %s in two batches at once: %v and %v", k, inv.ids(), invs[j].ids())
				}
			}
		}
	}
	if concurrent == 0 {
		t.Error("no two batches ran concurrently")
	}
	wantByKey := map[string][]string{}
	for _, p := range landed {
		wantByKey[p.key] = append(wantByKey[p.key], p.seq)
	}
	for k, want := range wantByKey {
		if !slices.Equal(gotByKey[k], want) {
			t.Errorf("key %s: delivered %v, want %v", k, gotByKey[k], want)
		}
	}
	if cp := m.Checkpoints()["shardId-000000000000"]; cp != landed[len(landed)-1].seq {
		t.Errorf("checkpoint %s, want the last record's %s", cp, landed[len(landed)-1].seq)
	}
}

// TestMappingPartialBatchResponse: with ReportBatchItemFailures the batch is
// retried from the lowest failed sequence number (the records before it are
// not delivered again); an empty itemIdentifier fails the whole batch; and
// without ReportBatchItemFailures the response is ignored.
func TestMappingPartialBatchResponse(t *testing.T) {
	t.Parallel()
	once := func(d directive) directive { d.Times = 1; return d }
	tests := []struct {
		name   string
		report bool
		mod    map[string]directive
		want   string
	}{
		{name: "success", report: true,
			want: "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9]"},
		{name: "retried from the lowest of two failures", report: true,
			mod:  map[string]directive{"r4": once(directive{Fail: true}), "r7": once(directive{Fail: true})},
			want: "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9] [r4 r5 r6 r7 r8 r9]"},
		{name: "the first record failed", report: true,
			mod:  map[string]directive{"r0": once(directive{Fail: true})},
			want: "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9] [r0 r1 r2 r3 r4 r5 r6 r7 r8 r9]"},
		{name: "an empty itemIdentifier fails the whole batch", report: true,
			mod:  map[string]directive{"r3": once(directive{EmptyFailure: true})},
			want: "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9] [r0 r1 r2 r3 r4 r5 r6 r7 r8 r9]"},
		{name: "without ReportBatchItemFailures the response is a success", report: false,
			mod:  map[string]directive{"r4": once(directive{Fail: true})},
			want: "[r0 r1 r2 r3 r4 r5 r6 r7 r8 r9]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kc, stream := testStream(t, 1)
			f := startFn(t, 1, 30*time.Second)
			landed := putRecords(t, kc, stream, records("k", 0, 10, tt.mod)...)
			cfg := testMapping(stream)
			cfg.BatchSize = 10
			if tt.report {
				cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
			}
			m := startMapping(t, kc, f.rt, cfg)
			waitCaughtUp(t, m, 20*time.Second)
			if got := joinBatches(f.batches(t)); got != tt.want {
				t.Errorf("batches %s, want %s", got, tt.want)
			}
			if cp := m.Checkpoints()["shardId-000000000000"]; cp != landed[9].seq {
				t.Errorf("checkpoint %s, want r9's %s", cp, landed[9].seq)
			}
		})
	}
}

// TestMappingErrorHandling: function errors with BisectBatchOnFunctionError,
// MaximumRetryAttempts and the on-failure destination: the batch is split
// until the bad record is alone, its retries are used up, its invocation
// record goes to the destination, and processing moves on.
func TestMappingErrorHandling(t *testing.T) {
	t.Parallel()
	type dest struct {
		start, end string // record ids
		size       int
		invokes    int
		fnError    string
	}
	tests := []struct {
		name     string
		bisect   bool
		report   bool
		retries  int
		bad      directive
		want     string
		wantDest dest
	}{
		{name: "bisect isolates a failing record, retried once, then discarded", bisect: true, retries: 1, bad: directive{Error: true},
			want:     "[r0 r1 r2 r3 r4 r5 r6 r7] [r0 r1 r2 r3] [r4 r5 r6 r7] [r4 r5] [r4] [r5] [r5] [r6 r7] [r8]",
			wantDest: dest{start: "r5", end: "r5", size: 1, invokes: 5, fnError: "Unhandled"}},
		{name: "a panic is a function error too", bisect: true, retries: 0, bad: directive{Panic: true},
			want:     "[r0 r1 r2 r3 r4 r5 r6 r7] [r0 r1 r2 r3] [r4 r5 r6 r7] [r4 r5] [r4] [r5] [r6 r7] [r8]",
			wantDest: dest{start: "r5", end: "r5", size: 1, invokes: 4, fnError: "Unhandled"}},
		{name: "without bisect the whole batch is retried, then discarded", retries: 2, bad: directive{Error: true},
			want:     "[r0 r1 r2 r3 r4 r5 r6 r7] [r0 r1 r2 r3 r4 r5 r6 r7] [r0 r1 r2 r3 r4 r5 r6 r7] [r8]",
			wantDest: dest{start: "r0", end: "r7", size: 8, invokes: 3, fnError: "Unhandled"}},
		{name: "partial failures are retried from the failed record, then discarded", bisect: true, report: true, retries: 1, bad: directive{Fail: true},
			want:     "[r0 r1 r2 r3 r4 r5 r6 r7] [r5 r6 r7] [r8]",
			wantDest: dest{start: "r5", end: "r7", size: 3, invokes: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kc, stream := testStream(t, 1)
			f := startFn(t, 1, 30*time.Second)
			landed := putRecords(t, kc, stream, records("k", 0, 8, map[string]directive{"r5": tt.bad})...)
			seqOf := map[string]string{}
			for _, p := range landed {
				seqOf[p.id] = p.seq
			}
			cfg := testMapping(stream)
			cfg.BatchSize = 8
			cfg.BisectBatchOnFunctionError = tt.bisect
			cfg.MaximumRetryAttempts = tt.retries
			if tt.report {
				cfg.FunctionResponseTypes = []string{ReportBatchItemFailures}
			}
			d := &FileDestination{Path: t.TempDir() + "/on-failure.jsonl"}
			cfg.OnFailure = d
			m := startMapping(t, kc, f.rt, cfg)
			waitCaughtUp(t, m, 20*time.Second)
			// Processing moved on: a record put after the discard is delivered.
			last := putRecords(t, kc, stream, put{key: "k", d: directive{ID: "r8"}})[0]
			waitCaughtUp(t, m, 20*time.Second)

			if got := joinBatches(f.batches(t)); got != tt.want {
				t.Errorf("batches %s\nwant    %s", got, tt.want)
			}
			recs, err := d.Records()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("%d invocation records, want 1: %+v", len(recs), recs)
			}
			r := recs[0]
			info := r.KinesisBatchInfo
			if info.ShardID != "shardId-000000000000" || info.StartSequenceNumber != seqOf[tt.wantDest.start] ||
				info.EndSequenceNumber != seqOf[tt.wantDest.end] || info.BatchSize != tt.wantDest.size ||
				!strings.HasSuffix(info.StreamARN, ":stream/"+stream) ||
				info.ApproximateArrivalOfFirstRecord == "" || info.ApproximateArrivalOfLastRecord == "" {
				t.Errorf("KinesisBatchInfo %+v, want %s…%s, %d records", info, tt.wantDest.start, tt.wantDest.end, tt.wantDest.size)
			}
			if r.RequestContext.Condition != ConditionRetryAttemptsExhausted || r.RequestContext.ApproximateInvokeCount != tt.wantDest.invokes ||
				!strings.HasPrefix(r.RequestContext.FunctionARN, "arn:aws:lambda:us-east-1:") || r.RequestContext.RequestID == "" {
				t.Errorf("requestContext %+v, want condition %s, %d invocations", r.RequestContext, ConditionRetryAttemptsExhausted, tt.wantDest.invokes)
			}
			if r.ResponseContext.StatusCode != 200 || r.ResponseContext.ExecutedVersion != "$LATEST" || r.ResponseContext.FunctionError != tt.wantDest.fnError {
				t.Errorf("responseContext %+v, want functionError %q", r.ResponseContext, tt.wantDest.fnError)
			}
			if r.Version != "1.0" || r.Timestamp == "" {
				t.Errorf("version %q, timestamp %q", r.Version, r.Timestamp)
			}
			var payload struct{ Records []json.RawMessage }
			if err := json.Unmarshal(r.Payload, &payload); err != nil || len(payload.Records) != tt.wantDest.size {
				t.Errorf("payload with %d records (%v), want %d", len(payload.Records), err, tt.wantDest.size)
			}
			st := m.Status()[0]
			if st.Checkpoint != last.seq || st.Discarded != tt.wantDest.size || st.Pending != 0 {
				t.Errorf("status %+v, want checkpoint %s (r8), %d discarded", st, last.seq, tt.wantDest.size)
			}
		})
	}
}

// TestMappingBatchingWindow: with a window, records read within it go to one
// invocation no earlier than the window after the first was read; a full
// batch does not wait for the window.
func TestMappingBatchingWindow(t *testing.T) {
	t.Parallel()
	t.Run("records gathered for the window", func(t *testing.T) {
		t.Parallel()
		kc, stream := testStream(t, 1)
		f := startFn(t, 1, 30*time.Second)
		cfg := testMapping(stream)
		cfg.MaximumBatchingWindowInSeconds = 1
		m := startMapping(t, kc, f.rt, cfg)
		first := time.Now()
		putRecords(t, kc, stream, put{key: "k", d: directive{ID: "a"}})
		putRecords(t, kc, stream, put{key: "k", d: directive{ID: "b"}})
		waitCaughtUp(t, m, 20*time.Second)
		invs := f.invocations(t)
		if got := joinBatches(f.batches(t)); got != "[a b]" {
			t.Fatalf("batches %s, want [a b]", got)
		}
		if d := invs[0].Start.Sub(first); d < time.Second {
			t.Errorf("invoked %v after the first record was put, before the 1 s window", d)
		}
	})
	t.Run("a full batch does not wait", func(t *testing.T) {
		t.Parallel()
		kc, stream := testStream(t, 1)
		f := startFn(t, 1, 30*time.Second)
		cfg := testMapping(stream)
		cfg.MaximumBatchingWindowInSeconds = 300
		cfg.BatchSize = 3
		m := startMapping(t, kc, f.rt, cfg)
		putRecords(t, kc, stream, records("k", 0, 3, nil)...)
		waitCaughtUp(t, m, 20*time.Second) // far less than the window
		if got := joinBatches(f.batches(t)); got != "[r0 r1 r2]" {
			t.Errorf("batches %s, want [r0 r1 r2]", got)
		}
	})
}

// TestMappingMaximumRecordAge: records that keep failing are discarded once
// older than MaximumRecordAgeInSeconds, with condition RecordAgeExceeded.
func TestMappingMaximumRecordAge(t *testing.T) {
	t.Parallel()
	kc, stream := testStream(t, 1)
	f := startFn(t, 1, 30*time.Second)
	cfg := testMapping(stream)
	cfg.MaximumRecordAgeInSeconds = 2
	d := &FileDestination{Path: t.TempDir() + "/on-failure.jsonl"}
	cfg.OnFailure = d
	m := startMapping(t, kc, f.rt, cfg)
	landed := putRecords(t, kc, stream, records("k", 0, 2, map[string]directive{"r0": {Error: true}})...)
	waitCaughtUp(t, m, 20*time.Second)
	recs, err := d.Records()
	if err != nil {
		t.Fatal(err)
	}
	invs := f.invocations(t)
	if len(recs) != 1 || recs[0].RequestContext.Condition != ConditionRecordAgeExceeded ||
		recs[0].KinesisBatchInfo.StartSequenceNumber != landed[0].seq || recs[0].KinesisBatchInfo.EndSequenceNumber != landed[1].seq ||
		recs[0].RequestContext.ApproximateInvokeCount != len(invs) {
		t.Errorf("invocation records %+v; want one RecordAgeExceeded for r0…r1 after %d invocations", recs, len(invs))
	}
	if len(invs) < 2 {
		t.Errorf("%d invocations, want retries until the records were 2 s old", len(invs))
	}
}

// flakyInvoker fails its first n calls as the Lambda service might, without
// invoking the function.
type flakyInvoker struct {
	Invoker
	n int
}

func (f *flakyInvoker) Invoke(ctx context.Context, id string, payload []byte) ([]byte, error) {
	if f.n > 0 {
		f.n--
		return nil, &InvokeError{Status: 500, Body: "injected"}
	}
	return f.Invoker.Invoke(ctx, id, payload)
}

// TestMappingErrorsBeforeInvocation: errors that are not function errors are
// retried without using up MaximumRetryAttempts.
func TestMappingErrorsBeforeInvocation(t *testing.T) {
	t.Parallel()
	kc, stream := testStream(t, 1)
	f := startFn(t, 1, 30*time.Second)
	putRecords(t, kc, stream, records("k", 0, 2, nil)...)
	cfg := testMapping(stream)
	cfg.MaximumRetryAttempts = 0
	d := &FileDestination{Path: t.TempDir() + "/on-failure.jsonl"}
	cfg.OnFailure = d
	m := startMapping(t, kc, &flakyInvoker{Invoker: f.rt, n: 3}, cfg) // one lane: no concurrent calls
	waitCaughtUp(t, m, 20*time.Second)
	if got := joinBatches(f.batches(t)); got != "[r0 r1]" {
		t.Errorf("batches %s, want [r0 r1]", got)
	}
	if recs, _ := d.Records(); len(recs) != 0 {
		t.Errorf("records discarded: %+v", recs)
	}
}
