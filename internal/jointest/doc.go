// Package jointest holds the integration test of a backfill shared by
// several processes (`ferry backfill` and `ferry backfill --join`): a
// coordinator and three joined workers copy scaled Pagila under a workload,
// one worker and the coordinator are killed with -9, and the migration
// still verifies exact, with every chunk recorded done once.
//
// It is a package of its own so that `go test ./...` runs it beside the long
// cmd/ferry suite rather than after it. It has no non-test code.
package jointest
