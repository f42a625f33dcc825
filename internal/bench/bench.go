// Package bench holds Valetkey's benchmarks that span packages, and the
// report writer that runs each against a baseline measured in the same run
// and writes the figures into BENCHMARKS.md.
package bench
