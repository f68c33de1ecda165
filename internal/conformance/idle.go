package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
)

// IdleServer is a server under IdleConns.
type IdleServer struct {
	// Handler serves /socket.io/.
	Handler http.Handler
	// Cookies are the Cookie headers of the connections, one each (see
	// SessionCookies), or nil to send none.
	Cookies []string
	// Login, if set, makes the sessions instead of Cookies, after the
	// baseline is taken, so that their memory in the store is counted:
	// it returns one Cookie header each (see MemorySessionCookies).
	Login func(n int) []string
	// Connected returns how many sockets are connected: counted by the
	// connection handler, so that a socket is counted once the server
	// has done its part of the connect.
	Connected func() int
	// Close stops the server.
	Close func()
}

// idleEnv, set to "1", makes IdleChild the client process of IdleConns.
const idleEnv = "IOSESSIONS_IDLE_CHILD"

// idleConfig is what IdleConns sends its client process, as the first
// line of its standard input; the cookies follow, one a line.
type idleConfig struct {
	URL     string
	EIO     int
	N       int
	Cookies bool
}

// IdleConns measures the heap that n idle websocket connections hold in
// a server, and reports it as "B/conn" (and "goroutines/conn"): the live
// heap after a GC with the n sockets connected, less the live heap before
// they connected, over n. The clients (internal/sio2, speaking engine.io
// protocol eio) run in a child process, the test binary running
// IdleChild (the binding's tests must have a TestIdleChild that calls
// it), so that none of their memory is counted. newServer makes the
// server for n connections; what it allocates is part of the baseline.
// Run it with -benchtime=1x: each iteration connects n clients. With
// IOSESSIONS_IDLE_HEAPPROFILE=PREFIX it writes a heap profile of each
// case (heapProfileEnv).
//
// A first, unmeasured run of n connections warms the process up, so that
// every case is measured alike, whichever runs first: the first time a
// process runs n connections it allocates what later runs reuse, most of
// it the runtime's descriptors of their goroutines (some 1.8 KB a
// connection, kept for reuse after they exit).
func IdleConns(b *testing.B, eio, n int, newServer func(n int) IdleServer) {
	raiseOpenFiles()
	if os.Getenv(heapProfileEnv) != "" {
		runtime.MemProfileRate = 1 // every allocation: a profile to subtract from another
	}
	idleOnce(b, eio, n, newServer)
	var heap, goroutines float64
	for range b.N {
		h, g := idleOnce(b, eio, n, newServer)
		heap += h
		goroutines += g
	}
	b.ReportMetric(heap/float64(b.N), "B/conn")
	b.ReportMetric(goroutines/float64(b.N), "goroutines/conn")
}

func idleOnce(b *testing.B, eio, n int, newServer func(n int) IdleServer) (heap, goroutines float64) {
	// The goroutines of the run end before the next: they would be
	// counted in its baseline.
	defer settleGoroutines(runtime.NumGoroutine(), time.Minute)
	srv := newServer(n)
	ts := httptest.NewServer(srv.Handler)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleChild$", "-test.count=1")
	var stdin io.WriteCloser
	var once sync.Once
	stop := func() {
		once.Do(func() {
			// The server first, then the client process.
			srv.Close()
			ts.CloseClientConnections()
			ts.Close()
			if stdin != nil {
				stdin.Close()
				_ = cmd.Wait()
			}
		})
	}
	defer stop()
	before, g0 := liveHeap()
	cookies := srv.Cookies
	if srv.Login != nil {
		cookies = srv.Login(n)
	}

	cmd.Env = append(os.Environ(), idleEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stdin = in
	w := bufio.NewWriter(stdin)
	cfg, _ := json.Marshal(idleConfig{URL: ts.URL, EIO: eio, N: n, Cookies: cookies != nil})
	fmt.Fprintf(w, "%s\n", cfg)
	for _, c := range cookies {
		fmt.Fprintln(w, c)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			b.Fatalf("client process: %q", line)
		}
	case <-time.After(3 * time.Minute):
		b.Fatal("client process: not ready after 3 min")
	}
	for deadline := time.Now().Add(time.Minute); srv.Connected() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sockets connected after 1 min", srv.Connected(), n)
		}
	}
	after, g1 := liveHeap()
	if prefix := os.Getenv(heapProfileEnv); prefix != "" {
		writeHeapProfile(b, prefix+"."+strings.ReplaceAll(b.Name(), "/", "-"))
	}
	return float64(int64(after)-int64(before)) / float64(n), float64(g1-g0) / float64(n)
}

