package workload

import (
	"errors"
	"fmt"
	"time"
)

// Config describes a workload run. The zero value of every field but
// SourceURL means its default.
type Config struct {
	// SourceURL is the PostgreSQL URL of the Pagila database to write to.
	SourceURL string
	// Rate is the target number of transactions per second, shared by all
	// workers (default 50). When the database cannot keep up, the workers
	// run as fast as they can and missed slots are not made up later.
	Rate float64
	// Duration ends the run after this long; 0 runs until ctx is cancelled.
	Duration time.Duration
	// Workers is the number of connections, each running one transaction at
	// a time (default 4).
	Workers int
	// Seed makes the sequence of operations deterministic (default 1).
	Seed int64
	// Mix weighs the operations; the zero value is DefaultMix.
	Mix Mix
}

// Mix holds the relative weights of the operations; a weight of 0 disables
// an operation. Weights are relative: {Rent: 1, Return: 1} is half and half.
type Mix struct {
	Rent            int // INSERT rental, sometimes with a payment
	Return          int // UPDATE rental.return_date + INSERT payment
	NewCustomer     int // INSERT address + customer
	FilmEdit        int // UPDATE film: rate, rating, length, title, special_features
	LongDescription int // UPDATE film.description to ~10 KB (TOAST), maybe a later edit
	DeletePayment   int // DELETE payment (partitioned, composite key)
	DeleteFilmActor int // DELETE film_actor + INSERT another (composite key)
	UpdateCustomer  int // UPDATE customer email/active
}

// DefaultMix is the mix used when Config.Mix is the zero value.
var DefaultMix = Mix{
	Rent:            25,
	Return:          25,
	NewCustomer:     6,
	FilmEdit:        12,
	LongDescription: 8,
	DeletePayment:   6,
	DeleteFilmActor: 6,
	UpdateCustomer:  12,
}

// Defaults.
const (
	DefaultRate    = 50.0
	DefaultWorkers = 4
	DefaultSeed    = 1
)

// Operation kinds, the keys of Stats.ByKind.
const (
	KindRent            = "rent"
	KindReturn          = "return"
	KindNewCustomer     = "new_customer"
	KindFilmEdit        = "film_edit"
	KindLongDescription = "long_description"
	// KindToastFollowUp is the later update of another column of a film whose
	// description a long_description transaction made ~10 KB.
	KindToastFollowUp   = "long_description_followup"
	KindDeletePayment   = "delete_payment"
	KindDeleteFilmActor = "delete_film_actor"
	KindUpdateCustomer  = "update_customer"
)

// Kinds lists every operation kind in a stable order (for reports).
var Kinds = []string{KindRent, KindReturn, KindNewCustomer, KindFilmEdit, KindLongDescription,
	KindToastFollowUp, KindDeletePayment, KindDeleteFilmActor, KindUpdateCustomer}

// weighted is one entry of a Mix with its kind.
type weighted struct {
	kind   string
	weight int
}

func (m Mix) entries() []weighted {
	return []weighted{
		{KindRent, m.Rent}, {KindReturn, m.Return}, {KindNewCustomer, m.NewCustomer},
		{KindFilmEdit, m.FilmEdit}, {KindLongDescription, m.LongDescription},
		{KindDeletePayment, m.DeletePayment}, {KindDeleteFilmActor, m.DeleteFilmActor},
		{KindUpdateCustomer, m.UpdateCustomer},
	}
}

// Validate reports every problem of c (joined), defaults aside.
func (c Config) Validate() error {
	var errs []error
	if c.SourceURL == "" {
		errs = append(errs, errors.New("workload: SourceURL is required"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("workload: Rate %v must not be negative", c.Rate))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("workload: Duration %v must not be negative", c.Duration))
	}
	if c.Workers < 0 {
		errs = append(errs, fmt.Errorf("workload: Workers %d must not be negative", c.Workers))
	}
	for _, e := range c.Mix.entries() {
		if e.weight < 0 {
			errs = append(errs, fmt.Errorf("workload: Mix weight of %s is %d, must not be negative", e.kind, e.weight))
		}
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields with their defaults.
func (c Config) withDefaults() Config {
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Mix == (Mix{}) {
		c.Mix = DefaultMix
	}
	return c
}
