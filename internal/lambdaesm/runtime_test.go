package lambdaesm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// kinesisEvent is a one-record KinesisEvent carrying d.
func kinesisEvent(t *testing.T, d directive) []byte {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Appendf(nil, `{"Records":[{"kinesis":{"data":%q,"sequenceNumber":"7","partitionKey":"k"}}]}`,
		[]byte(mustBase64(data)))
}

func mustBase64(b []byte) string {
	out, _ := json.Marshal(b) // []byte marshals as base64
	return strings.Trim(string(out), `"`)
}

// TestRuntimeInvokeClassifiesResponses runs the test function under the RIE
// and checks how each kind of outcome comes back: a response, an error the
// handler returned, a panic (the runtime reports it and exits: the next
// invocation cold-starts a new process), each as its errorType.
func TestRuntimeInvokeClassifiesResponses(t *testing.T) {
	t.Parallel()
	f := startFn(t, 1, 30*time.Second)
	tests := []struct {
		name       string
		d          directive
		want       string // response, when no error
		wantType   string // FunctionError.Type
		wantStatus int
	}{
		{name: "success", d: directive{ID: "a"}, want: `{"batchItemFailures":null}`},
		{name: "partial batch response", d: directive{ID: "b", Fail: true}, want: `{"batchItemFailures":[{"itemIdentifier":"7"}]}`},
		{name: "returned error", d: directive{ID: "c", Error: true}, wantType: "BatchError", wantStatus: 200},
		{name: "panic", d: directive{ID: "d", Panic: true}, wantType: "string", wantStatus: 502},
		{name: "after a crash, a cold start", d: directive{ID: "e"}, want: `{"batchItemFailures":null}`},
	}
	for _, tt := range tests { // in order: one environment, one after the other
		out, err := f.rt.Invoke(t.Context(), "req-"+tt.d.ID, kinesisEvent(t, tt.d))
		if tt.wantType == "" {
			if err != nil || string(out) != tt.want {
				t.Errorf("%s: got %s, %v; want %s", tt.name, out, err, tt.want)
			}
			continue
		}
		var fe *FunctionError
		if !errors.As(err, &fe) {
			t.Errorf("%s: got %s, %v; want a function error", tt.name, out, err)
			continue
		}
		if fe.Type != tt.wantType || fe.Status != tt.wantStatus || fe.RequestID != "req-"+tt.d.ID || fe.Message == "" {
			t.Errorf("%s: got %+v, want type %s, status %d", tt.name, fe, tt.wantType, tt.wantStatus)
		}
		if tt.d.Panic && len(fe.StackTrace) == 0 {
			t.Errorf("%s: no stack trace", tt.name)
		}
	}
	invs := f.invocations(t)
	if len(invs) != len(tests) {
		t.Fatalf("%d invocations logged, want %d", len(invs), len(tests))
	}
	if invs[3].PID == invs[4].PID {
		t.Errorf("the invocation after the panic ran in the same process %d; want a new one", invs[3].PID)
	}
	if invs[0].PID != invs[2].PID {
		t.Errorf("a returned error restarted the runtime (pid %d, then %d)", invs[0].PID, invs[2].PID)
	}
}

// TestRuntimeTimeout: an invocation past the function timeout is a
// Sandbox.Timedout function error, and the next invocation gets a fresh
// runtime.
func TestRuntimeTimeout(t *testing.T) {
	t.Parallel()
	f := startFn(t, 1, time.Second)
	_, err := f.rt.Invoke(t.Context(), "", kinesisEvent(t, directive{ID: "slow", SleepMS: 5000}))
	var fe *FunctionError
	if !errors.As(err, &fe) || fe.Type != TypeTimeout {
		t.Fatalf("got %v, want a %s function error", err, TypeTimeout)
	}
	out, err := f.rt.Invoke(t.Context(), "", kinesisEvent(t, directive{ID: "next"}))
	if err != nil || string(out) != `{"batchItemFailures":null}` {
		t.Fatalf("after the timeout: %s, %v", out, err)
	}
}

// TestRuntimeEnvironment: the function sees Lambda's variables and the
// configured ones, and nothing else of the test process's environment.
func TestRuntimeEnvironment(t *testing.T) {
	t.Parallel()
	names := "AWS_LAMBDA_RUNTIME_API,AWS_LAMBDA_FUNCTION_NAME,AWS_REGION,LAMBDA_TASK_ROOT,TZ,TESTFN_ECHO,HOME,GOFLAGS"
	f := startFn(t, 1, 30*time.Second, "TESTFN_ENV="+names, "TESTFN_ECHO=hello")
	if _, err := f.rt.Invoke(t.Context(), "", kinesisEvent(t, directive{ID: "env"})); err != nil {
		t.Fatal(err)
	}
	env := f.invocations(t)[0].Env
	if env["TESTFN_ECHO"] != "hello" || env["AWS_LAMBDA_FUNCTION_NAME"] != "function" || env["AWS_REGION"] != "us-east-1" ||
		env["TZ"] != ":UTC" || env["LAMBDA_TASK_ROOT"] == "" || !strings.HasPrefix(env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("function environment %v", env)
	}
	for _, leak := range []string{"HOME", "GOFLAGS"} {
		if v, ok := env[leak]; ok {
			t.Errorf("%s=%s leaked into the function", leak, v)
		}
	}
}

// TestRuntimeConcurrency: two environments run two invocations at once; an
// oversized payload is refused without an invocation.
func TestRuntimeConcurrency(t *testing.T) {
	t.Parallel()
	f := startFn(t, 2, 30*time.Second)
	var wg sync.WaitGroup
	for _, id := range []string{"x", "y"} {
		wg.Go(func() {
			if _, err := f.rt.Invoke(t.Context(), "", kinesisEvent(t, directive{ID: id, SleepMS: 300})); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	invs := f.invocations(t)
	if len(invs) != 2 || !overlap(invs[0], invs[1]) || invs[0].PID == invs[1].PID {
		t.Errorf("invocations %+v: want two overlapping ones in two processes", invs)
	}
	big := make([]byte, MaxInvokePayload+1)
	if _, err := f.rt.Invoke(context.Background(), "", big); !errors.Is(err, ErrPayloadTooLarge) {
		t.Errorf("oversized payload: %v, want ErrPayloadTooLarge", err)
	}
}

func overlap(a, b invocation) bool { return a.Start.Before(b.End) && b.Start.Before(a.End) }

// TestRuntimeAbandonedInvocation: an invocation whose caller gives up is not
// a function error, and the environment serves the next one (restarted: the
// emulator would refuse a second invocation while the first runs).
func TestRuntimeAbandonedInvocation(t *testing.T) {
	t.Parallel()
	f := startFn(t, 1, 30*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := f.rt.Invoke(ctx, "", kinesisEvent(t, directive{ID: "stuck", SleepMS: 20000}))
	var fe *FunctionError
	if err == nil || errors.As(err, &fe) {
		t.Fatalf("abandoned invocation: %v, want a non-function error", err)
	}
	out, err := f.rt.Invoke(t.Context(), "", kinesisEvent(t, directive{ID: "next"}))
	if err != nil || string(out) != `{"batchItemFailures":null}` {
		t.Fatalf("next invocation: %s, %v", out, err)
	}
}
