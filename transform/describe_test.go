package transform

import (
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// The descriptions plan prints agree with what the conversion does: every
// value named as refused is refused by the record's conversion, and a value
// outside the list is not.
func TestColumnDescriptionsMatchConversion(t *testing.T) {
	tests := []struct {
		kind    extract.Kind
		arr     bool
		conv    mappings.Conversion
		refused []string // values the description says are refused
		kept    string   // a value that is not
		event   string   // prefix of EventType
	}{
		{extract.KindNumeric, false, mappings.ConvAuto, []string{"NaN", "Infinity", "-Infinity"}, "1.50", "string"},
		{extract.KindFloat, false, mappings.ConvAuto, []string{"NaN", "1e+308", "-0"}, "0.1", "number"},
		{extract.KindFloat, false, mappings.ConvString, []string{"NaN"}, "-0", "number"},
		{extract.KindTimestampTZ, false, mappings.ConvAuto, []string{"infinity", "-infinity"}, "2022-02-15 09:09:17.5+00", "string (ISO"},
		{extract.KindDate, false, mappings.ConvAuto, []string{"infinity"}, "0044-03-15 BC", "string (ISO"},
		{extract.KindInt, true, mappings.ConvAuto, []string{"[5:6]={50,60}"}, "{1,2}", "array of number"},
		{extract.KindJSON, false, mappings.ConvAuto, nil, `{"a":1,"a":2}`, "string"},
		{extract.KindText, false, mappings.ConvAuto, nil, `x#y\z`, "string"},
	}
	for _, tc := range tests {
		c := ColumnPlan{conv: converter{name: "c", kind: tc.kind, arr: tc.arr, conv: tc.conv}}
		if !strings.HasPrefix(c.EventType(), tc.event) {
			t.Errorf("%s: EventType %q, want prefix %q", tc.kind, c.EventType(), tc.event)
		}
		if (len(tc.refused) == 0) != (c.Refused() == "") {
			t.Errorf("%s/%s: Refused() = %q, want refusals %v", tc.kind, tc.conv, c.Refused(), tc.refused)
		}
		for _, v := range tc.refused {
			if _, err := c.conv.appendJSON(nil, v); err == nil {
				t.Errorf("%s/%s: %q is described as refused but converts", tc.kind, tc.conv, v)
			}
		}
		if _, err := c.conv.appendJSON(nil, tc.kept); err != nil {
			t.Errorf("%s/%s: %q refused: %v", tc.kind, tc.conv, tc.kept, err)
		}
	}
}
