// Command ferry migrates a live PostgreSQL database to DynamoDB and Kinesis:
// plan (validate a mapping), backfill (consistent, resumable copy), and the
// commands later work adds (sync, verify).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitRows    = 1 // rows that could not be written, or a run that stopped
	exitUsage   = 2 // usage or configuration errors
	usageHeader = `ferry — move a live PostgreSQL database to DynamoDB and Kinesis, without downtime.

Usage:
  ferry <command> [flags]

Commands:
  plan       validate a mapping against the live schema and print the plan
             (or --generate a 1:1 mapping for any database)
  backfill   copy every mapped table inside one consistent snapshot, resumably
  sync       stream every change (CDC) into DynamoDB and Kinesis, exactly once in
             effect; runs the backfill first if none has completed
  status     the slot, the stored checkpoint, online snapshots and per-table counts
  snapshot   ask the running sync to re-read tables or rows (online snapshot)
  verify     compare source and targets (--stream, --repair); exit 1 on differences
  shadow     run the mapping's access patterns on both sides and compare the answers
  teardown   drop ferry's replication slot and run state (--targets: also the
             DynamoDB tables and Kinesis streams)
  workload   run DVD-store traffic against a Pagila database (for demos and tests)

Run 'ferry <command> --help' for the flags of a command. Every flag can also be
set with an environment variable FERRY_<FLAG> (e.g. FERRY_SOURCE, FERRY_MAPPING);
flags win. AWS settings come only from the standard AWS configuration chain
(AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL_DYNAMODB, ...).

Exit codes: 0 done, 1 rows that could not be written (listed) or a run that
stopped (run it again to resume), 2 usage or configuration errors.
`
)

// usageError marks errors that exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// defaultGCPercent is ferry's GOGC when the environment sets none. ferry's
// heap is small and short-lived (rows, items and records of the batches in
// flight): at Go's default of 100 the collector was a quarter of a null-sink
// backfill's CPU; at 200 it costs about half as much for ~25 MiB more peak
// RSS (BENCHMARKS.md). GOGC in the environment still decides.
const defaultGCPercent = 200

func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args, stdout, stderr)
}

// runContext runs one command until it is done or ctx ends (SIGINT/SIGTERM for
// the CLI; tests cancel it) and returns the exit code.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logOut = stderr
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()})))
	if path := os.Getenv("FERRY_CPUPROFILE"); path != "" {
		// For benchmarks (make bench): a CPU profile of the whole command.
		if stopProfile, err := startCPUProfile(path); err != nil {
			fmt.Fprintf(stderr, "ferry: FERRY_CPUPROFILE: %v\n", err)
		} else {
			defer stopProfile()
		}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usageHeader)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	var err error
	switch args[0] {
	case "plan":
		err = cmdPlan(ctx, args[1:], stdout)
	case "backfill":
		err = cmdBackfill(ctx, args[1:], stdout)
	case "sync":
		err = cmdSync(ctx, args[1:], stdout)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout)
	case "snapshot":
		err = cmdSnapshot(ctx, args[1:], stdout)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout)
	case "shadow":
		err = cmdShadow(ctx, args[1:], stdout)
	case "teardown":
		err = cmdTeardown(ctx, args[1:], stdout)
	case "workload":
		err = cmdWorkload(ctx, args[1:], stdout)
	default:
		fmt.Fprintf(stderr, "ferry: unknown command %q\n\n%s", args[0], usageHeader)
		return exitUsage
	}
	return exitCode(err, stderr)
}

// errRowsFailed is returned after a summary that lists failed rows.
var errRowsFailed = errors.New("some rows could not be written (listed above)")

// errHelp is returned when --help was asked for.
var errHelp = errors.New("help")

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitRows
}

func logLevel() slog.Level {
	if os.Getenv("FERRY_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// startCPUProfile writes a CPU profile to path until the returned func is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
