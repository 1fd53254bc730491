package verify

import (
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/transform"
)

// Hashing lets verify compare a whole key range by one number per side: each
// item is encoded canonically (attributes sorted by name, type-tagged, numbers
// normalised, sets sorted), hashed to 64 bits, and the hashes of a range are
// combined with order-independent operations (count, sum, xor) into a Digest.
// Equal digests mean equal ranges except with probability ~2^-64 per differing
// item; unequal digests send the range to an item-by-item comparison, which
// uses CompareItems and AttrEqual as the authority, so a canonical form that
// is too strict only costs work, never a false finding.

// The seeds are per process: digests are compared only within one run.
var (
	itemSeed = maphash.MakeSeed()
	keySeed  = maphash.MakeSeed()
)

// Digest summarises a set of items, independently of their order.
type Digest struct {
	Count uint64
	Sum   uint64
	Xor   uint64
}

// Add folds one item hash in.
func (d *Digest) Add(h uint64) {
	d.Count++
	d.Sum += h
	d.Xor ^= h
}

// Merge folds another digest in.
func (d *Digest) Merge(o Digest) {
	d.Count += o.Count
	d.Sum += o.Sum
	d.Xor ^= o.Xor
}

// hasher hashes items; it reuses its buffers and is not safe for concurrent use.
type hasher struct {
	buf   []byte
	names []string
}

// item returns the hash of the item's canonical encoding, without skip.
func (h *hasher) item(item transform.Item, skip string) uint64 {
	h.buf = h.appendItem(h.buf[:0], item, skip)
	return maphash.Bytes(itemSeed, h.buf)
}

// bucketOf maps a key identity to one of n buckets (n a power of two).
func bucketOf(keyID string, n int) int {
	return int(maphash.String(keySeed, keyID) & uint64(n-1))
}

func (h *hasher) appendItem(buf []byte, item transform.Item, skip string) []byte {
	names := h.names[:0]
	for k := range item {
		if k != skip {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	h.names = names[:0]
	buf = binary.AppendUvarint(buf, uint64(len(names)))
	for _, k := range names {
		buf = appendString(buf, k)
		buf = appendCanonical(buf, item[k])
	}
	return buf
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// appendCanonical appends a type-tagged encoding of v in which values that
// AttrEqual considers equal encode alike (as far as it is cheap to make them).
func appendCanonical(buf []byte, v types.AttributeValue) []byte {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return appendString(append(buf, 's'), x.Value)
	case *types.AttributeValueMemberN:
		return appendString(append(buf, 'n'), normalizeNumber(x.Value))
	case *types.AttributeValueMemberB:
		buf = append(buf, 'b')
		buf = binary.AppendUvarint(buf, uint64(len(x.Value)))
		return append(buf, x.Value...)
	case *types.AttributeValueMemberBOOL:
		if x.Value {
			return append(buf, 'T')
		}
		return append(buf, 'F')
	case *types.AttributeValueMemberNULL:
		return append(buf, '0')
	case *types.AttributeValueMemberL:
		buf = append(buf, 'l')
		buf = binary.AppendUvarint(buf, uint64(len(x.Value)))
		for _, e := range x.Value {
			buf = appendCanonical(buf, e)
		}
		return buf
	case *types.AttributeValueMemberM:
		keys := make([]string, 0, len(x.Value))
		for k := range x.Value {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, 'm')
		buf = binary.AppendUvarint(buf, uint64(len(keys)))
		for _, k := range keys {
			buf = appendString(buf, k)
			buf = appendCanonical(buf, x.Value[k])
		}
		return buf
	case *types.AttributeValueMemberSS:
		return appendSet(buf, 'S', x.Value, func(s string) string { return s })
	case *types.AttributeValueMemberNS:
		return appendSet(buf, 'N', x.Value, normalizeNumber)
	case *types.AttributeValueMemberBS:
		elems := make([]string, len(x.Value))
		for i, b := range x.Value {
			elems[i] = string(b)
		}
		return appendSet(buf, 'B', elems, func(s string) string { return s })
	}
	return append(buf, '?')
}

func appendSet(buf []byte, tag byte, elems []string, norm func(string) string) []byte {
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = norm(e)
	}
	slices.Sort(out)
	buf = append(buf, tag)
	buf = binary.AppendUvarint(buf, uint64(len(out)))
	for _, e := range out {
		buf = appendString(buf, e)
	}
	return buf
}

// normalizeNumber returns a canonical form of a decimal number, the way
// DynamoDB normalises what it stores: "2.90", "002.9" and "29e-1" all become
// "29e-1"; every zero becomes "0". Strings that are not decimal numbers are
// returned unchanged.
func normalizeNumber(s string) string {
	neg := false
	t := s
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg = t[0] == '-'
		t = t[1:]
	}
	mant, expPart, hasExp := strings.Cut(t, "e")
	if !hasExp {
		mant, expPart, hasExp = strings.Cut(t, "E")
	}
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expPart)
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return s
		}
		exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" {
		return s
	}
	for _, c := range intPart + frac {
		if c < '0' || c > '9' {
			return s
		}
	}
	digits := strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	trimmed := strings.TrimRight(digits, "0")
	exp += len(digits) - len(trimmed)
	if trimmed == "" {
		return "0"
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(trimmed)
	if exp != 0 {
		b.WriteByte('e')
		b.WriteString(strconv.Itoa(exp))
	}
	return b.String()
}
