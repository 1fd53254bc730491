package extract

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sessionParams fix the text forms ferry decodes, whatever the server defaults are.
var sessionParams = map[string]string{
	"TimeZone":           "UTC",
	"DateStyle":          "ISO, YMD",
	"IntervalStyle":      "postgres",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	// money's text form follows lc_monetary ("1.234,56 €" under de_DE); C gives
	// "$1,234.56" on every server. Session settings reach the walsender too, whose
	// pgoutput writes values with the same output functions.
	"lc_monetary":      "C",
	"application_name": "ferry",
}

// ConnConfig parses a PostgreSQL URL or keyword/value string (PG* variables fill
// what it leaves out) and pins the session settings ferry's decoding relies on.
// Errors never include the password.
func ConnConfig(url string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse source URL: %s", Redact(err.Error(), url))
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	return cfg, nil
}

// Connect opens a regular connection with ferry's session settings.
func Connect(ctx context.Context, url string) (*pgx.Conn, error) {
	cfg, err := ConnConfig(url)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", Describe(cfg), err)
	}
	return conn, nil
}

// ConnectReplication opens a logical replication connection (replication=database).
func ConnectReplication(ctx context.Context, url string) (*pgconn.PgConn, error) {
	cfg, err := ConnConfig(url)
	if err != nil {
		return nil, err
	}
	pc := cfg.Config.Copy()
	pc.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open replication connection to %s: %w", Describe(cfg), err)
	}
	return conn, nil
}

// Describe names a connection target without secrets: user@host:port/database.
func Describe(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Redact removes the password of url (if any) from s.
func Redact(s, url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err == nil && cfg.Password != "" {
		s = strings.ReplaceAll(s, cfg.Password, "xxxxx")
	}
	return s
}
