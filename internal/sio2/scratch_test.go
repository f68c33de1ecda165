package sio2

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

func TestScratch(t *testing.T) {
	so := socket.DefaultServerOptions()
	so.SetServeClient(false)
	so.SetPingInterval(300 * time.Millisecond)
	so.SetPingTimeout(2000 * time.Millisecond)
	io_ := socket.NewServer(nil, so)
	h := io_.ServeHandler(so)
	io_.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		s.On("hello", func(args ...any) { s.Emit("hi", "x"); s.Emit("hi", "y") })
	})
	_ = io_.Engine().On("connection", func(args ...any) {
		t.Logf("engine connection %T", args[0])
		if e, ok := args[0].(interface{ On(string, ...func(...any)) error }); ok {
			_ = e.On("close", func(a ...any) { t.Log("engine close", a) })
		}
	})
	ts := httptest.NewServer(h)
	defer func() { ts.Close(); io_.Close(nil) }()
	get := func(q string) string {
		r, err := http.Get(ts.URL + "/socket.io/?EIO=4&transport=polling" + q)
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return fmt.Sprintf("%d %s %q", r.StatusCode, r.Header.Get("Content-Type"), b)
	}
	post := func(q, ct, body string) string {
		r, err := http.Post(ts.URL+"/socket.io/?EIO=4&transport=polling"+q, ct, strings.NewReader(body))
		if err != nil {
			return err.Error()
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return fmt.Sprintf("%d %s %q", r.StatusCode, r.Header.Get("Content-Type"), b)
	}
	open := get("")
	t.Log("open:", open)
	i := strings.Index(open, `sid\":\"`)
	sid := open[i+8:]
	sid = sid[:strings.Index(sid, `\"`)]
	q := "&sid=" + sid
	t.Log("get0:", get(q))
	time.Sleep(100 * time.Millisecond)
	t.Log("post 40:", post(q, "text/plain;charset=UTF-8", "40"))
	t.Log("get:", get(q))
	t.Log("post 2 events:", post(q, "text/plain;charset=UTF-8", "42[\"hello\"]\x1e42[\"hello\"]"))
	time.Sleep(100 * time.Millisecond)
	t.Log("get:", get(q))
	// pending GET, then POST
	ch := make(chan string)
	go func() { ch <- get(q) }()
	time.Sleep(100 * time.Millisecond)
	t.Log("post while GET pending:", post(q, "text/plain;charset=UTF-8", "42[\"hello\"]"))
	t.Log("pending get:", <-ch)
	go func() { ch <- get(q) }()
	time.Sleep(50 * time.Millisecond)
	t.Log("overlapping get:", get(q))
	t.Log("first get:", <-ch)
	t.Log("get after:", get(q))
	t.Log("post octet:", post(q, "application/octet-stream", "42[\"hello\"]"))
	t.Log("get after:", get(q))
}
