package transform

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// typeCase is one value of one type under one conversion: its DynamoDB form
// (av() notation) and its Kinesis JSON form, or the error both refuse it with.
type typeCase struct {
	name string
	kind extract.Kind
	arr  bool
	conv mappings.Conversion
	in   string // PostgreSQL's text form, with ferry's session settings
	attr string
	json string
	err  string
}

// TestTypeRules checks the rules of docs/types.md: every value is carried
// exactly or refused with a reason, in DynamoDB and in the event alike. The
// inputs are what the local PostgreSQL 15 writes with ferry's session settings.
func TestTypeRules(t *testing.T) {
	for _, tt := range typeRuleCases {
		t.Run(tt.name, func(t *testing.T) {
			cv := tt.conv
			if cv == "" {
				cv = mappings.ConvAuto
			}
			c := converter{name: "col", kind: tt.kind, arr: tt.arr, conv: cv}
			got, err := c.attr(tt.in)
			checkTypeResult(t, "attr", tt, av(got), err, tt.attr)
			if cv == mappings.ConvEpochMS {
				return // the event keeps the column's own form
			}
			out, err := c.appendJSON(nil, tt.in)
			checkTypeResult(t, "appendJSON", tt, string(out), err, tt.json)
			if err == nil && !json.Valid(out) {
				t.Errorf("appendJSON(%q) = %s is not valid JSON", tt.in, out)
			}
		})
	}
}

