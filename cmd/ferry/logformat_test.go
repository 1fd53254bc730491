package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ferry-migrate/ferry/internal/stack"
	"github.com/ferry-migrate/ferry/internal/testkit"
)

// --log-format json makes every log line one JSON object with slog's keys
// (also from FERRY_LOG_FORMAT); another format is a usage error.
func TestLogFormat(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	if code, _, errOut := tmFerryCode(ctx, t, "status", "--source", "postgres://x", "--mapping", "m.yaml", "--log-format", "yaml"); code != 2 ||
		!strings.Contains(errOut, `--log-format must be text or json, not "yaml"`) {
		t.Errorf("--log-format yaml: exit %d, want 2 naming the flag\n%s", code, errOut)
	}
	db := stack.ForTest(t).TestDatabase(t)
	mapping := testkit.PagilaMapping(t, testkit.Name("pagila_"), testkit.Name("pagila-"))
	for _, how := range []string{"flag", "env"} {
		args := []string{"backfill", "--source", db, "--mapping", mapping, "--sink", "null", "--progress", "log"}
		cmd := exec.CommandContext(ctx, ferryBin, args...)
		cmd.Env = os.Environ()
		if how == "flag" {
			cmd.Args = append(cmd.Args, "--log-format", "json")
		} else {
			cmd.Env = append(cmd.Env, "FERRY_LOG_FORMAT=json")
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: backfill --sink null: %v\n%s", how, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		copied := 0
		for _, l := range lines {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Errorf("%s: not a JSON line: %q (%v)", how, l, err)
				continue
			}
			for _, k := range []string{"time", "level", "msg"} {
				if _, ok := rec[k]; !ok {
					t.Errorf("%s: line without %q: %q", how, k, l)
				}
			}
			if rec["msg"] == "copied" && rec["table"] != nil && rec["rows"] != nil {
				copied++
			}
		}
		if copied != 15 {
			t.Errorf("%s: %d JSON \"copied\" lines with table and rows, want one per Pagila table (15)\n%s", how, copied, stderr.String())
		}
	}
}
