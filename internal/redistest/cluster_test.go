package redistest

import (
	"context"
	"testing"
	"time"
)

// TestStartCluster: the cluster answers, spreads keys over its three
// masters, and every master owns slots.
func TestStartCluster(t *testing.T) {
	start := time.Now()
	c := StartCluster(t)
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))
	cl := c.Client()
	ctx := context.Background()
	masters := map[string]bool{}
	for i := range 30 {
		key := "k" + string(rune('a'+i))
		if err := cl.Set(ctx, key, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		n, err := cl.MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		masters[n.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Fatalf("30 keys on %d masters, want 3", len(masters))
	}
}
