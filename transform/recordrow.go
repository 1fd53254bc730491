package transform

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/mappings"
)

// This file is the inverse of the record's row images (appendImage): a
// record's "before" or "after" back into the source row it was made of, in
// PostgreSQL's text form, so that an applier with no connection to the source
// (the Lambda function of `sync --apply stream`) builds the very item `ferry
// sync` would have built from the change itself. The rule it keeps, for every
// type and conversion: item(RowOf(image(row))) == item(row) (the fuzz test
// FuzzRecordInverse checks it).

// RowOf turns a record's row image (the JSON object of "before" or "after")
// into the source row. A mapped column absent from the image is Unchanged (an
// unchanged TOAST value the change did not carry); a source column the mapping
// leaves out is NULL (no item depends on it: RecordsInvertible).
func (tp *TablePlan) RowOf(img map[string]json.RawMessage) (extract.Row, error) {
	row := make(extract.Row, len(tp.Source.Columns))
	for i := range row {
		row[i] = extract.Value{Null: true}
	}
	known := 0
	for i := range tp.Columns {
		c := &tp.Columns[i]
		raw, ok := img[c.Name]
		if ok {
			known++
		}
		if !ok {
			row[c.Index] = extract.Value{Unchanged: true}
			continue
		}
		text, null, err := c.conv.textOfJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s column %s: %w", tp.Source.QualifiedName(), c.Name, err)
		}
		row[c.Index] = extract.Value{Text: text, Null: null}
	}
	if known < len(img) {
		// The record was made by a newer definition of the table (a column
		// added): applying it with this plan would drop the column's value.
		for name := range img {
			if !tp.hasColumn(name) {
				return nil, &StalePlanError{Table: tp.Source.QualifiedName(), Column: name}
			}
		}
	}
	return row, nil
}

func (tp *TablePlan) hasColumn(name string) bool {
	for i := range tp.Columns {
		if tp.Columns[i].Name == name {
			return true
		}
	}
	return false
}

// StalePlanError is a record carrying a column the plan does not map: the
// table's definition changed after the plan was compiled.
type StalePlanError struct{ Table, Column string }

func (e *StalePlanError) Error() string {
	return fmt.Sprintf("a record of %s carries column %s, which the compiled plan does not know: compile the plan again (ferry plan --compile) and deploy it", e.Table, e.Column)
}

// RecordsInvertible reports why the table's records cannot be turned back into
// its items: a key, GSI key, condition or partition key that reads a column
// the records do not carry.
func (tp *TablePlan) RecordsInvertible() error {
	carried := map[string]bool{}
	for _, c := range tp.Columns {
		carried[c.Name] = true
	}
	for _, name := range tp.TemplateColumns() {
		if !carried[name] {
			return fmt.Errorf("%s: its keys use column %s, which the mapping leaves out of items and records; map the column to apply this table from the stream", tp.Source.QualifiedName(), name)
		}
	}
	if tp.Stream == "" {
		return fmt.Errorf("%s has no stream: its changes cannot be applied from one", tp.Source.QualifiedName())
	}
	return nil
}

// textOfJSON is the inverse of appendJSON: the text form of the value whose
// event form is raw (null: SQL NULL).
func (c *converter) textOfJSON(raw json.RawMessage) (text string, null bool, err error) {

	if string(raw) == "null" {
		return "", true, nil
	}
	if c.arr {
		var b strings.Builder
		el := converter{name: c.name, kind: c.kind, conv: c.conv}
		if err := el.arrayText(&b, raw, extract.ArrayDelimiter(c.kind)); err != nil {
			return "", false, err
		}
		return b.String(), false, nil
	}
	text, err = c.scalarText(raw)
	return text, false, err
}

