package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// fakeDynamo keeps items keyed by table + "pk" and checks the batch rules.
type fakeDynamo struct {
	mu          sync.Mutex
	rng         *rand.Rand
	unprocessed float64 // share of each batch left unprocessed
	always      bool    // leave everything unprocessed
	batchErr    error   // returned by every BatchWriteItem
	items       map[string]Item
	applied     map[string][]string // table/pk → "seq" values in apply order
	inflight    int
	maxInflight int
	violations  []string
}

func newFakeDynamo(unprocessed float64) *fakeDynamo {
	return &fakeDynamo{rng: rand.New(rand.NewPCG(1, 2)), unprocessed: unprocessed,
		items: map[string]Item{}, applied: map[string][]string{}}
}

func fakeKey(table string, item Item) string {
	return table + "/" + item["pk"].(*types.AttributeValueMemberS).Value
}

func isBig(item Item) bool { _, ok := item["big"]; return ok }

var errValidation = &smithy.GenericAPIError{Code: "ValidationException", Message: "Item size has exceeded the maximum allowed size"}

func (f *fakeDynamo) apply(table string, put, del Item) {
	if put != nil {
		k := fakeKey(table, put)
		f.items[k] = put
		f.applied[k] = append(f.applied[k], put["seq"].(*types.AttributeValueMemberN).Value)
		return
	}
	k := fakeKey(table, del)
	delete(f.items, k)
	f.applied[k] = append(f.applied[k], "del")
}

// jsonBodyOf returns the body a call's options send instead of its input
// (ok false when they send the input). For fakes of the DynamoDB API in
// tests: a fake sees the placeholder input, the body is the request.
func jsonBodyOf(optFns ...func(*dynamodb.Options)) (body []byte, ok bool) {
	var o dynamodb.Options
	for _, fn := range optFns {
		fn(&o)
	}
	if p, isJSON := o.Protocol.(jsonBody); isJSON {
		return p.body, true
	}
	return nil, false
}

// wireBatch is the body of a BatchWriteItem in the wire form.
type wireBatch struct {
	RequestItems map[string][]struct {
		PutRequest *struct{ Item json.RawMessage }
	}
}

// fromWire turns a call's body in the wire form (if its options send one)
// into the input it stands for; the placeholder input must name its tables.
func fromWire(in *dynamodb.BatchWriteItemInput, optFns []func(*dynamodb.Options)) (*dynamodb.BatchWriteItemInput, error) {
	body, ok := jsonBodyOf(optFns...)
	if !ok {
		return in, nil
	}
	var wb wireBatch
	if err := json.Unmarshal(body, &wb); err != nil {
		return nil, fmt.Errorf("fake: body %s: %w", body, err)
	}
	out := &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{}}
	for table, list := range wb.RequestItems {
		if _, named := in.RequestItems[table]; !named {
			return nil, fmt.Errorf("fake: table %s of the body is not in the input", table)
		}
		for _, wr := range list {
			item, err := ddbjson.Decode(wr.PutRequest.Item)
			if err != nil {
				return nil, fmt.Errorf("fake: %w", err)
			}
			out.RequestItems[table] = append(out.RequestItems[table], types.WriteRequest{PutRequest: &types.PutRequest{Item: item}})
		}
	}
	if len(out.RequestItems) != len(in.RequestItems) {
		return nil, fmt.Errorf("fake: input names %d tables, the body %d", len(in.RequestItems), len(out.RequestItems))
	}
	return out, nil
}

