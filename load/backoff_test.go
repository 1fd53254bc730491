package load

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{0, 10 * time.Millisecond},
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{4, 80 * time.Millisecond},
		{5, 100 * time.Millisecond},
		{1000, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.attempt); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	if got := (Backoff{}).Delay(1); got != DefaultBackoffBase {
		t.Errorf("zero Backoff Delay(1) = %v, want %v", got, DefaultBackoffBase)
	}
}

func TestBackoffSleep(t *testing.T) {
	ctx := context.Background()
	b := Backoff{Base: time.Microsecond, Max: time.Microsecond, MaxAttempts: 2}
	for attempt := 1; attempt <= 2; attempt++ {
		if err := b.Sleep(ctx, attempt); err != nil {
			t.Fatalf("Sleep(%d): %v", attempt, err)
		}
	}
	if err := b.Sleep(ctx, 3); !errors.Is(err, ErrRetriesExhausted) {
		t.Fatalf("Sleep(3) = %v, want ErrRetriesExhausted", err)
	}
	if err := (Backoff{MaxAttempts: -1}).Sleep(ctx, 1000); err != nil {
		t.Fatalf("unlimited Sleep: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	long := Backoff{Base: time.Hour, Max: time.Hour}
	// A full-jitter wait can be 0; retry until one is really waited on.
	for err := error(nil); err == nil; {
		err = long.Sleep(cctx, 1)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep after cancel = %v, want context.Canceled", err)
		}
	}
}

func TestBackoffValidate(t *testing.T) {
	if err := (Backoff{}).Validate(); err != nil {
		t.Errorf("zero: %v", err)
	}
	err := Backoff{Base: -1, Max: -1}.Validate()
	if err == nil {
		t.Fatal("negative: no error")
	}
	if err := (Backoff{Base: time.Second, Max: time.Millisecond}).Validate(); err == nil {
		t.Error("Base > Max: no error")
	}
}

func TestRetry(t *testing.T) {
	transient := errors.New("throttled")
	permanent := errors.New("validation")
	fast := Backoff{Base: time.Microsecond, Max: time.Microsecond, MaxAttempts: 3}
	isTransient := func(err error) bool { return errors.Is(err, transient) }
	tests := []struct {
		name      string
		results   []error // fn's result per call; nil after the list
		wantCalls int
		wantErr   error
		exhausted bool
	}{
		{"first try", nil, 1, nil, false},
		{"transient then success", []error{transient, transient}, 3, nil, false},
		{"permanent: no retry", []error{permanent}, 1, permanent, false},
		{"transient past the budget", []error{transient, transient, transient, transient, transient}, 4, transient, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, retries := 0, 0
			err := Retry(t.Context(), fast, isTransient, func(attempt int, err error) {
				retries++
				if attempt != retries {
					t.Errorf("onRetry attempt %d, want %d", attempt, retries)
				}
			}, func() error {
				calls++
				if calls <= len(tc.results) {
					return tc.results[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls || retries != calls-1 && !tc.exhausted {
				t.Errorf("calls %d, retries %d; want %d calls", calls, retries, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Errorf("err %v, want %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrRetriesExhausted) != tc.exhausted {
				t.Errorf("err %v: exhausted %v, want %v", err, errors.Is(err, ErrRetriesExhausted), tc.exhausted)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls := 0
	if err := Retry(ctx, fast, isTransient, nil, func() error { calls++; return transient }); !errors.Is(err, transient) || calls != 1 {
		t.Errorf("ended context: err %v after %d calls, want the failure after 1", err, calls)
	}
}