// typeRuleCases are the values of docs/types.md's rules.
var typeRuleCases = []typeCase{
	// dates and timestamps of every year: ISO 8601, expanded beyond 9999, astronomical BC
	{"date 10000", extract.KindDate, false, "", "10000-01-01", "S:+10000-01-01", `"+10000-01-01"`, ""},
	{"date max", extract.KindDate, false, "", "5874897-12-31", "S:+5874897-12-31", `"+5874897-12-31"`, ""},
	{"date 44 BC", extract.KindDate, false, "", "0044-03-15 BC", "S:-0043-03-15", `"-0043-03-15"`, ""},
	{"date 1 BC is year 0", extract.KindDate, false, "", "0001-12-31 BC", "S:0000-12-31", `"0000-12-31"`, ""},
	{"date min", extract.KindDate, false, "", "4713-01-01 BC", "S:-4712-01-01", `"-4712-01-01"`, ""},
	{"date year 1", extract.KindDate, false, "", "0001-01-01", "S:0001-01-01", `"0001-01-01"`, ""},
	{"date 0 BC invalid", extract.KindDate, false, "", "0000-01-01 BC", "", "", "unexpected date form"},
	{"date garbage", extract.KindDate, false, "", "2022-13-01", "", "", "unexpected date form"},
	{"timestamp 10000", extract.KindTimestamp, false, "", "10000-01-01 00:00:00", "S:+10000-01-01T00:00:00.000000", `"+10000-01-01T00:00:00.000000"`, ""},
	{"timestamp max", extract.KindTimestamp, false, "", "294276-12-31 23:59:59.999999", "S:+294276-12-31T23:59:59.999999", `"+294276-12-31T23:59:59.999999"`, ""},
	{"timestamp BC", extract.KindTimestamp, false, "", "0044-03-15 12:00:00.5 BC", "S:-0043-03-15T12:00:00.500000", `"-0043-03-15T12:00:00.500000"`, ""},
	{"timestamptz BC", extract.KindTimestampTZ, false, "", "0044-03-15 12:00:00.5+00 BC", "S:-0043-03-15T12:00:00.500000Z", `"-0043-03-15T12:00:00.500000Z"`, ""},
	{"timestamptz 10000", extract.KindTimestampTZ, false, "", "10000-01-01 00:00:00+00", "S:+10000-01-01T00:00:00.000000Z", `"+10000-01-01T00:00:00.000000Z"`, ""},
	{"timestamptz offset crosses into 10000", extract.KindTimestampTZ, false, "", "9999-12-31 23:00:00-02", "S:+10000-01-01T01:00:00.000000Z", `"+10000-01-01T01:00:00.000000Z"`, ""},
	{"timestamptz offset crosses into BC", extract.KindTimestampTZ, false, "", "0001-01-01 00:30:00+01 ", "", "", "unexpected timestamptz form"},
	{"timestamptz offset crosses year 0", extract.KindTimestampTZ, false, "", "0001-01-01 00:30:00+01", "S:0000-12-31T23:30:00.000000Z", `"0000-12-31T23:30:00.000000Z"`, ""},
	{"timestamp fraction too long", extract.KindTimestamp, false, "", "2022-05-24 22:53:30.1234567", "", "", "unexpected timestamp form"},
	{"timestamp 24:00", extract.KindTimestamp, false, "", "2022-05-24 24:00:00", "", "", "unexpected timestamp form"},
	{"date[] BC", extract.KindDate, true, "", `{"0044-03-15 BC",2022-05-24}`, "L[S:-0043-03-15, S:2022-05-24]", `["-0043-03-15","2022-05-24"]`, ""},
	{"epoch_ms 1 BC", extract.KindTimestamp, false, mappings.ConvEpochMS, "0001-01-01 00:00:00 BC", "N:-62167219200000", "", ""},
	{"epoch_ms 44 BC", extract.KindTimestamp, false, mappings.ConvEpochMS, "0044-03-15 12:00:00.5 BC", "N:-63517780799500", "", ""},
	{"epoch_ms 10000", extract.KindTimestamp, false, mappings.ConvEpochMS, "10000-01-01 00:00:00", "N:253402300800000", "", ""},
	{"epoch_ms max rounds down", extract.KindTimestamp, false, mappings.ConvEpochMS, "294276-12-31 23:59:59.999999", "N:9224318015999999", "", ""},
	{"epoch_ms before 1970 rounds down", extract.KindTimestamp, false, mappings.ConvEpochMS, "1969-12-31 23:59:59.9995", "N:-1", "", ""},
	{"epoch_ms date BC", extract.KindDate, false, mappings.ConvEpochMS, "0001-01-01 BC", "N:-62167219200000", "", ""},
	{"epoch_ms -infinity", extract.KindDate, false, mappings.ConvEpochMS, "-infinity", "", "", "no epoch_ms form"},
	// time, timetz, interval: their text, exactly
	{"time 24:00", extract.KindTime, false, "", "24:00:00", "S:24:00:00", `"24:00:00"`, ""},
	{"timetz 24:00+14", extract.KindTime, false, "", "24:00:00+14", "S:24:00:00+14", `"24:00:00+14"`, ""},
	{"timetz fraction", extract.KindTime, false, "", "12:00:00.123456-03:30", "S:12:00:00.123456-03:30", `"12:00:00.123456-03:30"`, ""},
	{"interval mixed signs", extract.KindTime, false, "", "1 year 2 mons -3 days +04:05:06.789", "S:1 year 2 mons -3 days +04:05:06.789", `"1 year 2 mons -3 days +04:05:06.789"`, ""},
	// float: N within DynamoDB's range, refused beyond it; string keeps all
	{"float8 1e125", extract.KindFloat, false, "", "1e+125", "N:1e+125", "1e+125", ""},
	{"float8 1e126", extract.KindFloat, false, "", "1e+126", "", "", "beyond DynamoDB's number range"},
	{"float8 max", extract.KindFloat, false, "", "1.7976931348623157e+308", "", "", "beyond DynamoDB's number range"},
	{"float8 1e-130", extract.KindFloat, false, "", "1e-130", "N:1e-130", "1e-130", ""},
	{"float8 subnormal", extract.KindFloat, false, "", "1e-320", "", "", "beyond DynamoDB's number range"},
	{"float8 min subnormal", extract.KindFloat, false, "", "5e-324", "", "", "beyond DynamoDB's number range"},
	{"float4 subnormal", extract.KindFloat, false, "", "1e-45", "N:1e-45", "1e-45", ""},
	{"float4 max", extract.KindFloat, false, "", "3.4028235e+38", "N:3.4028235e+38", "3.4028235e+38", ""},
	{"float8 17 digits", extract.KindFloat, false, "", "1.2345678901234568e+17", "N:1.2345678901234568e+17", "1.2345678901234568e+17", ""},
	{"float8 -0", extract.KindFloat, false, "", "-0", "", "", "no DynamoDB number form"},
	{"float8 string -0", extract.KindFloat, false, mappings.ConvString, "-0", "S:-0", "-0", ""},
	{"float8 0", extract.KindFloat, false, "", "0", "N:0", "0", ""},
	{"float8 -0.5", extract.KindFloat, false, "", "-0.5", "N:-0.5", "-0.5", ""},
	{"float8 number 1e308", extract.KindFloat, false, mappings.ConvNumber, "1e+308", "", "", "beyond DynamoDB's number range"},
	{"float8 string 1e308", extract.KindFloat, false, mappings.ConvString, "1e+308", "S:1e+308", "1e+308", ""},
	{"float8 string subnormal", extract.KindFloat, false, mappings.ConvString, "5e-324", "S:5e-324", "5e-324", ""},
	{"float8 string NaN", extract.KindFloat, false, mappings.ConvString, "NaN", "", "", "not a number"},
	{"float8[] beyond", extract.KindFloat, true, "", "{1.5,1e+308}", "", "", "beyond DynamoDB's number range"},
	// numeric beyond 38 digits stays S, under number too (its documented rule)
	{"numeric number 39 digits", extract.KindNumeric, false, mappings.ConvNumber, digits39, "S:" + digits39, `"` + digits39 + `"`, ""},
	// money: the exact decimal of its lc_monetary=C form
	{"money", extract.KindMoney, false, "", "$1,234.56", "N:1234.56", `"1234.56"`, ""},
	{"money negative", extract.KindMoney, false, "", "-$1,234.56", "N:-1234.56", `"-1234.56"`, ""},
	{"money zero", extract.KindMoney, false, "", "$0.00", "N:0.00", `"0.00"`, ""},
	{"money cents", extract.KindMoney, false, "", "$0.50", "N:0.50", `"0.50"`, ""},
	{"money max", extract.KindMoney, false, "", "$92,233,720,368,547,758.07", "N:92233720368547758.07", `"92233720368547758.07"`, ""},
	{"money min", extract.KindMoney, false, "", "-$92,233,720,368,547,758.08", "N:-92233720368547758.08", `"-92233720368547758.08"`, ""},
	{"money number", extract.KindMoney, false, mappings.ConvNumber, "-$1.00", "N:-1.00", `"-1.00"`, ""},
	{"money string", extract.KindMoney, false, mappings.ConvString, "-$1,000.00", "S:-1000.00", `"-1000.00"`, ""},
	{"money[]", extract.KindMoney, true, "", `{$1.00,NULL,"-$1,000.00"}`, "L[N:1.00, NULL:true, N:-1000.00]", `["1.00",null,"-1000.00"]`, ""},
	{"money de_DE", extract.KindMoney, false, "", "1.234,56 €", "", "", "unexpected money form"},
	{"money yen", extract.KindMoney, false, "", "¥1,235", "", "", "unexpected money form"},
	{"money one decimal", extract.KindMoney, false, "", "$1.5", "", "", "unexpected money form"},
	{"money bad grouping", extract.KindMoney, false, "", "$,1.50", "", "", "unexpected money form"},
	// arrays: exact or refused
	{"array lower bound 5", extract.KindInt, true, "", "[5:6]={50,60}", "", "", "array with bounds [5:6]"},
	{"array 2-d bounds", extract.KindInt, true, "", "[2:3][1:2]={{1,2},{3,4}}", "", "", "array with bounds [2:3][1:2]"},
	{"array 2-d", extract.KindInt, true, "", "{{1,2},{3,4}}", "L[L[N:1, N:2], L[N:3, N:4]]", "[[1,2],[3,4]]", ""},
	{"array 3-d", extract.KindText, true, "", `{{{a,NULL}},{{"",b}}}`, "L[L[L[S:a, NULL:true]], L[L[S:, S:b]]]", `[[["a",null]],[["","b"]]]`, ""},
	{"array empty", extract.KindInt, true, "", "{}", "L[]", "[]", ""},
	{"array text specials", extract.KindText, true, "", `{"","NULL",NULL,"a,b","b\\c","q\"x"," sp "}`,
		`L[S:, S:NULL, NULL:true, S:a,b, S:b\c, S:q"x, S: sp ]`, `["","NULL",null,"a,b","b\\c","q\"x"," sp "]`, ""},
	{"array empty unquoted element", extract.KindText, true, "", "{a,,b}", "", "", "empty unquoted element"},
	{"box", extract.KindBox, false, "", "(1,1),(0,0)", "S:(1,1),(0,0)", `"(1,1),(0,0)"`, ""},
	{"box[] split on ;", extract.KindBox, true, "", "{(1,1),(0,0);(2,2),(1,1)}", "L[S:(1,1),(0,0), S:(2,2),(1,1)]", `["(1,1),(0,0)","(2,2),(1,1)"]`, ""},
	{"point[] split on ,", extract.KindOther, true, "", `{"(0.1,0.2)",NULL}`, "L[S:(0.1,0.2), NULL:true]", `["(0.1,0.2)",null]`, ""},
	{"composite[]", extract.KindOther, true, "", `{"(1,\"a b\")","(2,)"}`, `L[S:(1,"a b"), S:(2,)]`, `["(1,\"a b\")","(2,)"]`, ""},
	{"tstzrange[]", extract.KindOther, true, "", `{"[\"2020-01-01 00:00:00+00\",infinity)"}`, `L[S:["2020-01-01 00:00:00+00",infinity)]`, `["[\"2020-01-01 00:00:00+00\",infinity)"]`, ""},
	// other types: their text form
	{"bpchar padding", extract.KindText, false, "", "ab  ", "S:ab  ", `"ab  "`, ""},
	{"\"char\" high byte", extract.KindText, false, "", `\351`, `S:\351`, `"\\351"`, ""},
	{"int2vector", extract.KindOther, false, "", "1 2", "S:1 2", `"1 2"`, ""},
	{"jsonb", extract.KindJSON, false, "", `{"a": 2}`, `S:{"a": 2}`, `"{\"a\": 2}"`, ""},
	{"json duplicate keys kept", extract.KindJSON, false, "", `{"a":1,"a":2}`, `S:{"a":1,"a":2}`, `"{\"a\":1,\"a\":2}"`, ""},
	{"hstore", extract.KindOther, false, "", `"a"=>"1", "b"=>NULL`, `S:"a"=>"1", "b"=>NULL`, `"\"a\"=\u003e\"1\", \"b\"=\u003eNULL"`, ""},
	{"int4multirange", extract.KindOther, false, "", "{[1,3),[5,7)}", "S:{[1,3),[5,7)}", `"{[1,3),[5,7)}"`, ""},
}

