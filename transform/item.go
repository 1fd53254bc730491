package transform

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/load/ddbjson"
	"github.com/ferry-migrate/ferry/mappings"
)

// Item is a DynamoDB item.
type Item = map[string]types.AttributeValue

// Limits DynamoDB puts on key attribute values (bytes of UTF-8).
const (
	MaxPartitionKeyBytes = 2048
	MaxSortKeyBytes      = 1024
)

// RowError is a row that cannot be turned into an item or a record. It names the
// table and the source primary key.
type RowError struct {
	Table string
	Key   string // primary key values, "col=value, ..."
	Err   error
}

func (e *RowError) Error() string {
	return fmt.Sprintf("table %s, key (%s): %v", e.Table, e.Key, e.Err)
}

func (e *RowError) Unwrap() error { return e.Err }

// KeyString renders the row's source primary key as "col=value, col=value".
func (tp *TablePlan) KeyString(row extract.Row) string {
	var b strings.Builder
	for i, idx := range tp.Source.PK {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tp.Source.Columns[idx].Name)
		b.WriteByte('=')
		if idx < len(row) {
			b.WriteString(row[idx].Text)
		}
	}
	return b.String()
}

func (tp *TablePlan) rowErr(row extract.Row, err error) error {
	return &RowError{Table: tp.Source.QualifiedName(), Key: tp.KeyString(row), Err: err}
}

// Key builds the item's primary key attributes and the key's identity string
// (partition value, NUL, sort value) used to keep per-key order.
func (tp *TablePlan) Key(row extract.Row) (Item, string, error) {
	var e rowEnc
	e.init(row, tp.all)
	e.tp, e.s, e.buf = tp, make([]types.AttributeValueMemberS, 0, 2), make([]byte, 0, 128)
	pk, sk, id, err := e.key()
	if err != nil {
		return nil, "", err
	}
	key := make(Item, 2)
	key[tp.PK.Name] = e.newS(pk)
	if tp.SK != nil {
		key[tp.SK.Name] = e.newS(sk)
	}
	return key, id, nil
}

// key renders the key attributes' values (sk "" without a sort key) and the
// key's identity.
func (e *rowEnc) key() (pk, sk, id string, err error) {
	if pk, err = e.keyValue(&e.tp.PK, "partition", MaxPartitionKeyBytes); err != nil {
		return "", "", "", err
	}
	if e.tp.SK == nil {
		return pk, "", pk, nil
	}
	if sk, err = e.keyValue(e.tp.SK, "sort", MaxSortKeyBytes); err != nil {
		return "", "", "", err
	}
	start := e.mark()
	e.buf = append(e.buf, pk...)
	e.buf = append(e.buf, 0)
	e.buf = append(e.buf, sk...)
	return pk, sk, e.str(start), nil
}

// keyValue renders a table key attribute (role "partition" or "sort"): never
// empty, at most limit bytes.
func (e *rowEnc) keyValue(k *KeyAttr, role string, limit int) (string, error) {
	tp, row := e.tp, e.row
	v, ok, err := k.tpl.renderEnc(e)
	if err != nil {
		return "", tp.rowErr(row, err)
	}
	if !ok || v == "" {
		return "", tp.rowErr(row, fmt.Errorf("%s key %s is empty %s", role, k.Name, e.emptyKeyReason(k, ok)))
	}
	if len(v) > limit {
		return "", tp.rowErr(row, fmt.Errorf("%s key %s is %d bytes, DynamoDB allows %d", role, k.Name, len(v), limit))
	}
	return v, nil
}

// emptyKeyReason says why a key template rendered nothing, naming the
// column: one of its columns is NULL, or an unchanged TOAST value the change
// did not carry, or (rendered: every column present) the value is an empty
// string, which DynamoDB refuses as a key value.
func (e *rowEnc) emptyKeyReason(k *KeyAttr, rendered bool) string {
	cols := k.tpl.columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = e.tp.Source.Columns[c].Name
	}
	if !rendered {
		for i, c := range cols {
			if e.row[c].Null {
				return "(a column of its template is NULL): " + names[i]
			}
		}
		for i, c := range cols {
			if e.row[c].Unchanged {
				return "(a column of its template is an unchanged TOAST value the change does not carry): " + names[i]
			}
		}
		return "(a column of its template is NULL)"
	}
	what := "column " + strings.Join(names, ", ") + " is an empty string"
	if len(names) > 1 {
		what = "columns " + strings.Join(names, ", ") + " are empty strings"
	}
	return "(the value of its template's " + what + ", and DynamoDB refuses an empty string as a key value)"
}

