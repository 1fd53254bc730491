package transform

import (
	"strconv"
	"sync/atomic"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// rowEnc is the scratch of one row's conversion into an item: the row's
// canonical column strings (computed once, although a timestamp may appear in
// the attribute, three GSI sort keys and the key identity), an append-only
// byte arena the derived strings (keys, ISO timestamps, the version) are
// written into, and slabs of the SDK's S and N attribute values.
//
// Why by hand: the SDK's item type boxes every value
// (map[string]types.AttributeValue of *AttributeValueMemberS …), and building
// one value, one string per key and one per timestamp each with its own
// allocation was 43 % of a backfill's CPU in the profile (BENCHMARKS.md). With
// the slabs and the arena a row costs a handful of allocations whatever its
// width.
type rowEnc struct {
	tp    *TablePlan // nil: no hints to learn
	row   extract.Row
	convs []converter // per source column
	// Per source column: its canonical form, valid where known is set; in
	// the arrays for tables of up to inlineCols columns (no allocation; not
	// slices of them, which would make escape analysis move e to the heap),
	// else in wide and wideK.
	canon [inlineCols]string
	known [inlineCols]bool
	wide  []string
	wideK []bool
	buf   []byte // arena: append-only, see str
	s     []types.AttributeValueMemberS
	n     []types.AttributeValueMemberN
	// The item being built: the SDK's form in m, or (m nil) the wire form
	// appended to out (append-only too: items handed out are views of it),
	// attrs counting its attributes so far.
	m     Item
	out   []byte
	attrs int
	// tpls are the row's rendered templates, by template slot (Encoder
	// only: one row's, cleared by reset).
	tpls []renderedTpl
	// What rows share (Encoder): the version of a position, the end of a
	// record's envelope.
	version []byte
	verPos  extract.Position
	verOK   bool
	tail    recordTail
}

// inlineCols is the width up to which a row's canonical strings live inside
// its rowEnc (on the stack) rather than in an allocation of their own.
const inlineCols = 24

// encHints are a table's per-row sizes, learnt from the rows seen so far, so
// that a row's arena and slabs are allocated once at the size they end up.
type encHints struct {
	buf, s, n, record, out atomic.Int32
}

// grow raises a hint to v (never lowers it: a wide row must not make the next
// narrow one reallocate, nor the reverse shrink it below the widest seen).
func grow(h *atomic.Int32, v int) {
	if v > 4096 {
		v = 4096 // one huge row must not make every later one allocate that much
	}
	for {
		old := h.Load()
		if int32(v) <= old || h.CompareAndSwap(old, int32(v)) {
			return
		}
	}
}

// init prepares e for row (of a table with the given column converters).
func (e *rowEnc) init(row extract.Row, convs []converter) {
	e.row, e.convs = row, convs
	if len(convs) > inlineCols {
		e.wide, e.wideK = make([]string, len(convs)), make([]bool, len(convs))
	}
}

// slot returns where column col's canonical form is kept.
func (e *rowEnc) slot(col int) (*string, *bool) {
	if e.wide != nil {
		return &e.wide[col], &e.wideK[col]
	}
	return &e.canon[col], &e.known[col]
}

// initItem prepares e for building row's item, its arena and slabs sized by
// what the table's rows needed so far.
func (e *rowEnc) initItem(tp *TablePlan, row extract.Row) {
	e.init(row, tp.all)
	e.tp = tp
	h := &tp.hints
	e.buf = make([]byte, 0, max(int(h.buf.Load()), 64))
	e.s = make([]types.AttributeValueMemberS, 0, max(int(h.s.Load()), 4))
	e.n = make([]types.AttributeValueMemberN, 0, max(int(h.n.Load()), 2))
}

// done records the row's sizes in the table's hints.
func (e *rowEnc) done() {
	if e.tp == nil {
		return
	}
	h := &e.tp.hints
	grow(&h.buf, len(e.buf))
	grow(&h.s, len(e.s))
	grow(&h.n, len(e.n))
	grow(&h.out, len(e.out))
}

// putS adds an S attribute to the item being built.
func (e *rowEnc) putS(n *attrName, v string) {
	if e.m != nil {
		e.m[n.name] = e.newS(v)
		return
	}
	e.wireName(n)
	e.out = ddbjson.AppendS(e.out, v)
}

// putNull adds a NULL attribute to the item being built.
func (e *rowEnc) putNull(n *attrName) {
	if e.m != nil {
		e.m[n.name] = &types.AttributeValueMemberNULL{Value: true}
		return
	}
	e.wireName(n)
	e.out = ddbjson.AppendNull(e.out)
}

// putColumn adds the attribute of a column's (non-null) value.
func (e *rowEnc) putColumn(c *ColumnPlan, text string) error {
	if e.m != nil {
		av, err := c.conv.attrEnc(e, c.Index, text)
		if err != nil {
			return err
		}
		e.m[c.Name] = av
		return nil
	}
	mark := len(e.out)
	e.wireName(&c.attr)
	var err error
	if e.out, err = c.conv.appendAttr(e.out, e, c.Index, text); err != nil {
		e.out = e.out[:mark]
		e.attrs--
	}
	return err
}

// wireName starts an attribute of the item in the wire form.
func (e *rowEnc) wireName(n *attrName) {
	if e.attrs > 0 {
		e.out = append(e.out, ',')
	}
	e.attrs++
	e.out = append(e.out, n.wire...)
}

// mark returns the arena's length, the start of a string about to be appended.
func (e *rowEnc) mark() int { return len(e.buf) }

// str returns the bytes appended since start as a string without copying.
// Safe because the arena is append-only: no byte below len(buf) is ever
// written again (a growing append copies into a new array and leaves the old
// one, which earlier strings keep alive, untouched), and the arena is never
// reused for another row.
func (e *rowEnc) str(start int) string {
	if len(e.buf) == start {
		return ""
	}
	return unsafe.String(&e.buf[start], len(e.buf)-start)
}

// newS returns an S attribute value from the slab (or the heap once full, or
// without an encoder: every method works on a nil *rowEnc).
func (e *rowEnc) newS(v string) types.AttributeValue {
	if e == nil {
		return &types.AttributeValueMemberS{Value: v}
	}
	if len(e.s) == cap(e.s) {
		e.s = append(e.s, types.AttributeValueMemberS{}) // grows; earlier values stay where they are
	} else {
		e.s = e.s[:len(e.s)+1]
	}
	p := &e.s[len(e.s)-1]
	p.Value = v
	return p
}

// newN returns an N attribute value from the slab (or the heap once full).
func (e *rowEnc) newN(v string) types.AttributeValue {
	if e == nil {
		return &types.AttributeValueMemberN{Value: v}
	}
	if len(e.n) == cap(e.n) {
		e.n = append(e.n, types.AttributeValueMemberN{})
	} else {
		e.n = e.n[:len(e.n)+1]
	}
	p := &e.n[len(e.n)-1]
	p.Value = v
	return p
}

// canonical returns the canonical form of source column col (not NULL),
// computing it once per row. Timestamps are written into the arena; every
// other kind is the column's text itself.
// An error is not cached (the row fails with it).
func (e *rowEnc) canonical(col int) (string, error) {
	cs, known := e.slot(col)
	if *known {
		return *cs, nil
	}
	text := e.row[col].Text
	var s string
	switch kind := e.convs[col].kind; kind {
	case extract.KindTimestamp, extract.KindTimestampTZ:
		start := e.mark()
		var err error
		e.buf, err = appendISOTimestamp(e.buf, text, kind == extract.KindTimestampTZ)
		if err != nil {
			e.buf = e.buf[:start] // nothing was handed out from this region yet
			return "", err
		}
		s = e.str(start)
	default:
		var err error
		if s, err = canonical(kind, text); err != nil {
			return "", err
		}
	}
	*cs, *known = s, true
	return s, nil
}

// canonicalOf is canonical of text, the value of source column col, cached
// when it is a column of the encoder's row (col >= 0).
func (e *rowEnc) canonicalOf(col int, kind extract.Kind, text string) (string, error) {
	if e == nil || col < 0 {
		return canonical(kind, text)
	}
	return e.canonical(col)
}

// appendInt returns v in decimal, written into the arena.
func (e *rowEnc) appendInt(v int64) string {
	if e == nil {
		return strconv.FormatInt(v, 10)
	}
	start := e.mark()
	e.buf = strconv.AppendInt(e.buf, v, 10)
	return e.str(start)
}
