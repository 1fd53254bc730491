package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ferry-migrate/ferry/extract"
	"github.com/ferry-migrate/ferry/internal/pipeline"
	"github.com/ferry-migrate/ferry/load"
	"github.com/ferry-migrate/ferry/verify"
)

// emitReport writes a report to standard output, or to the file out with a
// line naming it and the verdict (verify and shadow).
func emitReport(stdout io.Writer, command, out, verdict string, report []byte) error {
	if out == "" {
		_, err := stdout.Write(report)
		return err
	}
	if err := os.WriteFile(out, report, 0o644); err != nil {
		return usagef("write %s: %v", out, err)
	}
	fmt.Fprintf(stdout, "%s: %s; report written to %s\n", command, verdict, out)
	return nil
}

// syncCheckpoint reads the checkpoint of the sync on slot (none when the
// control table does not exist: sync never ran).
func syncCheckpoint(ctl *load.ControlStore, slot string) verify.CheckpointFunc {
	return func(ctx context.Context) (extract.LSN, bool, error) {
		cp, ok, err := pipeline.LoadCheckpoint(ctx, ctl, slot)
		var rnf *types.ResourceNotFoundException
		if errors.As(err, &rnf) {
			return 0, false, nil
		}
		return cp.LSN, ok, err
	}
}