// Item builds the whole item for a row at a position: the key, GSI attributes
// (when their columns are present and the index's condition holds), every mapped
// column under its source name (NULL as NULL), _table and _version. Columns
// marked Unchanged (TOAST values an update did not carry) are left out.
func (tp *TablePlan) Item(row extract.Row, pos extract.Position) (Item, string, error) {
	var e rowEnc
	e.initItem(tp, row)
	// One allocation for the map at its final size: growing it per attribute
	// was the largest cost of the backfill's source side in the profile.
	e.m = make(Item, len(tp.Columns)+4+2*len(tp.GSIs))
	_, _, id, err := e.item(pos)
	if err != nil {
		return nil, "", err
	}
	e.done()
	return e.m, id, nil
}

// ItemJSON is Item in DynamoDB's JSON wire form (the same attributes with
// the same values, in the order key, columns, GSI keys, _table, _version),
// built without the SDK's item type.
func (tp *TablePlan) ItemJSON(row extract.Row, pos extract.Position) (ddbjson.Item, string, error) {
	var e rowEnc
	e.initItem(tp, row)
	e.out = make([]byte, 0, max(int(tp.hints.out.Load()), 128))
	it, id, err := e.itemJSON(pos)
	if err != nil {
		return ddbjson.Item{}, "", err
	}
	e.done()
	return it, id, nil
}

// itemJSON appends the row's item in the wire form to e.out.
func (e *rowEnc) itemJSON(pos extract.Position) (ddbjson.Item, string, error) {
	start := len(e.out)
	e.out = append(e.out, '{')
	e.attrs = 0
	pk, sk, id, err := e.item(pos)
	if err != nil {
		e.out = e.out[:start] // nothing was handed out from this region
		return ddbjson.Item{}, "", err
	}
	e.out = append(e.out, '}')
	it := ddbjson.Item{JSON: e.out[start:len(e.out):len(e.out)], PK: ddbjson.KeyAttr{Name: e.tp.PK.Name, Value: pk}}
	if e.tp.SK != nil {
		it.SK = ddbjson.KeyAttr{Name: e.tp.SK.Name, Value: sk}
	}
	return it, id, nil
}

// item writes the row's attributes (into e.m, or in the wire form into
// e.out) and returns its key.
func (e *rowEnc) item(pos extract.Position) (pk, sk, id string, err error) {
	tp, row := e.tp, e.row
	if pk, sk, id, err = e.key(); err != nil {
		return "", "", "", err
	}
	e.putS(&tp.PK.attr, pk)
	if tp.SK != nil {
		e.putS(&tp.SK.attr, sk)
	}
	for i := range tp.Columns {
		c := &tp.Columns[i]
		v := row[c.Index]
		switch {
		case v.Unchanged:
			continue
		case v.Null:
			e.putNull(&c.attr)
		default:
			if err := e.putColumn(c, v.Text); err != nil {
				return "", "", "", tp.rowErr(row, &ValueError{Column: c.Name, Reason: err.Error()})
			}
		}
	}
	if err := e.addGSIs(); err != nil {
		return "", "", "", err
	}
	if e.m != nil {
		e.m[AttrTable] = e.newS(tp.Source.Name)
		start := e.mark()
		e.buf = pos.AppendVersion(e.buf)
		e.m[AttrVersion] = e.newN(e.str(start))
		return pk, sk, id, nil
	}
	e.out = append(e.out, tp.wireTable...) // ,"_table":{"S":"…"}
	e.out = append(e.out, `,"_version":{"N":"`...)
	if !e.verOK || e.verPos != pos {
		// The rows of a snapshot share their position: its version is
		// written once.
		e.version, e.verPos, e.verOK = pos.AppendVersion(e.version[:0]), pos, true
	}
	e.out = append(e.out, e.version...)
	e.out = append(e.out, `"}`...)
	return pk, sk, id, nil
}

