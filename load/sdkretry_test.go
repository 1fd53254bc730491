package load

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestNewSDKRetryer(t *testing.T) {
	tests := []struct {
		name        string
		attempts    int
		maxBackoff  time.Duration
		wantCeiling time.Duration
	}{
		{"CLI: SDK cap", 10, 0, 20 * time.Second},
		{"Lambda: 1 s cap", 5, time.Second, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewSDKRetryer(tc.attempts, tc.maxBackoff)
			if got := r.MaxAttempts(); got != tc.attempts {
				t.Errorf("MaxAttempts %d, want %d", got, tc.attempts)
			}
			for range 20 {
				d, err := r.RetryDelay(30, errors.New("throttled"))
				if err != nil || d > tc.wantCeiling {
					t.Fatalf("RetryDelay(30) = %v, %v; want at most %v", d, err, tc.wantCeiling)
				}
			}
			// No client-side quota: a long run of failures never runs out of
			// retry tokens.
			for i := range 1000 {
				if _, err := r.GetRetryToken(context.Background(), errors.New("throttled")); err != nil {
					t.Fatalf("retry token %d: %v", i, err)
				}
			}
		})
	}
}
