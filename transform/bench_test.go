package transform

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
)

// The hot paths of a backfill: every source row becomes one item and (when the
// table has a stream) one record. Each benchmark has a floor next to it — the
// least work that produces an output of the same shape — so results can be read
// as a ratio to that floor rather than as absolute times.

func BenchmarkItem(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "rental")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tp.Item(rentalOpen, testPos); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkItemFloor builds an item of the same size with no conversion at all:
// every value copied as an S attribute.
func BenchmarkItemFloor(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "rental")
	names := make([]string, 0, len(tp.Columns)+8)
	for _, c := range tp.Columns {
		names = append(names, c.Name)
	}
	names = append(names, "pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", AttrTable, AttrVersion)
	b.ReportAllocs()
	for b.Loop() {
		it := make(Item, len(names))
		for i, n := range names {
			it[n] = &types.AttributeValueMemberS{Value: rentalOpen[i%len(rentalOpen)].Text}
		}
	}
}

// BenchmarkItemJSON is BenchmarkItem in DynamoDB's wire form, the
// backfill's item (no SDK map).
func BenchmarkItemJSON(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "rental")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tp.ItemJSON(rentalOpen, testPos); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncoderRow is what the backfill does per row of a table with a
// stream: the item in the wire form and the record of its read event, by
// one Encoder (shared canonical forms, outputs in blocks reused after each
// batch of 500 rows).
func BenchmarkEncoderRow(b *testing.B) {
	benchEncoderRow(b, "rental", rentalOpen)
}

func BenchmarkEncoderRowFilm(b *testing.B) {
	benchEncoderRow(b, "film", filmRow)
}

func benchEncoderRow(b *testing.B, table string, r extract.Row) {
	tp := tablePlan(b, pagilaPlan(b), table)
	enc := tp.NewEncoder()
	ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: testPos, Commit: testCommit, After: r}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if n++; n%500 == 0 {
			enc.Reset()
		}
		if _, _, err := enc.Item(r, testPos); err != nil {
			b.Fatal(err)
		}
		if _, _, err := enc.Record(ch, testSource, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkItemAndRecord is the same work the way the backfill did it
// before the Encoder: Item (SDK map) and Record.
func BenchmarkItemAndRecord(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "rental")
	ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: testPos, Commit: testCommit, After: rentalOpen}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tp.Item(rentalOpen, testPos); err != nil {
			b.Fatal(err)
		}
		if _, _, err := tp.Record(ch, testSource, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkItemFilm(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "film")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tp.Item(filmRow, testPos); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKey(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "rental")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tp.Key(rentalOpen); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "rental")
	ch := &extract.Change{Table: tp.Source, Op: extract.OpRead, Pos: testPos, Commit: testCommit, After: rentalOpen}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_, data, err := tp.Record(ch, testSource, testNow)
		if err != nil {
			b.Fatal(err)
		}
		n = len(data)
	}
	b.SetBytes(int64(n))
}

func BenchmarkRecordUpdate(b *testing.B) {
	tp := tablePlan(b, pagilaPlan(b), "film")
	ch := &extract.Change{Table: tp.Source, Op: extract.OpUpdate, Pos: testPos, Commit: testCommit, Before: filmRow, After: filmRow}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tp.Record(ch, testSource, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendJSONString(b *testing.B) {
	const s = "A Epic Drama of a Feminist And a Mad Scientist who must Battle a Teacher in The Canadian Rockies"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		buf = appendJSONString(buf[:0], s)
	}
}
