package zishang520_test

// The engine's two connect races, measured with a raw wire client: a
// namespace connect sent the moment the open packet arrives, and an event
// sent the moment the connect answer arrives. Real clients do both.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
	"github.com/iosessions/iosessions/zishang520"
)

// Outcomes of one raw connect.
var (
	errRawUnanswered = errors.New("namespace connect unanswered")
	errRawLost       = errors.New("event after the connect answer not acked")
	errRawProbe      = errors.New("upgrade probe unanswered")
)

// rawConnect dials url over websocket and, with no pause at any step,
// sends the namespace connect on the open packet and an "echo" event with
// an ack on the connect answer; it returns nil when the ack came.
func rawConnect(url string, wait time.Duration) error {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	read := func() (string, error) {
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				return "", err
			}
			if s := string(p); s != "2" { // a ping: not what we wait for
				return s, nil
			}
			if err := ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				return "", err
			}
		}
	}
	if p, err := read(); err != nil || !strings.HasPrefix(p, "0{") {
		return fmt.Errorf("open packet %q: %v", p, err)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("40")); err != nil {
		return err
	}
	for {
		p, err := read()
		if err != nil {
			return fmt.Errorf("%w: %v", errRawUnanswered, err)
		}
		if strings.HasPrefix(p, "40{") {
			break
		}
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`421["echo","x"]`)); err != nil {
		return err
	}
	for {
		p, err := read()
		if err != nil {
			return fmt.Errorf("%w: %v", errRawLost, err)
		}
		if p == `431["x"]` {
			return nil
		}
	}
}

