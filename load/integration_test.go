package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// Integration tests: real dynalite and kinesalite from the shared local
// stack, random table and stream names so tests run in parallel.

func randomName(prefix string) string {
	return fmt.Sprintf("%s_%08x", prefix, rand.Uint32())
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newTable creates a table (pk, sk) and deletes it when the test ends.
func newTable(t *testing.T, ctx context.Context, db *dynamodb.Client, gsis ...GSISpec) TableSpec {
	t.Helper()
	spec := TableSpec{Name: randomName("load"), Key: KeySchema{PK: "pk", SK: "sk"}, GSIs: gsis}
	if err := EnsureTables(ctx, db, []TableSpec{spec}); err != nil {
		t.Fatal(err)
	}
	dropTable(t, db, spec.Name)
	return spec
}

func dropTable(t *testing.T, db *dynamodb.Client, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &name}); err != nil {
			t.Logf("delete table %s: %v", name, err)
		}
	})
}

func scanAll(t *testing.T, ctx context.Context, db *dynamodb.Client, table string) []Item {
	t.Helper()
	var items []Item
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, page.Items...)
	}
	return items
}

func sAttr(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func nAttr(v int) types.AttributeValue    { return &types.AttributeValueMemberN{Value: strconv.Itoa(v)} }

func attrString(item Item, name string) string {
	switch v := item[name].(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case nil:
		return "<absent>"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func TestIntegrationDynamoWrite(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	ctx := testCtx(t)
	db := st.DynamoClient()
	t1 := newTable(t, ctx, db)
	t2 := newTable(t, ctx, db)

	// 1,000 writes over 150 keys in two tables: every key is written several
	// times in this one call, some writes are deletes.
	var reqs []WriteRequest
	want := map[string]int{} // table/pk → last seq, -1 deleted
	for seq := range 1000 {
		table := []string{t1.Name, t2.Name}[seq%2]
		pk := fmt.Sprintf("K#%d", seq%150)
		key := Item{"pk": sAttr(pk), "sk": sAttr("S")}
		id := pk + "\x00S"
		if seq%11 == 0 {
			reqs = append(reqs, WriteRequest{Table: table, KeyID: id, Delete: key})
			want[table+"/"+pk] = -1
			continue
		}
		r := WriteRequest{Table: table, KeyID: id, Ref: seq,
			Put: Item{"pk": sAttr(pk), "sk": sAttr("S"), "seq": nAttr(seq), "name": sAttr("n\"<é\x00>")}}
		if seq%3 != 0 {
			r = wireSK(t, r) // most puts in the wire form, as the backfill sends them
		}
		reqs = append(reqs, r)
		want[table+"/"+pk] = seq
	}
	// One item over 400 KB can never be written (in each form).
	reqs = append(reqs, WriteRequest{Table: t1.Name, KeyID: "BIG\x00S", Ref: "big",
		Put: Item{"pk": sAttr("BIG"), "sk": sAttr("S"), "blob": &types.AttributeValueMemberB{Value: bytes.Repeat([]byte("x"), 401<<10)}}})
	reqs = append(reqs, wireSK(t, WriteRequest{Table: t2.Name, KeyID: "BIG\x00S", Ref: "big",
		Put: Item{"pk": sAttr("BIG"), "sk": sAttr("S"), "blob": &types.AttributeValueMemberB{Value: bytes.Repeat([]byte("x"), 401<<10)}}}))

	w := NewDynamoWriter(db, DynamoConfig{Logger: testLogger(t)})
	failures, err := w.Write(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 2 || failures[0].Req.Ref != "big" || !isValidation(failures[0].Err) ||
		failures[1].Req.Ref != "big" || !isValidation(failures[1].Err) {
		t.Fatalf("failures = %v, want the two big items with a ValidationException", failures)
	}

	got := map[string]int{}
	for _, spec := range []TableSpec{t1, t2} {
		for _, item := range scanAll(t, ctx, db, spec.Name) {
			k := spec.Name + "/" + attrString(item, "pk")
			if _, dup := got[k]; dup {
				t.Fatalf("two items for %s", k)
			}
			got[k], _ = strconv.Atoi(attrString(item, "seq"))
			if name := attrString(item, "name"); name != "n\"<é\x00>" {
				t.Errorf("%s: name %q, want %q", k, name, "n\"<é\x00>")
			}
		}
	}
	live := 0
	for k, seq := range want {
		if seq < 0 {
			if _, ok := got[k]; ok {
				t.Errorf("%s: present, want deleted", k)
			}
			continue
		}
		live++
		if got[k] != seq {
			t.Errorf("%s: seq %d, want %d (last write wins)", k, got[k], seq)
		}
	}
	if len(got) != live {
		t.Errorf("%d items, want %d", len(got), live)
	}
	if s := w.Stats(); s.Written != 1000 {
		t.Errorf("stats %+v, want 1000 written", s)
	}
}

// wireSK is wire for a table with a sort key (pk, sk).
func wireSK(t *testing.T, r WriteRequest) WriteRequest {
	sk := r.Put["sk"].(*types.AttributeValueMemberS).Value
	r = wire(t, r)
	r.PutJSON.SK = ddbjson.KeyAttr{Name: "sk", Value: sk}
	return r
}

func TestIntegrationKinesisOrder(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	ctx := testCtx(t)
	kc := st.KinesisClient()
	name := randomName("load")
	if err := EnsureStreams(ctx, kc, []string{name}, 3); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := kc.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: &name}); err != nil {
			t.Logf("delete stream %s: %v", name, err)
		}
	})
	if err := EnsureStreams(ctx, kc, []string{name}, 3); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}

	var recs []Record
	want := map[string][]string{}
	for i := range 1000 {
		key := fmt.Sprintf("film#%d", i%10)
		data := fmt.Sprintf("%s/%04d", key, i)
		recs = append(recs, Record{Stream: name, PartitionKey: key, Data: []byte(data)})
		want[key] = append(want[key], data)
	}
	recs = append(recs, Record{Stream: name, PartitionKey: "huge", Data: make([]byte, MaxRecordBytes), Ref: "huge"})
	w := NewKinesisWriter(kc, KinesisConfig{Logger: testLogger(t)})
	failures, err := w.Put(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || failures[0].Rec.Ref != "huge" {
		t.Fatalf("failures = %v, want the huge record", failures)
	}

	got := map[string][]string{}
	for _, r := range readStream(t, ctx, kc, name) {
		got[aws.ToString(r.PartitionKey)] = append(got[aws.ToString(r.PartitionKey)], string(r.Data))
	}
	for key, w := range want {
		if strings.Join(got[key], " ") != strings.Join(w, " ") {
			t.Errorf("key %s: read %d records in order %v…, want %d in input order", key, len(got[key]), got[key][:min(5, len(got[key]))], len(w))
		}
	}
	if s := w.Stats(); s.Put != 1000 {
		t.Errorf("stats %+v, want 1000 put", s)
	}
}

