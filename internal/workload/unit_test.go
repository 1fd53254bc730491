package workload

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none: valid
	}{
		{"defaults", Config{SourceURL: "postgres://x"}, nil},
		{"everything wrong", Config{Rate: -1, Duration: -time.Second, Workers: -2, Mix: Mix{Rent: -1}},
			[]string{"SourceURL is required", "Rate -1", "Duration -1s", "Workers -2", "weight of rent is -1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted an invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{SourceURL: "u"}.withDefaults()
	if c.Rate != DefaultRate || c.Workers != DefaultWorkers || c.Seed != DefaultSeed || c.Mix != DefaultMix {
		t.Errorf("defaults not applied: %+v", c)
	}
	c = Config{Rate: 7, Workers: 1, Seed: 9, Mix: Mix{Rent: 1}}.withDefaults()
	if c.Rate != 7 || c.Workers != 1 || c.Seed != 9 || c.Mix != (Mix{Rent: 1}) {
		t.Errorf("explicit values replaced: %+v", c)
	}
}

func TestChooseIsDeterministicAndWeighted(t *testing.T) {
	mix, total := activeMix(Mix{Rent: 3, Return: 1})
	seq := func(seed uint64) []string {
		w := &worker{rng: rand.New(rand.NewPCG(seed, 0)), mix: mix, total: total}
		out := make([]string, 4000)
		for i := range out {
			out[i] = w.choose()
		}
		return out
	}
	a, b := seq(1), seq(1)
	counts := map[string]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d differs for the same seed: %s vs %s", i, a[i], b[i])
		}
		counts[a[i]]++
	}
	if len(counts) != 2 || counts[KindRent] < 2700 || counts[KindRent] > 3300 {
		t.Errorf("counts %v: want only rent and return, about 3:1", counts)
	}
	if strings.Join(seq(2)[:50], ",") == strings.Join(a[:50], ",") {
		t.Error("seeds 1 and 2 give the same sequence")
	}
}

func TestChooseFollowsUp(t *testing.T) {
	mix, total := activeMix(Mix{FilmEdit: 1})
	w := &worker{rng: rand.New(rand.NewPCG(1, 0)), mix: mix, total: total, followUps: []int32{42}}
	seen := map[string]bool{}
	for range 100 {
		seen[w.choose()] = true
	}
	if !seen[KindToastFollowUp] || !seen[KindFilmEdit] {
		t.Errorf("kinds drawn with a pending follow-up: %v", seen)
	}
}

func TestLongDescription(t *testing.T) {
	a := longDescription(rand.New(rand.NewPCG(1, 1)), 10<<10)
	b := longDescription(rand.New(rand.NewPCG(1, 1)), 10<<10)
	if a != b {
		t.Error("same seed, different text")
	}
	if len(a) < 10<<10 || len(a) > 11<<10 {
		t.Errorf("length %d, want 10 KiB to 11 KiB", len(a))
	}
	if !strings.HasPrefix(a, "A ") || !strings.Contains(a, " who must ") {
		t.Errorf("not Pagila-like: %.80q", a)
	}
}

func TestPaymentPartition(t *testing.T) {
	at := time.Date(2026, 1, 31, 23, 30, 0, 0, time.FixedZone("x", -3600)) // 2026-02-01 00:30 UTC
	if got := PaymentPartition(at); got != "payment_p2026_02" {
		t.Errorf("PaymentPartition(%v) = %s, want payment_p2026_02", at, got)
	}
	if got := monthStart(at); !got.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("monthStart(%v) = %v", at, got)
	}
}

func TestPacerSpacesSlots(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPacer(100) // 10ms apart
	p.now = func() time.Time { return now }
	for i := range 5 {
		if got, want := p.reserve(), now.Add(time.Duration(i)*10*time.Millisecond); !got.Equal(want) {
			t.Fatalf("slot %d at %v, want %v", i, got, want)
		}
	}
	// A long stall: missed slots are dropped, not made up in a burst.
	now = now.Add(10 * time.Second)
	if got := p.reserve(); !got.Equal(now) {
		t.Errorf("slot after a stall at %v, want now (%v)", got, now)
	}
	if got := p.reserve(); !got.Equal(now.Add(10 * time.Millisecond)) {
		t.Errorf("next slot at %v, want 10ms later", got)
	}
}

func TestPacerWaitEndsWithContext(t *testing.T) {
	p := newPacer(0.001) // one slot every 1000 s
	p.reserve()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := p.wait(ctx); err == nil {
		t.Error("wait returned nil with a cancelled context")
	}
}
