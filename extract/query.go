package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// QueryRows runs a query that returns rows of the table (SELECT * FROM
// it, with any WHERE, ORDER BY or LIMIT) and returns them in the text form
// COPY delivers, in the query's order.
func QueryRows(ctx context.Context, conn *pgx.Conn, t *Table, query string) ([]Row, error) {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = "q." + QuoteIdent(c.Name)
	}
	// COPY takes no parameters, and a subquery's order is kept by numbering
	// its rows.
	sql := "COPY (SELECT " + strings.Join(cols, ", ") + " FROM (SELECT q0.*, row_number() OVER () AS ferry_n FROM (" + query +
		") q0) q ORDER BY q.ferry_n) TO STDOUT"
	var rows []Row
	w := newCopyRowWriter(len(t.Columns), func(r Row) error {
		rows = append(rows, r)
		return nil
	})
	if _, err := conn.PgConn().CopyTo(ctx, w, sql); err != nil {
		return nil, fmt.Errorf("query rows of %s: %w", t.QualifiedName(), err)
	}
	return rows, nil
}

// QuoteLiteral quotes a value as an SQL string literal.
func QuoteLiteral(s string) string { return quoteLiteral(s) }

// SampleValues returns the distinct rows of the query's result, each as its
// columns' text values.
func SampleValues(ctx context.Context, conn *pgx.Conn, query string) ([][]string, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT * FROM ("+query+") s", pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, fmt.Errorf("sample %q: %w", query, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		raw := rows.RawValues()
		vals := make([]string, len(raw))
		for i, r := range raw {
			vals[i] = string(r)
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sample %q: %w", query, err)
	}
	return out, nil
}
