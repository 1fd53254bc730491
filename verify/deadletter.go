package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// DeadLetters are the rows of ferry's dead-letter files (backfill and sync
// with --on-error=skip): for each source table and primary key, the reason
// the row was skipped. A row that differs and is listed is reported as
// dead-lettered rather than missing, differing or unconvertible: ferry knew
// it could not write it. It is still a difference (the targets lack it).
type DeadLetters map[deadKey]string

type deadKey struct{ table, key string }

// ReadDeadLetters reads dead-letter files: JSON lines with at least "table"
// (schema.name), "key" (the source primary key as "col=value, ...") and
// "reason". A row listed more than once keeps its last reason.
func ReadDeadLetters(paths ...string) (DeadLetters, error) {
	d := DeadLetters{}
	for _, p := range paths {
		if err := d.read(p); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d DeadLetters) read(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dead-letter file: %w", err)
	}
	defer f.Close()
	// A line holds the whole row (possibly megabytes): decode the stream of
	// objects rather than scanning lines of a bounded length.
	dec := json.NewDecoder(f)
	for n := 1; ; n++ {
		var line struct{ Table, Key, Reason string }
		if err := dec.Decode(&line); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("dead-letter file %s, row %d: %w", path, n, err)
		}
		if line.Table == "" || line.Key == "" {
			return fmt.Errorf("dead-letter file %s, row %d: no table or key", path, n)
		}
		d[deadKey{line.Table, line.Key}] = line.Reason
	}
}

// lookup returns the reason a row was dead-lettered.
func (d DeadLetters) lookup(table, key string) (string, bool) {
	r, ok := d[deadKey{table, key}]
	return r, ok
}

// relabel marks a finding of a row that is in the dead-letter files.
// Only rows the targets lack or hold differently (missing, differs,
// unconvertible) are relabelled; extra items are not.
func (d DeadLetters) relabel(f *Finding) bool {
	switch f.Kind {
	case KindMissing, KindDiffers, KindUnconvertible:
	default:
		return false
	}
	reason, ok := d.lookup(f.Table, f.Key)
	if !ok {
		return false
	}
	f.Kind = KindDeadLettered
	f.Reason = "in the dead-letter file: " + reason
	return true
}