func (e *rowEnc) addGSIs() error {
	tp, row := e.tp, e.row
	for i := range tp.GSIs {
		g := &tp.GSIs[i]
		if g.when != nil {
			v := row[g.when.col]
			if v.Unchanged || v.Null != g.when.isNull {
				continue
			}
		}
		pk, ok, err := g.PK.tpl.renderEnc(e)
		if err != nil {
			return tp.rowErr(row, err)
		}
		if !ok || pk == "" {
			continue
		}
		sk := ""
		if g.SK != nil {
			if sk, ok, err = g.SK.tpl.renderEnc(e); err != nil {
				return tp.rowErr(row, err)
			}
			if !ok || sk == "" {
				continue
			}
		}
		e.putS(&g.PK.attr, pk)
		if g.SK != nil {
			e.putS(&g.SK.attr, sk)
		}
	}
	return nil
}

// GSIAttributes lists the attribute names of every GSI key of the table.
func (tp *TablePlan) GSIAttributes() []string {
	var out []string
	for _, g := range tp.GSIs {
		out = append(out, g.PK.Name)
		if g.SK != nil {
			out = append(out, g.SK.Name)
		}
	}
	return out
}

// PartitionKey is the Kinesis partition key of a row: the mapping's template, or
// by default the table name and the primary key values ("rental:16050").
func (tp *TablePlan) PartitionKey(row extract.Row) (string, error) {
	if tp.partKey != nil {
		s, ok, err := tp.partKey.render(row)
		if err != nil {
			return "", tp.rowErr(row, err)
		}
		if !ok || s == "" {
			return "", tp.rowErr(row, errEmptyPartitionKey)
		}
		return truncateKey(s), nil
	}
	var b strings.Builder
	b.WriteString(tp.Source.Name)
	for _, idx := range tp.Source.PK {
		b.WriteByte(':')
		b.WriteString(row[idx].Text)
	}
	return truncateKey(b.String()), nil
}

var errEmptyPartitionKey = errors.New("stream partition key is empty (a column of its template is NULL)")

