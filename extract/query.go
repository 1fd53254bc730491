package extract

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// SampleValues returns n of the distinct rows of the query's result (all of
// them when there are fewer), chosen uniformly at random with rng, each as
// its columns' text values, in random order. It holds n rows at most, however
// many the query returns: the rows stream through a reservoir.
func SampleValues(ctx context.Context, conn *pgx.Conn, query string, n int, rng *rand.Rand) ([][]string, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT * FROM ("+query+") s", pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return nil, fmt.Errorf("sample %q: %w", query, err)
	}
	defer rows.Close()
	r := reservoir[[]string]{n: n, rng: rng}
	for rows.Next() {
		if !r.take() {
			continue
		}
		raw := rows.RawValues()
		vals := make([]string, len(raw))
		for i, b := range raw {
			vals[i] = string(b)
		}
		r.put(vals)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sample %q: %w", query, err)
	}
	rng.Shuffle(len(r.items), func(i, j int) { r.items[i], r.items[j] = r.items[j], r.items[i] })
	return r.items, nil
}

// reservoir keeps a uniform random sample of n of the items offered to it
// (Algorithm R: the k-th item replaces a random kept one with probability
// n/k). Written here because it is ten lines; the standard library has none.
// Offer an item with take, and when take says so, give it with put (so that
// an item not kept is never built).
type reservoir[T any] struct {
	n     int
	rng   *rand.Rand
	seen  int
	items []T
	slot  int // where put stores the item take accepted
}

// take counts an item and reports whether it is kept.
func (r *reservoir[T]) take() bool {
	r.seen++
	if len(r.items) < r.n {
		r.slot = len(r.items)
		return true
	}
	if j := r.rng.IntN(r.seen); j < r.n {
		r.slot = j
		return true
	}
	return false
}

// put stores the item the last take kept.
func (r *reservoir[T]) put(x T) {
	if r.slot == len(r.items) {
		r.items = append(r.items, x)
		return
	}
	r.items[r.slot] = x
}
