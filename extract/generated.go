package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Generated columns: PostgreSQL 15's pgoutput sends no GENERATED ALWAYS AS
// (…) STORED column, in no change (the option to publish them came in
// PostgreSQL 18). Their value is a function of the other columns of the same
// row (the expression may use only immutable functions and the row's own
// columns), so ferry computes it exactly from the change's own row image, on
// the source server, with the column's own expression: the value is the one
// the server stored for that version of the row, not a later one.

// resolveGenerated turns the generated columns' referenced attnums into
// column indexes.
func (t *Table) resolveGenerated() {
	for i := range t.Columns {
		c := &t.Columns[i]
		c.GeneratedFrom = c.GeneratedFrom[:0]
		for _, n := range c.generatedFrom {
			for j, o := range t.Columns {
				if o.Position == n {
					c.GeneratedFrom = append(c.GeneratedFrom, j)
				}
			}
		}
	}
}

// HasGenerated reports whether t has a stored generated column.
func (t *Table) HasGenerated() bool {
	for _, c := range t.Columns {
		if c.Generated != "" {
			return true
		}
	}
	return false
}

// GeneratedColumns lists the names of t's stored generated columns.
func (t *Table) GeneratedColumns() []string {
	var out []string
	for _, c := range t.Columns {
		if c.Generated != "" {
			out = append(out, c.Name)
		}
	}
	return out
}

// GeneratedSQL returns the statement that computes the generated columns
// gens (indexes into t.Columns) from the values of the columns inputs, bound
// as text parameters $1… in the order of inputs and cast to their declared
// types. Its result columns are in the order of gens.
func GeneratedSQL(t *Table, gens, inputs []int) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, g := range gens {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Columns[g].Generated)
	}
	b.WriteString(" FROM (SELECT ")
	for i, in := range inputs {
		if i > 0 {
			b.WriteString(", ")
		}
		c := t.Columns[in]
		fmt.Fprintf(&b, "$%d::text::%s AS %s", i+1, c.Type, QuoteIdent(c.Name))
	}
	if len(inputs) == 0 {
		b.WriteString("1")
	}
	b.WriteString(") AS ferry_generated_row")
	return b.String()
}

// EvalGenerated returns row with t's stored generated columns computed from
// the row's other columns. A generated column that reads a column the row
// does not carry (an unchanged TOAST value) is left as it is (Unchanged) and
// listed in unknown. q is used for one statement.
func EvalGenerated(ctx context.Context, q Querier, t *Table, row Row) (out Row, unknown []int, err error) {
	var gens []int
	need := map[int]bool{}
	for i, c := range t.Columns {
		if c.Generated == "" {
			continue
		}
		ok := true
		for _, in := range c.GeneratedFrom {
			if row[in].Unchanged {
				ok = false
			}
		}
		if !ok {
			unknown = append(unknown, i)
			continue
		}
		gens = append(gens, i)
		for _, in := range c.GeneratedFrom {
			need[in] = true
		}
	}
	if len(gens) == 0 {
		return row, unknown, nil
	}
	var inputs []int
	var args []any
	for i := range t.Columns {
		if !need[i] {
			continue
		}
		inputs = append(inputs, i)
		if row[i].Null {
			args = append(args, nil)
		} else {
			args = append(args, row[i].Text)
		}
	}
	rows, err := q.Query(ctx, GeneratedSQL(t, gens, inputs), append([]any{pgx.QueryResultFormats{pgx.TextFormatCode}}, args...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("compute generated columns %s of %s: %w", strings.Join(t.GeneratedColumns(), ", "), t.QualifiedName(), err)
	}
	defer rows.Close()
	out = make(Row, len(row))
	copy(out, row)
	n := 0
	for rows.Next() {
		for k, v := range rows.RawValues() {
			if v == nil {
				out[gens[k]] = Value{Null: true}
			} else {
				out[gens[k]] = Value{Text: string(v)}
			}
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("compute generated columns %s of %s: %w", strings.Join(t.GeneratedColumns(), ", "), t.QualifiedName(), err)
	}
	if n != 1 {
		return nil, nil, fmt.Errorf("compute generated columns of %s: %d result rows, want 1", t.QualifiedName(), n)
	}
	return out, unknown, nil
}
