package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestVerifyDeadLetteredKeyChange: a row backfilled fine, then updated under
// sync (--on-error=skip) so that its item key cannot be built (a column of
// the key template becomes NULL), is dead-lettered; its old item stays. verify
// --dead-letter reports both the row and that stale item as dead_lettered,
// with the file's reason — not the item as extra.
func TestVerifyDeadLetteredKeyChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	e := newBadInputEnv(ctx, t)
	if code, out, errOut := runFerry(t, e.args()...); code != 0 {
		t.Fatalf("backfill exit %d\n%s\n%s", code, out, errOut)
	}
	dl := filepath.Join(t.TempDir(), "dead.jsonl")
	p := e.startSyncChild(t, e.db, "--on-error=skip", "--dead-letter", dl)
	p.caughtUp(ctx, t, e)
	e.exec(ctx, t, "UPDATE actor SET first_name = NULL WHERE actor_id = 5")
	p.caughtUp(ctx, t, e)
	p.stop(t)

	code, rep := runVerifyJSON(t, e.verifyArgs("--dead-letter", dl)...)
	if code != 1 {
		t.Errorf("verify --dead-letter: exit %d, want 1", code)
	}
	want := []string{"dead_lettered public.actor (actor_id=5)", "dead_lettered public.actor (actor_id=5)"}
	if got := findingSet(rep); !slices.Equal(got, want) {
		t.Errorf("findings\n got %q\nwant %q", got, want)
	}
	to := rep.Totals
	if to.DeadLettered != 2 || to.Missing+to.Extra+to.Differing+to.Unconvertible+to.InFlight != 0 || to.Matching != badInputRows-1 {
		t.Errorf("totals %+v: want 2 dead-lettered (the row and its old item), %d matching, nothing else", to, badInputRows-1)
	}
	for _, tb := range rep.Tables {
		for _, f := range tb.Findings {
			if !strings.HasPrefix(f.Reason, "in the dead-letter file: partition key pk is empty (a column of its template is NULL): first_name") {
				t.Errorf("%s (%s): reason %q", f.Table, f.Key, f.Reason)
			}
		}
	}
}
