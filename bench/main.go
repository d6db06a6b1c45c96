// Command bench measures the console's request path against bare Fiber on
// the same machine, in one run: it starts a zero-latency fake Vapi, a
// bare-Fiber baseline doing the same upstream call and mapping (JSON, and
// the same templ fragment), and the real server (bin/ava) in production
// mode over a fresh database, loads each with a closed-loop client (N
// keep-alive connections, each sending its next request once answered),
// case after case for a few rounds, and prints the medians of requests a
// second, p50 and p99, the ratio to the baseline of the same round, and
// upstream calls, database writes, connections opened and allocations per
// request. Run it with `go tool task bench` (which builds bin/ava first);
// see README.md, Performance.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	ownerEmail    = "bench@example.com"
	ownerPassword = "bench password, not a secret"
	// bigBudget is the rate limit (requests a minute) of the "rate limiting
	// on" cases: counted like any budget, never reached.
	bigBudget = "1000000000"
)

type options struct {
	bin      string
	duration time.Duration
	warmup   time.Duration
	conns    int
	keep     bool
	rounds   int
	// postgres, when set, is a PostgreSQL server (an admin URL) on which
	// each console gets a database of its own, dropped at the end.
	postgres string
	// profile, when set, runs the console in the bench's own process
	// (the same console.New) with the profiler on, and writes the CPU
	// profile of each console case to profile-CASE.pprof.
	profile string
}