func (f *fakeDynamo) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	in, err := fromWire(in, optFns)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.inflight++
	f.maxInflight = max(f.maxInflight, f.inflight)
	f.mu.Unlock()
	time.Sleep(50 * time.Microsecond) // let batches overlap
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	if f.batchErr != nil {
		return nil, f.batchErr
	}
	n := 0
	seen := map[string]bool{}
	for table, list := range in.RequestItems {
		for _, wr := range list {
			n++
			var item Item
			if wr.DeleteRequest != nil {
				item = wr.DeleteRequest.Key
			} else {
				item = wr.PutRequest.Item
				if isBig(item) {
					return nil, errValidation
				}
			}
			k := fakeKey(table, item)
			if seen[k] {
				f.violations = append(f.violations, "duplicate key in batch: "+k)
			}
			seen[k] = true
		}
	}
	if n > MaxBatchWriteItems {
		f.violations = append(f.violations, fmt.Sprintf("batch of %d requests", n))
	}
	out := &dynamodb.BatchWriteItemOutput{UnprocessedItems: map[string][]types.WriteRequest{}}
	for table, list := range in.RequestItems {
		for _, wr := range list {
			if f.always || f.rng.Float64() < f.unprocessed {
				out.UnprocessedItems[table] = append(out.UnprocessedItems[table], wr)
				continue
			}
			var put, del Item
			if wr.PutRequest != nil {
				put = wr.PutRequest.Item
			} else {
				del = wr.DeleteRequest.Key
			}
			f.apply(table, put, del)
		}
	}
	return out, nil
}

func (f *fakeDynamo) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if body, ok := jsonBodyOf(optFns...); ok {
		var wire struct {
			TableName string
			Item      json.RawMessage
		}
		if err := json.Unmarshal(body, &wire); err != nil {
			return nil, fmt.Errorf("fake: body %s: %w", body, err)
		}
		item, err := ddbjson.Decode(wire.Item)
		if err != nil {
			return nil, fmt.Errorf("fake: %w", err)
		}
		if wire.TableName != *in.TableName {
			return nil, fmt.Errorf("fake: table %s in the body, %s in the input", wire.TableName, *in.TableName)
		}
		in = &dynamodb.PutItemInput{TableName: &wire.TableName, Item: item}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if isBig(in.Item) {
		return nil, errValidation
	}
	f.apply(*in.TableName, in.Item, nil)
	return &dynamodb.PutItemOutput{}, nil
}

func (f *fakeDynamo) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apply(*in.TableName, nil, in.Key)
	return &dynamodb.DeleteItemOutput{}, nil
}

func (f *fakeDynamo) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return nil, errors.New("not implemented")
}

func (f *fakeDynamo) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, errors.New("not implemented")
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func fastBackoff() Backoff {
	return Backoff{Base: time.Microsecond, Max: 10 * time.Microsecond, MaxAttempts: 50}
}

func putReq(table string, pk, seq int) WriteRequest {
	p := strconv.Itoa(pk)
	return WriteRequest{Table: table, KeyID: p, Ref: seq, Put: Item{
		"pk":  &types.AttributeValueMemberS{Value: p},
		"seq": &types.AttributeValueMemberN{Value: strconv.Itoa(seq)},
	}}
}

// wire turns a put into a put in the wire form (its key attribute: pk).
func wire(tb testing.TB, r WriteRequest) WriteRequest {
	tb.Helper()
	data, err := ddbjson.AppendItem(nil, r.Put)
	if err != nil {
		tb.Fatal(err)
	}
	pk := r.Put["pk"].(*types.AttributeValueMemberS).Value
	r.Put, r.PutJSON = nil, ddbjson.Item{JSON: data, PK: ddbjson.KeyAttr{Name: "pk", Value: pk}}
	return r
}

func delReq(table string, pk int) WriteRequest {
	p := strconv.Itoa(pk)
	return WriteRequest{Table: table, KeyID: p, Delete: Item{"pk": &types.AttributeValueMemberS{Value: p}}}
}

func TestSplitRounds(t *testing.T) {
	reqs := []WriteRequest{putReq("a", 1, 0), putReq("a", 2, 1), putReq("b", 1, 2), putReq("a", 1, 3), delReq("a", 1), putReq("a", 3, 5)}
	var in []indexed
	for i, r := range reqs {
		in = append(in, indexed{i, r})
	}
	var got [][]int
	for _, round := range splitRounds(in) {
		var idx []int
		for _, r := range round {
			idx = append(idx, r.i)
		}
		got = append(got, idx)
	}
	want := [][]int{{0, 1, 2, 5}, {3}, {4}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rounds = %v, want %v", got, want)
	}
}

