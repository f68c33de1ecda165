package iosessions

import (
	"fmt"
	"reflect"
	"testing"
)

func TestFrozen(t *testing.T) {
	for _, n := range []int{0, 3, frozenIndexed + 4} {
		t.Run(fmt.Sprint(n, " values"), func(t *testing.T) {
			values := map[any]any{}
			for i := range n {
				values[fmt.Sprint("k", i)] = i
			}
			values[7] = map[string]any{"nested": []any{"x"}} // not a string key
			f, err := freeze(values)
			if err != nil {
				t.Fatal(err)
			}
			if (f.idx != nil) != (len(values) > frozenIndexed) {
				t.Errorf("index: %v with %d values", f.idx != nil, len(values))
			}
			for k, v := range values {
				if got, ok := f.get(k); !ok || !reflect.DeepEqual(got, v) {
					t.Errorf("get(%v) = %v, %v; want %v", k, got, ok, v)
				}
			}
			for _, k := range []any{"absent", int64(7), "7"} {
				if got, ok := f.get(k); ok {
					t.Errorf("get(%#v) = %v, found", k, got)
				}
			}

			// A deep copy each way: neither side sees the other's writes.
			values[7].(map[string]any)["nested"].([]any)[0] = "changed"
			thawed, err := f.thaw()
			if err != nil {
				t.Fatal(err)
			}
			if got := thawed[7].(map[string]any)["nested"].([]any)[0]; got != "x" {
				t.Fatalf("frozen value changed with the map it was frozen from: %v", got)
			}
			thawed[7].(map[string]any)["nested"] = "other"
			if v, _ := f.get(7); !reflect.DeepEqual(v, map[string]any{"nested": []any{"x"}}) {
				t.Fatalf("frozen value changed with a thawed copy: %v", v)
			}

			b := []byte("b")
			g, err := f.with(changes{set: []frozenValue{{"new", true}, {7, b}}, del: []any{"k0", "absent"}})
			if err != nil {
				t.Fatal(err)
			}
			b[0] = 'c'
			want := map[any]any{"new": true, 7: []byte("b")}
			for i := 1; i < n; i++ {
				want[fmt.Sprint("k", i)] = i
			}
			got, _ := g.thaw()
			if !reflect.DeepEqual(got, want) {
				t.Errorf("with: %v, want %v", got, want)
			}
			if _, ok := f.get("new"); ok || len(f.kv) != len(values) {
				t.Errorf("with changed the frozen it was called on")
			}
		})
	}
}
