// Package bench holds Valetkey's benchmarks that span packages, and the
// report writer that runs each against a baseline measured in the same run
// and writes the figures into BENCHMARKS.md.
package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ReportEnv names the variable that turns the report tests on: the path
// of the BENCHMARKS.md to write into.
const ReportEnv = "VALETKEY_BENCH_REPORT"

// WriteSection replaces (or appends) the generated section name of the
// report at out with body, headed by the date, machine, Go version and
// commit, and the command (test in package pkg) that regenerates it.
func WriteSection(t testing.TB, out, name, pkg, test, body string) {
	t.Helper()
	host, _ := os.Hostname()
	startMark, endMark := "<!-- generated:"+name+":start -->", "<!-- generated:"+name+":end -->"
	section := fmt.Sprintf("%s\nMeasured %s on %s/%s, %d CPUs (%s), %s, commit %s. Regenerate with `VALETKEY_BENCH_REPORT=$PWD/BENCHMARKS.md VALETKEY_TEST_POSTGRES_URL=... go test -run %s -v %s`.\n\n%s\n%s",
		startMark, time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), host, runtime.Version(), commit(), test, pkg, body, endMark)
	old, _ := os.ReadFile(out)
	doc := string(old)
	start, end := strings.Index(doc, startMark), strings.Index(doc, endMark)
	if start >= 0 && end > start {
		doc = doc[:start] + section + doc[end+len(endMark):]
	} else {
		doc += "\n" + section + "\n"
	}
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commit names the checkout measured: the short hash, "-dirty" when the
// tree has uncommitted changes, "unknown" outside a git checkout.
func commit() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty", "--abbrev=10").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
