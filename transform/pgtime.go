package transform

import (
	"fmt"
	"strings"
	"time"

	"github.com/ferry-migrate/ferry/extract"
)

// Dates and timestamps are carried as ISO 8601 in UTC, whatever their year:
//
//	2022-02-15T09:09:17.500000Z    timestamptz (timestamp: the same without Z)
//	2022-02-15                     date
//	+10000-01-01T00:00:00.000000Z  years after 9999: expanded form, with a '+'
//	-0043-03-15                    BC: the astronomical year (1 BC is 0000, 44 BC is -0043)
//
// This is ISO 8601's convention (and JavaScript's and XML Schema's) for years
// outside 0000–9999. Strings in that range sort in time order; the expanded
// and negative forms do not sort among them ('+' and '-' come before digits).
// ±infinity has no such form and is refused.

// pgDateTime is a date or timestamp read from PostgreSQL's ISO output.
type pgDateTime struct {
	year                     int // astronomical: 1 BC is 0
	mon, day, hour, min, sec int
	frac                     string // the digits after the point, as written (0–6)
	off                      int    // timestamptz: offset east of UTC, in seconds
}

// parsePGDateTime reads "YYYY-MM-DD[ HH:MM:SS[.ffffff][±HH[:MM[:SS]]]][ BC]" as
// PostgreSQL writes it with DateStyle ISO; the year has 4 or more digits.
func parsePGDateTime(text string, withTime, tz bool) (pgDateTime, bool) {
	var d pgDateTime
	s, bc := strings.CutSuffix(text, " BC")
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n < 4 || n > 9 {
		return d, false
	}
	d.year = atoiDigits(s[:n])
	s = s[n:]
	var ok bool
	if d.mon, s, ok = field2(s, '-'); !ok || d.mon < 1 || d.mon > 12 {
		return d, false
	}
	if d.day, s, ok = field2(s, '-'); !ok || d.day < 1 || d.day > 31 {
		return d, false
	}
	if withTime {
		if d.hour, s, ok = field2(s, ' '); !ok || d.hour > 23 {
			return d, false
		}
		if d.min, s, ok = field2(s, ':'); !ok || d.min > 59 {
			return d, false
		}
		if d.sec, s, ok = field2(s, ':'); !ok || d.sec > 59 {
			return d, false
		}
		if len(s) > 0 && s[0] == '.' {
			n := 1
			for n < len(s) && s[n] >= '0' && s[n] <= '9' {
				n++
			}
			if n == 1 || n > 7 {
				return d, false
			}
			d.frac, s = s[1:n], s[n:]
		}
		if tz {
			if len(s) == 0 || (s[0] != '+' && s[0] != '-') {
				return d, false
			}
			sign := 1
			if s[0] == '-' {
				sign = -1
			}
			s = s[1:]
			if len(s) < 2 || !isDigit(s[0]) || !isDigit(s[1]) {
				return d, false
			}
			off := atoiDigits(s[:2]) * 3600
			s = s[2:]
			for unit := 60; unit >= 1 && len(s) > 0; unit /= 60 {
				var v int
				if v, s, ok = field2(s, ':'); !ok || v > 59 {
					return d, false
				}
				off += v * unit
			}
			d.off = sign * off
		}
	}
	if s != "" {
		return d, false
	}
	if bc {
		if d.year == 0 {
			return d, false
		}
		d.year = 1 - d.year
	}
	return d, true
}

// field2 reads sep and two digits.
func field2(s string, sep byte) (int, string, bool) {
	if len(s) < 3 || s[0] != sep || !isDigit(s[1]) || !isDigit(s[2]) {
		return 0, s, false
	}
	return int(s[1]-'0')*10 + int(s[2]-'0'), s[3:], true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func atoiDigits(s string) int {
	v := 0
	for i := 0; i < len(s); i++ {
		v = v*10 + int(s[i]-'0')
	}
	return v
}

// utc moves a timestamptz with a non-zero offset to UTC (the session runs in
// UTC, so only a foreign setting gets here). Offsets are whole seconds, so the
// fraction does not change.
func (d *pgDateTime) utc() {
	if d.off == 0 {
		return
	}
	t := time.Date(d.year, time.Month(d.mon), d.day, d.hour, d.min, d.sec, 0, time.UTC).Add(-time.Duration(d.off) * time.Second)
	var m time.Month
	d.year, m, d.day = t.Date()
	d.mon = int(m)
	d.hour, d.min, d.sec = t.Clock()
	d.off = 0
}

// time returns d as a time.Time in UTC.
func (d *pgDateTime) time() time.Time {
	ns := 0
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(d.frac) {
			ns += int(d.frac[i] - '0')
		}
	}
	return time.Date(d.year, time.Month(d.mon), d.day, d.hour, d.min, d.sec, ns, time.UTC).Add(-time.Duration(d.off) * time.Second)
}

