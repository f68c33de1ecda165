// Command bench is the load generator of iosessions: it starts the example
// (each engine, both modes, on memory and on a private redis-server) and a
// bare server of each engine (bench/bare: no library, the same events),
// drives each from outside over websocket with the socket.io wire protocol
// (internal/sio2: EIO=3 for googollee, EIO=4 for v4), and prints one table
// with the figures of every target and their ratios to the bare engine
// measured in the same run.
//
//	go run ./bench [-runs 2] [-quick] [-only REGEXP]
//
// Scenarios, per target: connect storm (login, handshake, welcome, close;
// 1,000, 50 at a time), echo (50 clients, 1,000 each, one at a time), incr
// (the same, per-message or per-connection as the target's mode), two-tab
// incr (20 users with two sockets each, 200 incr per socket, 8 in flight;
// lost updates are the acks the session does not count), handshakes of
// logged-in users by cookie and by the shim's token (500 each, in turns
// on quarters of 1,000 sessions, 50 at a time; the logins and tokens come
// before the clock), idle (1,000 logged-in connections: the server's
// resident memory per connection). Server, redis-server and generator CPU
// are read from /proc, Redis commands from INFO commandstats. A reference
// bare server of each engine frames every target's figures (see
// reference): the ratios divide by that frame.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions/internal/sio2"
)

type config struct {
	connects, connectConc int
	clients, perClient    int
	tabUsers, tabIncr     int
	window                int
	idle                  int
}