func main() {
	if ok, err := childMode(os.Args[1:]); ok {
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.bin, "bin", "bin/ava", "the server binary (go tool task build)")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "how long each case is loaded")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each case")
	flag.IntVar(&o.conns, "connections", 50, "concurrent keep-alive connections")
	flag.IntVar(&o.rounds, "rounds", 3, "how many times every case is loaded (the table shows medians)")
	flag.StringVar(&o.postgres, "postgres", "", "run the consoles on PostgreSQL: a database of their own (created, then dropped) on the server of this `URL`")
	flag.BoolVar(&o.keep, "keep", false, "keep the servers' folders (database, logs) and print where")
	flag.StringVar(&o.profile, "cpuprofile", "", "write the console's CPU profile of each case to `PREFIX`-CASE.pprof (the console then runs in the bench's binary)")
	flag.Parse()
	if o.rounds < 1 || o.conns < 1 {
		fmt.Fprintln(os.Stderr, "bench: -rounds and -connections must be at least 1")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchCase is one thing loaded: a target, where its counters come from,
// and the baseline it is compared with.
type benchCase struct {
	name     string
	target   target
	counters func() counters
	pprof    string     // the profiler's address, when profiling
	baseline *benchCase // nil for a baseline
	// rounds are its measures, one a round.
	rounds []measured
}

// measured is one round's load of a case and its counters' increase.
type measured struct {
	res                              result
	upstream, writes, conns, mallocs float64 // totals; negative when unknown
}

func run(o options) error {
	ctx := context.Background()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%s: %w (build it with go tool task build)", o.bin, err)
	}
	var procs processes
	defer procs.stopAll()

	fakeAddr, err := freeAddr()
	if err != nil {
		return err
	}
	fakeURL := "http://" + fakeAddr
	fake := exec.CommandContext(ctx, self, "serve-fake", fakeAddr) //nolint:gosec // the bench itself
	if _, err := procs.start(fake, fakeURL+"/count"); err != nil {
		return fmt.Errorf("fake Vapi: %w", err)
	}
	baseAddr, err := freeAddr()
	if err != nil {
		return err
	}
	baseline := exec.CommandContext(ctx, self, "serve-baseline", baseAddr, fakeURL) //nolint:gosec // the bench itself
	if _, err := procs.start(baseline, "http://"+baseAddr+"/readyz"); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	upstreamCount := func() float64 { return fetchNumber(fakeURL + "/count") }

	baseCounters := func() counters {
		return counters{writes: unknown, conns: unknown, mallocs: known(fetchNumber("http://" + baseAddr + "/mallocs"))}
	}
	baseJSON := &benchCase{name: "bare Fiber JSON", counters: baseCounters,
		target: target{addr: baseAddr, path: "/api/v1/vapi/settings", want: `"settings"`}}
	baseHTML := &benchCase{name: "bare Fiber HTML", counters: baseCounters,
		target: target{addr: baseAddr, path: "/fragments/vapi/settings", want: "Greeting"}}
	cases := []*benchCase{baseJSON, baseHTML}
	var consoles []*server
	for _, limits := range []bool{false, true} {
		c, err := startConsole(&procs, o, bin, fakeURL, limits)
		if err != nil {
			return err
		}
		consoles = append(consoles, c)
		label := "rate limiting off"
		if limits {
			label = "rate limiting on"
		}
		cases = append(cases,
			&benchCase{name: "console JSON API, " + label, counters: c.counters, pprof: c.pprof, baseline: baseJSON,
				target: target{addr: c.addr, path: "/api/v1/vapi/settings", want: `"settings"`,
					headers: [][2]string{{"Authorization", "Bearer " + c.token}}}},
			&benchCase{name: "console HTML fragment, " + label, counters: c.counters, pprof: c.pprof, baseline: baseHTML,
				target: target{addr: c.addr, path: "/fragments/vapi/settings", want: "Greeting",
					headers: [][2]string{{"Cookie", c.cookie}, {"HX-Request", "true"}}}},
		)
	}

	fmt.Printf("bench: %d connections, %d rounds of %s per case (after %s of warm-up); %s, %d CPUs (GOMAXPROCS %d), %s, %s\n",
		o.conns, o.rounds, o.duration, o.warmup, cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(),
		time.Now().Format("2006-01-02"))
	defer func() { printTable(os.Stdout, cases) }()
	// Each round loads every case in turn: the machine's other work
	// drifts, and a ratio is taken within a round, to the baseline
	// measured just before.
	for round := range o.rounds {
		for _, bc := range cases {
			fmt.Printf("  round %d: %s...\n", round+1, bc.name)
			if w := load(bc.target, o.conns, o.warmup); w.errors > 0 {
				return fmt.Errorf("%s: %d of %d answers failed during warm-up; first: %s", bc.name, w.errors, w.requests, w.firstError)
			}
			profiled := make(chan error, 1)
			if bc.pprof != "" && round == 0 {
				go func() { profiled <- saveProfile(bc.pprof, o.duration, o.profile+"-"+slug(bc.name)+".pprof") }()
			} else {
				profiled <- nil
			}
			before, up := bc.counters(), upstreamCount()
			res := load(bc.target, o.conns, o.duration)
			after, up2 := bc.counters(), upstreamCount()
			if err := <-profiled; err != nil {
				return fmt.Errorf("%s: profile: %w", bc.name, err)
			}
			if res.errors > 0 {
				return fmt.Errorf("%s: %d of %d answers failed; first: %s", bc.name, res.errors, res.requests, res.firstError)
			}
			bc.rounds = append(bc.rounds, measured{res: res, upstream: up2 - up,
				writes: after.writes.delta(before.writes), conns: after.conns.delta(before.conns), mallocs: after.mallocs.delta(before.mallocs)})
		}
	}
	for _, c := range consoles {
		c.proc.stop()
		if problems := c.logProblems(); problems != "" {
			return fmt.Errorf("the console logged warnings or errors under load:\n%s", problems)
		}
	}
	return nil
}

// printTable prints, for each case, the medians over the rounds (req/s,
// p50, p99, ratio to the baseline in the same round) and the per-request
// counters over all of them.
func printTable(w io.Writer, cases []*benchCase) {
	if len(cases) == 0 || len(cases[0].rounds) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\treq/s\tp50\tp99\tratio\tupstream calls/req\tdb writes/req\tdb conns opened\tallocs/req\t")
	for _, bc := range cases {
		if len(bc.rounds) == 0 {
			continue
		}
		var rates, p50s, p99s, ratios []float64
		var n, upstream, writes, conns, mallocs float64
		for i, m := range bc.rounds {
			rates = append(rates, m.res.rate())
			p50s = append(p50s, float64(m.res.p50))
			p99s = append(p99s, float64(m.res.p99))
			if bc.baseline != nil && i < len(bc.baseline.rounds) {
				ratios = append(ratios, m.res.rate()/bc.baseline.rounds[i].res.rate())
			}
			n += float64(m.res.requests)
			upstream, writes, conns, mallocs = upstream+m.upstream, add(writes, m.writes), add(conns, m.conns), add(mallocs, m.mallocs)
		}
		ratio := "-"
		if len(ratios) > 0 {
			ratio = fmt.Sprintf("%.2f", median(ratios))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", bc.name, median(rates),
			ms(time.Duration(median(p50s))), ms(time.Duration(median(p99s))), ratio,
			num(upstream/n, 2), num(per(writes, n), 3), num(conns, 0), num(per(mallocs, n), 0))
	}
	_ = tw.Flush()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// add sums counters, unknown (negative) staying unknown.
func add(a, b float64) float64 {
	if a < 0 || b < 0 {
		return -1
	}
	return a + b
}

func per(v, n float64) float64 {
	if v < 0 || n == 0 {
		return -1
	}
	return v / n
}

// saveProfile writes the CPU profile of the next d of the process whose
// profiler is at addr.
func saveProfile(addr string, d time.Duration, path string) error {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))) //nolint:gosec,noctx // our own child
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiler answered %s", resp.Status)
	}
	f, err := os.Create(path) //nolint:gosec // the path the caller named
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	fmt.Printf("    CPU profile: %s\n", path)
	return f.Close()
}

