package load

import (
	"errors"
	"testing"
	"time"
)

// Invalid options are refused before any request (the client is not used).
func TestEnsureStreamsWithInvalidOptions(t *testing.T) {
	cases := []struct {
		name string
		opts StreamOptions
	}{
		{"no shards", StreamOptions{Shards: 0, Retention: 168 * time.Hour}},
		{"retention under a day", StreamOptions{Shards: 1, Retention: 12 * time.Hour}},
		{"retention over a year", StreamOptions{Shards: 1, Retention: MaxRetention + time.Hour}},
		{"retention not in whole hours", StreamOptions{Shards: 1, Retention: 30*time.Hour + time.Minute}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := EnsureStreamsWith(t.Context(), nil, []string{"s"}, c.opts)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("EnsureStreamsWith(%+v) = %v, want ErrInvalidRequest", c.opts, err)
			}
		})
	}
}
