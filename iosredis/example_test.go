package iosredis_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iosessions/iosessions"
	"github.com/iosessions/iosessions/iosredis"
)

// Every node of the app runs the same code: one Redis, one KeyPrefix and
// the same TokenKeys (from the app's secrets), so that a session, its
// shim token and its logout are good on every node.
func ExampleNewStore() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	store, err := iosredis.NewStore(ctx, client, &iosredis.Options{KeyPrefix: "myapp:session:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	m, err := iosessions.New(store, iosessions.Config{
		Mode:      iosessions.PerMessage, // events of a session serialized across nodes
		TokenKeys: [][]byte{[]byte(os.Getenv("TOKEN_HASH_KEY")), []byte(os.Getenv("TOKEN_BLOCK_KEY"))},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = m // mount m.Middleware and a binding's server, as with any store
}
