package stack

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Database names in every stack.
const (
	// TemplateDB holds the pristine Pagila. Nobody connects to it once it is
	// loaded (ALLOW_CONNECTIONS false): it is only ever cloned.
	TemplateDB = "pagila_template"
	// DemoDB is the Pagila clone that `make up` users (FERRY_SOURCE) work on.
	DemoDB = "pagila"
)

// pgURL is the URL of database db on the stack's PostgreSQL.
func pgURL(port int, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     "127.0.0.1:" + strconv.Itoa(port),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// pgPing connects to url and runs a trivial query.
func pgPing(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "SELECT 1")
	return err
}

// pgExec runs statements, one at a time, on database url.
func pgExec(ctx context.Context, url string, stmts ...string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("stack: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("stack: %s: %w", s, err)
		}
	}
	return nil
}

// loadPagila creates pagila_template, loads the Pagila schema and data into it
// with psql, seals it (template, no connections) and clones pagila from it.
func loadPagila(ctx context.Context, bindir string, port int, src, logs string) error {
	admin := pgURL(port, "postgres")
	if err := pgExec(ctx, admin, "CREATE DATABASE "+TemplateDB); err != nil {
		return err
	}
	logPath := filepath.Join(logs, "pagila-load.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("stack: open log: %w", err)
	}
	defer lf.Close()
	fmt.Fprintf(lf, "=== %s loading Pagila into %s\n", time.Now().UTC().Format(time.RFC3339), TemplateDB)
	cmd := exec.CommandContext(ctx, filepath.Join(bindir, "psql"),
		"-X", "-q", "-o", os.DevNull, "-v", "ON_ERROR_STOP=1", "--single-transaction",
		"-d", pgURL(port, TemplateDB),
		"-f", filepath.Join(src, "pagila", "pagila-schema.sql"),
		"-f", filepath.Join(src, "pagila", "pagila-data.sql"))
	cmd.Env = psqlEnv()
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return withLog(fmt.Errorf("stack: load pagila: %w", err), logPath)
	}
	// Clones inherit the statistics and frozen tuples.
	if err := pgExec(ctx, pgURL(port, TemplateDB), "VACUUM (FREEZE, ANALYZE)"); err != nil {
		return err
	}
	return pgExec(ctx, admin,
		"ALTER DATABASE "+TemplateDB+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
		"CREATE DATABASE "+DemoDB+" TEMPLATE "+TemplateDB)
}

// psqlEnv is the environment without libpq's PG* variables, which could
// otherwise change what psql connects to or how.
func psqlEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}
