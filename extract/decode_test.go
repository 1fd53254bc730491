package extract

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pgoutput (protocol 1) messages, built byte by byte as the server sends them,
// so that the decoder is tested against the wire format and not against
// pglogrepl's own structs.

type msg []byte

func (m msg) u8(v byte) msg     { return append(m, v) }
func (m msg) u16(v uint16) msg  { return binary.BigEndian.AppendUint16(m, v) }
func (m msg) u32(v uint32) msg  { return binary.BigEndian.AppendUint32(m, v) }
func (m msg) u64(v uint64) msg  { return binary.BigEndian.AppendUint64(m, v) }
func (m msg) str(s string) msg  { return append(append(m, s...), 0) }
func (m msg) data(s string) msg { return append(m.u32(uint32(len(s))), s...) }

// pgEpoch is PostgreSQL's timestamp origin.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

func pgTime(t time.Time) uint64 { return uint64(t.Sub(pgEpoch).Microseconds()) }

func beginMsg(final LSN, at time.Time, xid uint32) msg {
	return msg{'B'}.u64(uint64(final)).u64(pgTime(at)).u32(xid)
}

func commitMsg(commit, end LSN, at time.Time) msg {
	return msg{'C'}.u8(0).u64(uint64(commit)).u64(uint64(end)).u64(pgTime(at))
}

func relationMsg(id uint32, schema, name string, ident byte, cols ...string) msg {
	m := msg{'R'}.u32(id).str(schema).str(name).u8(ident).u16(uint16(len(cols)))
	for i, c := range cols {
		flags := byte(0)
		if i == 0 {
			flags = 1 // part of the key
		}
		m = m.u8(flags).str(c).u32(25).u32(0xFFFFFFFF) // text, no typmod
	}
	return m
}

// tuple encodes values: "\x00null", "\x00toast" are NULL and unchanged TOAST.
func tuple(m msg, vals ...string) msg {
	m = m.u16(uint16(len(vals)))
	for _, v := range vals {
		switch v {
		case "\x00null":
			m = m.u8('n')
		case "\x00toast":
			m = m.u8('u')
		default:
			m = m.u8('t').data(v)
		}
	}
	return m
}

func insertMsg(rel uint32, vals ...string) msg { return tuple(msg{'I'}.u32(rel).u8('N'), vals...) }

func updateMsg(rel uint32, oldKind byte, old []string, vals ...string) msg {
	m := msg{'U'}.u32(rel)
	if oldKind != 0 {
		m = tuple(m.u8(oldKind), old...)
	}
	return tuple(m.u8('N'), vals...)
}

func deleteMsg(rel uint32, oldKind byte, old ...string) msg {
	return tuple(msg{'D'}.u32(rel).u8(oldKind), old...)
}

func truncateMsg(rels ...uint32) msg {
	m := msg{'T'}.u32(uint32(len(rels))).u8(0)
	for _, r := range rels {
		m = m.u32(r)
	}
	return m
}

func messageMsg(transactional bool, lsn LSN, prefix, content string) msg {
	flags := byte(0)
	if transactional {
		flags = 1
	}
	return msg{'M'}.u8(flags).u64(uint64(lsn)).str(prefix).data(content)
}

func filmTable() *Table {
	return &Table{Schema: "public", Name: "film", PK: []int{0}, ReplicaIdentity: 'd', Columns: []Column{
		{Name: "film_id", Kind: KindInt}, {Name: "title", Kind: KindText}, {Name: "description", Kind: KindText},
	}}
}

// rowText renders a Row compactly: NULL as ∅, unchanged as ~.
func rowText(r Row) string {
	if r == nil {
		return "nil"
	}
	parts := make([]string, len(r))
	for i, v := range r {
		switch {
		case v.Unchanged:
			parts[i] = "~"
		case v.Null:
			parts[i] = "∅"
		default:
			parts[i] = v.Text
		}
	}
	return strings.Join(parts, "|")
}