// heapProfileEnv names the environment variable that, set to a path
// prefix, makes IdleConns write the heap profile of each case, with every
// allocation recorded, to PREFIX.BenchmarkName-case-n, once its n
// connections are in: compare two cases with go tool pprof -diff_base.
const heapProfileEnv = "IOSESSIONS_IDLE_HEAPPROFILE"

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// settleGoroutines waits, up to wait, until at most n goroutines (and a
// few) run, or their number has not changed for a second (an engine may
// leave some behind).
func settleGoroutines(n int, wait time.Duration) {
	last, since := -1, time.Now()
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		g := runtime.NumGoroutine()
		if g <= n+10 || (g == last && time.Since(since) > time.Second) {
			return
		}
		if g != last {
			last, since = g, time.Now()
		}
	}
}

// liveHeap returns the heap in use after a full GC, and the goroutines.
func liveHeap() (uint64, int) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, runtime.NumGoroutine()
}

// SessionCookies returns n Cookie headers, each of a different session
// (with a "user" value) that store decodes, under the cookie name.
func SessionCookies(store *sessions.CookieStore, name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		v, err := securecookie.EncodeMulti(name, map[any]any{"user": fmt.Sprint("user", i)}, store.Codecs...)
		if err != nil {
			panic(err) // fixed keys and values: cannot fail
		}
		out[i] = (&http.Cookie{Name: name, Value: v}).String()
	}
	return out
}

// CookieIdle returns the newServer of IdleConns for a binding: serverOf's
// server with a gorilla CookieStore of the keys, each connection with a
// session of its own in its cookie (no store memory).
func CookieIdle(serverOf func(sessions.Store) IdleServer, hashKey, blockKey []byte) func(n int) IdleServer {
	return func(n int) IdleServer {
		store := sessions.NewCookieStore(hashKey, blockKey)
		srv := serverOf(store)
		srv.Cookies = SessionCookies(store, "session", n)
		return srv
	}
}

// MemoryIdle is CookieIdle with the library's MemoryStore: the sessions
// are made after the baseline, so their memory in the store is counted.
func MemoryIdle(serverOf func(sessions.Store) IdleServer) func(n int) IdleServer {
	return func(int) IdleServer {
		store := iosessions.NewMemoryStore()
		srv := serverOf(store)
		srv.Login = func(n int) []string { return MemorySessionCookies(store, "session", n) }
		stop := srv.Close
		srv.Close = func() { stop(); _ = store.Close() }
		return srv
	}
}

// MemorySessionCookies logs n sessions (each with a "user" value) into
// store, as an HTTP handler would, and returns their Cookie headers.
func MemorySessionCookies(store *iosessions.MemoryStore, name string, n int) []string {
	out := make([]string, n)
	for i := range out {
		r := httptest.NewRequest(http.MethodPost, "/login", nil)
		w := httptest.NewRecorder()
		sess, err := store.New(r, name)
		if err != nil {
			panic(err)
		}
		sess.Values["user"] = fmt.Sprint("user", i)
		if err := sess.Save(r, w); err != nil {
			panic(err)
		}
		c := w.Result().Cookies()
		if len(c) == 0 {
			panic("MemoryStore.Save set no cookie")
		}
		out[i] = (&http.Cookie{Name: name, Value: c[len(c)-1].Value}).String()
	}
	return out
}

// IdleChild is the client process of IdleConns: the binding's tests call
// it from TestIdleChild. Outside such a process it skips the test. It
// dials the connections IdleConns asks for, writes "ready" and holds them
// until its standard input closes, then exits the process.
func IdleChild(t *testing.T) {
	if os.Getenv(idleEnv) != "1" {
		t.Skip("the client process of BenchmarkIdleConn")
	}
	raiseOpenFiles()
	if err := idleChild(os.Stdin); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0) // the connections end with the process
}

func idleChild(in io.Reader) error {
	r := bufio.NewReader(in)
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	var cfg idleConfig
	if err := json.Unmarshal([]byte(line), &cfg); err != nil {
		return err
	}
	cookies := make([]string, cfg.N)
	if cfg.Cookies {
		for i := range cookies {
			c, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			cookies[i] = c[:len(c)-1]
		}
	}
	clients := make([]*sio2.Client, cfg.N)
	jobs := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				c, err := idleDial(cfg, cookies[i])
				if err != nil {
					select {
					case errs <- fmt.Errorf("connection %d: %w", i, err):
					default:
					}
					continue
				}
				clients[i] = c
			}
		}()
	}
	for i := range cfg.N {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Println("ready")
	return nil
}

// idleDial dials one websocket client; a namespace connect that the
// engine leaves unanswered (zishang520 v3.0.2, now and then) is redialed.
func idleDial(cfg idleConfig, cookie string) (*sio2.Client, error) {
	h := http.Header{}
	if cookie != "" {
		h.Set("Cookie", cookie)
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := sio2.Dial(ctx, cfg.URL, sio2.Options{Header: h, EIO: cfg.EIO})
		cancel()
		if err == nil || attempt == 4 || !errors.Is(err, sio2.ErrConnectUnanswered) {
			return c, err
		}
	}
}
