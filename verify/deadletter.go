package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/transform"
)

// DeadLetters are the rows of ferry's dead-letter files (backfill and sync
// with --on-error=skip): for each source table and primary key, the reason
// the row was skipped and the row as the file holds it. A row that differs
// and is listed is reported as dead-lettered rather than missing, differing
// or unconvertible: ferry knew it could not write it. So is an item that no
// source row explains but whose own primary key columns name a listed row:
// the item the row had before the change that could not be written (for
// instance one that moved the row to a key DynamoDB refuses). Either is still
// a difference (the targets do not hold the row as it is).
type DeadLetters map[deadKey]deadRow

type deadKey struct{ table, key string }

// deadRow is one dead-lettered row: the reason and the row's columns in
// their text form (nil for NULL; nil map when the file has no row).
type deadRow struct {
	reason string
	row    map[string]*string
}

// ReadDeadLetters reads dead-letter files: JSON lines with at least "table"
// (schema.name), "key" (the source primary key as "col=value, ...") and
// "reason". A row listed more than once keeps its last reason.
func ReadDeadLetters(paths ...string) (DeadLetters, error) {
	d := DeadLetters{}
	for _, p := range paths {
		if err := d.read(p); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d DeadLetters) read(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	defer f.Close()
	return d.decode(f, "dead-letter file "+path)
}

// Add adds the dead letters of r (JSON objects, as in the files), named
// where in errors (the Lambda applier's, from the control table).
func (d DeadLetters) Add(r io.Reader, where string) error { return d.decode(r, where) }

func (d DeadLetters) decode(r io.Reader, where string) error {
	// A line holds the whole row (possibly megabytes): decode the stream of
	// objects rather than scanning lines of a bounded length.
	dec := json.NewDecoder(r)
	for n := 1; ; n++ {
		var line struct {
			Table, Key, Reason string
			Row                map[string]*string
		}
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s, row %d: %w", where, n, err)
		}
		if line.Table == "" || line.Key == "" {
			return fmt.Errorf("%s, row %d: no table or key", where, n)
		}
		d[deadKey{line.Table, line.Key}] = deadRow{reason: line.Reason, row: line.Row}
	}
}

// lookup returns the reason a row was dead-lettered.
func (d DeadLetters) lookup(table, key string) (string, bool) {
	r, ok := d[deadKey{table, key}]
	return r.reason, ok
}

// relabel marks a finding of a row that is in the dead-letter files.
// Only rows the targets lack or hold differently (missing, differs,
// unconvertible) are relabelled here; an extra item is relabelled by
// relabelItem, from the item's own columns.
func (d DeadLetters) relabel(f *Finding) bool {
	switch f.Kind {
	case KindMissing, KindDiffers, KindUnconvertible:
	default:
		return false
	}
	reason, ok := d.lookup(f.Table, f.Key)
	if !ok {
		return false
	}
	f.Kind = KindDeadLettered
	f.Reason = "in the dead-letter file: " + reason
	return true
}

// relabelItem marks an extra item of table tp (qualified name table) as
// dead-lettered when its own primary key columns name a row of the
// dead-letter files: the item is what the row left behind when a change to
// it could not be written. The item's key columns are compared as stored
// (the file's text converted through the plan), so keys whose text forms
// differ between PostgreSQL and DynamoDB (timestamps, numerics) still match.
// It reports whether it relabelled f.
func (d DeadLetters) relabelItem(tp *transform.TablePlan, idx *deadIndex, f *Finding, item transform.Item) bool {
	if len(d) == 0 || tp == nil || f.Kind != KindExtra {
		return false
	}
	reason, ok := "", false
	if f.Key != "" {
		reason, ok = d.lookup(f.Table, f.Key)
	}
	if !ok {
		if sig, sigOK := itemPKSig(tp, item); sigOK {
			var e deadEntry
			if e, ok = idx.get(d, tp, f.Table)[sig]; ok {
				reason, f.Key = e.reason, e.key // the key as the file writes it
			}
		}
	}
	if !ok {
		return false
	}
	f.Kind = KindDeadLettered
	f.Reason = "in the dead-letter file: " + reason + " (the item the row had before the change that could not be written)"
	return true
}

// deadIndex maps a table's dead-lettered rows by their primary key columns
// as items store them; built on first use, safe for concurrent use.
type deadIndex struct {
	once sync.Once
	m    map[string]deadEntry // pkSig → the file's row
}

type deadEntry struct{ key, reason string }

func (x *deadIndex) get(d DeadLetters, tp *transform.TablePlan, table string) map[string]deadEntry {
	x.once.Do(func() {
		x.m = map[string]deadEntry{}
		for k, r := range d {
			if k.table != table || r.row == nil {
				continue
			}
			if sig, ok := rowPKSig(tp, r.row); ok {
				x.m[sig] = deadEntry{k.key, r.reason}
			}
		}
	})
	return x.m
}

// rowPKSig is the signature of a dead-letter row's primary key: each key
// column converted as the plan stores it, rendered canonically.
func rowPKSig(tp *transform.TablePlan, row map[string]*string) (string, bool) {
	var b strings.Builder
	for _, idx := range tp.Source.PK {
		text, ok := row[tp.Source.Columns[idx].Name]
		if !ok || text == nil {
			return "", false
		}
		av, err := tp.ColumnAttr(idx, *text)
		if err != nil {
			return "", false
		}
		b.WriteString(canonAttr(av))
		b.WriteByte(0)
	}
	return b.String(), true
}

// itemPKSig is rowPKSig of an item's own primary key columns.
func itemPKSig(tp *transform.TablePlan, item transform.Item) (string, bool) {
	var b strings.Builder
	for _, idx := range tp.Source.PK {
		av, ok := item[tp.Source.Columns[idx].Name]
		if !ok {
			return "", false
		}
		if _, null := av.(*types.AttributeValueMemberNULL); null {
			return "", false
		}
		b.WriteString(canonAttr(av))
		b.WriteByte(0)
	}
	return b.String(), true
}

// canonAttr renders an attribute so that equal values (AttrEqual) render
// alike: numbers without insignificant zeros or sign.
func canonAttr(av types.AttributeValue) string {
	switch x := av.(type) {
	case *types.AttributeValueMemberN:
		return "N:" + canonNumber(x.Value)
	case *types.AttributeValueMemberS:
		return "S:" + x.Value
	}
	return fmt.Sprintf("%T:%s", av, Render(av))
}

// canonNumber normalises a decimal number's text: no '+', no leading zeros
// in the integer part, no trailing zeros in the fraction, "0" for zero.
// Numbers with an exponent are returned as they are.
func canonNumber(s string) string {
	if strings.ContainsAny(s, "eE") {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	out := intPart
	if frac != "" {
		out += "." + frac
	}
	if out == "0" {
		return out
	}
	if neg {
		return "-" + out
	}
	return out
}
