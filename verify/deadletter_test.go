package verify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	d := DeadLetters{{"public.film", "film_id=10"}: "too large"}
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
