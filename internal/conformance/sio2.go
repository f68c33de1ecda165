package conformance

import (
	"context"
	"encoding/json"
	"net/url"
	"time"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/internal/sio2"
)

// DialSIO2 returns a Dial of internal/sio2, the suite's own wire-protocol
// client, speaking engine.io protocol eio (3: socket.io-client 2.x, the
// token in the query; 4: 3.x/4.x, the token in the auth payload). It does
// not retry: a connect that goes unanswered fails the case.
func DialSIO2(eio int) func(ctx context.Context, url string, o DialOptions) (Client, error) {
	return func(ctx context.Context, base string, o DialOptions) (Client, error) {
		opts := sio2.Options{Transport: sio2.Transport(o.Transport), Header: o.Header, EIO: eio, AckEvents: !o.NoAck}
		params := map[string]string{}
		if o.Token != "" {
			params[iosessions.TokenParam] = o.Token
		}
		if o.Writeback {
			params[iosessions.WritebackParam] = "1"
		}
		for k, v := range params {
			if eio == 4 {
				if opts.Auth == nil {
					opts.Auth = map[string]any{}
				}
				opts.Auth[k] = v
			} else {
				if opts.Query == nil {
					opts.Query = url.Values{}
				}
				opts.Query.Set(k, v)
			}
		}
		// A last resort only: the binding answers every connect; a
		// loaded machine (-race beside CPU hogs) can take seconds.
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		c, err := sio2.Dial(dctx, base, opts)
		if err != nil {
			return nil, err
		}
		go forward(c, o.OnEvent)
		return sio2Client{c}, nil
	}
}

// forward hands c's events to on (if any), in order, until c ends and
// every event it received was handed: Events is closed after the last.
// (It selected on Done too, and so dropped an event that arrived just
// before the server's disconnect packet, such as "sinvalid", whenever
// the select picked Done first.)
func forward(c *sio2.Client, on func(string, []json.RawMessage)) {
	for ev := range c.Events() {
		if on != nil {
			on(ev.Name, ev.Args)
		}
	}
}

type sio2Client struct{ c *sio2.Client }

func (s sio2Client) Send(ctx context.Context, event string, args ...any) (<-chan Ack, error) {
	ch, err := s.c.EmitAck(ctx, event, args...)
	if err != nil {
		return nil, err
	}
	out := make(chan Ack, 1)
	go func() {
		select {
		case a := <-ch:
			out <- Ack{Args: a.Args, Seq: a.Seq}
		case <-ctx.Done():
		case <-s.c.Done():
		}
	}()
	return out, nil
}

func (s sio2Client) Done() <-chan struct{} { return s.c.Done() }
func (s sio2Client) Close() error          { return s.c.Close() }
