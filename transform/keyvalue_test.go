package transform

import (
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
)

// TestEmptyKeyMessage: an empty key says why — a NULL column names NULL and
// the column, an unchanged TOAST value says so, and an empty string says it is
// an empty string (never NULL) and names the template's column.
func TestEmptyKeyMessage(t *testing.T) {
	p := pagilaPlan(t)
	tests := []struct {
		name    string
		table   string
		row     extract.Row
		want    []string // substrings
		notWant []string
	}{
		{"NULL partition key column", "rental", row("16050", "2022-08-23 21:50:12+00", "2666", `\N`, `\N`, "1", "2022-08-23 21:50:12+00"),
			[]string{"partition key pk is empty", "partition key pk is empty (a column of its template is NULL): customer_id"}, []string{"empty string"}},
		{"unchanged partition key column", "rental", row("16050", "2022-08-23 21:50:12+00", "2666", `\U`, `\N`, "1", "2022-08-23 21:50:12+00"),
			[]string{"partition key pk is empty (a column of its template is an unchanged TOAST value the change does not carry): customer_id"}, []string{"NULL", "empty string"}},
		{"NULL sort key column", "rental", row("16050", `\N`, "2666", "393", `\N`, "1", "2022-08-23 21:50:12+00"),
			[]string{"sort key sk is empty", "sort key sk is empty (a column of its template is NULL): rental_date"}, []string{"empty string"}},
		{"empty string partition key", "note", row("1", "", "b"),
			[]string{"partition key pk is empty (the value of its template's column a is an empty string, and DynamoDB refuses an empty string as a key value)"}, []string{"NULL"}},
		{"NULL partition key column of a one-column template", "note", row("1", `\N`, "b"),
			[]string{"partition key pk is empty", "partition key pk is empty (a column of its template is NULL): a"}, []string{"empty string"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := tablePlan(t, p, tt.table)
			_, _, err := tp.Key(tt.row)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it to contain %q", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error %q, want it not to contain %q", err, w)
				}
			}
		})
	}
}
