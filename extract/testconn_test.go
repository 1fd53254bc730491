package extract_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/stack"
)

// testConn returns a fresh test database's URL and a connection to it, closed
// when the test ends.
func testConn(t testing.TB) (string, *pgx.Conn) {
	t.Helper()
	url := stack.ForTest(t).TestDatabase(t)
	conn, err := extract.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return url, conn
}
