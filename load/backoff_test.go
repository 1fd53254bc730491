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
