// Package workload drives realistic DVD-store traffic against a Pagila
// database, so that ferry's change data capture has something live to follow.
//
// Run opens Config.Workers connections and, at Config.Rate transactions per
// second shared between them, commits one transaction per operation: rentals
// (with or without a payment), returns (with a payment), new customers (an
// address and a customer), film edits (numeric, enum, text[] and title
// columns), ~10 KB film descriptions that PostgreSQL stores out of line
// (TOAST), later updates of another column of the same film (so logical
// decoding reports the description as unchanged TOAST), payment deletes,
// film_actor deletes paired with inserts (a composite key), and customer
// updates. Every operation keeps the schema's foreign keys valid and is
// built so that it cannot hit a unique index by itself.
//
// Payments are written with payment_date = now(), but Pagila's payment
// partitions only cover 2022-01 to 2022-07: Run first creates the partitions
// payment_pYYYY_MM for the current and the next month (UTC), and keeps doing
// so when a long run crosses a month. A pipeline started before the workload
// therefore also sees rows of a partition created after it started.
//
// The choice of operations is deterministic for a given Config.Seed (each
// worker draws from its own generator); the rows they touch depend on the
// database's state. UpdateAllRentals, ChangeCustomerID and
// AbortedTransaction are one-shot helpers for tests of the CDC path.
package workload
