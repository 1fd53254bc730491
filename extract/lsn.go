// Package extract is everything that comes out of PostgreSQL: log positions, the
// table catalogue, the consistent snapshot reader and (later) the logical
// replication reader. It is the only package that speaks pgx and pglogrepl.
package extract

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a PostgreSQL write-ahead log position. It is compared with < and printed
// in PostgreSQL's "XXX/XXXXXXXX" form; it is never kept as a string.
type LSN uint64

// String renders the LSN the way PostgreSQL does ("16/B374D848").
func (l LSN) String() string { return string(l.AppendText(make([]byte, 0, 17))) }

// AppendText appends the "XXX/XXXXXXXX" form to b (without fmt: every Kinesis
// record carries an LSN, and fmt.Sprintf was 6 % of a null-sink backfill's CPU).
func (l LSN) AppendText(b []byte) []byte {
	b = appendHexUpper(b, uint32(l>>32))
	b = append(b, '/')
	return appendHexUpper(b, uint32(l))
}

func appendHexUpper(b []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var tmp [8]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[v&0xF]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// ParseLSN parses PostgreSQL's "XXX/XXXXXXXX" form.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse LSN %q: missing '/'", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// SeqDigits is how many decimal digits of a Version belong to the sequence number.
const SeqDigits = 8

// MaxSeq is the largest sequence number a Position may carry within one commit.
const MaxSeq = 99_999_999

// Position orders every change ferry handles: the commit LSN of the transaction
// (for snapshot rows: the slot's consistent LSN) and the change's sequence number
// within that transaction (snapshot rows use 0).
type Position struct {
	LSN LSN
	Seq uint32
}

// Less reports whether p comes strictly before q.
func (p Position) Less(q Position) bool {
	if p.LSN != q.LSN {
		return p.LSN < q.LSN
	}
	return p.Seq < q.Seq
}

// Version is the decimal number stored as the item attribute _version: the LSN
// followed by the sequence number in SeqDigits digits, so that numeric order of
// versions equals the order of positions (at most 28 digits: DynamoDB holds 38).
func (p Position) Version() string {
	var buf [32]byte
	return string(p.AppendVersion(buf[:0]))
}

// AppendVersion appends Version's form to dst.
func (p Position) AppendVersion(dst []byte) []byte {
	if p.LSN == 0 {
		return strconv.AppendUint(dst, uint64(p.Seq), 10)
	}
	dst = strconv.AppendUint(dst, uint64(p.LSN), 10)
	var buf [20]byte
	seq := strconv.AppendUint(buf[:0], uint64(p.Seq), 10)
	for i := len(seq); i < SeqDigits; i++ {
		dst = append(dst, '0')
	}
	return append(dst, seq...)
}

// ParseVersion is the inverse of Position.Version.
func ParseVersion(s string) (Position, error) {
	if s == "" {
		return Position{}, fmt.Errorf("parse version: empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return Position{}, fmt.Errorf("parse version %q: not a decimal number", s)
		}
	}
	if len(s) <= SeqDigits {
		seq, err := strconv.ParseUint(s, 10, 32)
		return Position{Seq: uint32(seq)}, err
	}
	lsn, err := strconv.ParseUint(s[:len(s)-SeqDigits], 10, 64)
	if err != nil {
		return Position{}, fmt.Errorf("parse version %q: %w", s, err)
	}
	seq, err := strconv.ParseUint(s[len(s)-SeqDigits:], 10, 32)
	if err != nil {
		return Position{}, fmt.Errorf("parse version %q: %w", s, err)
	}
	return Position{LSN: LSN(lsn), Seq: uint32(seq)}, nil
}
