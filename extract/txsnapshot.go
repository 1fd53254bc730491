package extract

import (
	"fmt"
	"strconv"
	"strings"
)

// TxSnapshot is a transaction snapshot as pg_current_snapshot() prints it
// (xmin:xmax:xip,...): exactly which transactions a snapshot sees. A WAL
// position cannot say that: a transaction can commit (its record in the WAL)
// before a snapshot is taken and still be invisible to it, or the other way
// round with asynchronous commit.
type TxSnapshot struct {
	Xmin, Xmax uint64   // 64-bit transaction ids (with epoch)
	Xip        []uint64 // in progress at the snapshot: not visible
}

// ParseTxSnapshot parses pg_current_snapshot()'s text form.
func ParseTxSnapshot(s string) (TxSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: want xmin:xmax:xip", s)
	}
	var snap TxSnapshot
	var err error
	if snap.Xmin, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xmin: %w", s, err)
	}
	if snap.Xmax, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xmax: %w", s, err)
	}
	if parts[2] != "" {
		for _, x := range strings.Split(parts[2], ",") {
			id, err := strconv.ParseUint(x, 10, 64)
			if err != nil {
				return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xip: %w", s, err)
			}
			snap.Xip = append(snap.Xip, id)
		}
	}
	if snap.Xmin > snap.Xmax {
		return TxSnapshot{}, fmt.Errorf("transaction snapshot %q: xmin after xmax", s)
	}
	return snap, nil
}

// Visible reports whether a committed transaction with the 32-bit id xid (as
// pgoutput sends it) is visible to the snapshot. The id is widened with the
// epoch of xmax: it is taken as the latest 64-bit id at or below xmax + 2^31
// with those low bits (transactions ferry sees are never 2^31 ids apart).
func (s TxSnapshot) Visible(xid uint32) bool {
	full := s.Xmax&^0xFFFFFFFF | uint64(xid)
	if full > s.Xmax+1<<31 && full >= 1<<32 {
		full -= 1 << 32
	} else if full+1<<31 < s.Xmax {
		full += 1 << 32
	}
	if full < s.Xmin {
		return true
	}
	if full >= s.Xmax {
		return false
	}
	for _, x := range s.Xip {
		if x == full {
			return false
		}
	}
	return true
}
