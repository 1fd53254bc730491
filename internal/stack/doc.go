// Package stack starts and stops ferry's local stack: a real PostgreSQL 15
// (initdb'd into a directory of our own, wal_level=logical, the Pagila sample
// database loaded), dynalite (DynamoDB) and kinesalite (Kinesis), all bound to
// 127.0.0.1 on free ports. No Docker: the project starts the processes itself.
//
// The same code serves `make up` / `make down` (through cmd/stack) and the Go
// integration tests (through [ForTest]). Up is idempotent and serialised with a
// flock on the stack directory, so any number of test binaries share one stack;
// the processes outlive the process that started them and run until [Down].
//
// Layout of a stack directory (by default <repo root>/.local):
//
//	lock        flock serialising Up and Down across processes
//	state.json  ports and pids of the processes Up started
//	env         `export KEY='VALUE'` lines for a shell (see [Stack.WriteEnvFile])
//	pg/         the PostgreSQL data directory (owned by the postgres user when run as root)
//	sock/       PostgreSQL's unix socket directory
//	logs/       one log per process and per setup step
//
// Every database a caller uses is cloned from pagila_template, which nobody
// connects to once it is loaded (it is marked ALLOW_CONNECTIONS false):
// pagila is the demo database, [Stack.NewDatabase] makes one per test.
package stack
