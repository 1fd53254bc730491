package stack

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

var shared struct {
	mu sync.Mutex
	s  *Stack
}

// ForTest returns the shared stack (starting it if need be, once per test
// binary) or fails the test with a clear message. It never skips: the
// integration tests need the real services.
func ForTest(t testing.TB) *Stack {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.s != nil {
		return shared.s
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	s, err := Shared(ctx)
	if err != nil {
		dir, _ := Dir()
		t.Fatalf("local stack (PostgreSQL 15, dynalite, kinesalite) did not come up: %v\n"+
			"On a fresh machine run .ci/install-deps; logs are in %s/logs; `make up` shows the same start-up.",
			err, strings.TrimSpace(dir))
	}
	shared.s = s
	return s
}

// TestDatabase creates a fresh Pagila clone for one test and drops it (with
// its replication slots) when the test ends. It returns the database's URL.
func (s *Stack) TestDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	name, url, err := s.newDatabase(ctx, "")
	if err != nil {
		t.Fatalf("new test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.DropDatabase(ctx, name); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	return url
}
