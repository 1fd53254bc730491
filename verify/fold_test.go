package verify

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

var langTable = FoldTable{Name: "public.language", Columns: []string{"language_id", "name", "last_update"}, PK: []string{"language_id"}}

// img builds an image from "col", json pairs.
func img(kv ...string) map[string]json.RawMessage {
	out := map[string]json.RawMessage{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = json.RawMessage(kv[i+1])
	}
	return out
}

func ev(op string, lsn extract.LSN, seq uint32, before, after map[string]json.RawMessage) Event {
	return Event{Op: op, Schema: "public", Table: "language", Pos: extract.Position{LSN: lsn, Seq: seq}, Before: before, After: after,
		PartitionKey: "language"}
}

func row(id, name string) map[string]json.RawMessage {
	return img("language_id", id, "name", `"`+name+`"`, "last_update", `"2022-02-15T10:02:19.000000Z"`)
}

// compareAll compares the source rows with the folded stream and lists every
// finding as "kind key [columns]".
func compareAll(f *Folder, rows ...map[string]json.RawMessage) []string {
	var out []string
	for _, r := range rows {
		if _, fd := f.Compare(langTable.Name, r); fd != nil {
			out = append(out, describe(*fd))
		}
	}
	f.Leftovers(func(fd Finding) { out = append(out, describe(fd)) })
	for _, fd := range f.Findings {
		out = append(out, describe(fd))
	}
	slices.Sort(out)
	return out
}

func describe(fd Finding) string {
	s := fd.Kind + " " + fd.Key
	for _, c := range fd.Columns {
		s += " " + c.Column
	}
	if fd.Previous != "" {
		s += " after " + fd.Previous
	}
	return s
}

