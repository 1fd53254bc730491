package stack

import (
	"context"
	"strings"
	"sync"
	"time"
)

// health says which recorded components are ours, alive and answering.
type health struct{ pg, dynamo, kinesis bool }

func (h health) all() bool { return h.pg && h.dynamo && h.kinesis }

func (h health) String() string {
	var down []string
	for _, c := range []struct {
		ok   bool
		name string
	}{{h.pg, "postgres"}, {h.dynamo, "dynalite"}, {h.kinesis, "kinesalite"}} {
		if !c.ok {
			down = append(down, c.name)
		}
	}
	if len(down) == 0 {
		return "all up"
	}
	return strings.Join(down, ", ") + " down"
}

// checkHealth checks the components in parallel. A live process of ours gets
// a few seconds to answer (a busy machine is not a dead stack: restarting a
// component other test binaries use would break them).
func checkHealth(ctx context.Context, st state) health {
	const patience = 10 * time.Second
	var h health
	var wg sync.WaitGroup
	wg.Go(func() {
		pg := st.Postgres
		h.pg = pg.Loaded && pg.ours() &&
			poll(ctx, "postgres", patience, pg.PID, func(ctx context.Context) error {
				return pgPing(ctx, pgURL(pg.Port, DemoDB))
			}) == nil
	})
	for _, c := range []struct {
		e  emulator
		p  procState
		ok *bool
	}{{dynalite, st.Dynamo, &h.dynamo}, {kinesalite, st.Kinesis, &h.kinesis}} {
		wg.Go(func() {
			*c.ok = c.e.ours(c.p) && poll(ctx, c.e.name, patience, c.p.PID, func(ctx context.Context) error {
				return c.e.ping(ctx, endpoint(c.p.Port))
			}) == nil
		})
	}
	wg.Wait()
	return h
}
