// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's
// package (installed by the test when it is missing and the test runs as
// root, as CI does), initialised in a temporary directory and listening on
// 127.0.0.1 only, on a free port. Each test gets a database of its own, so
// tests run in parallel on one server.
//
// A package's tests share one server, which its TestMain stops:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		dsn := pgtest.Shared(t).CreateDatabase(t, "")
//		...
//	}
//
// Start gives a test a server of its own instead, stopped when it ends.
//
// PostgreSQL refuses to run as root. A test run as root runs initdb and
// postgres as the unprivileged user fleetscan-pgtest, created with useradd
// when it is missing; a test run as anyone else runs them as itself. The
// server's output goes to a log file, shown when it fails to start. When
// the test binary dies, the kernel kills the server (Pdeathsig), and the
// next run removes the directory it left.
//
// fsync stays on: the store's tests check what is durable when a call
// returns.
package pgtest