// readStream reads every shard from TRIM_HORIZON to its end.
func readStream(t *testing.T, ctx context.Context, kc *kinesis.Client, name string) []ktypes.Record {
	t.Helper()
	desc, err := kc.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: &name})
	if err != nil {
		t.Fatal(err)
	}
	var all []ktypes.Record
	for _, shard := range desc.StreamDescription.Shards {
		it, err := kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: &name, ShardId: shard.ShardId, ShardIteratorType: ktypes.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.Records...)
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return all
}

func TestIntegrationEnsureTables(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	ctx := testCtx(t)
	db := st.DynamoClient()
	gsi := GSISpec{Name: "by_title", Key: KeySchema{PK: "title", SK: "pk"}}
	spec := newTable(t, ctx, db, gsi)
	single := TableSpec{Name: randomName("load"), Key: KeySchema{PK: "id"}}
	dropTable(t, db, single.Name)

	if err := EnsureTables(ctx, db, []TableSpec{spec, single}); err != nil {
		t.Fatalf("EnsureTables again: %v", err)
	}
	if err := EnsureTables(ctx, db, []TableSpec{spec, single}); err != nil {
		t.Fatalf("EnsureTables a third time: %v", err)
	}

	wrongKey := TableSpec{Name: spec.Name, Key: KeySchema{PK: "pk"}, GSIs: spec.GSIs}
	err := EnsureTables(ctx, db, []TableSpec{wrongKey})
	for _, s := range []string{spec.Name, "(PK pk, SK sk)", "(PK pk)"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("key mismatch: err = %v, want it to mention %q", err, s)
		}
	}

	missing := spec
	missing.GSIs = append([]GSISpec{gsi}, GSISpec{Name: "by_year", Key: KeySchema{PK: "year"}})
	err = EnsureTables(ctx, db, []TableSpec{missing})
	if err == nil || !strings.Contains(err.Error(), "missing GSIs: by_year") {
		t.Errorf("missing GSI: err = %v, want it to name by_year", err)
	}
}