func TestDecodeTransaction(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 30, 0, 123456000, time.UTC)
	const commit, end = LSN(0x16B374D848), LSN(0x16B374D900)
	type want struct {
		kind          EventKind
		op            Op
		seq           uint32
		before, after string
		table         string
	}
	cases := []struct {
		name string
		msg  msg
		want []want
	}{
		{"relation film", relationMsg(10, "public", "film", 'd', "film_id", "title", "description"), nil},
		{"relation of an unmapped table", relationMsg(11, "public", "staff", 'd', "staff_id"), nil},
		// A definition unlike the loaded one (a column added after ferry
		// started, another order) is announced, and the rows that follow
		// are aligned with it: no value is dropped.
		{"relation with an unknown column", relationMsg(12, "public", "film2", 'f', "title", "extra", "film_id"), []want{{kind: EventRelation}}},
		{"begin", beginMsg(commit, at, 777), []want{{kind: EventBegin}}},
		{"insert", insertMsg(10, "1", "ACADEMY DINOSAUR", "\x00null"),
			[]want{{kind: EventChange, op: OpCreate, seq: 1, before: "nil", after: "1|ACADEMY DINOSAUR|∅", table: "film"}}},
		{"update leaving TOAST unchanged", updateMsg(10, 0, nil, "1", "ACE GOLDFINGER", "\x00toast"),
			[]want{{kind: EventChange, op: OpUpdate, seq: 2, before: "nil", after: "1|ACE GOLDFINGER|~", table: "film"}}},
		{"update changing the key (old key only)", updateMsg(10, 'K', []string{"1", "\x00null", "\x00null"}, "100", "ACE", "long"),
			[]want{{kind: EventChange, op: OpUpdate, seq: 3, before: "1|~|~", after: "100|ACE|long", table: "film"}}},
		{"update with the full old row", updateMsg(10, 'O', []string{"100", "ACE", "\x00null"}, "100", "ACE", "x"),
			[]want{{kind: EventChange, op: OpUpdate, seq: 4, before: "100|ACE|∅", after: "100|ACE|x", table: "film"}}},
		{"delete by key", deleteMsg(10, 'K', "100", "\x00null", "\x00null"),
			[]want{{kind: EventChange, op: OpDelete, seq: 5, before: "100|~|~", after: "nil", table: "film"}}},
		{"change of an unmapped table is skipped", insertMsg(11, "1"), nil},
		{"rows follow the announced definition", insertMsg(12, "T", "kept", "7"),
			[]want{{kind: EventChange, op: OpCreate, seq: 6, before: "nil", after: "T|kept|7", table: "film2"}}},
		{"truncate of several tables, one unmapped", truncateMsg(10, 11, 12),
			[]want{{kind: EventChange, op: OpTruncate, seq: 7, table: "film", before: "nil", after: "nil"},
				{kind: EventChange, op: OpTruncate, seq: 8, table: "film2", before: "nil", after: "nil"}}},
		{"transactional message", messageMsg(true, commit-8, "ferry", "x"), []want{{kind: EventMessage}}},
		{"commit", commitMsg(commit, end, at), []want{{kind: EventCommit}}},
		{"heartbeat outside a transaction", messageMsg(false, 0x20000000, "ferry_heartbeat", ""), []want{{kind: EventMessage}}},
		{"origin message carries nothing", msg{'O'}.u64(1).str("origin"), nil},
	}
	film2 := filmTable()
	film2.Name = "film2"
	d := NewDecoder(map[string]*Table{"public.film": filmTable(), "public.film2": film2})
	for _, tc := range cases {
		evs, err := d.Decode(tc.msg)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(evs) != len(tc.want) {
			t.Fatalf("%s: %d events %+v, want %d", tc.name, len(evs), evs, len(tc.want))
		}
		for i, w := range tc.want {
			ev := evs[i]
			if ev.Kind != w.kind {
				t.Errorf("%s: event %d kind %d, want %d", tc.name, i, ev.Kind, w.kind)
				continue
			}
			switch ev.Kind {
			case EventBegin, EventChange:
				if ev.CommitLSN != commit || ev.TxID != 777 || !ev.Time.Equal(at) {
					t.Errorf("%s: lsn %s txid %d time %s, want %s 777 %s", tc.name, ev.CommitLSN, ev.TxID, ev.Time, commit, at)
				}
			case EventCommit:
				if ev.CommitLSN != commit || ev.EndLSN != end || ev.TxID != 777 {
					t.Errorf("%s: commit %s end %s txid %d", tc.name, ev.CommitLSN, ev.EndLSN, ev.TxID)
				}
			case EventMessage:
				if tc.name == "heartbeat outside a transaction" {
					if ev.EndLSN != 0x20000000 || ev.Prefix != "ferry_heartbeat" {
						t.Errorf("%s: end %s prefix %q: a non-transactional message must be acknowledgeable at its LSN", tc.name, ev.EndLSN, ev.Prefix)
					}
				} else if ev.EndLSN != 0 || ev.CommitLSN != commit {
					t.Errorf("%s: end %s commit %s: a transactional message is acknowledged with its commit", tc.name, ev.EndLSN, ev.CommitLSN)
				}
			}
			if ev.Kind != EventChange {
				continue
			}
			ch := ev.Change
			if ch.Op != w.op || ch.Table.Name != w.table || ch.Pos != (Position{LSN: commit, Seq: w.seq}) {
				t.Errorf("%s: %s on %s at %+v, want %s on %s seq %d", tc.name, ch.Op, ch.Table.Name, ch.Pos, w.op, w.table, w.seq)
			}
			if got := rowText(ch.Before); got != w.before {
				t.Errorf("%s: before %s, want %s", tc.name, got, w.before)
			}
			if got := rowText(ch.After); got != w.after {
				t.Errorf("%s: after %s, want %s", tc.name, got, w.after)
			}
			if ch.TxID != 777 || !ch.Commit.Equal(at) {
				t.Errorf("%s: change txid %d commit %s", tc.name, ch.TxID, ch.Commit)
			}
		}
	}
}