func checkTypeResult(t *testing.T, what string, tt typeCase, got string, err error, want string) {
	t.Helper()
	if tt.err != "" {
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s(%q) = %s, %v; want error containing %q", what, tt.in, got, err, tt.err)
		}
		return
	}
	if err != nil {
		t.Errorf("%s(%q): %v", what, tt.in, err)
	} else if got != want {
		t.Errorf("%s(%q) = %s, want %s", what, tt.in, got, want)
	}
}

// TestTextOfInvertsArrays checks that TextOf gives back a text form that
// converts to the same attribute, and declines the kinds whose S form is not
// PostgreSQL's text.
func TestTextOfInvertsArrays(t *testing.T) {
	tests := []struct {
		kind extract.Kind
		in   string
		ok   bool
	}{
		{extract.KindText, `{"","NULL",NULL,"a,b","b\\c","q\"x"," sp "}`, true},
		{extract.KindBox, `{(1,1),(0,0);(2,2),(1,1)}`, true},
		{extract.KindOther, `{"(1,\"a b\")"}`, true},
		{extract.KindText, `{}`, true},
		{extract.KindText, `{{a,b},{c,d}}`, false},     // nested lists are not inverted
		{extract.KindDate, `{"0044-03-15 BC"}`, false}, // S is ISO 8601, not the text
		{extract.KindTimestampTZ, `{"2022-05-24 22:53:30+00"}`, false},
		{extract.KindMoney, `{$1.00}`, false},
	}
	for _, tt := range tests {
		tp := &TablePlan{all: []converter{{name: "c", kind: tt.kind, arr: true, conv: mappings.ConvAuto}}}
		v, err := tp.all[0].attr(tt.in)
		if err != nil {
			t.Fatalf("attr(%q): %v", tt.in, err)
		}
		text, null, ok := TextOf(tp, 0, v)
		if ok != tt.ok || null {
			t.Errorf("TextOf(%s %s) = %q, %v, %v; want ok=%v", tt.kind, tt.in, text, null, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		back, err := tp.all[0].attr(text)
		if err != nil || av(back) != av(v) {
			t.Errorf("TextOf(%s %s) = %q converts to %s, %v; want %s", tt.kind, tt.in, text, av(back), err, av(v))
		}
	}
	var _ types.AttributeValue
}

// checkTimestampFastPath: where the fast path takes a timestamp, it writes
// what parsing and formatting write.
func checkTimestampFastPath(t *testing.T, text string) {
	t.Helper()
	for _, tz := range []bool{false, true} {
		fast, ok := appendISOTimestampUTC([]byte("x"), text, tz)
		slow, err := appendISOTimestampParsed([]byte("x"), text, tz)
		if ok && (err != nil || string(fast) != string(slow)) {
			t.Errorf("%q (tz %v): fast path %q, general path %q, %v", text, tz, fast, slow, err)
		}
	}
}

func TestTimestampFastPath(t *testing.T) {
	for _, s := range []string{"2022-02-15 09:09:17+00", "2022-02-15 09:09:17.5+00", "2022-02-15 09:09:17.123456+00", "2022-02-15 09:09:17.1234567+00",
		"2022-02-15 09:09:17", "2022-02-15 09:09:17.000001", "0001-01-01 00:00:00+00", "0000-01-01 00:00:00", "9999-12-31 23:59:59.999999+00",
		"2022-13-01 00:00:00+00", "2022-00-10 00:00:00+00", "2022-01-32 00:00:00", "2022-01-01 24:00:00", "2022-01-01 00:60:00", "2022-01-01 00:00:60",
		"2022-01-01 00:00:00+02", "2022-01-01 00:00:00+00:00", "2022-01-01 00:00:00+00 BC", "2022-01-01 00:00:00.+00", "10000-01-01 00:00:00+00",
		"2022-01-01T00:00:00+00", "2022-01-01 00:00:00 ", "infinity", "", "2022-01-01"} {
		checkTimestampFastPath(t, s)
	}
	for _, tc := range typeRuleCases {
		checkTimestampFastPath(t, tc.in)
	}
	for _, tc := range attrAutoCases {
		checkTimestampFastPath(t, tc.in)
	}
	if out, ok := appendISOTimestampUTC(nil, "2022-02-15 09:09:17.5+00", true); !ok || string(out) != "2022-02-15T09:09:17.500000Z" {
		t.Errorf("fast path: %q, %v", out, ok)
	}
}

func FuzzTimestampFastPath(f *testing.F) {
	for _, s := range []string{"2022-02-15 09:09:17.5+00", "2022-02-15 09:09:17", "0000-01-01 00:00:00+00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkTimestampFastPath(t, s) })
}