// slug is a case's name as a file name.
func slug(name string) string {
	return strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(name), "-"), "-")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }

func num(v float64, prec int) string {
	if v < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// counter is a counter read from a server, or unknown (it has none).
type counter struct {
	v  float64
	ok bool
}

var unknown = counter{}

func known(v float64) counter { return counter{v: v, ok: v >= 0} }

// delta is the increase since before; -1 when unknown.
func (c counter) delta(before counter) float64 {
	if !c.ok || !before.ok {
		return -1
	}
	return c.v - before.v
}

type counters struct {
	writes, conns, mallocs counter
}

// server is a running bin/ava with an owner, an API token and a session.
type server struct {
	addr    string
	dir     string
	token   string
	cookie  string
	logPath string
	proc    *process
	// pprof is the profiler's address when the console runs in the
	// bench's binary (-cpuprofile).
	pprof string
}

// startConsole creates a database with an owner and an API token through
// the command line, serves it in production mode, and signs in.
func startConsole(procs *processes, o options, bin, vapiURL string, limits bool) (*server, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ava-bench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Printf("  console folder: %s\n", dir)
	} else {
		procs.cleanup = append(procs.cleanup, func() { _ = os.RemoveAll(dir) })
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	database := "sqlite:" + filepath.Join(dir, "ava.db")
	if o.postgres != "" {
		if database, err = postgresDatabase(ctx, o.postgres, procs); err != nil {
			return nil, err
		}
	}
	env := []string{
		"AVA_ENV=production",
		"AVA_SECRET_KEY=" + base64.StdEncoding.EncodeToString(key),
		"DATABASE_URL=" + database,
		"PORT=" + port(addr),
		"LOG_LEVEL=info",
		"LOG_FORMAT=json",
		"VAPI_BASE_URL=" + vapiURL,
		"VAPI_API_KEY=" + fakeKey,
		"VAPI_ASSISTANT_ID=" + fakeAssistant,
		"ENABLE_RATE_LIMITING=" + strconv.FormatBool(limits),
	}
	if limits {
		env = append(env, "RATE_LIMIT_DEFAULT="+bigBudget, "RATE_LIMIT_VAPI_LIST="+bigBudget)
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	cli := func(stdin string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...) //nolint:gosec // the binary the caller named
		cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("ava %s: %w: %s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String(), nil
	}
	if _, err := cli(ownerPassword+"\n", "user", "create", "--email", ownerEmail, "--password-stdin"); err != nil {
		return nil, err
	}
	out, err := cli("", "token", "create", "--email", ownerEmail, "--name", "bench")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	c := &server{addr: addr, dir: dir, token: lines[len(lines)-1], logPath: filepath.Join(dir, "ava.log")}

	logFile, err := os.Create(c.logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.CommandContext(ctx, bin, "serve") //nolint:gosec // the binary the caller named
	if o.profile != "" {
		if c.pprof, err = freeAddr(); err != nil {
			return nil, err
		}
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.CommandContext(ctx, self, "serve-console", c.pprof) //nolint:gosec // the bench itself
	}
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, logFile, logFile
	if c.proc, err = procs.start(cmd, "http://"+addr+"/readyz"); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if c.cookie, err = signIn("http://" + addr); err != nil {
		return nil, err
	}
	return c, nil
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// signIn signs the owner in as a browser would (the sign-in page, its CSRF
// token and cookie, the form) and returns the Cookie header of the session.
// Production cookies are Secure: over plain HTTP they are passed by hand.
func signIn(base string) (string, error) {
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Get(base + "/login") //nolint:noctx // a command line tool
	if err != nil {
		return "", err
	}
	page, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	m := csrfField.FindSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("GET /login: %s without a CSRF field", resp.Status)
	}
	var jar []string
	for _, ck := range resp.Cookies() {
		jar = append(jar, ck.Name+"="+ck.Value)
	}
	form := url.Values{"email": {ownerEmail}, "password": {ownerPassword}, "_csrf": {string(m[1])}}
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(form.Encode())) //nolint:noctx // a command line tool
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", strings.Join(jar, "; "))
	resp, err = client.Do(req)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if strings.HasSuffix(ck.Name, "ava_session") && ck.Value != "" {
			return ck.Name + "=" + ck.Value, nil
		}
	}
	return "", fmt.Errorf("POST /login: %s without a session cookie", resp.Status)
}

// counters reads the console's own metrics.
func (c *server) counters() counters {
	m := scrape("http://" + c.addr + "/metrics")
	out := counters{writes: unknown, conns: unknown, mallocs: unknown}
	if v, ok := m["ava_db_writes_total"]; ok {
		out.writes = known(v)
	}
	if v, ok := m["go_memstats_mallocs_total"]; ok {
		out.mallocs = known(v)
	}
	if v, ok := m["ava_db_connections_opened_total"]; ok {
		out.conns = known(v)
	}
	return out
}

// logProblems returns the warning and error lines the console logged.
func (c *server) logProblems() string {
	f, err := os.Open(c.logPath)
	if err != nil {
		return err.Error()
	}
	defer func() { _ = f.Close() }()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, line)
			if len(out) == 10 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// scrape reads a Prometheus text page into sums by metric name.
func scrape(u string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(u) //nolint:gosec,noctx // our own server, a command line tool
	if err != nil {
		return out
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		if v, err := strconv.ParseFloat(line[sp+1:], 64); err == nil {
			out[name] += v
		}
	}
	return out
}

func fetchNumber(u string) float64 {
	resp, err := http.Get(u) //nolint:gosec,noctx // our own child, a command line tool
	if err != nil {
		return -1
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return -1
	}
	return v
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return runtime.GOARCH
}

// processes are the children the bench started: stopped (SIGTERM, then
// killed) when it ends.
type processes struct {
	running []*process
	cleanup []func()
}

type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// start starts cmd and waits until ready answers 200.
func (p *processes) start(cmd *exec.Cmd, ready string) (*process, error) {
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	proc := &process{cmd: cmd, exited: make(chan struct{})}
	p.running = append(p.running, proc)
	go func() {
		proc.err = cmd.Wait()
		close(proc.exited)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-proc.exited:
			return nil, fmt.Errorf("exited before it was ready: %w", proc.err)
		default:
		}
		if resp, err := http.Get(ready); err == nil { //nolint:gosec,noctx // our own child
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return proc, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, errors.New("not ready after 20s")
}

// stop asks the process to stop (SIGTERM) and kills it after 10 s.
func (proc *process) stop() {
	select {
	case <-proc.exited:
		return
	default:
	}
	_ = proc.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-proc.exited:
	case <-time.After(10 * time.Second):
		_ = proc.cmd.Process.Kill()
		<-proc.exited
	}
}

func (p *processes) stopAll() {
	for i := len(p.running) - 1; i >= 0; i-- {
		p.running[i].stop()
	}
	for _, f := range p.cleanup {
		f()
	}
}

// postgresDatabase creates an empty database on the server of admin and
// returns its URL; it is dropped when the bench ends.
func postgresDatabase(ctx context.Context, admin string, procs *processes) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("-postgres: %w", err)
	}
	defer func() { _ = conn.Close(ctx) }()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "ava_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("-postgres: %w", err)
	}
	procs.cleanup = append(procs.cleanup, func() {
		conn, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop database %s: %v\n", name, err)
			return
		}
		defer func() { _ = conn.Close(context.Background()) }()
		if _, err := conn.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop database %s: %v\n", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
