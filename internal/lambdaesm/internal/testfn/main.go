// Command testfn is the Lambda function the lambdaesm tests run under the
// Runtime Interface Emulator. It handles events.KinesisEvent and returns
// events.KinesisEventResponse, as ferry's applier does, and behaves as each
// record's JSON data asks (see Directive). Every invocation appends one JSON
// line to $TESTFN_LOG (see Invocation), under an flock, so that several
// instances can share the file.
//
// Build it as a provided.al2023 bootstrap:
//
//	CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./internal/lambdaesm/internal/testfn
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

// Directive is the JSON data of a record: what the function does with it.
type Directive struct {
	ID string `json:"id"`
	// Fail reports the record in BatchItemFailures.
	Fail bool `json:"fail,omitempty"`
	// EmptyFailure reports a failure with an empty itemIdentifier.
	EmptyFailure bool `json:"emptyFailure,omitempty"`
	// Error makes the whole invocation return an error (errorType
	// "BatchError").
	Error bool `json:"error,omitempty"`
	// Panic panics (the runtime reports it and the process exits).
	Panic bool `json:"panic,omitempty"`
	// Times limits Fail, Error and Panic to the record's first Times
	// deliveries (0: always).
	Times int `json:"times,omitempty"`
	// SleepMS delays the invocation (ignoring its deadline).
	SleepMS int `json:"sleepMs,omitempty"`
}

// Invocation is one line of the log.
type Invocation struct {
	PID    int             `json:"pid"`
	Start  time.Time       `json:"start"`
	End    time.Time       `json:"end"`
	Event  json.RawMessage `json:"event"`
	Result string          `json:"result"` // ok, partial, error, panic
	Failed []string        `json:"failed,omitempty"`
	// Env holds the variables of $TESTFN_ENV (comma-separated names) that
	// are set.
	Env map[string]string `json:"env,omitempty"`
}

// BatchError is the error type the function returns for an "error" record.
type BatchError struct{ ID string }

func (e *BatchError) Error() string { return "record " + e.ID + " asked for an error" }

func main() { lambda.Start(handle) }

func handle(_ context.Context, raw json.RawMessage) (events.KinesisEventResponse, error) {
	inv := Invocation{PID: os.Getpid(), Start: time.Now(), Event: raw, Result: "ok", Env: map[string]string{}}
	for _, k := range strings.Split(os.Getenv("TESTFN_ENV"), ",") {
		if v, ok := os.LookupEnv(k); ok && k != "" {
			inv.Env[k] = v
		}
	}
	var ev events.KinesisEvent
	if err := json.Unmarshal(raw, &ev); err != nil {
		return events.KinesisEventResponse{}, fmt.Errorf("decode event: %w", err)
	}
	var resp events.KinesisEventResponse
	var fnErr error
	var panicked string
	sleep := 0
	for _, r := range ev.Records {
		var d Directive
		_ = json.Unmarshal(r.Kinesis.Data, &d)
		sleep = max(sleep, d.SleepMS)
		if !d.Fail && !d.EmptyFailure && !d.Error && !d.Panic {
			continue
		}
		n, err := countDelivery(d.ID)
		if err != nil {
			return resp, err
		}
		if d.Times > 0 && n > d.Times {
			continue
		}
		switch {
		case d.Panic:
			panicked = d.ID
		case d.Error:
			fnErr = &BatchError{ID: d.ID}
		case d.EmptyFailure:
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{})
		case d.Fail:
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.KinesisBatchItemFailure{ItemIdentifier: r.Kinesis.SequenceNumber})
		}
	}
	// A plain sleep, deaf to ctx: a function stuck past its timeout is
	// stopped by the platform, not by its own deadline.
	time.Sleep(time.Duration(sleep) * time.Millisecond)
	switch {
	case panicked != "":
		inv.Result = "panic"
	case fnErr != nil:
		inv.Result = "error"
	case len(resp.BatchItemFailures) > 0:
		inv.Result = "partial"
		for _, f := range resp.BatchItemFailures {
			inv.Failed = append(inv.Failed, f.ItemIdentifier)
		}
	}
	inv.End = time.Now()
	if err := appendLog(inv); err != nil {
		return resp, err
	}
	if panicked != "" {
		panic("record " + panicked + " asked for a panic")
	}
	return resp, fnErr
}

// countDelivery counts a delivery of the record id and returns how many
// there have been, this one included ($TESTFN_LOG.d/<id>).
func countDelivery(id string) (int, error) {
	dir := os.Getenv("TESTFN_LOG") + ".d"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	path := filepath.Join(dir, id)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	n, _ := strconv.Atoi(string(data))
	n++
	return n, os.WriteFile(path, []byte(strconv.Itoa(n)), 0o644)
}

func appendLog(inv Invocation) error {
	line, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(os.Getenv("TESTFN_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	_, err = f.Write(append(line, '\n'))
	return err
}
