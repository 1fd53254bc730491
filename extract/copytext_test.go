package extract

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// collect returns a copyRowWriter for ncols columns that appends rows to *rows.
func collect(ncols int, rows *[]Row) *copyRowWriter {
	return newCopyRowWriter(ncols, func(r Row) error {
		*rows = append(*rows, r)
		return nil
	})
}

func decodeAll(t *testing.T, ncols int, chunks ...string) []Row {
	t.Helper()
	var rows []Row
	w := collect(ncols, &rows)
	for _, c := range chunks {
		n, err := w.Write([]byte(c))
		if err != nil {
			t.Fatalf("Write(%q): %v", c, err)
		}
		if n != len(c) {
			t.Fatalf("Write(%q) = %d, want %d", c, n, len(c))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return rows
}

func text(s string) Value { return Value{Text: s} }

var null = Value{Null: true}

func TestCopyDecodeFields(t *testing.T) {
	tests := []struct {
		name  string
		ncols int
		in    string
		want  []Row
	}{
		{"one row", 3, "1\tabc\t2022-05-24 22:53:30+00\n", []Row{{text("1"), text("abc"), text("2022-05-24 22:53:30+00")}}},
		{"two rows", 2, "1\ta\n2\tb\n", []Row{{text("1"), text("a")}, {text("2"), text("b")}}},
		{"no rows", 2, "", nil},
		{"null", 3, "1\t\\N\tx\n", []Row{{text("1"), null, text("x")}}},
		{"all null", 2, "\\N\t\\N\n", []Row{{null, null}}},
		{"empty strings are not null", 3, "\t\t\n", []Row{{text(""), text(""), text("")}}},
		{"single empty column", 1, "\n", []Row{{text("")}}},
		{"escaped \\N is text", 2, "\\\\N\tx\n", []Row{{text(`\N`), text("x")}}},
		{"\\N with more is text", 2, "\\Nx\ty\n", []Row{{text("Nx"), text("y")}}},
		{"trailing empty field", 2, "a\t\n", []Row{{text("a"), text("")}}},
		{"utf-8", 2, "bıgınt\tΣ😀\n", []Row{{text("bıgınt"), text("Σ😀")}}},
		{"array and tsvector", 2, "{\"Deleted Scenes\",\"Behind the Scenes\"}\t'academi':1 'battl':15\n",
			[]Row{{text(`{"Deleted Scenes","Behind the Scenes"}`), text(`'academi':1 'battl':15`)}}},
		{"bytea hex", 1, "\\\\x89504e47\n", []Row{{text(`\x89504e47`)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeAll(t, tt.ncols, tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode %q:\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestCopyDecodeEscapes(t *testing.T) {
	tests := []struct {
		field string // as COPY writes it
		want  string
	}{
		{`\b`, "\b"},
		{`\f`, "\f"},
		{`\n`, "\n"},
		{`\r`, "\r"},
		{`\t`, "\t"},
		{`\v`, "\v"},
		{`\\`, `\`},
		{`a\\b\\`, `a\b\`},
		{`\0`, "\x00"},
		{`\7`, "\x07"},
		{`\101`, "A"},
		{`\1011`, "A1"}, // at most three octal digits
		{`\12x`, "\nx"},
		{`\377`, "\xff"},
		{`\8`, "8"}, // not octal: stands for itself
		{`\x41`, "A"},
		{`\x4`, "\x04"},
		{`\x4g`, "\x04g"},
		{`\x414`, "A4"}, // at most two hex digits
		{`\xfF`, "\xff"},
		{`\xg`, "xg"}, // \x without a hex digit is x
		{`\x`, "x"},
		{`\.`, "."},
		{`\z`, "z"},
		{`\"`, `"`},
		{`line1\nline2\ttab\\back`, "line1\nline2\ttab\\back"},
		{`\342\202\254`, "€"}, // octal-escaped UTF-8 bytes
	}
	for _, tt := range tests {
		got := decodeAll(t, 2, tt.field+"\tend\n")
		want := []Row{{text(tt.want), text("end")}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decode field %q = %+v, want %+v", tt.field, got, want)
		}
	}
}

// copyStream is a COPY text stream of a few Pagila-like rows with every kind of
// field: escapes, NULLs, empty strings, multi-byte characters.
const copyStream = "1\tACADEMY DINOSAUR\t\\N\t2006\t{\"Deleted Scenes\",\"Behind the Scenes\"}\n" +
	"2\tline\\nbreak and tab\\t and back\\\\slash\t\t2007\t{}\n" +
	"3\tbıgınt € 😀\t\\\\x00ff\t\\N\t{NULL}\n" +
	"4\t\\x41\\101\\b\\f\\r\\v\t\\N\t\\N\t\\N\n"

var copyStreamRows = []Row{
	{text("1"), text("ACADEMY DINOSAUR"), null, text("2006"), text(`{"Deleted Scenes","Behind the Scenes"}`)},
	{text("2"), text("line\nbreak and tab\t and back\\slash"), text(""), text("2007"), text("{}")},
	{text("3"), text("bıgınt € 😀"), text(`\x00ff`), null, text("{NULL}")},
	{text("4"), text("AA\b\f\r\v"), null, null, null},
}

func TestCopyDecodeWholeStream(t *testing.T) {
	got := decodeAll(t, 5, copyStream)
	if !reflect.DeepEqual(got, copyStreamRows) {
		t.Fatalf("got  %+v\nwant %+v", got, copyStreamRows)
	}
}

// TestCopySplitEverywhere writes the stream in two and three pieces cut at every
// byte boundary (inside escapes, multi-byte characters, at tabs and newlines).
func TestCopySplitEverywhere(t *testing.T) {
	s := copyStream
	for i := 0; i <= len(s); i++ {
		got := decodeAll(t, 5, s[:i], s[i:])
		if !reflect.DeepEqual(got, copyStreamRows) {
			t.Fatalf("split at %d (%q | %q):\n got %+v\nwant %+v", i, s[:i], s[i:], got, copyStreamRows)
		}
	}
	for i := 0; i <= len(s); i++ {
		for j := i; j <= len(s); j++ {
			got := decodeAll(t, 5, s[:i], s[i:j], s[j:])
			if !reflect.DeepEqual(got, copyStreamRows) {
				t.Fatalf("split at %d and %d:\n got %+v\nwant %+v", i, j, got, copyStreamRows)
			}
		}
	}
}

func TestCopyByteAtATime(t *testing.T) {
	chunks := make([]string, len(copyStream))
	for i := 0; i < len(copyStream); i++ {
		chunks[i] = copyStream[i : i+1]
	}
	got := decodeAll(t, 5, chunks...)
	if !reflect.DeepEqual(got, copyStreamRows) {
		t.Fatalf("got  %+v\nwant %+v", got, copyStreamRows)
	}
}

// TestCopyDoesNotRetainInput overwrites every buffer after Write: decoded rows and
// a partial line carried to the next Write must not change.
func TestCopyDoesNotRetainInput(t *testing.T) {
	var rows []Row
	w := collect(5, &rows)
	s := []byte(copyStream)
	for start := 0; start < len(s); start += 7 {
		end := min(start+7, len(s))
		buf := append([]byte(nil), s[start:end]...)
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = '#'
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, copyStreamRows) {
		t.Fatalf("got  %+v\nwant %+v", rows, copyStreamRows)
	}
	if w.rows != int64(len(copyStreamRows)) {
		t.Errorf("rows counted %d, want %d", w.rows, len(copyStreamRows))
	}
}

func TestCopyTruncatedStream(t *testing.T) {
	for _, tail := range []string{"5", "5\tabc", "5\tabc\\", "5\t\\N\t\t\t"} {
		var rows []Row
		w := collect(5, &rows)
		if _, err := w.Write([]byte(copyStream + tail)); err != nil {
			t.Fatalf("Write: %v", err)
		}
		err := w.Close()
		if err == nil {
			t.Errorf("Close after a stream ending in %q: no error", tail)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%d bytes pending", len(tail))) {
			t.Errorf("Close error %q does not say how much is pending", err)
		}
		if len(rows) != len(copyStreamRows) {
			t.Errorf("emitted %d rows before the truncated one, want %d", len(rows), len(copyStreamRows))
		}
	}
}

func TestCopyErrors(t *testing.T) {
	tests := []struct {
		name  string
		ncols int
		in    string
		want  string // substring of the error
	}{
		{"too few columns", 3, "1\t2\n", "copy row 1: got 2 columns, want 3"},
		{"too many columns", 2, "1\t2\t3\n", "copy row 1: got 3 columns, want 2"},
		{"second row wrong", 2, "1\t2\n1\n", "copy row 2: got 1 columns, want 2"},
		{"empty line", 2, "1\t2\n\n", "copy row 2: got 1 columns, want 2"},
		{"dangling backslash", 2, "1\tab\\\n", "copy row 1: column 2: dangling backslash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rows []Row
			w := collect(tt.ncols, &rows)
			n, err := w.Write([]byte(tt.in))
			if err == nil {
				t.Fatalf("Write(%q): no error", tt.in)
			}
			if n == len(tt.in) {
				t.Errorf("Write returned n = len(p) with an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCopyErrorAcrossWrites(t *testing.T) {
	var rows []Row
	w := collect(2, &rows)
	if _, err := w.Write([]byte("1\t2\n3")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("\t4\t5\n")); err == nil || !strings.Contains(err.Error(), "copy row 2: got 3 columns") {
		t.Fatalf("error = %v, want copy row 2 with 3 columns", err)
	}
}

func TestCopyEmitError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	w := newCopyRowWriter(1, func(Row) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	_, err := w.Write([]byte("a\nb\nc\n"))
	if !errors.Is(err, stop) {
		t.Fatalf("Write error = %v, want the emit error", err)
	}
	if calls != 2 {
		t.Errorf("emit called %d times, want it to stop after the error (2)", calls)
	}
	// Same when the failing row completes a line carried over from an earlier Write.
	calls = 0
	w = newCopyRowWriter(1, func(Row) error {
		calls++
		return stop
	})
	if _, err := w.Write([]byte("ab")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("c\n")); !errors.Is(err, stop) {
		t.Fatalf("Write error = %v, want the emit error", err)
	}
}

// copyLines builds n COPY lines shaped like Pagila's rental rows.
func copyLines(n int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d\t2022-05-24 22:53:30+00\t%d\t%d\t", 16050+i, 1000+i%4000, 1+i%599)
		if i%10 == 0 {
			b.WriteString(`\N`)
		} else {
			b.WriteString("2022-05-28 19:40:33.123456+00")
		}
		fmt.Fprintf(&b, "\t%d\t2022-02-16 02:30:53+00\n", 1+i%2)
	}
	return b.Bytes()
}

func BenchmarkCopyDecode(b *testing.B) {
	const n = 10_000
	data := copyLines(n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rows := 0
		w := newCopyRowWriter(7, func(Row) error { rows++; return nil })
		// pgx hands CopyTo data in chunks of one CopyData message each (about a row
		// or 64 KiB); 32 KiB pieces exercise the carried-over partial line.
		for p := data; len(p) > 0; {
			k := min(len(p), 32<<10)
			if _, err := w.Write(p[:k]); err != nil {
				b.Fatal(err)
			}
			p = p[k:]
		}
		if err := w.Close(); err != nil || rows != n {
			b.Fatalf("rows %d, err %v", rows, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCopyScan is the floor BenchmarkCopyDecode is measured against: one
// pass over the same bytes finding every line and field separator, no decoding.
func BenchmarkCopyScan(b *testing.B) {
	data := copyLines(10_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		fields := 0
		for p := data; len(p) > 0; {
			i := bytes.IndexByte(p, '\n')
			line := p[:i]
			fields += bytes.Count(line, []byte{'\t'}) + 1
			p = p[i+1:]
		}
		if fields != 70_000 {
			b.Fatal(fields)
		}
	}
}

func BenchmarkCopyDecodeEscaped(b *testing.B) {
	var buf bytes.Buffer
	for i := 0; i < 10_000; i++ {
		fmt.Fprintf(&buf, "%d\tline one\\nline two\\twith a tab and a back\\\\slash\t\\\\x89504e470d0a1a0a\n", i)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		w := newCopyRowWriter(3, func(Row) error { return nil })
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzCopyDecode: however the stream is cut into Writes, the rows and the error
// are the same; and a field written with COPY's escaping decodes to itself.
func FuzzCopyDecode(f *testing.F) {
	f.Add([]byte(copyStream), uint16(17), "a\tb\\c\nd\x00")
	f.Add([]byte("1\t\\N\n2\t\\x41\\101\n"), uint16(3), "")
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, field string) {
		run := func(chunks ...[]byte) ([]Row, string) {
			var rows []Row
			w := collect(2, &rows)
			for _, c := range chunks {
				if _, err := w.Write(c); err != nil {
					return rows, err.Error()
				}
			}
			if err := w.Close(); err != nil {
				return rows, err.Error()
			}
			return rows, ""
		}
		whole, werr := run(data)
		i := int(cut) % (len(data) + 1)
		split, serr := run(data[:i], data[i:])
		if werr != serr || !reflect.DeepEqual(whole, split) {
			t.Fatalf("cut at %d: %+v %q, whole: %+v %q", i, split, serr, whole, werr)
		}

		// Escape the field as COPY does and decode it back.
		var b strings.Builder
		for j := 0; j < len(field); j++ {
			switch c := field[j]; c {
			case '\\':
				b.WriteString(`\\`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				b.WriteByte(c)
			}
		}
		rows, err := run([]byte(b.String() + "\tx\n"))
		if err != "" {
			t.Fatalf("escaped %q: %s", field, err)
		}
		if len(rows) != 1 || rows[0][0] != text(field) {
			t.Fatalf("escaped %q decoded to %+v", field, rows)
		}
	})
}

// TestCopyIntoRowBuffer: rows kept in a RowBuffer are the rows decoded
// without one, every one of them intact until Reset (blocks are
// append-only); after Reset its memory is used again.
func TestCopyIntoRowBuffer(t *testing.T) {
	input := string(copyLines(3000)) + "a\\tb\t\\N\tx\\\\y\t\t\\101\t\t\n" + strings.Repeat("z", 100<<10) + "\t\t\t\t\t\t\n"
	want := decodeAll(t, 7, input)
	var mem RowBuffer
	for round := range 3 {
		var got []Row
		w := collect(7, &got)
		w.mem = &mem
		for p := input; len(p) > 0; {
			k := min(len(p), 7777)
			if _, err := w.Write([]byte(p[:k])); err != nil {
				t.Fatal(err)
			}
			p = p[k:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: rows in the RowBuffer differ from rows without one", round)
		}
		blocks := len(mem.text) + len(mem.vals)
		mem.Reset()
		if len(mem.textFree)+len(mem.valsFree) < blocks {
			t.Fatalf("round %d: Reset kept %d of %d blocks", round, len(mem.textFree)+len(mem.valsFree), blocks)
		}
	}
	// Warm, reading rows allocates nothing.
	data := copyLines(500)
	w := newCopyRowWriter(7, func(Row) error { return nil })
	w.mem = &mem
	allocs := testing.AllocsPerRun(20, func() {
		mem.Reset()
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Errorf("%v allocations per 500 rows read into a warm RowBuffer", allocs)
	}
}

// BenchmarkCopyDecodeRowBuffer is BenchmarkCopyDecode with the rows kept in
// a RowBuffer reset every 500 rows, as the backfill does.
func BenchmarkCopyDecodeRowBuffer(b *testing.B) {
	const n = 10_000
	data := copyLines(n)
	var mem RowBuffer
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rows := 0
		w := newCopyRowWriter(7, func(Row) error {
			if rows++; rows%500 == 0 {
				mem.Reset()
			}
			return nil
		})
		w.mem = &mem
		for p := data; len(p) > 0; {
			k := min(len(p), 32<<10)
			if _, err := w.Write(p[:k]); err != nil {
				b.Fatal(err)
			}
			p = p[k:]
		}
		if err := w.Close(); err != nil || rows != n {
			b.Fatalf("rows %d, err %v", rows, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