// TestDynamoWriteOrderAndRetries: per-key order, batches of distinct keys,
// unprocessed items retried, rejected items found one by one; with SDK
// items, items in the wire form, and both in one call.
func TestDynamoWriteOrderAndRetries(t *testing.T) {
	for _, form := range []string{"sdk", "wire", "mixed"} {
		t.Run(form, func(t *testing.T) { testDynamoWriteOrderAndRetries(t, form) })
	}
}

func testDynamoWriteOrderAndRetries(t *testing.T, form string) {
	f := newFakeDynamo(0.3)
	w := newDynamoWriter(f, DynamoConfig{Logger: testLogger(t), Workers: 4, Backoff: fastBackoff()})
	var reqs []WriteRequest
	want := map[string]string{} // table/pk → last seq ("" = deleted)
	for seq := range 1000 {
		table := []string{"t1", "t2"}[seq%2]
		pk := seq % 97
		k := table + "/" + strconv.Itoa(pk)
		if seq%13 == 0 {
			reqs = append(reqs, delReq(table, pk))
			want[k] = ""
			continue
		}
		r := putReq(table, pk, seq)
		if seq == 500 || seq == 777 {
			r.Put["big"] = &types.AttributeValueMemberB{Value: []byte("x")}
			r.Ref = "big"
		} else {
			want[k] = strconv.Itoa(seq)
		}
		if form == "wire" || form == "mixed" && seq%3 == 0 {
			r = wire(t, r)
		}
		reqs = append(reqs, r)
	}
	failures, err := w.Write(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 2 || failures[0].Req.Ref != "big" || failures[1].Req.Ref != "big" {
		t.Fatalf("failures = %v, want the two big items", failures)
	}
	for _, fl := range failures {
		if !isValidation(fl.Err) {
			t.Errorf("failure error %v is not a ValidationException", fl.Err)
		}
	}
	if len(f.violations) > 0 {
		t.Fatalf("batch rule violations: %v", f.violations[:min(5, len(f.violations))])
	}
	for k, seq := range want {
		item, ok := f.items[k]
		switch {
		case seq == "" && ok:
			t.Errorf("%s: present, want deleted", k)
		case seq != "" && (!ok || item["seq"].(*types.AttributeValueMemberN).Value != seq):
			t.Errorf("%s: item %v, want seq %s", k, item, seq)
		}
	}
	// Writes of one key were applied in input order.
	for k, applied := range f.applied {
		last := -1
		for _, s := range applied {
			if s == "del" {
				continue
			}
			n, _ := strconv.Atoi(s)
			if n <= last {
				t.Fatalf("%s applied out of order: %v", k, applied)
			}
			last = n
		}
	}
	st := w.Stats()
	if st.Written != 998 || st.Retries == 0 || st.Batches == 0 {
		t.Errorf("stats = %+v, want 998 written and some retries", st)
	}
	if f.maxInflight > 4 {
		t.Errorf("%d batches in flight, want at most 4", f.maxInflight)
	}
}

func TestDynamoWriteInvalid(t *testing.T) {
	f := newFakeDynamo(0)
	w := newDynamoWriter(f, DynamoConfig{Logger: testLogger(t), Backoff: fastBackoff()})
	both := putReq("t", 1, 1)
	both.Delete = Item{"pk": &types.AttributeValueMemberS{Value: "1"}}
	reqs := []WriteRequest{
		{Table: "t", KeyID: "x"},
		putReq("t", 2, 2),
		both,
		{KeyID: "y", Put: Item{}},
		{Table: "t", Put: Item{}},
	}
	failures, err := w.Write(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 4 {
		t.Fatalf("%d failures, want 4: %v", len(failures), failures)
	}
	for _, fl := range failures {
		if !errors.Is(fl.Err, ErrInvalidRequest) {
			t.Errorf("failure %v does not wrap ErrInvalidRequest", fl.Err)
		}
	}
	if _, ok := f.items["t/2"]; !ok {
		t.Error("valid request not written")
	}
}

func TestDynamoWriteErrors(t *testing.T) {
	reqs := []WriteRequest{putReq("t", 1, 1), putReq("t", 2, 2)}

	f := newFakeDynamo(0)
	f.always = true
	w := newDynamoWriter(f, DynamoConfig{Logger: testLogger(t), Backoff: Backoff{Base: time.Microsecond, Max: time.Microsecond, MaxAttempts: 3}})
	if _, err := w.Write(context.Background(), reqs); !errors.Is(err, ErrRetriesExhausted) {
		t.Errorf("always unprocessed: err = %v, want ErrRetriesExhausted", err)
	}
	if st := w.Stats(); st.Batches != 4 || st.Retries != 3 {
		t.Errorf("stats = %+v, want 4 batches, 3 retries", st)
	}

	f = newFakeDynamo(0)
	f.batchErr = &smithy.GenericAPIError{Code: "ResourceNotFoundException"}
	w = newDynamoWriter(f, DynamoConfig{Logger: testLogger(t), Backoff: fastBackoff()})
	if _, err := w.Write(context.Background(), reqs); apiErrorCode(err) != "ResourceNotFoundException" {
		t.Errorf("err = %v, want the ResourceNotFoundException", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = newDynamoWriter(newFakeDynamo(0), DynamoConfig{Logger: testLogger(t)})
	if _, err := w.Write(ctx, reqs); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
}

func TestUnprocessedMatching(t *testing.T) {
	var pending []indexed
	for i := range 4 {
		pending = append(pending, indexed{i, putReq("t", i, i)})
	}
	pending = append(pending, indexed{4, delReq("u", 9)})
	um := requestItems([]indexed{pending[3], pending[1], pending[4]})
	got := unprocessed(pending, um)
	if len(got) != 3 || got[0].i != 1 || got[1].i != 3 || got[2].i != 4 {
		t.Fatalf("unprocessed = %v, want requests 1, 3, 4 in order", got)
	}
	// An entry that matches nothing: everything is sent again.
	odd := map[string][]types.WriteRequest{"t": {{PutRequest: &types.PutRequest{Item: Item{
		"pk": &types.AttributeValueMemberS{Value: "1"}, "seq": &types.AttributeValueMemberN{Value: "1.0"}}}}}}
	if got := unprocessed(pending, odd); len(got) != len(pending) {
		t.Fatalf("unmatched entry: %d pending, want all %d", len(got), len(pending))
	}
	if got := unprocessed(pending, nil); got != nil {
		t.Fatalf("nothing unprocessed: %v", got)
	}
}

func TestUpdateExpression(t *testing.T) {
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	key := Item{"pk": s("A"), "sk": s("B")}
	tests := []struct {
		name    string
		set     Item
		remove  []string
		want    string
		wantErr bool
	}{
		{"empty", nil, nil, "SET #v = :v", false},
		{"set and remove", Item{"year": s("1"), "name": s("x"), "pk": s("A"), VersionAttr: s("9")}, []string{"old"},
			"SET #a0 = :a0, #a1 = :a1, #v = :v REMOVE #a2", false},
		{"key changed", Item{"pk": s("Z")}, nil, "", true},
		{"remove key", nil, []string{"sk"}, "", true},
		{"set and remove same", Item{"a": s("1")}, []string{"a"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expr, names, values, err := updateExpression(key, tt.set, tt.remove)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidRequest) {
					t.Fatalf("err = %v, want ErrInvalidRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if expr != tt.want {
				t.Errorf("expr = %q, want %q", expr, tt.want)
			}
			if tt.name == "set and remove" && (names["#a0"] != "name" || names["#a1"] != "year" || names["#a2"] != "old" || len(values) != 2) {
				t.Errorf("names %v values %v", names, values)
			}
		})
	}
}
