package shared

import (
	"reflect"
	"testing"
)

func TestSplitLocation(t *testing.T) {
	tests := []struct {
		in   string
		want []any
	}{
		{"body.name", []any{"body", "name"}},
		{"body.items[2].x", []any{"body", "items", 2, "x"}},
		{"body", []any{"body"}},
		{"query.limit", []any{"query", "limit"}},
		{"body.a[x]", []any{"body", "a", "x"}},
	}
	for _, tc := range tests {
		if got := splitLocation(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitLocation(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzSplitLocation(f *testing.F) {
	for _, s := range []string{"body.name", "body.items[2].x", "[", "]", "a[[1]]", "a.b.[3]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { _ = splitLocation(s) })
}