// rawUpgrade opens an engine session over polling, upgrades it to
// websocket and sends the probe at once; it returns nil when the probe is
// answered.
func rawUpgrade(hc *http.Client, base string, wait time.Duration) error {
	resp, err := hc.Get(base + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var open struct{ Sid string }
	if err != nil || len(body) < 2 || json.Unmarshal(body[1:], &open) != nil || open.Sid == "" {
		return fmt.Errorf("handshake %q: %v", body, err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket&sid="+open.Sid, nil)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		return err
	}
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	for {
		_, p, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("%w: %v", errRawProbe, err)
		}
		if string(p) == "3probe" { // complete the upgrade, as clients do
			return ws.WriteMessage(websocket.TextMessage, []byte("5"))
		}
	}
}

// envInt returns the environment variable name as a number, or def when
// it is unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// echoServer serves a binding with an "echo" event that acks its
// argument, after widen (if not nil) listened on the engine; it returns the
// server's URL and the URL of a websocket handshake.
func echoServer(t *testing.T, widen func(engine.BaseServer) error) (base, wsURL string) {
	t.Helper()
	m, err := iosessions.New(nil, iosessions.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zishang520.NewServer(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	zishang520.OnEvent(srv, "echo", func(_ *iosessions.Socket, in json.RawMessage) (json.RawMessage, error) { return in, nil })
	if widen != nil {
		if err := widen(srv.Engine().Engine()); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(m.Middleware(srv))
	t.Cleanup(func() {
		_ = m.Shutdown(context.Background())
		_ = srv.Close()
		ts.CloseClientConnections()
		ts.Close()
	})
	return ts.URL, "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
}

// TestConnectRaces connects a raw websocket client many times, 8 at once,
// and counts connects left unanswered and events lost right after the
// connect answer: there must be none. IOSESSIONS_CONNECTS sets how many
// (default 2,000; the closing note of the CI issue reports 100,000 on a
// normal build and 20,000 under -race).
func TestConnectRaces(t *testing.T) {
	n := envInt(t, "IOSESSIONS_CONNECTS", 2000)
	base, url := echoServer(t, nil)
	hc := &http.Client{}
	t.Cleanup(hc.CloseIdleConnections)

	var next, unanswered, lost, probes atomic.Int64
	var mu sync.Mutex
	var other []error
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				// Well under the binding's 3 s connect timeout, so that a
				// lost connect is seen as such, not as a close.
				err := rawConnect(url, 2*time.Second)
				if err == nil && i%10 == 0 { // and every tenth time, an upgrade
					err = rawUpgrade(hc, base, 2*time.Second)
				}
				switch {
				case err == nil:
				case errors.Is(err, errRawUnanswered):
					unanswered.Add(1)
				case errors.Is(err, errRawLost):
					lost.Add(1)
				case errors.Is(err, errRawProbe):
					probes.Add(1)
				default:
					mu.Lock()
					other = append(other, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d connects and %d upgrades in %v: %d connects unanswered, %d events lost after the connect answer, %d probes unanswered, %d other errors",
		n, n/10, time.Since(start).Round(time.Millisecond), unanswered.Load(), lost.Load(), probes.Load(), len(other))
	if unanswered.Load() != 0 || lost.Load() != 0 || probes.Load() != 0 || len(other) != 0 {
		t.Errorf("want every connect answered and every event acked; other errors: %v", other[:min(len(other), 5)])
	}
	resp, err := hc.Get(base + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatalf("server gone after the run: %v", err)
	}
	_ = resp.Body.Close()
}

// TestConnectRacesWidened makes each race window of the engine wide with
// the engine's own events, so that the client's packet lands in it every
// time: the namespace connect arriving before the socket.io layer listens
// (a pause in the engine server's "drain" of the open packet, before it
// emits "connection"), and an event arriving before the socket is stored
// (a pause in the engine socket's "drain" of the connect answer, before
// the callback that stores it). Without the binding's gates every connect
// of the first case is left unanswered, every event of the second lost.
func TestConnectRacesWidened(t *testing.T) {
	const pause = 100 * time.Millisecond
	for _, tc := range []struct {
		name  string
		widen func(eng engine.BaseServer) error
	}{
		{"open", func(eng engine.BaseServer) error {
			// The server's first "drain" of a connection, of its
			// open packet, comes after the transport took the packet
			// and before "connection".
			var seen sync.Map
			return eng.On("drain", func(args ...any) {
				if es, ok := args[0].(engine.Socket); ok {
					if _, again := seen.LoadOrStore(es.Id(), true); !again {
						time.Sleep(pause)
					}
				}
			})
		}},
		{"answer", func(eng engine.BaseServer) error {
			return eng.On("connection", func(args ...any) {
				es := args[0].(engine.Socket)
				var answer atomic.Bool
				_ = es.On("flush", func(args ...any) {
					for _, p := range args[0].([]*packet.Packet) {
						if b, ok := p.Data.(*types.StringBuffer); ok && strings.HasPrefix(b.String(), "0{") {
							answer.Store(true)
						}
					}
				})
				_ = es.On("drain", func(...any) {
					if answer.Swap(false) {
						time.Sleep(pause)
					}
				})
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, url := echoServer(t, tc.widen)
			for i := range 5 {
				if err := rawConnect(url, 2*time.Second); err != nil {
					t.Fatalf("websocket connect %d: %v", i, err)
				}
			}
			// Polling, for the gate's path on a POST: there the pauses
			// do not open the windows (the answer waits for the next
			// GET, which comes after the POST of the connect).
			for i := range 3 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				c, err := sio2.Dial(ctx, base, sio2.Options{Transport: sio2.Polling, EIO: 4})
				if err == nil {
					_, err = c.Call(ctx, "echo", "x")
					_ = c.Close()
				}
				cancel()
				if err != nil {
					t.Fatalf("polling connect %d: %v", i, err)
				}
			}
		})
	}
}

// TestPollingRace runs polling clients that poll again the moment an
// answer arrives (sio2's NoRepoll), 8 at once, each sending 10 echo
// events one after the other, and counts echoes not acked: there must be
// none. IOSESSIONS_POLLERS sets how many clients (default 200).
func TestPollingRace(t *testing.T) {
	if raceEnabled {
		// Clients closing mid-poll trip the engine's own polling data race
		// (HttpContext.contextWatcher against polling.onPollRequest, in
		// v3.0.2, not in the binding); scripts/test.sh runs this test
		// once more without -race.
		t.Skip("trips the v4 engine's own polling data race; run without -race")
	}
	n := envInt(t, "IOSESSIONS_POLLERS", 200)
	base, _ := echoServer(t, nil)
	var next, lost, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				c, err := sio2.Dial(ctx, base, sio2.Options{Transport: sio2.Polling, EIO: 4, NoRepoll: true})
				cancel()
				if err != nil {
					failed.Add(1)
					continue
				}
				for i := range 10 {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					a, err := c.Call(ctx, "echo", i)
					cancel()
					if err != nil || len(a) != 1 || string(a[0]) != strconv.Itoa(i) {
						lost.Add(1)
						break
					}
				}
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d polling clients x 10 echo in %v: %d clients lost an echo, %d dials failed",
		n, time.Since(start).Round(time.Millisecond), lost.Load(), failed.Load())
	if lost.Load() != 0 || failed.Load() != 0 {
		t.Error("want every echo acked")
	}
}
