package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
	"github.com/ferry-migrate/ferry/transform"
)

func TestReadDeadLetters(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "dead.jsonl")
	big := strings.Repeat("x", 500_000) // a line far longer than a bufio.Scanner's default
	lines := `{"table":"public.film","key":"film_id=10","reason":"DynamoDB: item too large","op":"r","lsn":"0/1","row":{"description":"` + big + `"}}
{"table":"public.payment","key":"payment_date=2022-02-10 11:20:29.062919+00, payment_id=17503","reason":"NaN","row":{"amount":"NaN","x":null}}
{"table":"public.film","key":"film_id=10","reason":"second time","op":"u"}
`
	if err := os.WriteFile(good, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := ReadDeadLetters(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 {
		t.Fatalf("%d rows, want 2: %v", len(d), d)
	}
	if r, ok := d.lookup("public.film", "film_id=10"); !ok || r != "second time" {
		t.Errorf("film 10: %q %v, want the last reason", r, ok)
	}

	for _, tc := range []struct{ name, text, err string }{
		{"not json", "{\"table\":\"public.film\",\"key\":\"film_id=1\"}\nnot json\n", "row 2"},
		{"no key", `{"table":"public.film","reason":"x"}`, "no table or key"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
		if err := os.WriteFile(p, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadDeadLetters(p); err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming %s and %q", tc.name, err, p, tc.err)
		}
	}
	if _, err := ReadDeadLetters(filepath.Join(dir, "absent")); err == nil {
		t.Error("a missing file is no error")
	}
}

func TestDeadLettersRelabel(t *testing.T) {
	d := DeadLetters{{"public.film", "film_id=10"}: {reason: "too large"}}
	for _, tc := range []struct {
		kind, key string
		want      string
	}{
		{KindMissing, "film_id=10", KindDeadLettered},
		{KindDiffers, "film_id=10", KindDeadLettered},
		{KindUnconvertible, "film_id=10", KindDeadLettered},
		{KindExtra, "film_id=10", KindExtra},       // an item no row explains is not explained by the file
		{KindInFlight, "film_id=10", KindInFlight}, // not a difference
		{KindMissing, "film_id=11", KindMissing},   // not in the file
	} {
		f := Finding{Kind: tc.kind, Table: "public.film", Key: tc.key, Reason: "old"}
		changed := d.relabel(&f)
		if f.Kind != tc.want || changed != (tc.want != tc.kind) {
			t.Errorf("%s %s: kind %s (changed %v), want %s", tc.kind, tc.key, f.Kind, changed, tc.want)
		}
		if changed && f.Reason != "in the dead-letter file: too large" {
			t.Errorf("%s: reason %q", tc.kind, f.Reason)
		}
	}
	var none DeadLetters // verify without --dead-letter
	f := Finding{Kind: KindMissing, Table: "public.film", Key: "film_id=10"}
	if none.relabel(&f) || f.Kind != KindMissing {
		t.Error("a nil DeadLetters relabelled a finding")
	}
}

// TestDeadLettersExplainStaleItem: a row backfilled fine and then changed
// under sync so that its item key cannot be written (here: the partition key
// column becomes an empty string) is dead-lettered with its primary key; the
// item it had before stays, and no source row explains it. verify reports
// that item as dead_lettered, matched by the primary key columns the item
// carries — also when their text differs from the file's (a timestamptz is
// "2022-02-10 11:20:29.062919+00" in the file, ISO 8601 on the item).
func TestDeadLettersExplainStaleItem(t *testing.T) {
	m, err := mappings.Parse("m.yaml", []byte(`version: 1
tables:
  - source: payment
    target: payments
    partition_key: {name: pk, template: "{code}"}
    sort_key: {name: sk, template: "P#{payment_date}#{payment_id}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	src := map[string]*extract.Table{"public.payment": {Schema: "public", Name: "payment", PK: []int{1, 0}, Columns: []extract.Column{
		{Name: "payment_id", Type: "integer", Kind: extract.KindInt, Position: 1},
		{Name: "payment_date", Type: "timestamp with time zone", Kind: extract.KindTimestampTZ, Position: 2},
		{Name: "code", Type: "text", Kind: extract.KindText, Position: 3},
		{Name: "amount", Type: "numeric", Kind: extract.KindNumeric, Position: 4},
	}}}
	p, err := transform.Compile(m, src)
	if err != nil {
		t.Fatal(err)
	}
	tp := p.Tables[0]
	const date = "2022-02-10 11:20:29.062919+00"
	item := func(id, code string) transform.Item {
		it, _, err := tp.Item(extract.Row{{Text: id}, {Text: date}, {Text: code}, {Text: "2.90"}}, extract.Position{LSN: 1})
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	str := func(s string) *string { return &s }
	deadRowOf := func(id string) map[string]*string {
		return map[string]*string{"payment_id": str(id), "payment_date": str(date), "code": str(""), "amount": str("2.90")}
	}
	key := func(id string) string { return "payment_date=" + date + ", payment_id=" + id }
	dead := DeadLetters{
		{"public.payment", key("17503")}: {reason: "partition key pk is empty", row: deadRowOf("17503")},
		{"public.payment", key("00042")}: {reason: "numbers compare by value", row: deadRowOf("00042")},
		{"public.other", key("17504")}:   {reason: "another table", row: deadRowOf("17504")},
	}
	tests := []struct {
		name string
		dead DeadLetters
		item transform.Item
		want string
	}{
		{"stale item of a dead-lettered row", dead, item("17503", "A"), KindDeadLettered},
		{"numeric key text differs", dead, item("42", "A"), KindDeadLettered},
		{"row not in the file", dead, item("17505", "A"), KindExtra},
		{"same key in another table", dead, item("17504", "A"), KindExtra},
		{"no dead-letter file", nil, item("17503", "A"), KindExtra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := &tableCheck{tp: tp, rep: &TableReport{Table: "public.payment", Target: "payments"}, max: 10, dead: tt.dead}
			k := transform.Item{"pk": tt.item["pk"], "sk": tt.item["sk"]}
			(&verifier{}).addExtra(tc, "", k, tt.item)
			if len(tc.findings) != 1 {
				t.Fatalf("%d findings", len(tc.findings))
			}
			f := tc.findings[0]
			if f.Kind != tt.want {
				t.Errorf("kind %s (%s), want %s", f.Kind, f.Reason, tt.want)
			}
			r := tc.report()
			switch tt.want {
			case KindDeadLettered:
				if r.DeadLettered != 1 || r.Extra != 0 || !strings.Contains(f.Reason, "in the dead-letter file: ") {
					t.Errorf("report %+v, reason %q", r, f.Reason)
				}
				if _, ok := tt.dead[deadKey{"public.payment", f.Key}]; !ok {
					t.Errorf("key %q is not the dead-letter file's", f.Key)
				}
				tc.rep.SourceRows = 5 // the stale item is no source row: it leaves Matching alone
				if r := tc.report(); r.Matching != 5 {
					t.Errorf("matching %d, want 5", r.Matching)
				}
			case KindExtra:
				if r.Extra != 1 || r.DeadLettered != 0 {
					t.Errorf("report %+v", r)
				}
			}
		})
	}
}

func TestCanonNumber(t *testing.T) {
	for in, want := range map[string]string{"42": "42", "0042": "42", "+42": "42", "-0.0": "0", "2.90": "2.9", "-001.500": "-1.5", "0.05": "0.05", "1e3": "1e3", "0": "0", "10": "10"} {
		if got := canonNumber(in); got != want {
			t.Errorf("canonNumber(%q) = %q, want %q", in, got, want)
		}
	}
}
