package extract

import (
	"bytes"
	"fmt"
	"strings"
)

// copyRowWriter is an io.Writer that receives a COPY ... TO STDOUT stream in text
// format and hands each decoded row to emit. pgx exposes COPY TO only as a byte
// stream (PgConn.CopyTo), so the decoding of the text format is ours: it is a
// few lines, allocation-light, and keeps values in exactly the text form that
// pgoutput uses, so snapshot rows and WAL changes share one conversion path.
type copyRowWriter struct {
	ncols   int
	pending []byte // a partial line carried between Write calls
	emit    func(Row) error
	rows    int64
	scratch []byte
	mem     *RowBuffer // where rows are kept (nil: an allocation per row)
}

func newCopyRowWriter(ncols int, emit func(Row) error) *copyRowWriter {
	return &copyRowWriter{ncols: ncols, emit: emit}
}

// Write consumes p, emitting every complete line. It never retains p.
func (w *copyRowWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(w.pending) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			return n, nil
		}
		w.pending = append(w.pending, p[:i]...)
		if err := w.line(w.pending); err != nil {
			return 0, err
		}
		w.pending = w.pending[:0]
		p = p[i+1:]
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.pending = append(w.pending, p...)
			break
		}
		if err := w.line(p[:i]); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

// Close reports a truncated stream (a line without its newline).
func (w *copyRowWriter) Close() error {
	if len(w.pending) > 0 {
		return fmt.Errorf("copy stream ended inside a row (%d bytes pending)", len(w.pending))
	}
	return nil
}

func (w *copyRowWriter) line(b []byte) error {
	row, err := w.decodeLine(b)
	if err != nil {
		return fmt.Errorf("copy row %d: %w", w.rows+1, err)
	}
	w.rows++
	return w.emit(row)
}

func (w *copyRowWriter) decodeLine(b []byte) (Row, error) {
	// One string per line; fields without escapes are substrings of it, so a
	// row costs two allocations instead of one per column (none with a
	// RowBuffer).
	var line string
	var row Row
	if w.mem != nil {
		line, row = w.mem.str(b), w.mem.row(w.ncols)
	} else {
		line, row = string(b), make(Row, 0, w.ncols)
	}
	// A line without a backslash (most) has no NULL and no escape: its
	// fields are taken as they are.
	escapes := bytes.IndexByte(b, '\\') >= 0
	for {
		i := strings.IndexByte(line, '\t')
		field := line
		if i >= 0 {
			field = line[:i]
		}
		var v Value
		switch {
		case !escapes:
			v = Value{Text: field}
		case field == `\N`:
			v = Value{Null: true}
		case strings.IndexByte(field, '\\') < 0:
			v = Value{Text: field}
		default:
			var err error
			if v, err = w.decodeField([]byte(field)); err != nil {
				return nil, fmt.Errorf("column %d: %w", len(row)+1, err)
			}
		}
		row = append(row, v)
		if i < 0 {
			break
		}
		line = line[i+1:]
	}
	if len(row) != w.ncols {
		return nil, fmt.Errorf("got %d columns, want %d", len(row), w.ncols)
	}
	// (More columns than ncols: append left the buffer's block, and the
	// row is refused anyway.)
	return row, nil
}

func (w *copyRowWriter) decodeField(f []byte) (Value, error) {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return Value{Null: true}, nil
	}
	if bytes.IndexByte(f, '\\') < 0 {
		return Value{Text: string(f)}, nil
	}
	out := w.scratch[:0]
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(f) {
			return Value{}, fmt.Errorf("dangling backslash")
		}
		switch c = f[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v*16 + hexVal(f[i])
				n++
			}
			if n == 0 {
				out = append(out, 'x')
			} else {
				out = append(out, byte(v))
			}
		default:
			if c >= '0' && c <= '7' {
				v := int(c - '0')
				for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
					i++
					v = v*8 + int(f[i]-'0')
				}
				out = append(out, byte(v))
			} else {
				out = append(out, c) // \\ and any other escaped character stand for themselves
			}
		}
	}
	w.scratch = out
	if w.mem != nil {
		return Value{Text: w.mem.str(out)}, nil
	}
	return Value{Text: string(out)}, nil
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}