func TestFold(t *testing.T) {
	en, fr := row("1", "English"), row("2", "French")
	tests := []struct {
		name   string
		cutoff extract.LSN
		events []Event
		source []map[string]json.RawMessage
		want   []string
	}{
		{name: "snapshot reads agree", events: []Event{ev("r", 10, 0, nil, en), ev("r", 10, 0, nil, fr)}, source: []map[string]json.RawMessage{en, fr}},
		{name: "missing row", events: []Event{ev("r", 10, 0, nil, en)}, source: []map[string]json.RawMessage{en, fr},
			want: []string{"missing language_id=2"}},
		{name: "extra row", events: []Event{ev("r", 10, 0, nil, en), ev("c", 20, 0, nil, fr)}, source: []map[string]json.RawMessage{en},
			want: []string{"extra language_id=2"}},
		{name: "update changes a column", events: []Event{ev("r", 10, 0, nil, en), ev("u", 20, 0, nil, row("1", "Anglais"))},
			source: []map[string]json.RawMessage{en}, want: []string{"differs language_id=1 name"}},
		{name: "update without an unchanged TOAST column keeps it",
			events: []Event{ev("r", 10, 0, nil, row("1", "old")), ev("u", 20, 1, nil, img("language_id", "1", "name", `"English"`)), ev("u", 30, 0, nil, img("language_id", "1", "last_update", `"2022-02-15T10:02:19.000000Z"`))},
			source: []map[string]json.RawMessage{en}},
		{name: "delete", events: []Event{ev("r", 10, 0, nil, en), ev("r", 10, 0, nil, fr), ev("d", 20, 0, img("language_id", "2"), nil)},
			source: []map[string]json.RawMessage{en}},
		{name: "delete of a row the source has", events: []Event{ev("r", 10, 0, nil, en), ev("d", 20, 0, img("language_id", "1"), nil)},
			source: []map[string]json.RawMessage{en}, want: []string{"missing language_id=1"}},
		// The truncate's record is on another partition key, so another
		// shard: it may be read before or after the rows it removes.
		{name: "truncate read before the rows it removes",
			events: []Event{ev("t", 20, 0, nil, nil), ev("r", 10, 0, nil, en), ev("c", 30, 0, nil, fr), ev("r", 10, 0, nil, row("3", "German"))},
			source: []map[string]json.RawMessage{fr}},
		{name: "truncate read after a later insert",
			events: []Event{ev("r", 10, 0, nil, en), ev("c", 30, 0, nil, fr), ev("u", 40, 0, nil, row("2", "Français")), ev("t", 20, 0, nil, nil)},
			source: []map[string]json.RawMessage{row("2", "Français")}},
		{name: "row inserted again after a truncate read last",
			events: []Event{ev("r", 10, 0, nil, row("1", "old")), ev("c", 25, 0, nil, row("1", "new")), ev("u", 30, 0, nil, img("language_id", "1", "name", `"English"`)), ev("t", 20, 0, nil, nil)},
			source: []map[string]json.RawMessage{en}},
		{name: "truncate deletes every row, later inserts count",
			events: []Event{ev("r", 10, 0, nil, en), ev("r", 10, 0, nil, fr), ev("t", 20, 0, nil, nil), ev("c", 30, 0, nil, fr)},
			source: []map[string]json.RawMessage{fr}},
		{name: "duplicate event", events: []Event{ev("r", 10, 0, nil, en), ev("r", 10, 0, nil, en)}, source: []map[string]json.RawMessage{en},
			want: []string{"duplicate language_id=1"}},
		{name: "order inversion", events: []Event{ev("u", 20, 0, nil, en), ev("r", 10, 0, nil, en)}, source: []map[string]json.RawMessage{en},
			want: []string{"inversion language_id=1 after 0/14:0"}},
		{name: "inversion that leaves an old state",
			events: []Event{ev("r", 10, 0, nil, row("1", "old")), ev("u", 30, 0, nil, en), ev("u", 20, 5, nil, row("1", "middle"))},
			source: []map[string]json.RawMessage{en}, want: []string{"differs language_id=1 name", "inversion language_id=1 after 0/1E:0"}},
		{name: "events after the cutoff are not folded", cutoff: 15,
			events: []Event{ev("r", 10, 0, nil, en), ev("u", 20, 0, nil, row("1", "later")), ev("c", 20, 1, nil, fr)},
			source: []map[string]json.RawMessage{en}},
		{name: "update that moves the key",
			events: []Event{ev("r", 10, 0, nil, row("1", "English")), ev("u", 20, 0, img("language_id", "1"), img("language_id", "7", "name", `"English"`))},
			source: []map[string]json.RawMessage{row("7", "English")}},
		{name: "unmapped column", events: []Event{ev("r", 10, 0, nil, img("language_id", "1", "name", `"English"`, "last_update", `"2022-02-15T10:02:19.000000Z"`, "secret", "1"))},
			source: []map[string]json.RawMessage{en}, want: []string{"differs language_id=1 secret"}},
		{name: "other tables are ignored", events: []Event{ev("r", 10, 0, nil, en), {Op: "r", Schema: "public", Table: "film", After: img("film_id", "1")}},
			source: []map[string]json.RawMessage{en}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFolder([]FoldTable{langTable}, tc.cutoff, 100)
			for _, e := range tc.events {
				f.Apply(e)
			}
			got := compareAll(f, tc.source...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFoldCounts(t *testing.T) {
	f := NewFolder([]FoldTable{langTable}, 15, 1)
	for _, e := range []Event{
		ev("r", 10, 0, nil, row("1", "a")), ev("r", 10, 0, nil, row("1", "a")), ev("r", 10, 0, nil, row("2", "b")),
		ev("u", 20, 0, nil, row("2", "c")), ev("u", 12, 0, nil, row("2", "d")),
		{Op: "r", Schema: "public", Table: "film", After: img("film_id", "1")},
		ev("c", 11, 0, nil, img("name", `"no key"`)),
	} {
		f.Apply(e)
	}
	if f.Events != 7 || f.Keys() != 2 || f.Duplicates != 1 || f.Inversions != 1 || f.AfterCutoff != 1 || f.Foreign != 1 || f.Unkeyed != 1 {
		t.Errorf("counts: %+v", f)
	}
	if len(f.Findings) != 1 || !f.Truncated {
		t.Errorf("findings %v truncated %v, want 1 and true", f.Findings, f.Truncated)
	}
}

// TestFoldReplayIsDuplicates: a restarted sync re-sends a row's events from
// an earlier one on, in order; that is duplicates, not inversions, and the
// state stays the newest.
func TestFoldReplayIsDuplicates(t *testing.T) {
	f := NewFolder([]FoldTable{langTable}, 0, 100)
	var events []Event
	for i := range 6 {
		events = append(events, ev("u", extract.LSN(10+10*i), 0, nil, row("1", fmt.Sprintf("v%d", i))))
	}
	for _, e := range append(events, events[1:]...) {
		f.Apply(e)
	}
	if f.Duplicates != 5 || f.Inversions != 0 {
		t.Errorf("duplicates %d, inversions %d; want 5, 0", f.Duplicates, f.Inversions)
	}
	for _, got := range compareAll(f, row("1", "v5")) {
		if !strings.HasPrefix(got, "duplicate ") {
			t.Errorf("finding %q, want only duplicates", got)
		}
	}
}

func TestFoldKeepFill(t *testing.T) {
	events := []Event{ev("r", 10, 0, nil, row("1", "old")), ev("u", 20, 0, nil, img("language_id", "1", "name", `"Anglais"`)), ev("r", 10, 0, nil, row("2", "French"))}
	f := NewFolder([]FoldTable{langTable}, 0, 10)
	for _, e := range events {
		f.Apply(e)
	}
	key, fd := f.Compare(langTable.Name, row("1", "English"))
	if fd == nil || fd.Kind != KindDiffers || len(fd.Columns) != 1 || fd.Columns[0].Target != "?" {
		t.Fatalf("compare: %+v", fd)
	}
	again := NewFolder([]FoldTable{langTable}, 0, 10)
	again.Keep(map[string]bool{key: true})
	for _, e := range events {
		again.Apply(e)
	}
	if again.Keys() != 1 {
		t.Errorf("kept folder holds %d rows, want only the kept one", again.Keys())
	}
	again.Fill(key, fd)
	if got := fmt.Sprint(fd.Columns); got != `[{name "English" "Anglais"}]` {
		t.Errorf("filled columns %s", got)
	}
}

func TestDecodeEvent(t *testing.T) {
	data := `{"op":"u","before":null,"after":{"language_id":1,"name":"English"},"source":{"db":"pagila","schema":"public","table":"language","lsn":"16/B374D848","seq":3,"txid":7,"ts_ms":0,"snapshot":false},"ts_ms":0}`
	e, err := DecodeEvent("language:1", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if e.Op != "u" || e.Table != "language" || e.Schema != "public" || e.Pos != (extract.Position{LSN: 0x16B374D848, Seq: 3}) ||
		string(e.After["name"]) != `"English"` || e.Before != nil || e.PartitionKey != "language:1" {
		t.Errorf("decoded %+v", e)
	}
	for _, bad := range []string{`{`, `{"op":"x","source":{"lsn":"0/1"}}`, `{"op":"r","source":{"lsn":"nope"}}`} {
		if _, err := DecodeEvent("", []byte(bad)); err == nil {
			t.Errorf("DecodeEvent(%s): no error", bad)
		}
	}
}

// An online snapshot's read (op r at its chunk's high watermark) past the
// source snapshot is not folded, even when visibility decides for
// transactions: a chunk read after verify's snapshot holds rows that
// snapshot does not have (they would be reported extra). A backfill's reads
// (at the slot's start) are.
func TestFoldSnapshotReadsAfterCutoff(t *testing.T) {
	f := NewFolder([]FoldTable{langTable}, 100, 10)
	f.Visible = func(txid uint32) bool { return txid == 7 }
	for _, e := range []Event{
		ev("r", 10, 1, nil, row("1", "a")),  // the backfill
		ev("r", 150, 1, nil, row("2", "b")), // an online snapshot's chunk read after the source snapshot
	} {
		f.Apply(e)
	}
	c := ev("c", 90, 1, nil, row("3", "c"))
	c.TxID = 7 // visible to the source snapshot
	f.Apply(c)
	got := compareAll(f, row("1", "a"), row("3", "c"))
	if len(got) != 0 {
		t.Errorf("findings %v, want none (row 2 came after the snapshot)", got)
	}
	if f.AfterCutoff != 1 {
		t.Errorf("after cutoff %d, want 1", f.AfterCutoff)
	}
}
