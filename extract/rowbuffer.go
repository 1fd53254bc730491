package extract

import "unsafe"

// RowBuffer holds the rows a snapshot read emits in a few blocks that are
// used again, instead of two allocations per row (the line's text and the
// row's values). A row read into it, and every string of the row, stays
// valid until Reset; after Reset the memory holds the rows read next. It
// is for one goroutine.
//
// The backfill reads a batch of rows, writes it, and resets: its rows then
// cost no allocation and no garbage collection, and their memory stays in
// the processor's caches (BENCHMARKS.md).
type RowBuffer struct {
	text, textFree [][]byte // blocks in use (the last one being filled) and free ones
	vals, valsFree [][]Value
}

const (
	rowTextBlock = 64 << 10 // bytes
	rowValsBlock = 1024     // values
)

// Reset makes the memory of every row read so far available again: those
// rows must not be used any more.
func (b *RowBuffer) Reset() {
	for _, blk := range b.text {
		b.textFree = append(b.textFree, blk[:0])
	}
	for _, blk := range b.vals {
		b.valsFree = append(b.valsFree, blk[:0])
	}
	clear(b.text)
	clear(b.vals)
	b.text, b.vals = b.text[:0], b.vals[:0]
}

// str copies p into the buffer and returns it as a string. The string is
// never written again before Reset: blocks are append-only.
func (b *RowBuffer) str(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	n := len(b.text)
	if n == 0 || cap(b.text[n-1])-len(b.text[n-1]) < len(p) {
		b.text = append(b.text, b.textBlock(len(p)))
		n++
	}
	blk := b.text[n-1]
	start := len(blk)
	blk = append(blk, p...)
	b.text[n-1] = blk
	return unsafe.String(&blk[start], len(p))
}

func (b *RowBuffer) textBlock(min int) []byte {
	if k := len(b.textFree); k > 0 && cap(b.textFree[k-1]) >= min {
		blk := b.textFree[k-1]
		b.textFree = b.textFree[:k-1]
		return blk
	}
	return make([]byte, 0, max(rowTextBlock, min))
}

// row returns an empty row with room for n values.
func (b *RowBuffer) row(n int) Row {
	k := len(b.vals)
	if k == 0 || cap(b.vals[k-1])-len(b.vals[k-1]) < n {
		b.vals = append(b.vals, b.valsBlock(n))
		k++
	}
	blk := b.vals[k-1]
	start := len(blk)
	b.vals[k-1] = blk[:start+n]
	return Row(blk[start : start : start+n])
}

func (b *RowBuffer) valsBlock(min int) []Value {
	if k := len(b.valsFree); k > 0 && cap(b.valsFree[k-1]) >= min {
		blk := b.valsFree[k-1]
		b.valsFree = b.valsFree[:k-1]
		return blk
	}
	return make([]Value, 0, max(rowValsBlock, min))
}
