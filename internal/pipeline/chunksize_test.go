package pipeline

import (
	"slices"
	"testing"
	"time"
)

func TestChunkSizer(t *testing.T) {
	type obs struct {
		rows int
		took time.Duration
	}
	for _, tc := range []struct {
		name   string
		max    int
		target time.Duration
		seen   []obs // batches applied, one before each next()
		want   []int // next() after each of them (and once before any)
	}{
		{name: "nothing measured: the configured size", max: 250, target: 250 * time.Millisecond, want: []int{250}},
		{name: "fast targets: the configured size", max: 250, target: 250 * time.Millisecond,
			seen: []obs{{250, 50 * time.Millisecond}, {250, 40 * time.Millisecond}}, want: []int{250, 250, 250}},
		{name: "slow targets: chunks shrink to what applies in the target", max: 250, target: 250 * time.Millisecond,
			seen: []obs{{250, time.Second}, {62, 250 * time.Millisecond}}, want: []int{250, 62, 62}},
		{name: "recovering targets: at most double per chunk", max: 250, target: 250 * time.Millisecond,
			seen: []obs{{250, 5 * time.Second}, {12, 10 * time.Millisecond}, {24, 10 * time.Millisecond}, {48, 10 * time.Millisecond}, {96, 10 * time.Millisecond}},
			want: []int{250, 12, 24, 48, 96, 192}},
		{name: "very slow targets: never below the minimum", max: 250, target: 250 * time.Millisecond,
			seen: []obs{{250, time.Minute}, {10, time.Minute}}, want: []int{250, 10, 10}},
		{name: "a configured size below the minimum is kept", max: 4, target: 250 * time.Millisecond,
			seen: []obs{{4, time.Minute}}, want: []int{4, 4}},
		{name: "no target: fixed size", max: 250, target: 0,
			seen: []obs{{250, time.Minute}}, want: []int{250, 250}},
		{name: "empty observations change nothing", max: 250, target: 250 * time.Millisecond,
			seen: []obs{{0, time.Second}, {250, 0}}, want: []int{250, 250, 250}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chunkSizer{max: tc.max, target: tc.target}
			got := []int{c.next()}
			for _, o := range tc.seen {
				c.observe(o.rows, o.took)
				got = append(got, c.next())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