// appendYear writes an astronomical year in ISO 8601 form: 4 digits for
// 0000–9999, otherwise signed ("+10000", "-0043").
func appendYear(dst []byte, y int) []byte {
	switch {
	case y < 0:
		dst = append(dst, '-')
		y = -y
	case y > 9999:
		dst = append(dst, '+')
	}
	for p := 1000; p > 1; p /= 10 {
		if y < p {
			dst = append(dst, '0')
		}
	}
	return fmt.Appendf(dst, "%d", y)
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

func (d *pgDateTime) appendDate(dst []byte) []byte {
	if d.year >= 1000 && d.year <= 9999 {
		dst = append(dst, byte('0'+d.year/1000), byte('0'+d.year/100%10), byte('0'+d.year/10%10), byte('0'+d.year%10))
	} else {
		dst = appendYear(dst, d.year)
	}
	dst = append(dst, '-')
	dst = append2(dst, d.mon)
	dst = append(dst, '-')
	return append2(dst, d.day)
}

// isoTimestamp turns PostgreSQL's ISO output ("2022-02-15 09:09:17.5+00", with
// the session in UTC) into "2022-02-15T09:09:17.500000Z" (tz) or without Z.
func isoTimestamp(text string, tz bool) (string, error) {
	b, err := appendISOTimestamp(make([]byte, 0, 28), text, tz)
	return string(b), err
}

// appendISOTimestamp appends isoTimestamp's form of text to dst. The form
// never needs JSON escaping.
func appendISOTimestamp(dst []byte, text string, tz bool) ([]byte, error) {
	if out, ok := appendISOTimestampUTC(dst, text, tz); ok {
		return out, nil
	}
	return appendISOTimestampParsed(dst, text, tz)
}

// appendISOTimestampParsed is appendISOTimestamp for every form: parsed
// into fields, moved to UTC, formatted.
func appendISOTimestampParsed(dst []byte, text string, tz bool) ([]byte, error) {
	if strings.HasSuffix(text, "infinity") {
		return dst, fmt.Errorf("timestamp %q has no DynamoDB form", text)
	}
	d, ok := parsePGDateTime(text, true, tz)
	if !ok {
		if tz {
			return dst, fmt.Errorf("unexpected timestamptz form %q", text)
		}
		return dst, fmt.Errorf("unexpected timestamp form %q", text)
	}
	d.utc()
	dst = d.appendDate(dst)
	dst = append(dst, 'T')
	dst = append2(dst, d.hour)
	dst = append(dst, ':')
	dst = append2(dst, d.min)
	dst = append(dst, ':')
	dst = append2(dst, d.sec)
	dst = append(dst, '.')
	dst = append(dst, d.frac...)
	for i := len(d.frac); i < 6; i++ {
		dst = append(dst, '0')
	}
	if tz {
		dst = append(dst, 'Z')
	}
	return dst, nil
}

// appendISOTimestampUTC is appendISOTimestamp for the form nearly every
// value has, a 4-digit year AD in UTC ("2022-02-15 09:09:17.5+00"), whose
// ISO form is its own characters rearranged: no parsing into fields and
// formatting back, which was most of a row's timestamps' cost. ok is false
// for any other form (the general path decides).
func appendISOTimestampUTC(dst []byte, text string, tz bool) ([]byte, bool) {
	// YYYY-MM-DD HH:MM:SS
	if len(text) < 19 || text[4] != '-' || text[7] != '-' || text[10] != ' ' || text[13] != ':' || text[16] != ':' {
		return dst, false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !isDigit(text[i]) {
			return dst, false
		}
	}
	two := func(i int) int { return int(text[i]-'0')*10 + int(text[i+1]-'0') }
	if mon, day := two(5), two(8); mon < 1 || mon > 12 || day < 1 || day > 31 || two(11) > 23 || two(14) > 59 || two(17) > 59 {
		return dst, false
	}
	rest, frac := text[19:], ""
	if len(rest) > 0 && rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 || n > 7 {
			return dst, false
		}
		frac, rest = rest[1:n], rest[n:]
	}
	if tz && rest != "+00" || !tz && rest != "" {
		return dst, false
	}
	dst = append(dst, text[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, text[11:19]...)
	dst = append(dst, '.')
	dst = append(dst, frac...)
	dst = append(dst, "000000"[len(frac):]...)
	if tz {
		dst = append(dst, 'Z')
	}
	return dst, true
}

// isoDate turns PostgreSQL's ISO date output into ISO 8601 ("2022-02-15",
// "-0043-03-15" for 44 BC, "+10000-01-01").
func isoDate(text string) (string, error) {
	if strings.HasSuffix(text, "infinity") {
		return "", fmt.Errorf("date %q has no DynamoDB form", text)
	}
	d, ok := parsePGDateTime(text, false, false)
	if !ok {
		return "", fmt.Errorf("unexpected date form %q", text)
	}
	if d.year >= 1000 && d.year <= 9999 {
		return text, nil // already ISO 8601
	}
	return string(d.appendDate(make([]byte, 0, 12))), nil
}

// epochMillis is a date or timestamp as milliseconds since 1970-01-01 UTC
// (earlier instants are negative; a fraction of a millisecond is dropped,
// rounding down).
func epochMillis(kind extract.Kind, text string) (int64, error) {
	var d pgDateTime
	var ok bool
	switch kind {
	case extract.KindDate:
		d, ok = parsePGDateTime(text, false, false)
	case extract.KindTimestamp:
		d, ok = parsePGDateTime(text, true, false)
	case extract.KindTimestampTZ:
		d, ok = parsePGDateTime(text, true, true)
	default:
		return 0, fmt.Errorf("epoch_ms needs a date or timestamp")
	}
	if !ok {
		if strings.HasSuffix(text, "infinity") {
			return 0, fmt.Errorf("%s %q has no epoch_ms form", kind, text)
		}
		return 0, fmt.Errorf("unexpected %s form %q", kind, text)
	}
	return d.time().UnixMilli(), nil
}
