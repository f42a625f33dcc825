package config

import (
	"path/filepath"
	"testing"
	"time"
)

func TestDefaultsAndEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantDB  string
		wantKey string
		wantErr bool
	}{
		{name: "defaults", wantDB: "sqlite:" + filepath.Join("data", "valetkey.db"), wantKey: filepath.Join("data", "keyset.json")},
		{name: "data dir", env: map[string]string{"VALETKEY_DATA_DIR": "/tmp/x"}, wantDB: "sqlite:/tmp/x/valetkey.db", wantKey: "/tmp/x/keyset.json"},
		{name: "explicit", env: map[string]string{"VALETKEY_DATABASE_URL": "postgres://h/db", "VALETKEY_KEYSET_FILE": "/k.json"}, wantDB: "postgres://h/db", wantKey: "/k.json"},
		{name: "bad level", env: map[string]string{"VALETKEY_LOG_LEVEL": "loud"}, wantErr: true},
		{name: "bad format", env: map[string]string{"VALETKEY_LOG_FORMAT": "xml"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			c, err := FromEnv()
			if err != nil {
				t.Fatal(err)
			}
			err = c.Resolve()
			if tc.wantErr {
				if err == nil {
					t.Fatal("want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DatabaseURL != tc.wantDB || c.KeysetFile != tc.wantKey {
				t.Fatalf("got %q %q", c.DatabaseURL, c.KeysetFile)
			}
			if c.Addr != "127.0.0.1:8080" && tc.env["VALETKEY_ADDR"] == "" {
				t.Fatalf("addr default = %q", c.Addr)
			}
		})
	}
}

func TestPublicURLDefaultsToListenAddr(t *testing.T) {
	c := Config{}
	if got := c.PublicURLFor("127.0.0.1:9999"); got != "http://127.0.0.1:9999" {
		t.Fatal(got)
	}
	c.PublicURL = "https://vk.example.com"
	if got := c.PublicURLFor("x"); got != "https://vk.example.com" {
		t.Fatal(got)
	}
}

// TestDefaultsIgnoreTheEnvironment: Defaults is what an empty environment
// gives, whatever this process's environment holds.
func TestDefaultsIgnoreTheEnvironment(t *testing.T) {
	t.Setenv("VALETKEY_API_KEY_CACHE_TTL", "1h")
	d := Defaults()
	if d.APIKeyCacheTTL != 5*time.Second || d.Addr != "127.0.0.1:8080" || d.RateLimit != 1000 {
		t.Fatalf("defaults: cache %v, addr %q, rate %v", d.APIKeyCacheTTL, d.Addr, d.RateLimit)
	}
}