// truncateKey keeps a partition key within Kinesis' 256 characters, cutting at
// a character boundary so that the key stays valid UTF-8.
func truncateKey(s string) string {
	if len(s) <= 256 {
		return s
	}
	n := 256
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// RecordSource is what the envelope says about where the change came from.
type RecordSource struct {
	DB string // source database name
}

// Record builds the Kinesis record (Debezium-shaped JSON envelope) of a change.
// now is the envelope's ts_ms (the time ferry processed the change).
func (tp *TablePlan) Record(ch *extract.Change, src RecordSource, now time.Time) (partitionKey string, data []byte, err error) {
	// Sized by the largest record of the table so far (capped), so that a
	// record is one allocation instead of a chain of growing copies.
	buf := make([]byte, 0, max(int(tp.hints.record.Load()), 256))
	partitionKey, buf, err = tp.appendRecord(buf, nil, ch, src, now)
	if err != nil {
		return "", nil, err
	}
	grow(&tp.hints.record, len(buf))
	return partitionKey, buf, nil
}

// appendRecord appends the record of ch to buf. e, when not nil, is the
// encoder of ch.After (whose item it built): the record reuses its
// canonical forms and renders the partition key into its arena.
func (tp *TablePlan) appendRecord(buf []byte, e *rowEnc, ch *extract.Change, src RecordSource, now time.Time) (partitionKey string, _ []byte, err error) {
	keyRow := ch.After
	if keyRow == nil {
		keyRow = ch.Before
	}
	switch {
	case keyRow == nil:
		partitionKey = truncateKey(tp.Source.Name)
	case e != nil:
		partitionKey, err = e.partitionKey()
	default:
		partitionKey, err = tp.PartitionKey(keyRow)
	}
	if err != nil {
		return "", buf, err
	}
	buf = append(buf, `{"op":"`...)
	buf = append(buf, byte(ch.Op))
	buf = append(buf, `","before":`...)
	if buf, err = tp.appendImage(buf, ch.Before, nil); err != nil {
		return "", buf, tp.rowErr(keyRow, err)
	}
	buf = append(buf, `,"after":`...)
	if buf, err = tp.appendImage(buf, ch.After, e); err != nil {
		return "", buf, tp.rowErr(keyRow, err)
	}
	if e != nil && e.tail.valid(tp, ch, src, now) {
		// The rows of a snapshot chunk share their envelope's end.
		return partitionKey, append(buf, e.tail.data...), nil
	}
	start := len(buf)
	buf = tp.appendRecordTail(buf, ch, src, now)
	if e != nil {
		e.tail.set(tp, ch, src, now, buf[start:])
	}
	return partitionKey, buf, nil
}

// appendRecordTail appends the envelope after the row images: source and
// ts_ms.
func (tp *TablePlan) appendRecordTail(buf []byte, ch *extract.Change, src RecordSource, now time.Time) []byte {
	buf = append(buf, `,"source":{"db":`...)
	buf = appendJSONString(buf, src.DB)
	buf = append(buf, `,"schema":`...)
	buf = appendJSONString(buf, tp.Source.Schema)
	buf = append(buf, `,"table":`...)
	buf = appendJSONString(buf, tp.Source.Name)
	buf = append(buf, `,"lsn":"`...)
	buf = ch.Pos.LSN.AppendText(buf)
	buf = append(buf, `","seq":`...)
	buf = strconv.AppendUint(buf, uint64(ch.Pos.Seq), 10)
	buf = append(buf, `,"txid":`...)
	buf = strconv.AppendUint(buf, uint64(ch.TxID), 10)
	buf = append(buf, `,"ts_ms":`...)
	buf = strconv.AppendInt(buf, ch.Commit.UnixMilli(), 10)
	buf = append(buf, `,"snapshot":`...)
	buf = strconv.AppendBool(buf, ch.Snapshot())
	if tp.Def != "" {
		buf = append(buf, `,"def":"`...)
		buf = append(buf, tp.Def...) // hex digits: nothing to escape
		buf = append(buf, '"')
	}
	buf = append(buf, `},"ts_ms":`...)
	buf = strconv.AppendInt(buf, now.UnixMilli(), 10)
	return append(buf, '}')
}

// recordTail caches a record's tail (appendRecordTail) with what it
// depends on.
type recordTail struct {
	ok              bool
	tp              *TablePlan
	db              string
	pos             extract.Position
	txid            uint32
	commitMS, nowMS int64
	snapshot        bool
	data            []byte
}

func (c *recordTail) valid(tp *TablePlan, ch *extract.Change, src RecordSource, now time.Time) bool {
	return c.ok && c.tp == tp && c.db == src.DB && c.pos == ch.Pos && c.txid == ch.TxID &&
		c.commitMS == ch.Commit.UnixMilli() && c.nowMS == now.UnixMilli() && c.snapshot == ch.Snapshot()
}

func (c *recordTail) set(tp *TablePlan, ch *extract.Change, src RecordSource, now time.Time, data []byte) {
	*c = recordTail{ok: true, tp: tp, db: src.DB, pos: ch.Pos, txid: ch.TxID, commitMS: ch.Commit.UnixMilli(),
		nowMS: now.UnixMilli(), snapshot: ch.Snapshot(), data: append(c.data[:0], data...)}
}

// appendImage writes a row image as a JSON object of the mapped columns; columns
// left out as unchanged TOAST are absent, a nil row is null. e, when not
// nil, is the encoder of row.
func (tp *TablePlan) appendImage(buf []byte, row extract.Row, e *rowEnc) ([]byte, error) {
	if row == nil {
		return append(buf, "null"...), nil
	}
	buf = append(buf, '{')
	first := true
	for i := range tp.Columns {
		c := &tp.Columns[i]
		v := row[c.Index]
		if v.Unchanged {
			continue
		}
		if !first {
			buf = append(buf, ',')
		}
		first = false
		buf = append(buf, c.jsonKey...)
		if v.Null {
			buf = append(buf, "null"...)
			continue
		}
		var err error
		if buf, err = c.conv.appendJSONEnc(buf, e, c.Index, v.Text); err != nil {
			return buf, &ValueError{Column: c.Name, Reason: err.Error()}
		}
	}
	return append(buf, '}'), nil
}

// HasUnchanged reports whether a row leaves out some column (an unchanged TOAST
// value of an UPDATE, or a column outside a key-only old tuple).
func HasUnchanged(row extract.Row) bool {
	for _, v := range row {
		if v.Unchanged {
			return true
		}
	}
	return false
}

// GSIRemovals lists the GSI key attributes that the row determines to be absent
// (a template column is NULL or the index's condition fails), so that an
// update of part of an item removes them. GSIs that depend on a column the row
// leaves out are not listed: their attributes stay as they are.
func (tp *TablePlan) GSIRemovals(row extract.Row) []string {
	var out []string
	for _, g := range tp.GSIs {
		cols := g.PK.tpl.columns()
		if g.SK != nil {
			cols = append(cols, g.SK.tpl.columns()...)
		}
		if g.when != nil {
			cols = append(cols, g.when.col)
		}
		known, present := true, true
		for _, c := range cols {
			if row[c].Unchanged {
				known = false
			}
		}
		if !known {
			continue
		}
		if g.when != nil && row[g.when.col].Null != g.when.isNull {
			present = false
		}
		for _, c := range append(g.PK.tpl.columns(), skColumns(g.SK)...) {
			if row[c].Null {
				present = false
			}
		}
		if !present {
			out = append(out, g.PK.Name)
			if g.SK != nil {
				out = append(out, g.SK.Name)
			}
		}
	}
	return out
}

func skColumns(k *KeyAttr) []int {
	if k == nil {
		return nil
	}
	return k.tpl.columns()
}

// KeyColumnsOutsidePK lists the columns that the table key templates use but
// the primary key does not contain: deletes and key changes can only find their
// item when the replica identity carries them (REPLICA IDENTITY FULL).
func (tp *TablePlan) KeyColumnsOutsidePK() []string {
	inPK := map[int]bool{}
	for _, i := range tp.Source.PK {
		inPK[i] = true
	}
	seen := map[int]bool{}
	var out []string
	cols := append(tp.PK.tpl.columns(), skColumns(tp.SK)...)
	for _, c := range cols {
		if !inPK[c] && !seen[c] {
			seen[c] = true
			out = append(out, tp.Source.Columns[c].Name)
		}
	}
	return out
}

// TemplateColumns lists the source columns the table's keys depend on: the
// item key and GSI key templates, GSI `when` conditions and the stream's
// partition key. A schema change that touches one of them changes which item
// or record a row maps to.
func (tp *TablePlan) TemplateColumns() []string {
	idx := append(tp.PK.tpl.columns(), skColumns(tp.SK)...)
	for _, g := range tp.GSIs {
		idx = append(idx, g.PK.tpl.columns()...)
		idx = append(idx, skColumns(g.SK)...)
		if g.when != nil {
			idx = append(idx, g.when.col)
		}
	}
	if tp.partKey != nil {
		idx = append(idx, tp.partKey.columns()...)
	}
	seen := map[int]bool{}
	var out []string
	for _, i := range idx {
		if !seen[i] && i >= 0 && i < len(tp.Source.Columns) {
			seen[i] = true
			out = append(out, tp.Source.Columns[i].Name)
		}
	}
	return out
}

// CompileTable compiles one mapping entry against the source tables; the
// errors name file:line. The plan carries no definition ID: a plan whose
// records are published is compiled by Compile or CompileDefinition.
func CompileTable(mt *mappings.Table, source map[string]*extract.Table) (*TablePlan, error) {
	tp, errs := compileTable(mt, source)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return tp, nil
}

// CompileDefinition compiles m's entry for table t (a table whose definition
// changed while sync runs, or one a record names), and identifies the plan by
// DefinitionID(m.Text, t) when m has its text, as Compile does: every plan
// whose records are published carries the ID its applier looks the plan up
// by. m is the mapping with its patterns expanded for t.
func CompileDefinition(m *mappings.Mapping, t *extract.Table) (*TablePlan, error) {
	name := t.QualifiedName()
	mt := m.Table(name)
	if mt == nil {
		return nil, fmt.Errorf("compile %s: the mapping has no entry for the table", name)
	}
	tp, err := CompileTable(mt, map[string]*extract.Table{name: t})
	if err != nil {
		return nil, err
	}
	tp.Def = definitionOf(m, t)
	return tp, nil
}
