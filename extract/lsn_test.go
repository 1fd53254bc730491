package extract

import (
	"math"
	"math/big"
	"sort"
	"strings"
	"testing"
)

func TestLSNStringParseRoundTrip(t *testing.T) {
	tests := []struct {
		lsn  LSN
		text string
	}{
		{0, "0/0"},
		{1, "0/1"},
		{0x16B374D848, "16/B374D848"},
		{0x1_00000000, "1/0"},
		{0xFFFFFFFF, "0/FFFFFFFF"},
		{0xDEADBEEF_0000000A, "DEADBEEF/A"},
		{math.MaxUint64, "FFFFFFFF/FFFFFFFF"},
	}
	for _, tt := range tests {
		if got := tt.lsn.String(); got != tt.text {
			t.Errorf("LSN(%#x).String() = %q, want %q", uint64(tt.lsn), got, tt.text)
		}
		got, err := ParseLSN(tt.text)
		if err != nil {
			t.Errorf("ParseLSN(%q): %v", tt.text, err)
			continue
		}
		if got != tt.lsn {
			t.Errorf("ParseLSN(%q) = %#x, want %#x", tt.text, uint64(got), uint64(tt.lsn))
		}
	}
}

func TestParseLSNForms(t *testing.T) {
	tests := []struct {
		text string
		want LSN
	}{
		{"16/b374d848", 0x16B374D848}, // lower case
		{"00000016/0B374D848", 0x16B374D848},
		{"0/00000000", 0},
	}
	for _, tt := range tests {
		got, err := ParseLSN(tt.text)
		if err != nil || got != tt.want {
			t.Errorf("ParseLSN(%q) = %#x, %v; want %#x", tt.text, uint64(got), err, uint64(tt.want))
		}
	}
}

func TestParseLSNErrors(t *testing.T) {
	for _, text := range []string{
		"",
		"16",
		"16B374D848",
		"16/",
		"/B374D848",
		"/",
		"G/0",
		"0/G",
		"1/2/3",
		" 1/2",
		"1/2 ",
		"-1/0",
		"+1/0",
		"0x1/0",
		"1_0/0",
		"100000000/0", // high half beyond 32 bits
		"0/100000000", // low half beyond 32 bits
	} {
		if got, err := ParseLSN(text); err == nil {
			t.Errorf("ParseLSN(%q) = %v, want an error", text, got)
		} else if !strings.Contains(err.Error(), "parse LSN") {
			t.Errorf("ParseLSN(%q) error %q does not say what failed", text, err)
		}
	}
}

func TestPositionLess(t *testing.T) {
	tests := []struct {
		p, q Position
		want bool
	}{
		{Position{}, Position{}, false},
		{Position{0, 0}, Position{0, 1}, true},
		{Position{0, 1}, Position{0, 0}, false},
		{Position{1, 0}, Position{0, MaxSeq}, false},
		{Position{0, MaxSeq}, Position{1, 0}, true},
		{Position{5, 3}, Position{5, 3}, false},
		{Position{5, 3}, Position{5, 4}, true},
		{Position{5, 9}, Position{6, 0}, true},
		{Position{math.MaxUint64, 0}, Position{math.MaxUint64, 1}, true},
		{Position{math.MaxUint64, MaxSeq}, Position{0, 0}, false},
	}
	for _, tt := range tests {
		if got := tt.p.Less(tt.q); got != tt.want {
			t.Errorf("%v.Less(%v) = %v, want %v", tt.p, tt.q, got, tt.want)
		}
	}
}

// positions is an ascending list of positions around the interesting edges: LSN 0
// (whose versions are short), sequence numbers with every digit count, and the
// largest LSN.
var positions = []Position{
	{0, 0},
	{0, 1},
	{0, 9},
	{0, 10},
	{0, 12345678},
	{0, MaxSeq},
	{1, 0},
	{1, 1},
	{1, MaxSeq},
	{2, 0},
	{9, 5},
	{10, 0},
	{0x16B374D848, 0},
	{0x16B374D848, 3},
	{0x16B374D848, 10},
	{0x16B374D849, 0},
	{math.MaxUint64 - 1, MaxSeq},
	{math.MaxUint64, 0},
	{math.MaxUint64, MaxSeq},
}