func TestIntegrationConditional(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	ctx := testCtx(t)
	db := st.DynamoClient()
	table := newTable(t, ctx, db).Name
	w := NewDynamoWriter(db, DynamoConfig{Logger: testLogger(t)})
	key := Item{"pk": sAttr("FILM#1"), "sk": sAttr("A")}
	item := func(title string) Item {
		return Item{"pk": sAttr("FILM#1"), "sk": sAttr("A"), "title": sAttr(title), "year": nAttr(2006), "name": sAttr("x")}
	}
	get := func() Item {
		out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Item
	}
	step := func(what string, applied bool, err error, want bool) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if applied != want {
			t.Fatalf("%s: applied = %v, want %v", what, applied, want)
		}
	}

	ok, err := w.PutIfNewer(ctx, table, item("v5"), "5")
	step("put v5", ok, err, true)
	ok, err = w.PutIfNewer(ctx, table, item("v3"), "3")
	step("put v3 over v5", ok, err, false)
	ok, err = w.PutIfNewer(ctx, table, item("v5 again"), "5")
	step("put v5 over v5", ok, err, false)
	if got := attrString(get(), "title"); got != "v5" {
		t.Fatalf("title %s, want v5", got)
	}

	ok, err = w.UpdateIfNewer(ctx, table, key, Item{"title": sAttr("u4")}, nil, "4")
	step("update v4 over v5", ok, err, false)
	ok, err = w.UpdateIfNewer(ctx, table, key, Item{"title": sAttr("u5")}, nil, "5")
	step("update v5 over v5", ok, err, false)
	ok, err = w.UpdateIfNewer(ctx, table, key, Item{"pk": sAttr("FILM#1"), "year": nAttr(2007), "title": sAttr("u7")}, []string{"name"}, "7")
	step("update v7", ok, err, true)
	got := get()
	if attrString(got, "title") != "u7" || attrString(got, "year") != "2007" || attrString(got, "name") != "<absent>" || attrString(got, VersionAttr) != "7" {
		t.Fatalf("after update: %v", got)
	}

	ok, err = w.DeleteIfNotNewer(ctx, table, key, "6")
	step("delete v6 over v7", ok, err, false)
	ok, err = w.DeleteIfNotNewer(ctx, table, key, "7")
	step("delete v7 over v7", ok, err, true)
	if got := get(); got != nil {
		t.Fatalf("after delete: %v", got)
	}
	ok, err = w.DeleteIfNotNewer(ctx, table, key, "1")
	step("delete absent", ok, err, true)

	ok, err = w.UpdateIfNewer(ctx, table, key, Item{"title": sAttr("u8")}, nil, "8")
	step("update creates", ok, err, true)
	if got := attrString(get(), "title"); got != "u8" {
		t.Fatalf("title %s, want u8", got)
	}

	// Versions compare as numbers, not strings ("10" > "9"), up to 38 digits.
	ok, err = w.PutIfNewer(ctx, table, item("v9"), "9")
	step("put v9 over v8", ok, err, true)
	ok, err = w.PutIfNewer(ctx, table, item("v10"), "10")
	step("put v10 over v9", ok, err, true)
	ok, err = w.PutIfNewer(ctx, table, item("big1"), "12345678901234567890123456789012345677")
	step("put 38 digits", ok, err, true)
	ok, err = w.UpdateIfNewer(ctx, table, key, Item{"title": sAttr("big0")}, nil, "12345678901234567890123456789012345676")
	step("update 38 digits, one less", ok, err, false)
	ok, err = w.DeleteIfNotNewer(ctx, table, key, "12345678901234567890123456789012345678")
	step("delete 38 digits, one more", ok, err, true)

	_, err = w.PutIfNewer(ctx, "no_such_table_"+randomName("x"), item("x"), "1")
	if err == nil {
		t.Fatal("put into a missing table: no error")
	}
}

