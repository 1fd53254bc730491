package ddbjson_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/load/ddbjson"
	"github.com/ferry-migrate/ferry/load/ddbjson/ddbjsontest"
)

// nasty are strings whose escapes matter: every control character, quotes,
// backslashes, HTML characters (the SDK does not escape them), DEL, the
// line and paragraph separators, multi-byte UTF-8 and invalid UTF-8.
var nasty = []string{
	"", "plain", `"quoted"`, `back\slash`, "a\nb\rc\td", "\x00\x01\x1f\x7f", "<a href='x'>&amp;</a>",
	"\u2028\u2029", "bıgınt ünïcödé 日本語 🎬", "\xff", "a\xc3", "\xed\xa0\x80", "x\xe2\x80", "\ufffd",
	strings.Repeat("long text, ", 100),
}

func TestAppendStringMatchesSDK(t *testing.T) {
	for _, s := range nasty {
		checkString(t, s)
	}
	for b := 0; b < 256; b++ {
		checkString(t, string([]byte{byte(b)}))
		checkString(t, "a"+string([]byte{byte(b)})+"z")
		// at every place of the words read eight bytes at a time
		for _, at := range []int{0, 3, 7, 8, 15, 16, 19} {
			s := []byte("abcdefghijklmnopqrst")
			s[at] = byte(b)
			checkString(t, string(s))
		}
	}
}

func checkString(t *testing.T, s string) {
	t.Helper()
	want, err := ddbjsontest.SDKValue(&types.AttributeValueMemberS{Value: s})
	if err != nil {
		t.Fatal(err)
	}
	if got := ddbjson.AppendS(nil, s); !bytes.Equal(got, want) {
		t.Errorf("AppendS(%q) = %s, the SDK writes %s", s, got, want)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range nasty {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkString(t, s)
		// and it is JSON that reads back as the SDK's string does
		var back string
		if err := json.Unmarshal(ddbjson.AppendString(nil, s), &back); err != nil {
			t.Fatalf("AppendString(%q) is not a JSON string: %v", s, err)
		}
	})
}

// values covers every type of attribute value.
func values() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"s":       &types.AttributeValueMemberS{Value: "RENTAL#1"},
		"s empty": &types.AttributeValueMemberS{Value: ""},
		"s nasty": &types.AttributeValueMemberS{Value: strings.Join(nasty, "|")},
		"n":       &types.AttributeValueMemberN{Value: "-12.50"},
		"n big":   &types.AttributeValueMemberN{Value: "12345678901234567890123456789012345678"},
		"n exp":   &types.AttributeValueMemberN{Value: "1.5e+20"},
		"b":       &types.AttributeValueMemberB{Value: []byte{0, 1, 0xfe, 0xff}},
		"b empty": &types.AttributeValueMemberB{Value: []byte{}},
		"bool t":  &types.AttributeValueMemberBOOL{Value: true},
		"bool f":  &types.AttributeValueMemberBOOL{Value: false},
		"null":    &types.AttributeValueMemberNULL{Value: true},
		"ss":      &types.AttributeValueMemberSS{Value: []string{"b", "a", "\n"}},
		"ns":      &types.AttributeValueMemberNS{Value: []string{"1", "2.5"}},
		"bs":      &types.AttributeValueMemberBS{Value: [][]byte{{1}, {2, 3}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			&types.AttributeValueMemberS{Value: "Trailers"}, &types.AttributeValueMemberNULL{Value: true},
			&types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberN{Value: "1"}}},
		}},
		"l empty": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		"m": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
			"z": &types.AttributeValueMemberN{Value: "1"}, "a": &types.AttributeValueMemberS{Value: "x"}, "": &types.AttributeValueMemberBOOL{Value: true},
			"nested": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"k\"ey": &types.AttributeValueMemberL{Value: []types.AttributeValue{}}}},
		}},
		"m empty":       &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}},
		"name\nwith\"✓": &types.AttributeValueMemberS{Value: "odd attribute name"},
	}
}

// TestAppendItemMatchesSDK: the wire form of every type is the SDK's.
func TestAppendItemMatchesSDK(t *testing.T) {
	item := values()
	for name, v := range item {
		t.Run(name, func(t *testing.T) {
			got, err := ddbjson.AppendAttributeValue(nil, v)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ddbjsontest.SDKValue(v)
			if err != nil {
				t.Fatal(err)
			}
			sameWire(t, got, want)
		})
	}
	got, err := ddbjson.AppendItem(nil, item)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ddbjsontest.SDKItem(item)
	if err != nil {
		t.Fatal(err)
	}
	sameWire(t, got, want)
}

func sameWire(t *testing.T, got, want []byte) {
	t.Helper()
	g, err := ddbjsontest.Canonical(got)
	if err != nil {
		t.Fatalf("ferry's %s: %v", got, err)
	}
	w, err := ddbjsontest.Canonical(want)
	if err != nil {
		t.Fatalf("the SDK's %s: %v", want, err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("wire form\n got %s\nwant %s (the SDK's)", g, w)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	item := values()
	data, err := ddbjson.AppendItem(nil, item)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ddbjson.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	// The wire form replaced invalid UTF-8 by U+FFFD: compare through it.
	want, _ := ddbjson.AppendItem(nil, back)
	if !bytes.Equal(want, data) {
		t.Errorf("Decode then AppendItem:\n got %s\nwant %s", want, data)
	}
	if !reflect.DeepEqual(back["m"], item["m"]) || !reflect.DeepEqual(back["l"], item["l"]) || !reflect.DeepEqual(back["bs"], item["bs"]) {
		t.Errorf("documents differ after the round trip")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{``, `null`, `[]`, `{"a":{"S":"x","N":"1"}}`, `{"a":{"X":"1"}}`, `{"a":{"S":null}}`, `{"a":{"B":"not base64!"}}`, `{"a":{"L":[{"S":1}]}}`} {
		if _, err := ddbjson.Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%s): no error", in)
		}
	}
}

func TestItemValid(t *testing.T) {
	if err := (ddbjson.Item{JSON: []byte(`{}`), PK: ddbjson.KeyAttr{Name: "pk", Value: "x"}}).Valid(); err != nil {
		t.Error(err)
	}
	if err := (ddbjson.Item{JSON: []byte(`[]`)}).Valid(); err == nil || !strings.Contains(err.Error(), "not an object") || !strings.Contains(err.Error(), "partition key") {
		t.Errorf("Valid = %v", err)
	}
}

func BenchmarkAppendS(b *testing.B) {
	const s = "A Epic Drama of a Feminist And a Mad Scientist who must Battle a Teacher in The Canadian Rockies"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = ddbjson.AppendS(buf[:0], s)
	}
}

func TestAppendNMatchesSDK(t *testing.T) {
	for _, n := range []string{"0", "-12.50", "1.5e+20", "1E-130", "12345678901234567890123456789012345678", "", "1\"2", "a\\b", "\xff", "1\n"} {
		want, err := ddbjsontest.SDKValue(&types.AttributeValueMemberN{Value: n})
		if err != nil {
			t.Fatal(err)
		}
		if got := ddbjson.AppendN(nil, n); !bytes.Equal(got, want) {
			t.Errorf("AppendN(%q) = %s, the SDK writes %s", n, got, want)
		}
	}
}
