package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry/internal/stack"
)

// ferryBin is the ferry binary, built once with -race: every test runs ferry
// as a child process of its own (runFerry), so the tests can run in parallel
// (the CLI sets the global slog logger and parses flags into globals) and a
// data race in ferry still fails the test that ran it.
var ferryBin string

// syncBin is ferry built without -race, for the long-running `ferry sync`
// children (startSync, startSyncChild), as before runFerry became a child
// process: under the race detector sync needs several times the CPU, and on
// two cores it fell minutes behind the workloads the tests run (a run of
// TestOnlineSnapshotUnderWorkload with a -race sync lagged up to 180 s).
// Their helpers still check the output for race reports, so building syncBin
// with -race too is a one-line change.
var syncBin string

// raceExitCode is the exit code of a -race binary that found a data race
// (GORACE's exitcode, 66 unless set otherwise).
const raceExitCode = 66

// raceWarning starts each report of the race detector.
const raceWarning = "WARNING: DATA RACE"

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := stack.Shared(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "local stack did not come up: %v (run .ci/install-deps on a fresh machine)\n", err)
		return 1
	}
	// The CLI reads the standard AWS chain; point it at the local emulators.
	for _, kv := range st.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if k != "FERRY_SOURCE" {
			os.Setenv(k, v)
		}
	}
	for _, e := range os.Environ() {
		// FERRY_* variables would act as flags of the CLI under test; keep the
		// stack location and the tests' own knobs.
		if strings.HasPrefix(e, "FERRY_") && !strings.HasPrefix(e, "FERRY_STACK_DIR=") && !strings.HasPrefix(e, "FERRY_TEST_") {
			k, _, _ := strings.Cut(e, "=")
			os.Unsetenv(k)
		}
	}
	dir, err := os.MkdirTemp("", "ferry-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ferryBin = filepath.Join(dir, "ferry")
	if out, err := exec.Command("go", "build", "-race", "-o", ferryBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ferry -race: %v\n%s", err, out)
		return 1
	}
	syncBin = filepath.Join(dir, "ferry-sync")
	if out, err := exec.Command("go", "build", "-o", syncBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ferry: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// runFerry runs ferry (ferryBin) as a child process with the test's
// environment and returns its exit code, stdout and stderr. It fails the test
// with the output when the race detector reported a data race in the child.
func runFerry(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), ferryBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("ferry %s did not run: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	code := cmd.ProcessState.ExitCode()
	checkNoRace(t, args, code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// checkNoRace fails the test when a ferry child process reported a data race.
func checkNoRace(t *testing.T, args []string, code int, stdout, stderr string) {
	t.Helper()
	if code == raceExitCode || strings.Contains(stderr, raceWarning) {
		t.Fatalf("ferry %s: data race (exit %d)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
}

// runFerryInProcess runs the CLI in this process and returns exit code,
// stdout and stderr. Only for serial tests (no t.Parallel): run sets the
// global slog logger and flag state. The fault tests use it to check that
// ferry leaves no goroutine behind, which only an in-process run can show.
func runFerryInProcess(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}
