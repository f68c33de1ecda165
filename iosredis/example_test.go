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

// On Redis Cluster, the Store takes a cluster client; nothing else
// changes. A session's keys share a hash slot through the hash tag of its
// id, and pub/sub reaches every node of the cluster.
func ExampleNewStore_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs: []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"},
	})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	store, err := iosredis.NewStore(ctx, client, &iosredis.Options{KeyPrefix: "myapp:session:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = store // iosessions.New(store, …) as with one Redis
}

// Behind Sentinel, the Store takes a failover client, which follows the
// master that the sentinels elect.
func ExampleNewStore_sentinel() {
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:    "mymaster",
		SentinelAddrs: []string{"10.0.0.1:26379", "10.0.0.2:26379", "10.0.0.3:26379"},
	})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	store, err := iosredis.NewStore(ctx, client, &iosredis.Options{KeyPrefix: "myapp:session:"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_ = store // iosessions.New(store, …) as with one Redis
}