func main() {
	runs := flag.Int("runs", 2, "runs of every target, interleaved; the table shows medians")
	quick := flag.Bool("quick", false, "small numbers, to try the harness")
	only := flag.String("only", "", "run only the targets whose name matches this regular expression")
	events := flag.Int("events", 0, "echo and incr events per client (default 1000), to profile a server longer")
	connects := flag.Int("connects", 0, "logins and connects of the connect storm (default 1000)")
	flag.Parse()
	cfg := config{connects: 1000, connectConc: 50, clients: 50, perClient: 1000, tabUsers: 20, tabIncr: 200, window: 8, idle: 1000}
	if *quick {
		cfg = config{connects: 40, connectConc: 10, clients: 5, perClient: 100, tabUsers: 3, tabIncr: 40, window: 8, idle: 50}
	}
	if *events > 0 {
		cfg.perClient = *events
	}
	if *connects > 0 {
		cfg.connects = *connects
	}
	if err := run(cfg, *runs, *only); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// presenceGrace is the example's presence grace in the bench (-grace).
const presenceGrace = time.Second

// waitGrace waits until the users of the sockets closed so far have gone
// offline, so that their presence broadcasts do not land in what is
// measured next.
func waitGrace() { time.Sleep(presenceGrace + 500*time.Millisecond) }

// target is one server under load.
type target struct {
	name     string
	engine   string // v4 or googollee
	bare     bool
	presence bool   // bare, broadcasting the example's presence events
	mode     string // perconn, permessage ("" for bare)
	store    string // memory, redis ("" for bare)
	env      []string
}

func (t target) eio() int {
	if t.engine == "v4" {
		return 4
	}
	return 3
}

func targets() []target {
	var out []target
	for _, engine := range []string{"v4", "googollee"} {
		out = append(out, target{name: "bare " + engine, engine: engine, bare: true})
		// The example's contract broadcasts presence to every socket on
		// each login and at each grace end; this bare server does the
		// same with the engine's broadcast, so a connect's cost can be
		// split into that contract's and the library's.
		out = append(out, target{name: "bare " + engine + " presence", engine: engine, bare: true, presence: true})
		for _, store := range []string{"memory", "redis"} {
			for _, mode := range []string{"perconn", "permessage"} {
				out = append(out, target{name: fmt.Sprintf("%s %s %s", engine, mode, store), engine: engine, mode: mode, store: store})
			}
		}
		// The garbage collector's knobs, on the mode that makes the most
		// garbage: a higher GOGC, and a memory limit in place of GOGC.
		for _, env := range [][]string{{"GOGC=400"}, {"GOGC=off", "GOMEMLIMIT=512MiB"}} {
			out = append(out, target{name: fmt.Sprintf("%s permessage memory %s", engine, strings.Join(env, " ")),
				engine: engine, mode: "permessage", store: "memory", env: env})
		}
	}
	return out
}

// result is what one run of a target measured.
type result struct {
	connectsPerSec float64
	byCookie       float64 // handshakes/s of logged-in users by cookie
	byToken        float64 // the same by the shim's token
	echo, incr     rate
	cpuEcho        float64 // server CPU µs per echo
	cpuIncr        float64
	kibPerConn     float64
	redials        int64 // connects dialed again, unanswered (dialWelcome)
	lost           int
	redisPerIncr   float64 // Redis calls per incr, inside scripts included (-1: no Redis)
	redisCPUIncr   float64 // redis-server CPU µs per incr
	genCPUEcho     float64 // this load generator's CPU µs per echo
	genCPUIncr     float64
	scriptsPerIncr float64 // EVAL and EVALSHA per incr
	// The reference's echo acks/s and connects/s framing this target's
	// echo and incr, and its connect storm (the mean of before and after).
	refEcho, refConnects float64
}

type rate struct {
	perSec   float64
	p50, p99 time.Duration
}

func run(cfg config, runs int, only string) error {
	dir, err := os.MkdirTemp("", "iosessions-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins := map[string]string{"example": filepath.Join(dir, "example"), "bare": filepath.Join(dir, "bare")}
	for name, bin := range bins {
		fmt.Printf("bench: building %s\n", name)
		if out, err := exec.Command("go", "build", "-o", bin, "./"+map[string]string{"example": "example", "bare": "bench/bare"}[name]).CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	}
	rs, err := startRedis(dir)
	if err != nil {
		return err
	}
	defer rs.stop()

	match, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("-only: %w", err)
	}
	var ts []target
	for _, t := range targets() {
		if match.MatchString(t.name) {
			ts = append(ts, t)
		}
	}
	refs := map[string]*reference{}
	for _, t := range ts {
		if refs[t.engine] != nil {
			continue
		}
		fmt.Printf("bench: starting the reference bare %s server\n", t.engine)
		ref, err := startReference(bins["bare"], t, cfg)
		if err != nil {
			return fmt.Errorf("reference %s: %w", t.engine, err)
		}
		defer ref.stop()
		refs[t.engine] = ref
	}
	results := make(map[string][]result)
	for r := 1; r <= runs; r++ {
		for _, t := range ts {
			fmt.Printf("bench: run %d/%d: %s\n", r, runs, t.name)
			res, err := runTarget(cfg, t, bins, rs, refs[t.engine])
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			results[t.name] = append(results[t.name], res)
		}
	}
	printTable(ts, results)
	return nil
}

func runTarget(cfg config, t target, bins map[string]string, rs *redisServer, ref *reference) (result, error) {
	var args []string
	bin := bins["example"]
	if t.bare {
		bin = bins["bare"]
		args = []string{"-engine", t.engine}
		if t.presence {
			args = append(args, "-presence", presenceGrace.String())
		}
	} else {
		// The example tells every socket with a session when a user
		// goes offline, a presence grace after its last socket closed:
		// with its default 5 s grace, the connect storm's 300 users went
		// offline during the echo that follows, and their broadcasts to
		// the 50 echo clients (some 15,000 emits) were counted as the
		// echo's. With 1 s they are over before the echo starts (below).
		args = []string{"-engine", t.engine, "-mode", t.mode, "-store", t.store, "-grace", presenceGrace.String()}
		if t.store == "redis" {
			args = append(args, "-redis", rs.url)
		}
	}
	srv, err := startServer(bin, t.env, args...)
	if err != nil {
		return result{}, err
	}
	defer srv.stop()
	res := result{redisPerIncr: -1}
	redials0 := redials.Load() - refRedials.Load()
	eio := t.eio()

	// Connect storm, framed by the reference's.
	refBefore, err := ref.connects(cfg)
	if err != nil {
		return res, err
	}
	cpu0 := srv.cpu()
	if res.connectsPerSec, err = storm(srv.url, eio, cfg); err != nil {
		return res, err
	}
	cpuConnect := (srv.cpu() - cpu0).Seconds() * 1e6 / float64(cfg.connects)
	refAfter, err := ref.connects(cfg)
	if err != nil {
		return res, err
	}
	res.refConnects = (refBefore + refAfter) / 2
	fmt.Printf("bench:   connects %.0f/s, %.0f µs CPU each (reference %.0f/s before, %.0f/s after)\n", res.connectsPerSec, cpuConnect, refBefore, refAfter)

	// Handshakes by cookie and by the shim's token, of the same sessions,
	// logged in (and given a token) before the clock starts.
	if !t.bare {
		if res.byCookie, res.byToken, err = cookieAndToken(srv.url, eio, cfg); err != nil {
			return res, err
		}
		fmt.Printf("bench:   handshakes by cookie %.0f/s, by token %.0f/s\n", res.byCookie, res.byToken)
	}
	waitGrace() // the storm's users go offline first

	// Echo and incr: clients one event at a time.
	clients := make([]*sio2.Client, cfg.clients)
	if err := parallel(cfg.clients, cfg.connectConc, func(i int) error {
		c, err := login(srv.url, eio, fmt.Sprintf("e%d_%d", i, time.Now().UnixNano()))
		clients[i] = c
		return err
	}); err != nil {
		return res, fmt.Errorf("echo clients: %w", err)
	}
	defer func() {
		for _, c := range clients {
			if c != nil {
				_ = c.Close()
			}
		}
	}()
	refBefore, err = ref.echo(cfg)
	if err != nil {
		return res, err
	}
	events := []string{"echo"}
	if !t.bare {
		events = append(events, "incr")
	}
	for _, ev := range events {
		var cmd0, scr0 int64
		if t.store == "redis" {
			cmd0, scr0 = rs.commands()
		}
		var rcpu0 time.Duration
		if t.store == "redis" {
			rcpu0 = procCPU(rs.cmd.Process.Pid)
		}
		cpu0, gen0 := srv.cpu(), procCPU(os.Getpid())
		r, err := callLoop(clients, cfg.perClient, ev)
		if err != nil {
			return res, fmt.Errorf("%s: %w", ev, err)
		}
		n := float64(cfg.clients * cfg.perClient)
		cpuPer := (srv.cpu() - cpu0).Seconds() * 1e6 / n
		genPer := (procCPU(os.Getpid()) - gen0).Seconds() * 1e6 / n
		if ev == "echo" {
			res.echo, res.cpuEcho, res.genCPUEcho = r, cpuPer, genPer
		} else {
			res.incr, res.cpuIncr, res.genCPUIncr = r, cpuPer, genPer
			if t.store == "redis" {
				cmd1, scr1 := rs.commands()
				res.redisPerIncr = float64(cmd1-cmd0-1) / n
				res.scriptsPerIncr = float64(scr1-scr0) / n
				res.redisCPUIncr = (procCPU(rs.cmd.Process.Pid) - rcpu0).Seconds() * 1e6 / n
			}
		}
		fmt.Printf("bench:   %s %.0f acks/s, p50 %v, p99 %v, %.1f µs CPU each (this generator %.1f µs)\n", ev, r.perSec, r.p50, r.p99, cpuPer, genPer)
		if ev == "incr" && t.store == "redis" {
			fmt.Printf("bench:   redis-server %.1f µs CPU per incr\n", res.redisCPUIncr)
		}
	}
	refAfter, err = ref.echo(cfg)
	if err != nil {
		return res, err
	}
	res.refEcho = (refBefore + refAfter) / 2
	fmt.Printf("bench:   reference echo %.0f acks/s before, %.0f after\n", refBefore, refAfter)
	for _, c := range clients {
		_ = c.Close()
	}
	clients = nil

	if !t.bare {
		lost, err := twoTabs(srv.url, eio, cfg)
		if err != nil {
			return res, fmt.Errorf("two tabs: %w", err)
		}
		res.lost = lost
		fmt.Printf("bench:   two tabs: %d increments lost\n", lost)
	}

	// Idle: resident memory per logged-in connection.
	time.Sleep(500 * time.Millisecond)
	rss0 := srv.rss()
	idle := make([]*sio2.Client, cfg.idle)
	if err := parallel(cfg.idle, cfg.connectConc, func(i int) error {
		c, err := login(srv.url, eio, fmt.Sprintf("i%d_%d", i, time.Now().UnixNano()))
		idle[i] = c
		return err
	}); err != nil {
		return res, fmt.Errorf("idle: %w", err)
	}
	time.Sleep(2 * time.Second)
	res.kibPerConn = float64(srv.rss()-rss0) / float64(cfg.idle)
	for _, c := range idle {
		if c != nil {
			_ = c.Close()
		}
	}
	res.redials = redials.Load() - refRedials.Load() - redials0
	fmt.Printf("bench:   idle %.1f KiB per connection; %d connects redialed\n", res.kibPerConn, res.redials)
	return res, nil
}

// storm logs cfg.connects users in and connects each (handshake, welcome,
// close), cfg.connectConc at a time, and returns the connects per second.
func storm(base string, eio int, cfg config) (float64, error) {
	start := time.Now()
	if err := parallel(cfg.connects, cfg.connectConc, func(i int) error {
		c, err := login(base, eio, fmt.Sprintf("c%d_%d", i, time.Now().UnixNano()))
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		return 0, fmt.Errorf("connect storm: %w", err)
	}
	return float64(cfg.connects) / time.Since(start).Seconds(), nil
}

// reference is a bare server of one engine that runs through the whole
// bench with its echo clients connected. Every target's connect storm,
// and its echo and incr together, are framed by the same load on the
// reference, just before and just after, and the ratios in the table
// divide by that: the speed of this VM drifts by a third within minutes,
// so a bare target measured minutes earlier does not cancel it, and the
// frame does (the bare targets' own ratio to their frames shows what
// noise is left).
type reference struct {
	srv     *server
	eio     int
	clients []*sio2.Client
}

func startReference(bin string, t target, cfg config) (*reference, error) {
	srv, err := startServer(bin, nil, "-engine", t.engine)
	if err != nil {
		return nil, err
	}
	r := &reference{srv: srv, eio: t.eio(), clients: make([]*sio2.Client, cfg.clients)}
	if err := parallel(cfg.clients, cfg.connectConc, func(i int) error {
		c, err := login(srv.url, r.eio, fmt.Sprintf("r%d_%d", i, time.Now().UnixNano()))
		r.clients[i] = c
		return err
	}); err != nil {
		r.stop()
		return nil, err
	}
	return r, nil
}

// refRedials counts the redials of the references' connects (in redials
// too), which are not their targets'.
var refRedials atomic.Int64

// connects runs a connect storm on the reference. A storm in which the
// bare v4 engine left a namespace connect unanswered (dialWelcome waits
// 3 s, then dials again) gauges that race, not the machine's speed, and
// would frame its target with a fraction of the reference's rate: it is
// run again, up to three times.
func (r *reference) connects(cfg config) (float64, error) {
	for try := 1; ; try++ {
		n0 := redials.Load()
		v, err := storm(r.srv.url, r.eio, cfg)
		n := redials.Load() - n0
		refRedials.Add(n)
		if err != nil {
			return 0, fmt.Errorf("reference: %w", err)
		}
		if n == 0 || try == 3 {
			return v, nil
		}
		fmt.Printf("bench:   (the reference redialed %d connects in its storm, %.0f/s: storm again)\n", n, v)
	}
}

// echo runs the echo on the reference and returns its acks per second.
func (r *reference) echo(cfg config) (float64, error) {
	v, err := callLoop(r.clients, cfg.perClient, "echo")
	if err != nil {
		return 0, fmt.Errorf("reference echo: %w", err)
	}
	return v.perSec, nil
}

func (r *reference) stop() {
	for _, c := range r.clients {
		if c != nil {
			_ = c.Close()
		}
	}
	r.srv.stop()
}

// login logs user in over HTTP and connects with the session cookie; it
// returns once the welcome arrived.
func login(base string, eio int, user string) (*sio2.Client, error) {
	c, _, err := loginCookie(base, eio, user)
	return c, err
}

// loginCookie is login that also returns the session's Cookie header.
func loginCookie(base string, eio int, user string) (*sio2.Client, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cookie, err := loginOnly(base, user)
	if err != nil {
		return nil, "", err
	}
	c, err := dialWelcome(ctx, base, withCookie(eio, cookie))
	return c, cookie, err
}

// cookieAndToken logs cfg.connects users in, fetches a shim token for
// each, and returns the handshakes per second of storms by their cookies
// and by their tokens. The storms take turns, cookie, token, token,
// cookie, on a quarter of the users each, each after the presence grace
// of the one before (its users going offline broadcast to no one then),
// so neither side is measured only while the server warms up.
func cookieAndToken(base string, eio int, cfg config) (byCookie, byToken float64, err error) {
	n := cfg.connects / 4 * 4
	cookies := make([]string, n)
	tokens := make([]string, n)
	if err := parallel(n, cfg.connectConc, func(i int) error {
		c, err := loginOnly(base, fmt.Sprintf("h%d_%d", i, time.Now().UnixNano()))
		if err != nil {
			return err
		}
		cookies[i] = c
		tokens[i], err = shimToken(base, c)
		return err
	}); err != nil {
		return 0, 0, fmt.Errorf("handshakes: %w", err)
	}
	var took [2]time.Duration // cookie, token
	for q, tok := range []bool{false, true, true, false} {
		waitGrace()
		first := q * n / 4
		start := time.Now()
		err := parallel(n/4, cfg.connectConc, func(i int) error {
			o := withCookie(eio, cookies[first+i])
			if tok {
				o = withToken(eio, tokens[first+i])
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := dialWelcome(ctx, base, o)
			if err != nil {
				return err
			}
			return c.Close()
		})
		if err != nil {
			return 0, 0, fmt.Errorf("handshakes (token %v): %w", tok, err)
		}
		if tok {
			took[1] += time.Since(start)
		} else {
			took[0] += time.Since(start)
		}
	}
	return float64(n/2) / took[0].Seconds(), float64(n/2) / took[1].Seconds(), nil
}

// shimToken fetches the shim's token for the session of cookie, as the
// shim's script would inline it (its JSON form).
func shimToken(base, cookie string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/socket.io/socket.io-sessions.js", nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		return "", fmt.Errorf("shim token: %s, %v", resp.Status, err)
	}
	return body.Token, nil
}

// loginOnly logs user in over HTTP and returns the session's Cookie
// header.
func loginOnly(base, user string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(url.Values{"user": {user}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "session" && c.Value != "" {
			return c.Name + "=" + c.Value, nil
		}
	}
	return "", fmt.Errorf("login: %s, no session cookie", resp.Status)
}

// redials counts the connects dialed again because the server left the
// namespace connect unanswered (the bare v4 engine does, now and then).
var redials atomic.Int64

// withCookie is the dial of a client that sends the session cookie.
func withCookie(eio int, cookie string) sio2.Options {
	return sio2.Options{EIO: eio, Header: http.Header{"Cookie": {cookie}}}
}

// withToken is the dial of a client that carries the shim's token, as the
// shim sends it: in the namespace connect's auth payload (EIO=4) or in
// the handshake query (EIO=3).
func withToken(eio int, token string) sio2.Options {
	if eio == 4 {
		return sio2.Options{EIO: eio, Auth: map[string]any{tokenParam: token}}
	}
	return sio2.Options{EIO: eio, Query: url.Values{tokenParam: {token}}}
}

// tokenParam is iosessions.TokenParam (bench imports no library code: it
// drives the example from outside).
const tokenParam = "iosessions_token"

// dialWelcome dials with o and returns once the welcome arrived. A
// namespace connect left unanswered for 3 s is dialed again, up to three
// times, and counted.
func dialWelcome(ctx context.Context, base string, o sio2.Options) (*sio2.Client, error) {
	var c *sio2.Client
	var err error
	for try := 1; ; try++ {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err = sio2.Dial(dctx, base, o)
		cancel()
		if err == nil || !errors.Is(err, sio2.ErrConnectUnanswered) || try == 3 || ctx.Err() != nil {
			break
		}
		redials.Add(1)
	}
	if err != nil {
		return nil, err
	}
	if _, err := c.Expect(ctx, "welcome"); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("welcome: %w", err)
	}
	go drain(c)
	return c, nil
}

// drain reads what the server emits, so the client's reader never stalls.
func drain(c *sio2.Client) {
	for {
		select {
		case <-c.Events():
		case <-c.Done():
			return
		}
	}
}

// callLoop has every client send n events, one at a time, and returns
// the acks per second and their latency.
func callLoop(clients []*sio2.Client, n int, event string) (rate, error) {
	lat := make([][]time.Duration, len(clients))
	start := time.Now()
	err := parallel(len(clients), len(clients), func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		lat[i] = make([]time.Duration, 0, n)
		for k := 0; k < n; k++ {
			t0 := time.Now()
			ack, err := clients[i].Call(ctx, event, k)
			if err != nil {
				return err
			}
			if len(ack) != 1 || strings.Contains(string(ack[0]), "error") {
				return fmt.Errorf("ack %s", ack)
			}
			lat[i] = append(lat[i], time.Since(t0))
		}
		return nil
	})
	took := time.Since(start)
	all := slices.Concat(lat...)
	if err != nil || len(all) == 0 {
		return rate{}, errors.Join(err, errors.New("no acks"))
	}
	slices.Sort(all)
	return rate{perSec: float64(len(all)) / took.Seconds(), p50: all[len(all)/2], p99: all[len(all)*99/100]}, nil
}

// twoTabs: users with two sockets of one session each send incr, window
// in flight per socket; it returns how many acked increments the
// sessions do not count (GET /me after the sockets closed).
func twoTabs(base string, eio int, cfg config) (int, error) {
	var mu sync.Mutex
	lost := 0
	err := parallel(cfg.tabUsers, cfg.tabUsers, func(i int) error {
		user := fmt.Sprintf("t%d_%d", i, time.Now().UnixNano())
		a, cookie, err := loginCookie(base, eio, user)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b, err := dialWelcome(ctx, base, withCookie(eio, cookie))
		if err != nil {
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		for _, c := range []*sio2.Client{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem := make(chan struct{}, cfg.window)
				var iwg sync.WaitGroup
				for k := 0; k < cfg.tabIncr; k++ {
					sem <- struct{}{}
					ch, err := c.EmitAck(ctx, "incr")
					if err != nil {
						errs <- err
						return
					}
					iwg.Add(1)
					go func() {
						defer iwg.Done()
						defer func() { <-sem }()
						select {
						case <-ch:
						case <-ctx.Done():
						}
					}()
				}
				iwg.Wait()
			}()
		}
		wg.Wait()
		_ = a.Close()
		_ = b.Close()
		select {
		case err := <-errs:
			return err
		default:
		}
		// perconn saves at disconnect: give it a moment.
		var count int
		for try := 0; try < 50; try++ {
			count, err = me(base, cookie)
			if err == nil && count >= 2*cfg.tabIncr {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		lost += 2*cfg.tabIncr - count
		mu.Unlock()
		return nil
	})
	return lost, err
}

func me(base, cookie string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/me", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	i := strings.Index(string(b), `"count":`)
	if i < 0 {
		return 0, fmt.Errorf("GET /me: %s %s", resp.Status, b)
	}
	rest := string(b[i+len(`"count":`):])
	j := strings.IndexAny(rest, ",}")
	return strconv.Atoi(strings.TrimSpace(rest[:j]))
}

// parallel runs f(0..n-1), conc at a time, and returns the first error.
func parallel(n, conc int, f func(i int) error) error {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// ---- servers --------------------------------------------------------------

type server struct {
	cmd *exec.Cmd
	url string
}

func startServer(bin string, env []string, args ...string) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"-addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening on ") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("%s exited before listening", bin)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not listen within 20 s", bin)
	}
	return &server{cmd: cmd, url: "http://" + addr}, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the server's user and system CPU time so far.
func (s *server) cpu() time.Duration { return procCPU(s.cmd.Process.Pid) }

// procCPU returns the user and system CPU time of process pid so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which ends with ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// rss returns the server's resident memory in KiB.
func (s *server) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

type redisServer struct {
	cmd    *exec.Cmd
	url    string
	client *redis.Client
}

// startRedis starts a private redis-server without persistence.
func startRedis(dir string) (*redisServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redis-server (scripts/deps.sh installs it): %w", err)
	}
	rs := &redisServer{cmd: cmd, url: "redis://" + addr + "/0", client: redis.NewClient(&redis.Options{Addr: addr})}
	for i := 0; ; i++ {
		if rs.client.Ping(context.Background()).Err() == nil {
			return rs, nil
		}
		if i == 100 {
			rs.stop()
			return nil, errors.New("redis-server did not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// commands returns the calls Redis has served, all commands together, the
// ones scripts make included (the INFO that asks counts as one), and the
// scripts run (EVAL, EVALSHA): each script is one round trip.
func (r *redisServer) commands() (total, scripts int64) {
	info, err := r.client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(info, "\n") {
		if name, rest, ok := strings.Cut(line, ":calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			total += n
			if name == "cmdstat_evalsha" || name == "cmdstat_eval" {
				scripts += n
			}
		}
	}
	return total, scripts
}

func (r *redisServer) stop() {
	_ = r.client.Close()
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
}

// ---- the table ------------------------------------------------------------

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func med(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	return median(v)
}

func printTable(ts []target, results map[string][]result) {
	// ratio is the median over runs of a figure divided by the
	// reference's figure that framed it in the same run.
	ratio := func(rs []result, f, of func(r result) float64) string {
		return fmt.Sprintf("%.2f×", med(rs, func(r result) float64 { return f(r) / of(r) }))
	}
	refEcho := func(r result) float64 { return r.refEcho }
	connRatio := func(r result) float64 { return r.connectsPerSec / r.refConnects }
	// withPresence is each engine's bare-with-presence connect ratio.
	withPresence := map[string]float64{}
	for _, t := range ts {
		if rs := results[t.name]; t.presence && len(rs) > 0 {
			withPresence[t.engine] = med(rs, connRatio)
		}
	}
	fmt.Println()
	fmt.Println("Ratios: each run's figure over the reference bare server's, measured just before and after it (median of the runs); a bare row's ratio is the noise left. \"connects ÷ bare with presence\" divides a target's connect ratio by that of the bare server that broadcasts the example's presence events too.")
	fmt.Println()
	fmt.Println("| target | connects/s | echo acks/s | echo p50 / p99 | incr acks/s | incr p50 / p99 | CPU µs per echo / incr | generator CPU µs per echo / incr | KiB per idle conn | lost (two tabs) | Redis calls (scripts) per incr | redis-server CPU µs per incr | echo ÷ bare echo | incr ÷ bare echo | connects ÷ bare | connects ÷ bare with presence | connects redialed |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, t := range ts {
		rs := results[t.name]
		if len(rs) == 0 {
			continue
		}
		conn := med(rs, func(r result) float64 { return r.connectsPerSec })
		echo := med(rs, func(r result) float64 { return r.echo.perSec })
		incr := med(rs, func(r result) float64 { return r.incr.perSec })
		lat := func(f func(result) rate) string {
			p50 := time.Duration(med(rs, func(r result) float64 { return float64(f(r).p50) }))
			p99 := time.Duration(med(rs, func(r result) float64 { return float64(f(r).p99) }))
			return fmt.Sprintf("%v / %v", p50.Round(time.Microsecond), p99.Round(time.Microsecond))
		}
		connPresence := "–"
		if p, ok := withPresence[t.engine]; ok && !t.bare {
			connPresence = fmt.Sprintf("%.2f×", med(rs, connRatio)/p)
		}
		incrCells := []string{"–", "–"}
		cpuIncr, genIncr, lost, redisCmds, redisCPU, incrRatio := "–", "–", "–", "–", "–", "–"
		if !t.bare {
			incrCells = []string{fmt.Sprintf("%.0f", incr), lat(func(r result) rate { return r.incr })}
			cpuIncr = fmt.Sprintf("%.0f", med(rs, func(r result) float64 { return r.cpuIncr }))
			genIncr = fmt.Sprintf("%.0f", med(rs, func(r result) float64 { return r.genCPUIncr }))
			lost = fmt.Sprintf("%.0f", med(rs, func(r result) float64 { return float64(r.lost) }))
			incrRatio = ratio(rs, func(r result) float64 { return r.incr.perSec }, refEcho)
			if t.store == "redis" {
				redisCmds = fmt.Sprintf("%.2f (%.2f)", med(rs, func(r result) float64 { return r.redisPerIncr }), med(rs, func(r result) float64 { return r.scriptsPerIncr }))
				redisCPU = fmt.Sprintf("%.0f", med(rs, func(r result) float64 { return r.redisCPUIncr }))
			}
		}
		fmt.Printf("| %s | %.0f | %.0f | %s | %s | %s | %.0f / %s | %.0f / %s | %.1f | %s | %s | %s | %s | %s | %s | %s | %.0f |\n",
			t.name, conn, echo, lat(func(r result) rate { return r.echo }), incrCells[0], incrCells[1],
			med(rs, func(r result) float64 { return r.cpuEcho }), cpuIncr,
			med(rs, func(r result) float64 { return r.genCPUEcho }), genIncr,
			med(rs, func(r result) float64 { return r.kibPerConn }), lost, redisCmds, redisCPU,
			ratio(rs, func(r result) float64 { return r.echo.perSec }, refEcho), incrRatio,
			fmt.Sprintf("%.2f×", med(rs, connRatio)), connPresence, med(rs, func(r result) float64 { return float64(r.redials) }))
	}

	fmt.Println()
	fmt.Println("| target | handshakes/s by cookie | by shim token | token ÷ cookie |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, t := range ts {
		rs := results[t.name]
		if len(rs) == 0 || t.bare {
			continue
		}
		c := med(rs, func(r result) float64 { return r.byCookie })
		k := med(rs, func(r result) float64 { return r.byToken })
		fmt.Printf("| %s | %.0f | %.0f | %.2f× |\n", t.name, c, k, k/c)
	}
}
