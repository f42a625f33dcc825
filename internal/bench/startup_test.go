package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/store/sqlstore"
)

// startupConnections is the figure: startup with this many stored.
const startupConnections = 100_000

var listenLine = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// started is one `valetkey serve` that answered /readyz.
type started struct {
	cmd   *exec.Cmd
	url   string
	ready time.Duration // from exec to the first 200 from /readyz
}

func serve(t *testing.T, bin, dataDir string) started {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "VALETKEY_ADDR=127.0.0.1:0", "VALETKEY_DATA_DIR="+dataDir, "VALETKEY_LOG_FORMAT=json",
		"VALETKEY_BOOTSTRAP_API_KEY=vk_startup_bench_"+strings.Repeat("s", 40), "VALETKEY_REFRESH_SWEEP_INTERVAL=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listenLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("valetkey did not listen")
	}
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	return started{cmd: cmd, url: url, ready: time.Since(begin)}
}

func (s started) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	_ = s.cmd.Wait()
}

// rssKiB reads a process's resident set size.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// seed copies one real connection (and its credential row) n times into
// the stopped server's SQLite file (see seedCopies).
func seed(t *testing.T, dataDir, templateID string, n int) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "valetkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seedCopies(t, st, templateID, n, nil)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestWriteStartupReport measures `valetkey serve` from exec to ready, and
// its idle RSS, with 100,000 stored connections against an empty database
// (same binary, same run).
func TestWriteStartupReport(t *testing.T) {
	out := os.Getenv("VALETKEY_BENCH_REPORT")
	if out == "" {
		t.Skip("set VALETKEY_BENCH_REPORT=BENCHMARKS.md to run the benchmark report")
	}
	bin := filepath.Join(t.TempDir(), "valetkey")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/valetkey/valetkey/cmd/valetkey").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	empty, full := t.TempDir(), t.TempDir()
	// The full directory: one real connection made through the API, then copies.
	p := serve(t, bin, full)
	key := "vk_startup_bench_" + strings.Repeat("s", 40)
	req, _ := http.NewRequest("POST", p.url+"/source-connections", strings.NewReader(`{"name": "Stripe", "short_name": "stripe", "auth_fields": {"api_key": "sk_test_STARTUP"}}`))
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("create: %v %v", resp, err)
	}
	var body struct {
		ID string `json:"id"`
	}
	if err := decodeJSON(resp, &body); err != nil {
		t.Fatal(err)
	}
	p.stop()
	seed(t, full, body.ID, startupConnections-1)
	p = serve(t, bin, empty) // creates the empty database
	p.stop()

	const runs = 5
	var emptyTimes, fullTimes []time.Duration
	var emptyRSS, fullRSS int
	for i := 0; i < runs; i++ {
		for _, c := range []struct {
			dir   string
			times *[]time.Duration
			rss   *int
		}{{empty, &emptyTimes, &emptyRSS}, {full, &fullTimes, &fullRSS}} {
			s := serve(t, bin, c.dir)
			*c.times = append(*c.times, s.ready)
			if i == runs-1 {
				time.Sleep(2 * time.Second) // idle
				*c.rss = rssKiB(t, s.cmd.Process.Pid)
			}
			s.stop()
		}
	}
	fe, ff := median(emptyTimes), median(fullTimes)
	t.Logf("startup: empty %v, %d connections %v; idle RSS %d KiB / %d KiB", fe, startupConnections, ff, emptyRSS, fullRSS)
	rows := []string{
		fmt.Sprintf("| exec → /readyz 200, %d connections stored (sqlite, median of %d) | %.0f ms | same binary, empty database: %.0f ms | %.2f× (goal < 300 ms: %s) |",
			startupConnections, runs, ms(ff), ms(fe), float64(ff)/float64(fe), verdict(ff < 300*time.Millisecond)),
		fmt.Sprintf("| idle RSS after start, %d connections stored | %.1f MiB | same binary, empty database: %.1f MiB | %.2f× (goal < 60 MiB: %s) |",
			startupConnections, float64(fullRSS)/1024, float64(emptyRSS)/1024, float64(fullRSS)/float64(emptyRSS), verdict(fullRSS < 60*1024)),
	}
	writeSection(t, out, "startup", "TestWriteStartupReport", "| measured | figure | baseline (same run) | ratio |\n|---|---|---|---|\n"+strings.Join(rows, "\n"))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func decodeJSON(resp *http.Response, v any) error {
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
