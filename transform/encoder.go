package transform

import (
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load/ddbjson"
)

// Encoder turns the rows of one table into items in DynamoDB's wire form
// and their Kinesis records: the backfill's hot path. It is for one
// goroutine at a time (a backfill worker holds one per chunk).
//
// A row's canonical forms (ISO timestamps, key strings) are computed once
// and shared by its item and its record, and every item, record and
// string it hands out is a view of a few large append-only blocks instead
// of allocations of its own. Until Reset, nothing handed out is ever
// written again; Reset gives the blocks back for the rows that follow, so
// that a caller who resets after each batch allocates nothing per row.
type Encoder struct {
	tp *TablePlan
	e  rowEnc
	// where the current row's strings start in the arena, for the hints
	bufStart int
	// blocks of e.buf and e.out filled since Reset (the current ones
	// excluded), and blocks free for reuse
	usedBuf, usedOut, freeBuf, freeOut [][]byte
}

// Reset makes the memory of everything the encoder handed out (items,
// records, key identities, partition keys) available again: none of it
// may be used after Reset.
func (enc *Encoder) Reset() {
	e := &enc.e
	enc.freeBuf = recycle(enc.freeBuf, enc.usedBuf, e.buf)
	enc.freeOut = recycle(enc.freeOut, enc.usedOut, e.out)
	enc.usedBuf, enc.usedOut = enc.usedBuf[:0], enc.usedOut[:0]
	e.buf, e.out = nil, nil
	e.row = nil
}

// Switch resets the encoder (see Reset) and makes it encode the rows of tp
// from now on, in the blocks it has.
func (enc *Encoder) Switch(tp *TablePlan) {
	enc.Reset()
	enc.tp, enc.e.tp = tp, tp
}

// recycle adds the used blocks and the current one to free, emptied.
func recycle(free, used [][]byte, cur []byte) [][]byte {
	for _, b := range used {
		free = append(free, b[:0])
	}
	if cap(cur) > 0 {
		free = append(free, cur[:0])
	}
	return free
}

// block returns a block with room for n bytes: the current one if it has
// the room, else a free one or a new one (the current one is kept as used).
func block(cur []byte, n, size int, used, free *[][]byte) []byte {
	if cap(cur) > 0 && cap(cur)-len(cur) >= n {
		return cur
	}
	if cap(cur) > 0 {
		*used = append(*used, cur)
	}
	for k := len(*free) - 1; k >= 0; k-- {
		if b := (*free)[k]; cap(b) >= n {
			(*free)[k] = (*free)[len(*free)-1]
			*free = (*free)[:len(*free)-1]
			return b
		}
	}
	return make([]byte, 0, max(size, 2*n))
}

// blockBytes is the size of the blocks an Encoder writes items, records
// and strings into: a few dozen rows each, so that a block costs one
// allocation per many rows and a batch of rows keeps few of them alive.
const blockBytes = 32 << 10

// NewEncoder returns an encoder for the rows of the table.
func (tp *TablePlan) NewEncoder() *Encoder {
	return &Encoder{tp: tp, e: rowEnc{tp: tp}}
}

// Item starts a new row: it builds row's item at pos in the wire form, as
// ItemJSON does, and its key identity.
func (enc *Encoder) Item(row extract.Row, pos extract.Position) (ddbjson.Item, string, error) {
	e := &enc.e
	e.reset(row, enc.tp.all)
	h := &enc.tp.hints
	// A row's bytes must fit the blocks' free room (else they would be
	// copied into a new block with everything before them); a row larger
	// than its hint still works, the block grows.
	e.buf = block(e.buf, int(h.buf.Load()), blockBytes/4, &enc.usedBuf, &enc.freeBuf)
	e.out = block(e.out, int(h.out.Load())+int(h.record.Load()), blockBytes, &enc.usedOut, &enc.freeOut)
	enc.bufStart = len(e.buf)
	it, id, err := e.itemJSON(pos)
	if err != nil {
		return ddbjson.Item{}, "", err
	}
	grow(&h.out, len(it.JSON))
	grow(&h.buf, len(e.buf)-enc.bufStart)
	return it, id, nil
}

// Record builds the Kinesis record of ch, as TablePlan.Record does; when
// ch.After is the row of the last Item call, the record shares its
// canonical forms.
func (enc *Encoder) Record(ch *extract.Change, src RecordSource, now time.Time) (partitionKey string, data []byte, err error) {
	e := &enc.e
	var re *rowEnc
	if sameRow(ch.After, e.row) {
		re = e
	}
	bufStart, start := len(e.buf), len(e.out)
	partitionKey, e.out, err = enc.tp.appendRecord(e.out, re, ch, src, now)
	if err != nil {
		e.out = e.out[:start] // nothing was handed out from this region
		return "", nil, err
	}
	data = e.out[start:len(e.out):len(e.out)]
	grow(&enc.tp.hints.record, len(data))
	grow(&enc.tp.hints.buf, len(e.buf)-min(bufStart, enc.bufStart))
	return partitionKey, data, nil
}

// sameRow reports whether a and b are the same row (the same values in
// memory, not equal ones).
func sameRow(a, b extract.Row) bool {
	return len(a) > 0 && len(a) == len(b) && &a[0] == &b[0]
}

// reset prepares e, whose blocks are kept, for another row.
func (e *rowEnc) reset(row extract.Row, convs []converter) {
	e.row, e.convs = row, convs
	e.m, e.attrs = nil, 0
	if n := e.tp.templates; len(e.tpls) != n {
		e.tpls = make([]renderedTpl, n)
	} else {
		clear(e.tpls)
	}
	if len(convs) > inlineCols {
		if len(e.wide) != len(convs) {
			e.wide, e.wideK = make([]string, len(convs)), make([]bool, len(convs))
		} else {
			clear(e.wide)
			clear(e.wideK)
		}
		return
	}
	e.wide, e.wideK = nil, nil
	e.known = [inlineCols]bool{}
}

// partitionKey renders the Kinesis partition key of the encoder's row into
// its arena (see TablePlan.PartitionKey).
func (e *rowEnc) partitionKey() (string, error) {
	tp, row := e.tp, e.row
	if tp.partKey != nil {
		s, ok, err := tp.partKey.renderEnc(e)
		if err != nil {
			return "", tp.rowErr(row, err)
		}
		if !ok || s == "" {
			return "", tp.rowErr(row, errEmptyPartitionKey)
		}
		return truncateKey(s), nil
	}
	start := e.mark()
	e.buf = append(e.buf, tp.Source.Name...)
	for _, idx := range tp.Source.PK {
		e.buf = append(e.buf, ':')
		e.buf = append(e.buf, row[idx].Text...)
	}
	return truncateKey(e.str(start)), nil
}
