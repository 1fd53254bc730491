package stack

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// health says which recorded components are ours, alive and listening.
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

// checkHealth decides reuse: a component is healthy when its recorded pid is
// alive, is still our program (command line), and its port accepts TCP
// connections. Deliberately no request-level ping: a server busy with another
// test binary's load (single-threaded node under a benchmark, PostgreSQL at
// max_connections) is not dead, and restarting it would wipe what the other
// binaries are using. Request-level readiness is checked after a start.
func checkHealth(ctx context.Context, st state) health {
	var h health
	var wg sync.WaitGroup
	for _, c := range []struct {
		ours bool
		port int
		ok   *bool
	}{
		{st.Postgres.Loaded && st.Postgres.ours(), st.Postgres.Port, &h.pg},
		{dynalite.ours(st.Dynamo), st.Dynamo.Port, &h.dynamo},
		{kinesalite.ours(st.Kinesis), st.Kinesis.Port, &h.kinesis},
	} {
		if !c.ours {
			continue
		}
		wg.Go(func() { *c.ok = listening(ctx, c.port) })
	}
	wg.Wait()
	return h
}

// listening reports whether 127.0.0.1:port accepts connections, trying for a
// few seconds (the kernel accepts even while the server is busy, so a miss is
// rare and means the port is really closed).
func listening(ctx context.Context, port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	err := poll(ctx, addr, 5*time.Second, 0, func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
	return err == nil
}
