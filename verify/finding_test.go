package verify

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestKeepSmallest(t *testing.T) {
	cmp := func(a, b int) int { return a - b }
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 100} {
		var h []int
		dropped := false
		all := r.Perm(50)
		for _, x := range all {
			var d bool
			h, d = keepSmallest(h, x, n, cmp)
			dropped = dropped || d
		}
		slices.Sort(h)
		want := make([]int, min(n, 50))
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(h, want) || dropped != (n < 50) {
			t.Errorf("n=%d: kept %v dropped %v", n, h, dropped)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	keys := []string{"film_id=10", "film_id=9", "film_id=100", "actor_id=2, film_id=1", "actor_id=10, film_id=1", "actor_id=2, film_id=0", "name=b", "name=a"}
	slices.SortFunc(keys, compareKeys)
	want := "[actor_id=2, film_id=0 actor_id=2, film_id=1 actor_id=10, film_id=1 film_id=9 film_id=10 film_id=100 name=a name=b]"
	if got := fmt.Sprint(keys); got != want {
		t.Errorf("sorted %s\nwant   %s", got, want)
	}
}
