package oauthapp

import "testing"

func TestAllowed(t *testing.T) {
	allow := []string{"https://app.example.com/oauth/done", "http://localhost:3000"}
	tests := []struct {
		redirect string
		want     bool
	}{
		{"https://app.example.com/oauth/done", true},
		{"https://app.example.com/oauth/done?user=1", true},
		{"https://app.example.com/oauth/done/more", true},
		{"https://APP.example.com:443/oauth/done", true},
		{"https://app.example.com/oauth/doneX", false},
		{"https://app.example.com/oauth", false},
		{"http://app.example.com/oauth/done", false},
		{"https://app.example.com:8443/oauth/done", false},
		{"https://evil.example.com/oauth/done", false},
		{"https://app.example.com.evil.com/oauth/done", false},
		{"https://user@app.example.com/oauth/done", false},
		{"https://app.example.com/oauth/done#frag", false},
		{"//app.example.com/oauth/done", false},
		{"javascript:alert(1)", false},
		{"http://localhost:3000/anything", true},
		{"http://localhost:3001/", false},
		{"https://app.example.com/oauth/done/../../admin", false},
		{"https://app.example.com/oauth/done/%2e%2e/%2e%2e/admin", false},
	}
	for _, tc := range tests {
		if got := Allowed(allow, tc.redirect); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.redirect, got, tc.want)
		}
	}
	if Allowed(nil, "https://app.example.com/") {
		t.Error("an empty allowlist allowed a redirect")
	}
}
