package transform

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// av renders an attribute value compactly for comparisons: N:2.99, S:text,
// BOOL:true, NULL, B:00ff (hex), L[...], M{...}.
func av(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberS:
		return "S:" + v.Value
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprintf("BOOL:%v", v.Value)
	case *types.AttributeValueMemberNULL:
		return fmt.Sprintf("NULL:%v", v.Value)
	case *types.AttributeValueMemberB:
		return "B:" + hex.EncodeToString(v.Value)
	case *types.AttributeValueMemberL:
		parts := make([]string, len(v.Value))
		for i, e := range v.Value {
			parts[i] = av(e)
		}
		return "L[" + strings.Join(parts, ", ") + "]"
	case nil:
		return "<nil>"
	}
	return fmt.Sprintf("%T", v)
}

func conv(kind extract.Kind, arr bool, c mappings.Conversion) converter {
	if c == "" {
		c = mappings.ConvAuto
	}
	return converter{name: "col", kind: kind, arr: arr, conv: c}
}

var (
	digits38 = "12345678901234567890123456789012345678"
	digits39 = "123456789012345678901234567890123456789"
)

// TestAttrAuto covers the default conversion of every type Pagila uses (and a
// few it does not), each to the DynamoDB type DESIGN.md promises.
func TestAttrAuto(t *testing.T) {
	for _, tt := range attrAutoCases {
		t.Run(tt.name, func(t *testing.T) {
			c := conv(tt.kind, tt.arr, mappings.ConvAuto)
			got, err := c.attr(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("attr(%q) = %s, %v; want error containing %q", tt.in, av(got), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("attr(%q): %v", tt.in, err)
			}
			if s := av(got); s != tt.want {
				t.Errorf("attr(%q) = %s, want %s", tt.in, s, tt.want)
			}
		})
	}
}

// attrCase is one value under one conversion and the attribute it becomes
// (av() form; "" with err set).
type attrCase struct {
	name string
	kind extract.Kind
	arr  bool
	conv mappings.Conversion
	in   string
	want string
	err  string
}

// attrAutoCases are values under the default conversion (conv "").
var attrAutoCases = []attrCase{
	// integers and integer domains
	{"int2", extract.KindInt, false, "", "-32768", "N:-32768", ""},
	{"int4", extract.KindInt, false, "", "2147483647", "N:2147483647", ""},
	{"int8", extract.KindInt, false, "", "-9223372036854775808", "N:-9223372036854775808", ""},
	{"domain year", extract.KindInt, false, "", "2006", "N:2006", ""},
	{"domain bıgınt", extract.KindInt, false, "", "9223372036854775807", "N:9223372036854775807", ""},
	// numeric: exact digits, never through float64
	{"numeric 2.99", extract.KindNumeric, false, "", "2.99", "N:2.99", ""},
	{"numeric 0.00", extract.KindNumeric, false, "", "0.00", "N:0.00", ""},
	{"numeric 0", extract.KindNumeric, false, "", "0", "N:0", ""},
	{"numeric negative", extract.KindNumeric, false, "", "-11.99", "N:-11.99", ""},
	{"numeric 0.1 exact", extract.KindNumeric, false, "", "0.1", "N:0.1", ""},
	{"numeric 17 digits beyond float64", extract.KindNumeric, false, "", "12345678901234567.89", "N:12345678901234567.89", ""},
	{"numeric 38 digits", extract.KindNumeric, false, "", digits38, "N:" + digits38, ""},
	{"numeric 38 digits with point", extract.KindNumeric, false, "", "1234567890123456789.0123456789012345678", "N:1234567890123456789.0123456789012345678", ""},
	{"numeric 39 digits", extract.KindNumeric, false, "", digits39, "S:" + digits39, ""},
	{"numeric 39 digits negative", extract.KindNumeric, false, "", "-" + digits39, "S:-" + digits39, ""},
	{"numeric 39 digits with point", extract.KindNumeric, false, "", "1.23456789012345678901234567890123456789", "S:1.23456789012345678901234567890123456789", ""},
	{"numeric trailing zeros not significant", extract.KindNumeric, false, "", "1.0000000000000000000000000000000000000000", "N:1.0000000000000000000000000000000000000000", ""},
	{"numeric leading zeros not significant", extract.KindNumeric, false, "", "0.000" + digits38, "N:0.000" + digits38, ""},
	{"numeric 1e-130", extract.KindNumeric, false, "", "0." + strings.Repeat("0", 129) + "1", "N:0." + strings.Repeat("0", 129) + "1", ""},
	{"numeric 1e-131", extract.KindNumeric, false, "", "0." + strings.Repeat("0", 130) + "1", "S:0." + strings.Repeat("0", 130) + "1", ""},
	{"numeric exponent 1e-131", extract.KindNumeric, false, "", "1e-131", "S:1e-131", ""},
	{"numeric exponent 1e-130", extract.KindNumeric, false, "", "1e-130", "N:1e-130", ""},
	{"numeric 1e125", extract.KindNumeric, false, "", "1" + strings.Repeat("0", 125), "N:1" + strings.Repeat("0", 125), ""},
	{"numeric 1e126", extract.KindNumeric, false, "", "1" + strings.Repeat("0", 126), "S:1" + strings.Repeat("0", 126), ""},
	{"numeric NaN", extract.KindNumeric, false, "", "NaN", "", "NaN is not a number"},
	{"numeric Infinity", extract.KindNumeric, false, "", "Infinity", "", "Infinity is not a number"},
	{"numeric -Infinity", extract.KindNumeric, false, "", "-Infinity", "", "-Infinity is not a number"},
	// float
	{"float4", extract.KindFloat, false, "", "1.1", "N:1.1", ""},
	{"float8", extract.KindFloat, false, "", "0.30000000000000004", "N:0.30000000000000004", ""},
	{"float8 exponent", extract.KindFloat, false, "", "1.5e+20", "N:1.5e+20", ""},
	{"float8 beyond N range", extract.KindFloat, false, "", "1.7976931348623157e+308", "", "beyond DynamoDB's number range"},
	{"float NaN", extract.KindFloat, false, "", "NaN", "", "not a number"},
	{"float Infinity", extract.KindFloat, false, "", "-Infinity", "", "not a number"},
	// text
	{"text", extract.KindText, false, "", "ACADEMY DINOSAUR", "S:ACADEMY DINOSAUR", ""},
	{"varchar", extract.KindText, false, "", "Mike.Hillyer@sakilastaff.com", "S:Mike.Hillyer@sakilastaff.com", ""},
	{"bpchar padding kept", extract.KindText, false, "", "English             ", "S:English             ", ""},
	{"empty string", extract.KindText, false, "", "", "S:", ""},
	{"text with newline and tab", extract.KindText, false, "", "a\nb\tc", "S:a\nb\tc", ""},
	{"enum mpaa_rating", extract.KindEnum, false, "", "NC-17", "S:NC-17", ""},
	{"tsvector", extract.KindTSVector, false, "", "'academi':1 'battl':15", "S:'academi':1 'battl':15", ""},
	{"json", extract.KindJSON, false, "", `{"a": [1, 2]}`, `S:{"a": [1, 2]}`, ""},
	{"interval", extract.KindTime, false, "", "3 days 04:05:06", "S:3 days 04:05:06", ""},
	{"other", extract.KindOther, false, "", "(1,2)", "S:(1,2)", ""},
	// bool
	{"bool true", extract.KindBool, false, "", "t", "BOOL:true", ""},
	{"bool false", extract.KindBool, false, "", "f", "BOOL:false", ""},
	// dates and times
	{"date", extract.KindDate, false, "", "2022-05-24", "S:2022-05-24", ""},
	{"date infinity", extract.KindDate, false, "", "infinity", "", "no DynamoDB form"},
	{"date -infinity", extract.KindDate, false, "", "-infinity", "", "no DynamoDB form"},
	{"timestamp", extract.KindTimestamp, false, "", "2022-05-24 22:53:30", "S:2022-05-24T22:53:30.000000", ""},
	{"timestamp .5", extract.KindTimestamp, false, "", "2022-05-24 22:53:30.5", "S:2022-05-24T22:53:30.500000", ""},
	{"timestamp micro", extract.KindTimestamp, false, "", "2022-05-24 22:53:30.000001", "S:2022-05-24T22:53:30.000001", ""},
	{"timestamp infinity", extract.KindTimestamp, false, "", "infinity", "", "no DynamoDB form"},
	{"timestamp garbage", extract.KindTimestamp, false, "", "yesterday", "", "unexpected timestamp form"},
	{"timestamptz", extract.KindTimestampTZ, false, "", "2022-05-24 22:53:30.123456+00", "S:2022-05-24T22:53:30.123456Z", ""},
	{"timestamptz whole second", extract.KindTimestampTZ, false, "", "2022-02-16 02:30:53+00", "S:2022-02-16T02:30:53.000000Z", ""},
	{"timestamptz +02", extract.KindTimestampTZ, false, "", "2022-05-24 22:53:30+02", "S:2022-05-24T20:53:30.000000Z", ""},
	{"timestamptz +02 with fraction", extract.KindTimestampTZ, false, "", "2022-05-24 01:53:30.25+02", "S:2022-05-23T23:53:30.250000Z", ""},
	{"timestamptz -03", extract.KindTimestampTZ, false, "", "2022-05-24 22:53:30-03", "S:2022-05-25T01:53:30.000000Z", ""},
	{"timestamptz +05:30", extract.KindTimestampTZ, false, "", "2022-05-24 22:53:30+05:30", "S:2022-05-24T17:23:30.000000Z", ""},
	{"timestamptz historic LMT offset", extract.KindTimestampTZ, false, "", "1900-01-01 12:00:00+00:19:32", "S:1900-01-01T11:40:28.000000Z", ""},
	{"timestamptz +00:00", extract.KindTimestampTZ, false, "", "2022-05-24 22:53:30+00:00", "S:2022-05-24T22:53:30.000000Z", ""},
	{"timestamptz infinity", extract.KindTimestampTZ, false, "", "infinity", "", "no DynamoDB form"},
	{"timestamptz -infinity", extract.KindTimestampTZ, false, "", "-infinity", "", "no DynamoDB form"},
	{"timestamptz without offset", extract.KindTimestampTZ, false, "", "2022-05-24 22:53:30", "", "unexpected timestamptz form"},
	// bytea
	{"bytea", extract.KindBytea, false, "", `\x00ff`, "B:00ff", ""},
	{"bytea png header", extract.KindBytea, false, "", `\x89504e470d0a5a0a`, "B:89504e470d0a5a0a", ""},
	{"bytea empty", extract.KindBytea, false, "", `\x`, "B:", ""},
	{"bytea odd digits", extract.KindBytea, false, "", `\x0`, "", "bytea"},
	{"bytea escape form", extract.KindBytea, false, "", `abc\000`, "", "not in hex form"},
	// arrays
	{"text[] special_features", extract.KindText, true, "", `{"Deleted Scenes","Behind the Scenes",NULL}`, "L[S:Deleted Scenes, S:Behind the Scenes, NULL:true]", ""},
	{"text[] order kept", extract.KindText, true, "", `{Trailers,"Deleted Scenes",Commentaries}`, "L[S:Trailers, S:Deleted Scenes, S:Commentaries]", ""},
	{"text[] empty", extract.KindText, true, "", `{}`, "L[]", ""},
	{"text[] quotes backslashes commas", extract.KindText, true, "", `{"say \"hi\"","back\\slash","a,b","{x}","NULL","",plain}`,
		`L[S:say "hi", S:back\slash, S:a,b, S:{x}, S:NULL, S:, S:plain]`, ""},
	{"int[]", extract.KindInt, true, "", `{1,-2,NULL}`, "L[N:1, N:-2, NULL:true]", ""},
	{"numeric[] exact", extract.KindNumeric, true, "", `{2.99,` + digits39 + `}`, "L[N:2.99, S:" + digits39 + "]", ""},
	{"int[][]", extract.KindInt, true, "", `{{1,2},{3,NULL}}`, "L[L[N:1, N:2], L[N:3, NULL:true]]", ""},
	{"array with bounds", extract.KindInt, true, "", `[0:1]={7,8}`, "", "array with bounds [0:1]"},
	{"timestamptz[]", extract.KindTimestampTZ, true, "", `{"2022-05-24 22:53:30+00"}`, "L[S:2022-05-24T22:53:30.000000Z]", ""},
	{"bytea[]", extract.KindBytea, true, "", `{"\\x00ff",NULL}`, "L[B:00ff, NULL:true]", ""},
	{"bool[]", extract.KindBool, true, "", `{t,f}`, "L[BOOL:true, BOOL:false]", ""},
	{"array element NaN", extract.KindNumeric, true, "", `{1,NaN}`, "", "NaN"},
	{"array unterminated", extract.KindText, true, "", `{a,b`, "", "unterminated"},
	{"array not an array", extract.KindText, true, "", `abc`, "", "expected '{'"},
}

func TestAttrConversions(t *testing.T) {
	for _, tt := range attrConversionCases {
		t.Run(tt.name, func(t *testing.T) {
			c := conv(tt.kind, tt.arr, tt.conv)
			got, err := c.attr(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("attr(%q) = %s, %v; want error containing %q", tt.in, av(got), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("attr(%q): %v", tt.in, err)
			}
			if s := av(got); s != tt.want {
				t.Errorf("attr(%q) = %s, want %s", tt.in, s, tt.want)
			}
		})
	}
}

// attrConversionCases are values under the mapping's conversions.
var attrConversionCases = []attrCase{
	{"string int", extract.KindInt, false, mappings.ConvString, "42", "S:42", ""},
	{"string numeric", extract.KindNumeric, false, mappings.ConvString, "2.90", "S:2.90", ""},
	{"string numeric NaN", extract.KindNumeric, false, mappings.ConvString, "NaN", "", "not a number"},
	{"string timestamptz", extract.KindTimestampTZ, false, mappings.ConvString, "2022-05-24 22:53:30+00", "S:2022-05-24T22:53:30.000000Z", ""},
	{"string date", extract.KindDate, false, mappings.ConvString, "2022-05-24", "S:2022-05-24", ""},
	{"string bool", extract.KindBool, false, mappings.ConvString, "t", "S:t", ""},
	{"string bytea is hex", extract.KindBytea, false, mappings.ConvString, `\x00ff`, "S:00ff", ""},
	{"string int[]", extract.KindInt, true, mappings.ConvString, `{1,NULL}`, "L[S:1, NULL:true]", ""},
	{"number int", extract.KindInt, false, mappings.ConvNumber, "42", "N:42", ""},
	{"number numeric", extract.KindNumeric, false, mappings.ConvNumber, "2.99", "N:2.99", ""},
	{"number numeric beyond 38 digits stays exact", extract.KindNumeric, false, mappings.ConvNumber, digits39, "S:" + digits39, ""},
	{"number float", extract.KindFloat, false, mappings.ConvNumber, "1.5", "N:1.5", ""},
	{"number bool true", extract.KindBool, false, mappings.ConvNumber, "t", "N:1", ""},
	{"number bool false", extract.KindBool, false, mappings.ConvNumber, "f", "N:0", ""},
	{"number NaN", extract.KindFloat, false, mappings.ConvNumber, "NaN", "", "not a number"},
	{"epoch_ms date", extract.KindDate, false, mappings.ConvEpochMS, "2022-05-24", "N:1653350400000", ""},
	{"epoch_ms timestamp", extract.KindTimestamp, false, mappings.ConvEpochMS, "2022-05-24 22:53:30.5", "N:1653432810500", ""},
	{"epoch_ms timestamptz", extract.KindTimestampTZ, false, mappings.ConvEpochMS, "2022-05-24 22:53:30.500999+00", "N:1653432810500", ""},
	{"epoch_ms timestamptz +02", extract.KindTimestampTZ, false, mappings.ConvEpochMS, "2022-05-24 22:53:30+02", "N:1653425610000", ""},
	{"epoch_ms timestamptz +05:30", extract.KindTimestampTZ, false, mappings.ConvEpochMS, "2022-05-24 22:53:30+05:30", "N:1653413010000", ""},
	{"epoch_ms before 1970", extract.KindDate, false, mappings.ConvEpochMS, "1969-12-31", "N:-86400000", ""},
	{"epoch_ms infinity", extract.KindTimestampTZ, false, mappings.ConvEpochMS, "infinity", "", "no epoch_ms form"},
	{"epoch_ms text", extract.KindText, false, mappings.ConvEpochMS, "2022-05-24", "", "needs a date or timestamp"},
	{"binary bytea", extract.KindBytea, false, mappings.ConvBinary, `\x00ff`, "B:00ff", ""},
}

func TestCheckConversion(t *testing.T) {
	col := func(typ string, kind extract.Kind, arr bool) extract.Column {
		return extract.Column{Name: "c", Type: typ, Kind: kind, Array: arr}
	}
	tests := []struct {
		col  extract.Column
		conv mappings.Conversion
		ok   bool
	}{
		{col("integer", extract.KindInt, false), mappings.ConvNumber, true},
		{col("integer", extract.KindInt, false), mappings.ConvString, true},
		{col("integer", extract.KindInt, false), mappings.ConvEpochMS, false},
		{col("integer", extract.KindInt, false), mappings.ConvBinary, false},
		{col("numeric(5,2)", extract.KindNumeric, false), mappings.ConvNumber, true},
		{col("boolean", extract.KindBool, false), mappings.ConvNumber, true},
		{col("text", extract.KindText, false), mappings.ConvNumber, false},
		{col("date", extract.KindDate, false), mappings.ConvEpochMS, true},
		{col("timestamp without time zone", extract.KindTimestamp, false), mappings.ConvEpochMS, true},
		{col("timestamp with time zone", extract.KindTimestampTZ, false), mappings.ConvEpochMS, true},
		{col("timestamp with time zone", extract.KindTimestampTZ, false), mappings.ConvBinary, false},
		{col("bytea", extract.KindBytea, false), mappings.ConvBinary, true},
		{col("bytea", extract.KindBytea, false), mappings.ConvString, true},
		{col("text[]", extract.KindText, true), mappings.ConvString, true},
		{col("text[]", extract.KindText, true), mappings.ConvAuto, true},
		{col("integer[]", extract.KindInt, true), mappings.ConvNumber, false},
		{col("date[]", extract.KindDate, true), mappings.ConvEpochMS, false},
	}
	for _, tt := range tests {
		err := checkConversion(tt.col, tt.conv)
		if (err == nil) != tt.ok {
			t.Errorf("checkConversion(%s, %s) = %v, want ok=%v", tt.col.Type, tt.conv, err, tt.ok)
		}
	}
}

func TestNumberFitsN(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0", true},
		{"-0", true},
		{"0.00", true},
		{"000", true},
		{digits38, true},
		{"-" + digits38, true},
		{digits39, false},
		{"0.0" + digits38, true},
		{"0.0" + digits39, false},
		{digits38 + "000", true}, // 41 digits, 38 significant
		{"9.9999999999999999999999999999999999999e125", true},
		{"1e126", false},
		{"1E-130", true},
		{"1e-131", false},
		{"1e", false},
		{"1ex", false},
		{"16050", true},
		{"-2.99", true},
		{"1.", true},
		{"0." + digits38[1:], true},
	}
	for _, tt := range tests {
		if got := numberFitsN(tt.in); got != tt.want {
			t.Errorf("numberFitsN(%q) = %v, want %v", tt.in, got, tt.want)
		}
		// The fast path may only accept what the exact analysis accepts.
		if plainDecimal(tt.in) && !numberFitsExact(tt.in) {
			t.Errorf("plainDecimal(%q) accepts a number numberFitsExact refuses", tt.in)
		}
	}
}

// TestAppendJSON checks the event form of each kind: the output must be valid
// JSON and exactly the expected text.
func TestAppendJSON(t *testing.T) {
	tests := []struct {
		name string
		kind extract.Kind
		arr  bool
		in   string
		want string
		err  string
	}{
		{"int", extract.KindInt, false, "16050", "16050", ""},
		{"int negative", extract.KindInt, false, "-5", "-5", ""},
		{"int8 max", extract.KindInt, false, "9223372036854775807", "9223372036854775807", ""},
		{"numeric is a string", extract.KindNumeric, false, "2.99", `"2.99"`, ""},
		{"numeric trailing zeros kept", extract.KindNumeric, false, "0.00", `"0.00"`, ""},
		{"numeric 39 digits", extract.KindNumeric, false, digits39, `"` + digits39 + `"`, ""},
		{"numeric NaN", extract.KindNumeric, false, "NaN", "", "not a number"},
		{"float", extract.KindFloat, false, "1.5", "1.5", ""},
		{"float exponent", extract.KindFloat, false, "1.5e+20", "1.5e+20", ""},
		{"float NaN", extract.KindFloat, false, "NaN", "", "not a number"},
		{"float Infinity", extract.KindFloat, false, "Infinity", "", "not a number"},
		{"bool true", extract.KindBool, false, "t", "true", ""},
		{"bool false", extract.KindBool, false, "f", "false", ""},
		{"bytea base64", extract.KindBytea, false, `\x00ff`, `"AP8="`, ""},
		{"bytea png", extract.KindBytea, false, `\x89504e470d0a5a0a`, `"iVBORw0KWgo="`, ""},
		{"bytea empty", extract.KindBytea, false, `\x`, `""`, ""},
		{"bytea bad", extract.KindBytea, false, `\xzz`, "", "bytea"},
		{"text", extract.KindText, false, "ACADEMY DINOSAUR", `"ACADEMY DINOSAUR"`, ""},
		{"text quotes", extract.KindText, false, `say "hi" \ bye`, `"say \"hi\" \\ bye"`, ""},
		{"text control", extract.KindText, false, "a\nb\tc\rd\x00e\x1f\b\f", `"a\nb\tc\rd\u0000e\u001f\u0008\u000c"`, ""},
		{"text html", extract.KindText, false, "<a&b>", `"\u003ca\u0026b\u003e"`, ""},
		{"text unicode", extract.KindText, false, "bıgınt € 😀 \u2028", "\"bıgınt € 😀 \u2028\"", ""},
		{"enum", extract.KindEnum, false, "NC-17", `"NC-17"`, ""},
		{"date", extract.KindDate, false, "2022-05-24", `"2022-05-24"`, ""},
		{"timestamp", extract.KindTimestamp, false, "2022-05-24 22:53:30.5", `"2022-05-24T22:53:30.500000"`, ""},
		{"timestamptz", extract.KindTimestampTZ, false, "2022-05-24 22:53:30.123456+00", `"2022-05-24T22:53:30.123456Z"`, ""},
		{"timestamptz infinity", extract.KindTimestampTZ, false, "infinity", "", "no DynamoDB form"},
		{"json as a string of its exact text", extract.KindJSON, false, `{"a": [1, "x"]}`, `"{\"a\": [1, \"x\"]}"`, ""},
		{"json null is not SQL NULL", extract.KindJSON, false, `null`, `"null"`, ""},
		{"tsvector", extract.KindTSVector, false, "'academi':1 'battl':15", `"'academi':1 'battl':15"`, ""},
		{"text[]", extract.KindText, true, `{"Deleted Scenes","Behind the Scenes",NULL}`, `["Deleted Scenes","Behind the Scenes",null]`, ""},
		{"text[] empty", extract.KindText, true, `{}`, `[]`, ""},
		{"text[] escapes", extract.KindText, true, `{"say \"hi\"","back\\slash","a,b"}`, `["say \"hi\"","back\\slash","a,b"]`, ""},
		{"int[][]", extract.KindInt, true, `{{1,2},{NULL,4}}`, `[[1,2],[null,4]]`, ""},
		{"numeric[]", extract.KindNumeric, true, `{2.99,0.00}`, `["2.99","0.00"]`, ""},
		{"bytea[]", extract.KindBytea, true, `{"\\x00ff"}`, `["AP8="]`, ""},
		{"timestamptz[]", extract.KindTimestampTZ, true, `{"2022-05-24 22:53:30+00",NULL}`, `["2022-05-24T22:53:30.000000Z",null]`, ""},
		{"bool[]", extract.KindBool, true, `{t,f,NULL}`, `[true,false,null]`, ""},
		{"array bad", extract.KindInt, true, `{1,2`, "", "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conv(tt.kind, tt.arr, mappings.ConvAuto)
			got, err := c.appendJSON([]byte("prefix:"), tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("appendJSON(%q) = %s, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("appendJSON(%q): %v", tt.in, err)
			}
			s, ok := strings.CutPrefix(string(got), "prefix:")
			if !ok {
				t.Fatalf("appendJSON did not append to dst: %q", got)
			}
			if s != tt.want {
				t.Errorf("appendJSON(%q) = %s, want %s", tt.in, s, tt.want)
			}
			if !json.Valid([]byte(s)) {
				t.Errorf("appendJSON(%q) = %s is not valid JSON", tt.in, s)
			}
		})
	}
}

// TestAppendJSONStringMatchesEncodingJSON checks every ASCII byte and some
// multi-byte text: encoding/json must decode what appendJSONString writes back
// to the original string.
func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	var all []byte
	for c := 0; c < 0x80; c++ {
		all = append(all, byte(c))
	}
	for _, s := range []string{"", string(all), "bıgınt", "€😀", "\u2028\u2029", `\u0041`, "\x7f", strings.Repeat(`"\`, 100)} {
		checkJSONString(t, s)
	}
}

func checkJSONString(t *testing.T, s string) {
	t.Helper()
	out := appendJSONString(nil, s)
	var back string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("appendJSONString(%q) = %s: %v", s, out, err)
	}
	if back != s {
		t.Fatalf("appendJSONString(%q) = %s decodes to %q", s, out, back)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "abc", "a\"b\\c\n", "\x00\x1f<>&", "bıgınt 😀", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// PostgreSQL text is valid UTF-8 in a UTF8 database; still, the
			// output must stay valid JSON.
			if out := appendJSONString(nil, s); !json.Valid(out) {
				t.Fatalf("appendJSONString(%q) = %q is not valid JSON", s, out)
			}
			return
		}
		checkJSONString(t, s)
	})
}

// FuzzConvert feeds arbitrary text to every kind's conversions: they may fail
// but must not panic, and the JSON they produce must be valid unless the kind
// is json (whose text PostgreSQL has already validated).
func FuzzConvert(f *testing.F) {
	for _, s := range []string{"2.99", "NaN", "2022-05-24 22:53:30.5+02", "2022-05-24", "t", `\x00ff`, `{"a",NULL,{1}}`, "", "1e-131", "9999-12-31 23:59:59 BC", "10000-01-01 00:00:00+05:30:07 BC", "-$1,234.56", "[5:6]={1,2}", "{(1,1),(0,0);(2,2),(1,1)}"} {
		f.Add(s)
	}
	kinds := []extract.Kind{extract.KindInt, extract.KindNumeric, extract.KindFloat, extract.KindText, extract.KindBool,
		extract.KindDate, extract.KindTimestamp, extract.KindTimestampTZ, extract.KindTime, extract.KindEnum,
		extract.KindBytea, extract.KindTSVector, extract.KindOther, extract.KindMoney, extract.KindBox}
	convs := []mappings.Conversion{mappings.ConvAuto, mappings.ConvString, mappings.ConvNumber, mappings.ConvEpochMS, mappings.ConvBinary}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range kinds {
			for _, arr := range []bool{false, true} {
				for _, cv := range convs {
					c := conv(k, arr, cv)
					_, _ = c.attr(s)
				}
				c := conv(k, arr, mappings.ConvAuto)
				out, err := c.appendJSON(nil, s)
				if err != nil {
					continue
				}
				// int and float text is passed through: only PostgreSQL's own output
				// forms are valid JSON numbers, which arbitrary input is not.
				if k == extract.KindInt || k == extract.KindFloat {
					continue
				}
				if utf8.ValidString(s) && !json.Valid(out) {
					t.Fatalf("kind %s array %v: appendJSON(%q) = %s is not valid JSON", k, arr, s, out)
				}
			}
		}
	})
}

func TestCompareNumbers(t *testing.T) {
	tests := []struct {
		a, b string
		want int
		ok   bool
	}{
		{"2.90", "2.9", 0, true},
		{"2.99", "3", -1, true},
		{digits39, digits38, 1, true},
		{"1e-131", "0", 1, true},
		{"-0", "0", 0, true},
		{"NaN", "1", 0, false},
		{"x", "1", 0, false},
	}
	for _, tt := range tests {
		got, ok := CompareNumbers(tt.a, tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CompareNumbers(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
	}
}

// TestAppendJSONStringWords: every byte at every place of the words the
// escaper reads eight bytes at a time.
func TestAppendJSONStringWords(t *testing.T) {
	for c := 0; c < 256; c++ {
		for _, at := range []int{0, 3, 7, 8, 15, 16, 19} {
			s := []byte("abcdefghijklmnopqrst")
			s[at] = byte(c)
			if utf8.Valid(s) {
				checkJSONString(t, string(s))
			}
			got := appendJSONString(nil, string(s))
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && string(got) != `"`+string(s)+`"` {
				t.Errorf("byte %#x at %d: %q", c, at, got)
			}
		}
	}
}
