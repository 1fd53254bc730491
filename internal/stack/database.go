package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// NewDatabase creates a fresh database cloned from the pristine Pagila
// template (CREATE DATABASE name TEMPLATE pagila_template) and returns its
// URL. With name == "" the name is random: ferry_test_<16 hex digits>. Names
// are lower-case identifiers ([a-z_][a-z0-9_]*, at most 63 bytes). A clone
// takes a fraction of a second, cheap enough for one per test; it stays until
// DropDatabase or the next cold Up. Safe for concurrent use.
func (s *Stack) NewDatabase(ctx context.Context, name string) (string, error) {
	_, url, err := s.newDatabase(ctx, name)
	return url, err
}

func (s *Stack) newDatabase(ctx context.Context, name string) (string, string, error) {
	if name == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		name = "ferry_test_" + hex.EncodeToString(b)
	}
	if !dbName.MatchString(name) {
		return "", "", fmt.Errorf("stack: database name %q: want [a-z_][a-z0-9_]*, at most 63 bytes", name)
	}
	if err := pgExec(ctx, s.adminURL(), "CREATE DATABASE "+name+" TEMPLATE "+TemplateDB); err != nil {
		return "", "", err
	}
	return name, s.DatabaseURL(name), nil
}

// DatabaseURL is the URL of database name on the stack's PostgreSQL.
func (s *Stack) DatabaseURL(name string) string { return pgURL(s.PGPort, name) }

func (s *Stack) adminURL() string { return pgURL(s.PGPort, "postgres") }

// DropDatabase drops a database made by NewDatabase, whatever still uses it:
// it ends its sessions (replication connections included), drops its logical
// replication slots (which would otherwise pin WAL for the whole cluster),
// then drops it. Dropping a missing database is not an error; the template,
// the demo database and PostgreSQL's own are refused.
func (s *Stack) DropDatabase(ctx context.Context, name string) error {
	switch name {
	case TemplateDB, DemoDB, "postgres", "template0", "template1":
		return fmt.Errorf("stack: refusing to drop %s", name)
	}
	return s.dropDatabase(ctx, name)
}

// ResetDemo gives the demo database (pagila) back its pristine Pagila content:
// it ends its sessions, drops its replication slots and clones it again from
// the template, so that `make demo` starts from the same data every time.
func (s *Stack) ResetDemo(ctx context.Context) error {
	if err := s.dropDatabase(ctx, DemoDB); err != nil {
		return err
	}
	return pgExec(ctx, s.adminURL(), fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", DemoDB, TemplateDB))
}

func (s *Stack) dropDatabase(ctx context.Context, name string) error {
	if !dbName.MatchString(name) {
		return fmt.Errorf("stack: database name %q: want [a-z_][a-z0-9_]*, at most 63 bytes", name)
	}
	conn, err := pgx.Connect(ctx, s.adminURL())
	if err != nil {
		return fmt.Errorf("stack: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))

	for attempt := 0; ; attempt++ {
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = $1 AND pid <> pg_backend_pid()`, name); err != nil {
			return fmt.Errorf("stack: end sessions of %s: %w", name, err)
		}
		left, err := dropIdleSlots(ctx, conn, name)
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		if attempt == 100 {
			return fmt.Errorf("stack: %d replication slots of %s stay active", left, name)
		}
		select { // a terminated walsender takes a moment to release its slot
		case <-ctx.Done():
			return fmt.Errorf("stack: drop %s: %w", name, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("stack: drop database %s: %w", name, err)
	}
	return nil
}

// dropIdleSlots drops the inactive replication slots of database name and
// returns how many active ones are left.
func dropIdleSlots(ctx context.Context, conn *pgx.Conn, name string) (int, error) {
	rows, err := conn.Query(ctx, `SELECT slot_name, active FROM pg_replication_slots WHERE database = $1`, name)
	if err != nil {
		return 0, fmt.Errorf("stack: list replication slots of %s: %w", name, err)
	}
	type slot struct {
		name   string
		active bool
	}
	slots, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (slot, error) {
		var s slot
		return s, r.Scan(&s.name, &s.active)
	})
	if err != nil {
		return 0, fmt.Errorf("stack: list replication slots of %s: %w", name, err)
	}
	left := 0
	for _, sl := range slots {
		if sl.active {
			left++
			continue
		}
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", sl.name); err != nil {
			return 0, fmt.Errorf("stack: drop replication slot %s: %w", sl.name, err)
		}
	}
	return left, nil
}
