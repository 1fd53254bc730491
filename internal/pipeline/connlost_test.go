package pipeline

import (
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ferry-migrate/ferry/extract"
)

// TestConnLost: which failures sync answers by reconnecting from the
// checkpoint (classified by type and SQLSTATE, never by message text).
func TestConnLost(t *testing.T) {
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code, Message: "x"}) }
	tests := []struct {
		name         string
		err          error
		reconnecting bool
		lost         bool
	}{
		{"admin shutdown", pg(pgerrcode.AdminShutdown), false, true},
		{"cannot connect now", pg(pgerrcode.CannotConnectNow), false, true},
		{"connection failure", pg(pgerrcode.ConnectionFailure), false, true},
		{"too many connections", pg(pgerrcode.TooManyConnections), false, true},
		{"query canceled is not a lost connection", pg(pgerrcode.QueryCanceled), false, false},
		{"undefined column is not", pg(pgerrcode.UndefinedColumn), true, false},
		{"EOF", fmt.Errorf("read: %w", io.EOF), false, true},
		{"network error", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, false, true},
		{"closed connection", fmt.Errorf("exec: %w", net.ErrClosed), false, true},
		{"receive from the slot failed, reconnecting", fmt.Errorf("receive from slot s: %w: %w", extract.ErrConnLost, errors.New("boom")), true, true},
		{"receive from the slot failed, first start", fmt.Errorf("receive from slot s: %w: %w", extract.ErrConnLost, errors.New("boom")), false, false},
		{"slot in use, reconnecting (the old walsender lingers)", fmt.Errorf("start: %w", extract.ErrSlotInUse), true, true},
		{"slot in use at the first start", fmt.Errorf("start: %w", extract.ErrSlotInUse), false, false},
		{"slot missing", fmt.Errorf("start: %w", extract.ErrSlotMissing), true, false},
		{"undecodable message", fmt.Errorf("decode: %w", extract.ErrDecode), true, false},
		{"anything else", errors.New("mapping does not fit"), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lost *lostConnError
			if got := errors.As(connLost(tc.err, tc.reconnecting), &lost); got != tc.lost {
				t.Errorf("connLost(%v, %v) lost = %v, want %v", tc.err, tc.reconnecting, got, tc.lost)
			}
		})
	}
}
