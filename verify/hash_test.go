package verify

import (
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/transform"
)

func TestNormalizeNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"2.90", "29e-1"},
		{"2.9", "29e-1"},
		{"002.900", "29e-1"},
		{"29e-1", "29e-1"},
		{"0.29E1", "29e-1"},
		{"100", "1e2"},
		{"1E2", "1e2"},
		{"+5", "5"},
		{"-5.0", "-5"},
		{"0", "0"},
		{"-0.000", "0"},
		{"0e10", "0"},
		{".5", "5e-1"},
		{"12345678901234567890123456789012345678", "12345678901234567890123456789012345678"},
		{"abc", "abc"},
		{"1.2.3", "1.2.3"},
		{"1e", "1e"},
		{"", ""},
	} {
		if got := normalizeNumber(tc.in); got != tc.want {
			t.Errorf("normalizeNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }

func TestItemHashCanonical(t *testing.T) {
	base := func() transform.Item {
		return transform.Item{
			"pk": s("FILM#1"), "sk": s("FILM"), "_table": s("film"), "_version": n("123"),
			"title": s("ACADEMY DINOSAUR"), "rental_rate": n("0.99"), "special": &types.AttributeValueMemberL{Value: []types.AttributeValue{s("a"), s("b")}},
			"picture": &types.AttributeValueMemberB{Value: []byte{1, 2}}, "active": &types.AttributeValueMemberBOOL{Value: true},
			"note": &types.AttributeValueMemberNULL{Value: true}, "tags": &types.AttributeValueMemberSS{Value: []string{"x", "y"}},
			"meta": &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": n("1"), "b": s("2")}},
		}
	}
	var h hasher
	want := h.item(base(), transform.AttrVersion)
	same := []struct {
		name string
		edit func(transform.Item)
	}{
		{"identical", func(transform.Item) {}},
		{"other _version", func(it transform.Item) { it["_version"] = n("999") }},
		{"no _version", func(it transform.Item) { delete(it, "_version") }},
		{"normalised number", func(it transform.Item) { it["rental_rate"] = n("0.990") }},
		{"set order", func(it transform.Item) { it["tags"] = &types.AttributeValueMemberSS{Value: []string{"y", "x"}} }},
	}
	for _, tc := range same {
		it := base()
		tc.edit(it)
		if got := h.item(it, transform.AttrVersion); got != want {
			t.Errorf("%s: hash changed", tc.name)
		}
		if d := CompareItems(base(), it, transform.AttrVersion); len(d) != 0 {
			t.Errorf("%s: CompareItems disagrees with the hash: %v", tc.name, d)
		}
	}
	differ := []struct {
		name string
		edit func(transform.Item)
	}{
		{"value", func(it transform.Item) { it["title"] = s("ACADEMY DINOSAURS") }},
		{"type", func(it transform.Item) { it["rental_rate"] = s("0.99") }},
		{"missing attribute", func(it transform.Item) { delete(it, "note") }},
		{"extra attribute", func(it transform.Item) { it["x"] = s("") }},
		{"list order", func(it transform.Item) {
			it["special"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{s("b"), s("a")}}
		}},
		{"bytes", func(it transform.Item) { it["picture"] = &types.AttributeValueMemberB{Value: []byte{1, 3}} }},
		{"bool", func(it transform.Item) { it["active"] = &types.AttributeValueMemberBOOL{Value: false} }},
		{"map value", func(it transform.Item) {
			it["meta"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"a": n("1"), "b": s("3")}}
		}},
		// Names and values must not run together: "ab"+"c" vs "a"+"bc".
		{"boundaries", func(it transform.Item) { delete(it, "title"); it["titleA"] = s("CADEMY DINOSAUR") }},
	}
	for _, tc := range differ {
		it := base()
		tc.edit(it)
		if got := h.item(it, transform.AttrVersion); got == want {
			t.Errorf("%s: hash unchanged", tc.name)
		}
	}
}

func TestDigestOrderIndependent(t *testing.T) {
	hs := []uint64{0x1234, 0xdeadbeef, 0xfeedface12345678, 7, 7}
	var a, b, c Digest
	for _, h := range hs {
		a.Add(h)
	}
	for i := len(hs) - 1; i >= 0; i-- {
		b.Add(hs[i])
	}
	if a != b {
		t.Errorf("order matters: %+v vs %+v", a, b)
	}
	// Merging partial digests equals adding everything to one.
	var p1, p2 Digest
	p1.Add(hs[0])
	p1.Add(hs[3])
	p2.Add(hs[1])
	p2.Add(hs[2])
	p2.Add(hs[4])
	c.Merge(p1)
	c.Merge(p2)
	if c != a {
		t.Errorf("merge: %+v vs %+v", c, a)
	}
	// A duplicate does not cancel out (xor alone would), a missing item shows.
	var d Digest
	for _, h := range hs[:3] {
		d.Add(h)
	}
	if d == a {
		t.Error("digest without the duplicated item equals the full one")
	}
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		rows int64
		want int
	}{{0, 1}, {511, 1}, {1024, 2}, {1025, 2}, {1536, 4}, {16044, 32}, {1 << 30, 4096}} {
		if got := bucketsFor(tc.rows); got != tc.want {
			t.Errorf("bucketsFor(%d) = %d, want %d", tc.rows, got, tc.want)
		}
	}
	seen := map[int]int{}
	for i := range 10000 {
		b := bucketOf("CUSTOMER#"+strconv.Itoa(i)+"\x00PROFILE", 16)
		if b < 0 || b >= 16 {
			t.Fatalf("bucket %d out of range", b)
		}
		seen[b]++
	}
	for b := range 16 {
		if seen[b] < 400 || seen[b] > 850 {
			t.Errorf("bucket %d holds %d of 10000 keys: not spread", b, seen[b])
		}
	}
}