func TestDecodeSequenceRestartsPerTransaction(t *testing.T) {
	d := NewDecoder(map[string]*Table{"public.film": filmTable()})
	at := time.Now().UTC()
	var got []Position
	for _, m := range []msg{
		relationMsg(10, "public", "film", 'd', "film_id", "title", "description"),
		beginMsg(100, at, 1), insertMsg(10, "1", "a", "b"), insertMsg(10, "2", "a", "b"), commitMsg(100, 110, at),
		beginMsg(200, at, 2), insertMsg(10, "3", "a", "b"), commitMsg(200, 210, at),
	} {
		evs, err := d.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Kind == EventChange {
				got = append(got, ev.Change.Pos)
			}
		}
	}
	want := []Position{{LSN: 100, Seq: 1}, {LSN: 100, Seq: 2}, {LSN: 200, Seq: 1}}
	if len(got) != len(want) {
		t.Fatalf("positions %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("position %d = %+v, want %+v", i, got[i], want[i])
		}
		if i > 0 && !got[i-1].Less(got[i]) {
			t.Errorf("positions not increasing: %+v then %+v", got[i-1], got[i])
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	at := time.Now().UTC()
	rel := relationMsg(10, "public", "film", 'd', "film_id", "title", "description")
	cases := []struct {
		name    string
		msgs    []msg
		wantErr string
	}{
		{"change before its relation", []msg{beginMsg(100, at, 1), insertMsg(99, "1")}, "relation 99 before its relation message"},
		{"change outside a transaction", []msg{rel, insertMsg(10, "1", "a", "b")}, "outside a transaction"},
		{"truncate outside a transaction", []msg{rel, truncateMsg(10)}, "outside a transaction"},
		{"commit without begin", []msg{commitMsg(100, 110, at)}, "without begin"},
		{"unknown message type", []msg{{'?', 1, 2}}, "decode pgoutput message"},
		{"empty message", []msg{{}}, "decode pgoutput message"},
		{"truncated insert", []msg{rel, beginMsg(100, at, 1), insertMsg(10, "1", "a", "b")[:12]}, "decode pgoutput message"},
		{"truncated begin", []msg{beginMsg(100, at, 1)[:9]}, "decode pgoutput message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(map[string]*Table{"public.film": filmTable()})
			var err error
			for _, m := range tc.msgs {
				if _, err = d.Decode(m); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzDecode feeds the decoder arbitrary message sequences (each message
// prefixed by a one-byte length in the fuzz input). It must never panic, and
// every change it returns lies inside a transaction, carries a row aligned
// with its table, and has a position greater than the previous change's.
func FuzzDecode(f *testing.F) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seed := func(ms ...msg) []byte {
		var b []byte
		for _, m := range ms {
			if len(m) > 255 {
				m = m[:255]
			}
			b = append(append(b, byte(len(m))), m...)
		}
		return b
	}
	rel := relationMsg(10, "public", "film", 'd', "film_id", "title", "description")
	f.Add(seed(rel, beginMsg(100, at, 1), insertMsg(10, "1", "a", "\x00null"), commitMsg(100, 110, at)))
	f.Add(seed(rel, beginMsg(100, at, 1), updateMsg(10, 'K', []string{"1", "\x00null", "\x00null"}, "2", "b", "\x00toast"),
		deleteMsg(10, 'O', "2", "b", "c"), truncateMsg(10, 11), commitMsg(100, 110, at)))
	f.Add(seed(messageMsg(false, 5, "ferry_heartbeat", ""), rel, rel, beginMsg(1, at, 1), beginMsg(2, at, 2)))
	f.Add(seed(relationMsg(10, "public", "film", 'f', "film_id", "film_id", "x"), beginMsg(7, at, 3), insertMsg(10, "1", "2", "3", "4")))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(map[string]*Table{"public.film": filmTable()})
		var last Position
		inTx := false
		for len(data) > 0 {
			n := int(data[0])
			data = data[1:]
			if n > len(data) {
				n = len(data)
			}
			m := data[:n]
			data = data[n:]
			evs, err := d.Decode(m)
			if err != nil {
				continue
			}
			for _, ev := range evs {
				switch ev.Kind {
				case EventBegin:
					inTx, last = true, Position{}
				case EventCommit:
					inTx = false
				case EventChange:
					ch := ev.Change
					if !inTx {
						t.Fatalf("change %+v outside a transaction", ch)
					}
					if ch.Table == nil || (ch.After != nil && len(ch.After) != len(ch.Table.Columns)) ||
						(ch.Before != nil && len(ch.Before) != len(ch.Table.Columns)) {
						t.Fatalf("change rows not aligned with the table: %+v", ch)
					}
					if !last.Less(ch.Pos) {
						t.Fatalf("position %+v after %+v", ch.Pos, last)
					}
					last = ch.Pos
				}
			}
		}
	})
}

// BenchmarkDecode decodes a transaction of rental updates as the server sends
// it (begin, 100 updates with the old key, commit), per change.
func BenchmarkDecode(b *testing.B) {
	rental := &Table{Schema: "public", Name: "rental", PK: []int{0}, ReplicaIdentity: 'd', Columns: []Column{
		{Name: "rental_id", Kind: KindInt}, {Name: "rental_date", Kind: KindTimestampTZ}, {Name: "inventory_id", Kind: KindInt},
		{Name: "customer_id", Kind: KindInt}, {Name: "return_date", Kind: KindTimestampTZ}, {Name: "staff_id", Kind: KindInt},
		{Name: "last_update", Kind: KindTimestampTZ},
	}}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	msgs := []msg{beginMsg(0x1000, at, 42)}
	for i := range 100 {
		id := fmt.Sprint(1000 + i)
		msgs = append(msgs, updateMsg(16400, 'K', []string{id, "\x00null", "\x00null", "\x00null", "\x00null", "\x00null", "\x00null"},
			id, "2022-05-24 22:53:30+00", "367", "130", "2022-05-26 22:04:30+00", "1", "2022-02-16 02:30:53+00"))
	}
	msgs = append(msgs, commitMsg(0x1000, 0x1080, at))
	rel := relationMsg(16400, "public", "rental", 'd', "rental_id", "rental_date", "inventory_id", "customer_id", "return_date", "staff_id", "last_update")
	var bytes int
	for _, m := range msgs {
		bytes += len(m)
	}
	b.SetBytes(int64(bytes) / 100)
	b.ReportAllocs()
	d := NewDecoder(map[string]*Table{"public.rental": rental})
	if _, err := d.Decode(rel); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += 100 {
		for _, m := range msgs {
			if _, err := d.Decode(m); err != nil {
				b.Fatal(err)
			}
		}
	}
}