// arrayQuoter escapes an array element for its double quotes (built once: a
// Replacer is costly to make and safe for concurrent use).
var arrayQuoter = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// arrayText writes the PostgreSQL array literal of a JSON list, every element
// quoted (parseArrayDelim reads quoted elements of every type).
func (c *converter) arrayText(b *strings.Builder, raw json.RawMessage, delim byte) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return fmt.Errorf("array value %s: %w", truncate(string(raw), 60), err)
	}
	b.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			b.WriteByte(delim)
		}

		switch {
		case string(e) == "null":
			b.WriteString("NULL")
		case len(e) > 0 && e[0] == '[':
			if err := c.arrayText(b, e, delim); err != nil {
				return err
			}
		default:
			s, err := c.scalarText(e)
			if err != nil {
				return err
			}
			b.WriteByte('"')
			b.WriteString(arrayQuoter.Replace(s))
			b.WriteByte('"')
		}
	}
	b.WriteByte('}')
	return nil
}

// scalarText is the text form of one non-null value in its event form.
func (c *converter) scalarText(raw json.RawMessage) (string, error) {
	switch c.kind {
	case extract.KindInt, extract.KindFloat:
		if len(raw) == 0 || raw[0] == '"' || !json.Valid(raw) {
			return "", fmt.Errorf("%s value %s is not a JSON number", c.kind, truncate(string(raw), 60))
		}
		return string(raw), nil
	case extract.KindBool:
		switch string(raw) {
		case "true":
			return "t", nil
		case "false":
			return "f", nil
		}
		return "", fmt.Errorf("bool value %s is not true or false", truncate(string(raw), 60))
	case extract.KindJSON:
		if c.conv == mappings.ConvMap {
			// The event embeds the document as written.
			if !json.Valid(raw) {
				return "", fmt.Errorf("json value %s is not valid JSON", truncate(string(raw), 60))
			}
			return string(raw), nil
		}
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%s value %s is not a JSON string", c.kind, truncate(string(raw), 60))
	}
	switch c.kind {
	case extract.KindBytea:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("bytea value is not base64: %w", err)
		}
		return `\x` + hex.EncodeToString(b), nil
	case extract.KindMoney:
		// The exact decimal back into lc_monetary C's form (grouping is optional).
		if neg, ok := strings.CutPrefix(s, "-"); ok {
			return "-$" + neg, nil
		}
		return "$" + s, nil
	case extract.KindDate:
		return pgDateOfISO(s, false, false)
	case extract.KindTimestamp:
		return pgDateOfISO(s, true, false)
	case extract.KindTimestampTZ:
		return pgDateOfISO(s, true, true)
	}
	return s, nil
}

// pgDateOfISO turns the ISO 8601 form of a date or timestamp (isoDate,
// isoTimestamp: astronomical years, a sign beyond 9999) back into
// PostgreSQL's ISO output ("0044-03-15 12:00:00.5+00 BC").
func pgDateOfISO(s string, withTime, tz bool) (string, error) {
	bad := func() (string, error) { return "", fmt.Errorf("unexpected ISO 8601 form %q", s) }
	rest := s
	neg := false
	switch {
	case strings.HasPrefix(rest, "-"):
		neg, rest = true, rest[1:]
	case strings.HasPrefix(rest, "+"):
		rest = rest[1:]
	}
	n := 0
	for n < len(rest) && isDigit(rest[n]) {
		n++
	}
	if n < 4 || n > 9 {
		return bad()
	}
	digits, year := rest[:n], atoiDigits(rest[:n])
	rest = rest[n:]
	if neg {
		year = -year
	}
	bc := year <= 0
	if bc {
		year = 1 - year
	}
	if withTime {
		rest = strings.Replace(rest, "T", " ", 1)
		if tz {
			var ok bool
			if rest, ok = strings.CutSuffix(rest, "Z"); !ok {
				return bad()
			}
			rest += "+00"
		}
	}
	if !bc {
		return digits + rest, nil // the digits as written
	}
	return fmt.Sprintf("%04d%s BC", year, rest), nil
}

// OpSchema is the op of a schema-change record (no row's change).
const OpSchema = "schema"