func TestVersionRoundTrip(t *testing.T) {
	for _, p := range positions {
		v := p.Version()
		if len(v) > 28 {
			t.Errorf("%v.Version() = %q has %d digits, more than 28", p, v, len(v))
		}
		if len(v) > 1 && v[0] == '0' {
			t.Errorf("%v.Version() = %q has a leading zero (DynamoDB would normalise it)", p, v)
		}
		got, err := ParseVersion(v)
		if err != nil {
			t.Errorf("ParseVersion(%q): %v", v, err)
			continue
		}
		if got != p {
			t.Errorf("ParseVersion(%v.Version() = %q) = %v", p, v, got)
		}
	}
}

func TestVersionKnownValues(t *testing.T) {
	tests := []struct {
		p    Position
		want string
	}{
		{Position{0, 0}, "0"},
		{Position{0, 7}, "7"},
		{Position{1, 0}, "100000000"},
		{Position{0x16B374D848, 3}, "97500059720" + "00000003"},
	}
	for _, tt := range tests {
		if got := tt.p.Version(); got != tt.want {
			t.Errorf("%v.Version() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// TestVersionOrder checks the invariant that conditional writes rely on: the
// numeric order of versions is the order of positions.
func TestVersionOrder(t *testing.T) {
	num := func(p Position) *big.Int {
		n, ok := new(big.Int).SetString(p.Version(), 10)
		if !ok {
			t.Fatalf("%v.Version() = %q is not a decimal number", p, p.Version())
		}
		return n
	}
	for i, p := range positions {
		for j, q := range positions {
			cmp := num(p).Cmp(num(q))
			var want int
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if cmp != want {
				t.Errorf("versions of %v (%s) and %v (%s) compare %d, want %d", p, p.Version(), q, q.Version(), cmp, want)
			}
			if p.Less(q) != (i < j) {
				t.Errorf("%v.Less(%v) = %v, list order says %v", p, q, p.Less(q), i < j)
			}
		}
	}
	// And sorting by version sorts by position.
	shuffled := append([]Position(nil), positions...)
	for i := range shuffled {
		j := (i * 7) % len(shuffled)
		shuffled[i], shuffled[j] = shuffled[j], shuffled[i]
	}
	sort.Slice(shuffled, func(i, j int) bool { return num(shuffled[i]).Cmp(num(shuffled[j])) < 0 })
	for i := range shuffled {
		if shuffled[i] != positions[i] {
			t.Fatalf("sorted by version: %v, want %v", shuffled, positions)
		}
	}
}

func TestParseVersionErrors(t *testing.T) {
	for _, s := range []string{
		"",
		"-1",
		"+1",
		"1.5",
		"1e9",
		" 1",
		"12a",
		"١٢",                                 // non-ASCII digits
		"999999999999999999999" + "00000000", // LSN beyond 64 bits
	} {
		if p, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) = %v, want an error", s, p)
		}
	}
}

func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF", "1/2/3", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLSN(s)
		if err != nil {
			return
		}
		back, err := ParseLSN(l.String())
		if err != nil || back != l {
			t.Fatalf("ParseLSN(%q) = %v; its String %q parses to %v, %v", s, l, l.String(), back, err)
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"0", "7", "100000000", "9750005972000000003", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseVersion(s)
		if err != nil {
			return
		}
		if p.Seq > MaxSeq {
			t.Fatalf("ParseVersion(%q) = %v: sequence beyond MaxSeq", s, p)
		}
		back, err := ParseVersion(p.Version())
		if err != nil || back != p {
			t.Fatalf("ParseVersion(%q) = %v; Version %q parses to %v, %v", s, p, p.Version(), back, err)
		}
	})
}
