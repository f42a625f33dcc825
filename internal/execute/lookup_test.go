package execute

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestLookup(t *testing.T) {
	var doc any
	_ = json.Unmarshal([]byte(`{"results":[{"id":"1"},{"id":"2"}],"paging":{"next":{"after":"abc"}},"n":3,"ok":true}`), &doc)
	tests := []struct {
		path string
		want any
	}{
		{"$", doc},
		{"", doc},
		{"$.paging.next.after", "abc"},
		{"$.results[0].id", "1"},
		{"$.results[-1].id", "2"},
		{"$.results[5].id", nil},
		{"$.missing.deeper", nil},
		{"$.n", float64(3)},
		{"$.ok", true},
		{"$.results.id", nil},
		{"results", nil},
		{"$.results[x]", nil},
		{"$.results[0", nil},
	}
	for _, tc := range tests {
		if got := Lookup(doc, tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Lookup(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestLinkCursor(t *testing.T) {
	link := `<https://api.github.com/user/repos?page=3&per_page=2>; rel="next", <https://api.github.com/user/repos?page=5&per_page=2>; rel="last"`
	tests := []struct {
		link, param, want string
	}{
		{link, "page", "3"},
		{`<https://api.github.com/user/repos?page=1>; rel="prev", <https://x/?page=1>; rel="first"`, "page", ""},
		{"", "page", ""},
		{`<https://x/?cursor=abc>; rel="next"`, "cursor", "abc"},
		{`garbage`, "page", ""},
	}
	for _, tc := range tests {
		if got := linkCursor(tc.link, tc.param); got != tc.want {
			t.Errorf("linkCursor(%q, %q) = %q, want %q", tc.link, tc.param, got, tc.want)
		}
	}
}

func FuzzLookup(f *testing.F) {
	for _, s := range []string{"$", "$.a.b", "$.a[0]", "$.a[-1].b", "$[", "$.]"} {
		f.Add(s)
	}
	var doc any
	_ = json.Unmarshal([]byte(`{"a":[{"b":1}],"c":{"d":null}}`), &doc)
	f.Fuzz(func(t *testing.T, path string) {
		_ = Lookup(doc, path) // must not panic
	})
}