func TestIntegrationControlStore(t *testing.T) {
	t.Parallel()
	st := stack.ForTest(t)
	ctx := testCtx(t)
	db := st.DynamoClient()
	name := randomName("ferry_control")
	dropTable(t, db, name)
	c := NewControlStore(db, name)
	for range 2 {
		if err := c.Ensure(ctx); err != nil {
			t.Fatal(err)
		}
	}

	if _, found, err := c.Get(ctx, "run1", "checkpoint"); err != nil || found {
		t.Fatalf("Get before Put: found %v, %v", found, err)
	}
	// Enough data for Query to need more than one page (1 MB each).
	want := map[string][]byte{}
	big := bytes.Repeat([]byte{0, 1, 2, 255}, 100<<10/4)
	for i := range 12 {
		sk := fmt.Sprintf("slot/%02d", i)
		v := append([]byte(sk), big...)
		want[sk] = v
		if err := c.Put(ctx, "run1", sk, v); err != nil {
			t.Fatal(err)
		}
	}
	want["empty"] = []byte{}
	if err := c.Put(ctx, "run1", "empty", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "run1", "slot/03", []byte("replaced")); err != nil {
		t.Fatal(err)
	}
	want["slot/03"] = []byte("replaced")
	if err := c.Put(ctx, "run2", "checkpoint", []byte("16/B374D848")); err != nil {
		t.Fatal(err)
	}

	v, found, err := c.Get(ctx, "run1", "slot/03")
	if err != nil || !found || string(v) != "replaced" {
		t.Fatalf("Get = %q, %v, %v", v, found, err)
	}
	if v, found, err := c.Get(ctx, "run1", "empty"); err != nil || !found || len(v) != 0 {
		t.Fatalf("Get empty = %q, %v, %v", v, found, err)
	}
	list, err := c.List(ctx, "run1")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(want) {
		t.Fatalf("List: %d values, want %d", len(list), len(want))
	}
	for sk, v := range want {
		if !bytes.Equal(list[sk], v) {
			t.Errorf("List[%s] differs", sk)
		}
	}

	if err := c.Delete(ctx, "run1", "slot/00"); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Get(ctx, "run1", "slot/00"); found {
		t.Fatal("found after Delete")
	}
	if err := c.DeleteAll(ctx, "run1"); err != nil {
		t.Fatal(err)
	}
	if list, err := c.List(ctx, "run1"); err != nil || len(list) != 0 {
		t.Fatalf("List after DeleteAll = %d values, %v", len(list), err)
	}
	if v, found, err := c.Get(ctx, "run2", "checkpoint"); err != nil || !found || string(v) != "16/B374D848" {
		t.Fatalf("other id touched by DeleteAll: %q, %v, %v", v, found, err)
	}
	if err := c.Put(ctx, "", "x", nil); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("empty id: %v", err)
	}
}
