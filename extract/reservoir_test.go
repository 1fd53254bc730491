package extract

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func sample(n, of int, rng *rand.Rand) []int {
	r := reservoir[int]{n: n, rng: rng}
	for i := range of {
		if r.take() {
			r.put(i)
		}
	}
	return r.items
}

// TestReservoir: the reservoir keeps min(n, offered) distinct items of
// those offered.
func TestReservoir(t *testing.T) {
	for _, tc := range []struct{ n, of int }{{3, 0}, {3, 2}, {3, 3}, {3, 1000}, {0, 10}, {1, 1}} {
		got := sample(tc.n, tc.of, rand.New(rand.NewPCG(1, 2)))
		if len(got) != min(tc.n, tc.of) {
			t.Errorf("n=%d of %d: kept %d items, want %d", tc.n, tc.of, len(got), min(tc.n, tc.of))
		}
		s := slices.Clone(got)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(got) {
			t.Errorf("n=%d of %d: an item kept twice: %v", tc.n, tc.of, got)
		}
		for _, x := range got {
			if x < 0 || x >= tc.of {
				t.Errorf("n=%d of %d: kept %d, never offered", tc.n, tc.of, x)
			}
		}
		if tc.of <= tc.n && !slices.Equal(got, rangeOf(tc.of)) {
			t.Errorf("n=%d of %d: kept %v, want every item in order", tc.n, tc.of, got)
		}
	}
}

func rangeOf(n int) []int {
	out := []int{}
	for i := range n {
		out = append(out, i)
	}
	return out
}

// TestReservoirUniform: every item is kept with probability n/offered,
// wherever it came (30,000 seeded trials; each count within 5 % of its
// expectation, ~6 standard deviations).
func TestReservoirUniform(t *testing.T) {
	const n, of, trials = 3, 10, 30000
	rng := rand.New(rand.NewPCG(7, 11))
	counts := make([]int, of)
	for range trials {
		for _, x := range sample(n, of, rng) {
			counts[x]++
		}
	}
	want := float64(trials) * n / of
	for i, c := range counts {
		if d := float64(c)/want - 1; d > 0.05 || d < -0.05 {
			t.Errorf("item %d kept %d times, want %.0f ± 5 %%: %v", i, c, want, counts)
		}
	}
}
