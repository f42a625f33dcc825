package oauthapp

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzAllowed: a redirect URL the allowlist check accepts, once serialised
// as Valetkey sends it (parsed, query added, String) and read the way a
// browser reads a Location (authority up to the first / \ ? #, backslashes
// as slashes, %2e as a dot, dot segments removed), has exactly the entry's
// scheme, host and port, no user info, and a path under the entry's.
func FuzzAllowed(f *testing.F) {
	for _, s := range [][2]string{
		{"https://app.example.com/integrations/done", "https://app.example.com/integrations/done?user=42"},
		{"https://app.example.com/integrations", "https://app.example.com/integrations/../admin"},
		{"https://app.example.com/integrations", "https://app.example.com/integrations/%2e%2e/admin"},
		{"https://app.example.com/a", "https://app.example.com/a\\..\\b"},
		{"https://app.example.com", "https://evil.example\\@app.example.com/"},
		{"https://app.example.com", "https://app.example.com@evil.example/"},
		{"http://localhost:3000/cb", "http://localhost:3000/cb#frag"},
		{"https://app.example.com:443/", "https://APP.example.com/x"},
		{"https://app.example.com/a/", "https://app.example.com/a/b/./c"},
		{"https://app.example.com/a", "https://app.example.com/ab"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, entry, redirect string) {
		if !Allowed([]string{entry}, redirect) {
			return
		}
		a, err := parseAbsolute(entry)
		if err != nil {
			t.Fatalf("allowed by an invalid entry %q", entry)
		}
		r, err := url.Parse(redirect)
		if err != nil {
			t.Fatalf("allowed an unparsable %q", redirect)
		}
		q := r.Query()
		q.Add("status", "success")
		r.RawQuery = q.Encode()
		sent := r.String()
		scheme, authority, rest := browserSplit(sent)
		wantScheme, want, _ := browserSplit((&url.URL{Scheme: a.Scheme, Host: a.Host}).String())
		if !strings.EqualFold(scheme, wantScheme) {
			t.Fatalf("%q (entry %q) sent as %q: scheme", redirect, entry, sent)
		}
		if strings.Contains(authority, "@") || !sameAuthority(authority, want, port(a)) {
			t.Fatalf("%q (entry %q) sent as %q: a browser goes to %q", redirect, entry, sent, authority)
		}
		if p := browserPath(rest); !under(p, browserPath(a.EscapedPath())) {
			t.Fatalf("%q (entry %q) sent as %q: a browser reads the path %q", redirect, entry, sent, p)
		}
	})
}

// browserSplit splits a URL as a browser reads an http(s) one: scheme,
// authority (up to the first / \\ ? or #) and the rest.
func browserSplit(u string) (scheme, authority, rest string) {
	scheme, rest, _ = strings.Cut(u, "://")
	end := strings.IndexAny(rest, "/\\?#")
	if end < 0 {
		end = len(rest)
	}
	return scheme, rest[:end], rest[end:]
}

// sameAuthority compares host[:port] forms, the port defaulting to def.
func sameAuthority(got, want, def string) bool {
	withPort := func(a string) string {
		a = strings.TrimSuffix(a, ":") // an empty port is the default
		if i := strings.LastIndexByte(a, ':'); i > strings.LastIndexByte(a, ']') {
			return strings.ToLower(a)
		}
		return strings.ToLower(a) + ":" + def
	}
	return withPort(got) == withPort(want)
}

// browserPath is the path a browser takes from the rest of a URL after its
// authority.
func browserPath(rest string) string {
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.ReplaceAll(rest, "\\", "/")
	var out []string
	for _, seg := range strings.Split(rest, "/") {
		switch strings.ToLower(seg) {
		case ".", "%2e":
		case "..", ".%2e", "%2e.", "%2e%2e":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	return strings.Join(out, "/")
}

// under reports whether path p is prefix or under it, segment-wise.
func under(p, prefix string) bool {
	prefix = strings.Trim(prefix, "/")
	p = strings.Trim(p, "/")
	return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/")
}
