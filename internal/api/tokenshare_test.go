package api_test

import (
	"sync"
	"testing"
	"time"

	"github.com/valetkey/valetkey/internal/testkit"
	"github.com/valetkey/valetkey/internal/testkit/pipedream"
)

// A /token read without include_refresh_token must leave the credential it
// was handed alone: that payload may be shared with other callers (those
// that joined the same refresh) or cached (an auth provider's account).
// TestMixedLoad found the read deleting refresh_token from the shared map:
// a data race between concurrent reads (a process-killing "concurrent map
// writes" without -race) and, from the provider cache, refresh tokens
// missing from later reads that asked for them.
func TestTokenReadLeavesSharedCredentialAlone(t *testing.T) {
	t.Run("auth provider cache", func(t *testing.T) {
		e := newPipedreamEnv(t)
		exp := time.Now().Add(time.Hour).UTC()
		e.pd.AddAccount(pdProject, pipedream.Account{ID: "apn_good", AppSlug: "notion", Healthy: true,
			Credentials: notionCreds("LEAKCANARYPdAccessQ7Z9"), ExpiresAt: &exp}) // cached until expiry − margin
		rid := e.register(t)
		r := e.s.Do(t, e.s.Key, "POST", "/source-connections", map[string]any{"name": "Team Notion", "short_name": "notion",
			"auth_provider": rid, "auth_provider_config": map[string]any{"project_id": pdProject, "account_id": "apn_good"}})
		wantStatus(t, r, 200)
		id := r.Map(t)["id"].(string)
		for i, include := range []bool{false, true, false, true} {
			path := "/source-connections/" + id + "/token"
			if include {
				path += "?include_refresh_token=true"
			}
			tok := e.s.Do(t, e.s.Key, "GET", path, nil).Map(t)
			if _, has := tok["refresh_token"]; has != include || tok["access_token"] != "LEAKCANARYPdAccessQ7Z9" {
				t.Fatalf("read %d (include_refresh_token=%v): refresh_token present %v, access token %v", i, include, has, tok["access_token"] != nil)
			}
		}
	})

	t.Run("readers sharing one refresh", func(t *testing.T) {
		e := testkit.NewOAuthEnv(t, testkit.SQLiteURL(t))
		id := e.Connect(t)
		e.Clock.Advance(56 * time.Minute) // within the 5-minute margin of the 1 h token: due
		e.AS.SetTokenDelay(300 * time.Millisecond)
		before := e.AS.TokenRequests("refresh_token")
		const readers = 16
		var wg sync.WaitGroup
		got := make([]map[string]any, readers)
		status := make([]int, readers)
		for i := range readers {
			wg.Go(func() {
				path := "/source-connections/" + id + "/token"
				if i%2 == 1 {
					path += "?include_refresh_token=true"
				}
				r := e.S.Do(t, e.S.Key, "GET", path, nil)
				status[i] = r.Status
				if r.Status == 200 {
					got[i] = r.Map(t)
				}
			})
		}
		wg.Wait()
		for i := range readers {
			if status[i] != 200 {
				t.Fatalf("reader %d: status %d", i, status[i])
			}
			if _, has := got[i]["refresh_token"]; has != (i%2 == 1) {
				t.Errorf("reader %d (include_refresh_token=%v): refresh_token present %v", i, i%2 == 1, has)
			}
		}
		if n := e.AS.TokenRequests("refresh_token") - before; n != 1 {
			t.Errorf("%d refresh requests, want the readers to share 1", n)
		}
	})
}
