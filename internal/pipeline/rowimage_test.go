package pipeline

import (
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

func TestFillFromBefore(t *testing.T) {
	v := func(s string) extract.Value { return extract.Value{Text: s} }
	u := extract.Value{Unchanged: true}
	null := extract.Value{Null: true}
	tests := []struct {
		name          string
		after, before extract.Row
		want          extract.Row
	}{
		{"no old image", extract.Row{v("1"), u}, nil, extract.Row{v("1"), u}},
		{"full identity fills", extract.Row{v("2"), u, v("x")}, extract.Row{v("1"), v("toast"), v("y")}, extract.Row{v("2"), v("toast"), v("x")}},
		{"null in the old image", extract.Row{v("2"), u}, extract.Row{v("1"), null}, extract.Row{v("2"), null}},
		{"key-only old image leaves it out", extract.Row{v("2"), u}, extract.Row{v("1"), u}, extract.Row{v("2"), u}},
		{"carried values win", extract.Row{v("2"), v("new")}, extract.Row{v("1"), v("old")}, extract.Row{v("2"), v("new")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := append(extract.Row(nil), tc.after...)
			got := fillFromBefore(tc.after, tc.before)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("column %d: got %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			for i := range orig {
				if tc.after[i] != orig[i] {
					t.Errorf("the input row was modified at column %d", i)
				}
			}
		})
	}
}

func TestMissingIgnoresGeneratedColumns(t *testing.T) {
	tb := &extract.Table{Columns: []extract.Column{{Name: "id"}, {Name: "body"}, {Name: "len", Generated: "length(body)"}}}
	u := extract.Value{Unchanged: true}
	for _, tc := range []struct {
		row  extract.Row
		want bool
	}{
		{extract.Row{{Text: "1"}, {Text: "b"}, u}, false},
		{extract.Row{{Text: "1"}, u, u}, true},
		{extract.Row{{Text: "1"}, u, {Text: "3"}}, true},
	} {
		if got := missing(tb, tc.row); got != tc.want {
			t.Errorf("missing(%+v) = %v, want %v", tc.row, got, tc.want)
		}
	}
}