// RecordEnvelope is a record decoded: the change's op, its row images as
// JSON objects (nil for null) and its source position.
type RecordEnvelope struct {
	Op            string
	Before, After map[string]json.RawMessage
	Schema, Table string
	Pos           extract.Position
	TxID          uint32
	CommitMS      int64
	Snapshot      bool
	// Def is the DefinitionID of the plan the record was made with ("" in
	// a record of a ferry before it, or of a plan without its mapping's
	// text).
	Def string
	// MessagePrefix and MessageContent are a message record's (op "m",
	// e.g. a barrier; see BarrierRecord).
	MessagePrefix  string
	MessageContent []byte
}

// QualifiedName is the source table's schema.name.
func (r *RecordEnvelope) QualifiedName() string { return r.Schema + "." + r.Table }

// DecodeRecord decodes a record's data (the envelope Record writes, a
// schema-change record, or a message record such as a barrier).
func DecodeRecord(data []byte) (RecordEnvelope, error) {
	var env struct {
		Op     string                     `json:"op"`
		Before map[string]json.RawMessage `json:"before"`
		After  map[string]json.RawMessage `json:"after"`
		Source struct {
			Schema   string `json:"schema"`
			Table    string `json:"table"`
			LSN      string `json:"lsn"`
			Seq      uint32 `json:"seq"`
			TxID     uint32 `json:"txid"`
			TsMS     int64  `json:"ts_ms"`
			Snapshot bool   `json:"snapshot"`
			Def      string `json:"def"`
		} `json:"source"`
		Message struct {
			Prefix  string `json:"prefix"`
			Content string `json:"content"`
		} `json:"message"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return RecordEnvelope{}, fmt.Errorf("record: %w", err)
	}
	lsn, err := extract.ParseLSN(env.Source.LSN)
	if err != nil {
		return RecordEnvelope{}, fmt.Errorf("record: %w", err)
	}
	switch env.Op {
	case "r", "c", "u", "d", "t", OpSchema, OpMessage:
	default:
		return RecordEnvelope{}, fmt.Errorf("record: unknown op %q", env.Op)
	}
	out := RecordEnvelope{Op: env.Op, Before: env.Before, After: env.After, Schema: env.Source.Schema, Table: env.Source.Table,
		Pos: extract.Position{LSN: lsn, Seq: env.Source.Seq}, TxID: env.Source.TxID, CommitMS: env.Source.TsMS, Snapshot: env.Source.Snapshot, Def: env.Source.Def}
	if env.Op == OpMessage {
		out.MessagePrefix = env.Message.Prefix
		if out.MessageContent, err = decodeMessage(env.Message.Prefix, env.Message.Content); err != nil {
			return RecordEnvelope{}, err
		}
	}
	return out, nil
}

// ChangeOf turns a decoded record of the table back into its change (not
// for schema-change or message records).
func (tp *TablePlan) ChangeOf(env *RecordEnvelope) (*extract.Change, error) {
	ch := &extract.Change{Table: tp.Source, Op: extract.Op(env.Op[0]), Pos: env.Pos, TxID: env.TxID, Commit: time.UnixMilli(env.CommitMS)}
	var err error
	if env.Before != nil {
		if ch.Before, err = tp.RowOf(env.Before); err != nil {
			return nil, fmt.Errorf("before: %w", err)
		}
	}
	if env.After != nil {
		if ch.After, err = tp.RowOf(env.After); err != nil {
			return nil, fmt.Errorf("after: %w", err)
		}
	}
	switch ch.Op {
	case extract.OpDelete:
		if ch.Before == nil {
			return nil, fmt.Errorf("delete at %s without a before image", env.Pos.LSN)
		}
	case extract.OpCreate, extract.OpUpdate, extract.OpRead:
		if ch.After == nil {
			return nil, fmt.Errorf("%s at %s without an after image", ch.Op, env.Pos.LSN)
		}
	}
	return ch, nil
}
