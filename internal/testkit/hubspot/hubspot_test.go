package hubspot

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const goodToken = "pat-na1-good"

func newEmulator(t *testing.T) *Emulator {
	t.Helper()
	return New(t, func(tok string) bool { return tok == goodToken || tok == "pat-na1-other" })
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, method, url, auth, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: body %q is not a JSON object: %v", method, url, raw, err)
		}
	}
	return r
}

func get(t *testing.T, e *Emulator, path string) response {
	t.Helper()
	return call(t, http.MethodGet, e.URL+path, "Bearer "+goodToken, "")
}

func send(t *testing.T, e *Emulator, method, path, body string) response {
	t.Helper()
	return call(t, method, e.URL+path, "Bearer "+goodToken, body)
}

func results(t *testing.T, r response) []map[string]any {
	t.Helper()
	raw, ok := r.body["results"].([]any)
	if !ok {
		t.Fatalf("no results array in %s", r.raw)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

func props(o map[string]any) map[string]any { return o["properties"].(map[string]any) }

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkError asserts HubSpot's error envelope.
func checkError(t *testing.T, r response, status int, category, messagePart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.raw)
	}
	if r.body["status"] != "error" {
		t.Errorf("status field = %v, want \"error\" (body %s)", r.body["status"], r.raw)
	}
	if c, _ := r.body["category"].(string); c != category {
		t.Errorf("category = %q, want %q (body %s)", c, category, r.raw)
	}
	if m, _ := r.body["message"].(string); !strings.Contains(m, messagePart) {
		t.Errorf("message = %q, want it to contain %q", m, messagePart)
	}
	id, _ := r.body["correlationId"].(string)
	if !uuidRE.MatchString(id) {
		t.Errorf("correlationId = %q, want a UUID", id)
	}
	if got := r.header.Get("X-HubSpot-Correlation-Id"); got != id {
		t.Errorf("X-HubSpot-Correlation-Id = %q, want %q", got, id)
	}
}

func TestAuth(t *testing.T) {
	e := newEmulator(t)
	e.Seed("contacts", 1)
	cases := []struct {
		name       string
		auth       string
		wantStatus int
		wantScheme string
	}{
		{"no header", "", http.StatusUnauthorized, ""},
		{"unknown token", "Bearer nope", http.StatusUnauthorized, "Bearer"},
		{"basic scheme", "Basic " + goodToken, http.StatusUnauthorized, "Basic"},
		{"bearer without token", "Bearer", http.StatusUnauthorized, "Bearer"},
		{"valid token", "Bearer " + goodToken, http.StatusOK, "Bearer"},
		{"lower-case scheme", "bearer pat-na1-other", http.StatusOK, "bearer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, http.MethodGet, e.URL+"/crm/v3/objects/contacts", tc.auth, "")
			if tc.wantStatus == http.StatusUnauthorized {
				checkError(t, r, http.StatusUnauthorized, "INVALID_AUTHENTICATION", "Authentication credentials not found")
			} else if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", r.status, tc.wantStatus, r.raw)
			}
			if got := e.LastAuthorization(); got != tc.wantScheme {
				t.Errorf("LastAuthorization = %q, want %q", got, tc.wantScheme)
			}
			if strings.Contains(e.LastAuthorization(), goodToken) {
				t.Error("LastAuthorization leaks the token")
			}
		})
	}
	want := []string{"nope", goodToken, "pat-na1-other"}
	if got := e.SeenTokens(); !reflect.DeepEqual(got, want) {
		t.Errorf("SeenTokens = %v, want %v", got, want)
	}
	if got := e.Requests(); got != int64(len(cases)) {
		t.Errorf("Requests = %d, want %d", got, len(cases))
	}
}

func TestNilValidAcceptsAnyToken(t *testing.T) {
	e := New(t, nil)
	if r := call(t, http.MethodGet, e.URL+"/crm/v3/objects/deals", "Bearer anything", ""); r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", r.status)
	}
	if r := call(t, http.MethodGet, e.URL+"/crm/v3/objects/deals", "", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("status = %d, want 401", r.status)
	}
}

func TestListPagingWalksAllPages(t *testing.T) {
	cases := []struct {
		objectType string
		seed       int
		query      string
		wantPages  int
		wantSize   int // first page size
	}{
		{"contacts", 25, "limit=10", 3, 10},
		{"companies", 25, "", 3, 10}, // default limit 10
		{"deals", 7, "limit=3&properties=dealname", 3, 3},
		{"contacts", 150, "limit=500", 2, 100}, // capped at 100
		{"companies", 0, "", 1, 0},
		{"0-3", 4, "limit=4", 1, 4}, // object type id alias, exact fit: no paging
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d/%s", tc.objectType, tc.seed, tc.query), func(t *testing.T) {
			e := newEmulator(t)
			e.Seed(tc.objectType, tc.seed)
			next := e.URL + "/crm/v3/objects/" + tc.objectType + "?" + tc.query
			seen := map[string]bool{}
			pages := 0
			for next != "" {
				r := call(t, http.MethodGet, next, "Bearer "+goodToken, "")
				if r.status != http.StatusOK {
					t.Fatalf("page %d: status %d %s", pages, r.status, r.raw)
				}
				res := results(t, r)
				if pages == 0 && len(res) != tc.wantSize {
					t.Errorf("first page has %d results, want %d", len(res), tc.wantSize)
				}
				for _, o := range res {
					id := o["id"].(string)
					if seen[id] {
						t.Errorf("id %s returned twice", id)
					}
					seen[id] = true
					if o["archived"] != false {
						t.Errorf("archived = %v", o["archived"])
					}
					for _, k := range []string{"createdAt", "updatedAt"} {
						if _, err := time.Parse("2006-01-02T15:04:05.000Z", o[k].(string)); err != nil {
							t.Errorf("%s = %v: %v", k, o[k], err)
						}
					}
				}
				pages++
				next = ""
				if p, ok := r.body["paging"].(map[string]any); ok {
					n := p["next"].(map[string]any)
					after := n["after"].(string)
					link := n["link"].(string)
					if !strings.HasPrefix(link, e.URL+"/crm/v3/objects/") || !strings.HasSuffix(link, "after="+after) {
						t.Errorf("link %q does not end with after=%s", link, after)
					}
					next = link
				}
			}
			if len(seen) != tc.seed {
				t.Errorf("walked %d records, want %d", len(seen), tc.seed)
			}
			if pages != tc.wantPages {
				t.Errorf("pages = %d, want %d", pages, tc.wantPages)
			}
		})
	}
}

func TestListPagingCursorIsLastIDPlusOne(t *testing.T) {
	e := newEmulator(t)
	e.Seed("contacts", 3)
	r := get(t, e, "/crm/v3/objects/contacts?limit=2")
	next := r.body["paging"].(map[string]any)["next"].(map[string]any)
	if next["after"] != "3" || next["link"] != e.URL+"/crm/v3/objects/contacts?limit=2&after=3" {
		t.Errorf("paging.next = %v", next)
	}
	r = get(t, e, "/crm/v3/objects/contacts?limit=2&after=3")
	if res := results(t, r); len(res) != 1 || res[0]["id"] != "3" {
		t.Errorf("second page = %s", r.raw)
	}
	if _, ok := r.body["paging"]; ok {
		t.Errorf("last page has paging: %s", r.raw)
	}
}

func TestDefaultAndRequestedProperties(t *testing.T) {
	e := newEmulator(t)
	e.Seed("contacts", 1)
	e.Seed("companies", 1)
	e.Seed("deals", 1)
	cases := []struct {
		path string
		want map[string]any
	}{
		{"/crm/v3/objects/contacts/1", map[string]any{
			"createdate": "2024-01-01T00:01:00.000Z", "email": "contact1@example.com", "firstname": "First1",
			"hs_object_id": "1", "lastmodifieddate": "2024-01-01T00:01:00.000Z", "lastname": "Last1"}},
		{"/crm/v3/objects/companies/1", map[string]any{
			"createdate": "2024-01-01T00:01:00.000Z", "domain": "company1.example.com", "hs_lastmodifieddate": "2024-01-01T00:01:00.000Z",
			"hs_object_id": "1", "name": "Company 1"}},
		{"/crm/v3/objects/deals/1", map[string]any{
			"amount": "1000", "closedate": nil, "createdate": "2024-01-01T00:01:00.000Z", "dealname": "Deal 1", "dealstage": nil,
			"hs_lastmodifieddate": "2024-01-01T00:01:00.000Z", "hs_object_id": "1", "pipeline": nil}},
		{"/crm/v3/objects/contacts/1?properties=email,phone,nosuchprop", map[string]any{"email": "contact1@example.com", "phone": nil}},
		{"/crm/v3/objects/contacts/1?properties=email&properties=firstname", map[string]any{"email": "contact1@example.com", "firstname": "First1"}},
		{"/crm/v3/objects/contacts/contact1@example.com?idProperty=email&properties=lastname", map[string]any{"lastname": "Last1"}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			r := get(t, e, tc.path)
			if r.status != http.StatusOK {
				t.Fatalf("status %d %s", r.status, r.raw)
			}
			if got := props(r.body); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("properties = %v, want %v", got, tc.want)
			}
			if r.body["id"] != "1" || r.body["createdAt"] != "2024-01-01T00:01:00.000Z" || r.body["archived"] != false {
				t.Errorf("record = %s", r.raw)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	e := newEmulator(t)
	e.Seed("contacts", 2)
	cases := []struct {
		name, method, path, body string
		status                   int
		category, message        string
	}{
		{"missing id", "GET", "/crm/v3/objects/contacts/999", "", 404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."},
		{"non-numeric id", "GET", "/crm/v3/objects/deals/abc", "", 404, "OBJECT_NOT_FOUND", "Object not found"},
		{"unknown email", "GET", "/crm/v3/objects/contacts/x@example.com?idProperty=email", "", 404, "OBJECT_NOT_FOUND", "Object not found"},
		{"unknown type", "GET", "/crm/v3/objects/contact", "", 400, "VALIDATION_ERROR", "Unable to infer object type from: contact"},
		{"bad json", "POST", "/crm/v3/objects/contacts", `{"properties":`, 400, "VALIDATION_ERROR", "Invalid input JSON on line 1"},
		{"empty body", "POST", "/crm/v3/objects/contacts", ` `, 400, "VALIDATION_ERROR", "Invalid input JSON"},
		{"unknown property", "POST", "/crm/v3/objects/contacts", `{"properties":{"favcolor":"blue"}}`, 400, "VALIDATION_ERROR",
			`Property values were not valid: [{"isValid":false,"message":"Property \"favcolor\" does not exist","error":"PROPERTY_DOESNT_EXIST","name":"favcolor"`},
		{"invalid email", "POST", "/crm/v3/objects/contacts", `{"properties":{"email":"nope"}}`, 400, "VALIDATION_ERROR", `"error":"INVALID_EMAIL","name":"email"`},
		{"read-only", "PATCH", "/crm/v3/objects/contacts/1", `{"properties":{"hs_object_id":"5"}}`, 400, "VALIDATION_ERROR", `"error":"READ_ONLY_VALUE"`},
		{"empty update", "PATCH", "/crm/v3/objects/contacts/1", `{"properties":{}}`, 400, "VALIDATION_ERROR", "No properties found to update, please provide at least one."},
		{"update missing", "PATCH", "/crm/v3/objects/contacts/77", `{"properties":{"firstname":"x"}}`, 404, "OBJECT_NOT_FOUND", "Object not found"},
		{"duplicate email", "POST", "/crm/v3/objects/contacts", `{"properties":{"email":"CONTACT2@example.com"}}`, 409, "CONFLICT", "Contact already exists. Existing ID: 2"},
		{"bad operator", "POST", "/crm/v3/objects/contacts/search", `{"filterGroups":[{"filters":[{"propertyName":"email","operator":"LIKE","value":"x"}]}]}`, 400, "VALIDATION_ERROR", "FilterOperator"},
		{"too many groups", "POST", "/crm/v3/objects/contacts/search", `{"filterGroups":[{},{},{},{},{},{}]}`, 400, "VALIDATION_ERROR", "maximum is 5"},
		{"beyond 10000", "POST", "/crm/v3/objects/contacts/search", `{"after":"10000"}`, 400, "VALIDATION_ERROR", "10000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, e, tc.method, tc.path, tc.body)
			checkError(t, r, tc.status, tc.category, tc.message)
		})
	}
	t.Run("404 context", func(t *testing.T) {
		r := get(t, e, "/crm/v3/objects/contacts/999")
		if got := r.body["context"]; !reflect.DeepEqual(got, map[string]any{"id": []any{"999"}}) {
			t.Errorf("context = %v", got)
		}
	})
	if e.Count("contacts") != 2 {
		t.Errorf("failed writes changed the store: Count = %d", e.Count("contacts"))
	}
}

func TestCreateUpdateArchive(t *testing.T) {
	e := newEmulator(t)
	e.Seed("deals", 2)

	r := send(t, e, "POST", "/crm/v3/objects/deals", `{"properties":{"dealname":"Big one","amount":2500.5,"pipeline":"default"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	if r.body["id"] != "3" || props(r.body)["amount"] != "2500.5" || props(r.body)["dealname"] != "Big one" || props(r.body)["hs_object_id"] != "3" {
		t.Errorf("create body = %s", r.raw)
	}
	if e.Count("deals") != 3 {
		t.Errorf("Count = %d, want 3", e.Count("deals"))
	}

	r = send(t, e, "PATCH", "/crm/v3/objects/deals/3", `{"properties":{"dealstage":"closedwon","amount":null}}`)
	if r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	p := props(r.body)
	if p["dealstage"] != "closedwon" || p["amount"] != nil || p["dealname"] != "Big one" {
		t.Errorf("update body = %s", r.raw)
	}
	if r.body["updatedAt"].(string) <= r.body["createdAt"].(string) {
		t.Errorf("updatedAt %v not after createdAt %v", r.body["updatedAt"], r.body["createdAt"])
	}
	if v, ok := e.Property("deals", "3", "dealstage"); !ok || v != "closedwon" {
		t.Errorf("stored dealstage = %q, %v", v, ok)
	}

	// PATCH by email.
	e.Seed("contacts", 1)
	r = send(t, e, "PATCH", "/crm/v3/objects/contacts/contact1@example.com?idProperty=email", `{"properties":{"firstname":"Ada"}}`)
	if r.status != http.StatusOK || props(r.body)["firstname"] != "Ada" || r.body["id"] != "1" {
		t.Errorf("patch by email: %d %s", r.status, r.raw)
	}

	r = send(t, e, "DELETE", "/crm/v3/objects/deals/3", "")
	if r.status != http.StatusNoContent || r.raw != "" {
		t.Errorf("delete: %d %q", r.status, r.raw)
	}
	if e.Count("deals") != 2 {
		t.Errorf("Count after delete = %d", e.Count("deals"))
	}
	if r := get(t, e, "/crm/v3/objects/deals/3"); r.status != http.StatusNotFound {
		t.Errorf("read after delete: %d", r.status)
	}
}

func TestHelpers(t *testing.T) {
	e := newEmulator(t)
	e.Put("companies", "500", map[string]string{"name": "Acme", "tier": "gold"})
	e.Seed("companies", 1) // continues after 500
	if e.Count("companies") != 2 {
		t.Fatalf("Count = %d", e.Count("companies"))
	}
	r := get(t, e, "/crm/v3/objects/companies/500?properties=name,tier")
	if p := props(r.body); p["name"] != "Acme" || p["tier"] != "gold" {
		t.Errorf("Put record = %s", r.raw)
	}
	if r := get(t, e, "/crm/v3/objects/companies/501"); r.status != 200 || props(r.body)["name"] != "Company 501" {
		t.Errorf("seeded after Put = %d %s", r.status, r.raw)
	}
	// Put defined "tier", so the API accepts writes to it now.
	if r := send(t, e, "PATCH", "/crm/v3/objects/companies/501", `{"properties":{"tier":"silver"}}`); r.status != 200 {
		t.Errorf("patch custom property: %d %s", r.status, r.raw)
	}
	e.Put("companies", "500", map[string]string{"tier": ""})
	if _, ok := e.Property("companies", "500", "tier"); ok {
		t.Error("Put with empty value did not remove the property")
	}
	e.Delete("companies", "500")
	e.Delete("companies", "404") // missing: no-op
	if e.Count("companies") != 1 {
		t.Errorf("Count after Delete = %d", e.Count("companies"))
	}
}

type searchCase struct {
	name    string
	body    string
	wantIDs []string
	total   int
}

func TestSearch(t *testing.T) {
	e := newEmulator(t)
	e.Seed("contacts", 12)
	e.Put("contacts", "13", map[string]string{"email": "ada@lovelace.org", "firstname": "Ada", "lastname": "Lovelace", "company": "Analytical Engines Ltd"})
	e.Put("contacts", "14", map[string]string{"firstname": "Nomail"})
	cases := []searchCase{
		{"no filters first page", `{}`, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, 14},
		{"EQ case-insensitive", `{"filterGroups":[{"filters":[{"propertyName":"email","operator":"EQ","value":"CONTACT3@example.com"}]}]}`, []string{"3"}, 1},
		{"CONTAINS_TOKEN word", `{"filterGroups":[{"filters":[{"propertyName":"company","operator":"CONTAINS_TOKEN","value":"engines"}]}]}`, []string{"13"}, 1},
		{"CONTAINS_TOKEN wildcard", `{"filterGroups":[{"filters":[{"propertyName":"email","operator":"CONTAINS_TOKEN","value":"*@lovelace.org"}]}]}`, []string{"13"}, 1},
		{"CONTAINS_TOKEN domain word", `{"limit":3,"filterGroups":[{"filters":[{"propertyName":"email","operator":"CONTAINS_TOKEN","value":"example"}]}]}`, []string{"1", "2", "3"}, 12},
		{"OR groups", `{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"EQ","value":"First1"}]},{"filters":[{"propertyName":"firstname","operator":"EQ","value":"Ada"}]}]}`, []string{"1", "13"}, 2},
		{"AND filters", `{"filterGroups":[{"filters":[{"propertyName":"firstname","operator":"EQ","value":"Ada"},{"propertyName":"lastname","operator":"EQ","value":"Nope"}]}]}`, []string{}, 0},
		{"NOT_HAS_PROPERTY", `{"filterGroups":[{"filters":[{"propertyName":"email","operator":"NOT_HAS_PROPERTY"}]}]}`, []string{"14"}, 1},
		{"IN", `{"filterGroups":[{"filters":[{"propertyName":"hs_object_id","operator":"IN","values":["2","4",6]}]}]}`, []string{"2", "4", "6"}, 3},
		{"BETWEEN ids", `{"filterGroups":[{"filters":[{"propertyName":"hs_object_id","operator":"BETWEEN","value":"11","highValue":"13"}]}]}`, []string{"11", "12", "13"}, 3},
		{"GTE lastmodifieddate epoch ms", fmt.Sprintf(`{"filterGroups":[{"filters":[{"propertyName":"lastmodifieddate","operator":"GTE","value":"%d"}]}]}`,
			time.Date(2024, 1, 1, 0, 12, 0, 0, time.UTC).UnixMilli()), []string{"12", "13", "14"}, 3},
		{"LT createdate ISO", `{"filterGroups":[{"filters":[{"propertyName":"createdate","operator":"LT","value":"2024-01-01T00:03:00Z"}]}]}`, []string{"1", "2"}, 2},
		{"query", `{"query":"lovelace"}`, []string{"13"}, 1},
		{"sort descending", `{"limit":3,"sorts":[{"propertyName":"hs_object_id","direction":"DESCENDING"}]}`, []string{"14", "13", "12"}, 14},
		{"sort by name string", `{"limit":2,"sorts":["firstname"]}`, []string{"13", "1"}, 14},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, e, "POST", "/crm/v3/objects/contacts/search", tc.body)
			if r.status != http.StatusOK {
				t.Fatalf("status %d %s", r.status, r.raw)
			}
			ids := []string{}
			for _, o := range results(t, r) {
				ids = append(ids, o["id"].(string))
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tc.wantIDs)
			}
			if r.body["total"] != float64(tc.total) {
				t.Errorf("total = %v, want %d", r.body["total"], tc.total)
			}
		})
	}
}

func TestSearchPagingAndProperties(t *testing.T) {
	e := newEmulator(t)
	e.Seed("deals", 23)
	var ids []string
	after := ""
	pages := 0
	for {
		body := `{"limit":10,"properties":["dealname","amount"]`
		if after != "" {
			body += `,"after":"` + after + `"`
		}
		body += `}`
		r := send(t, e, "POST", "/crm/v3/objects/deals/search", body)
		if r.status != 200 {
			t.Fatalf("status %d %s", r.status, r.raw)
		}
		pages++
		if r.body["total"] != float64(23) {
			t.Errorf("total = %v", r.body["total"])
		}
		for _, o := range results(t, r) {
			ids = append(ids, o["id"].(string))
			if got := props(o); len(got) != 2 || got["dealname"] == nil || got["amount"] == nil {
				t.Errorf("properties = %v, want dealname and amount only", got)
			}
		}
		p, ok := r.body["paging"].(map[string]any)
		if !ok {
			break
		}
		next := p["next"].(map[string]any)
		if _, hasLink := next["link"]; hasLink {
			t.Errorf("search paging has a link: %v", next)
		}
		after = next["after"].(string)
	}
	if pages != 3 || len(ids) != 23 || ids[22] != "23" {
		t.Errorf("pages = %d, ids = %v", pages, ids)
	}
	// A numeric after is accepted too.
	r := send(t, e, "POST", "/crm/v3/objects/deals/search", `{"limit":200,"after":20}`)
	if len(results(t, r)) != 3 {
		t.Errorf("numeric after: %s", r.raw)
	}
}

func TestFailNext(t *testing.T) {
	cases := []struct {
		name       string
		n          int
		status     int
		retryAfter string
		category   string
	}{
		{"rate limited", 2, http.StatusTooManyRequests, "3", "RATE_LIMITS"},
		{"rate limited without retry-after", 1, http.StatusTooManyRequests, "", "RATE_LIMITS"},
		{"unavailable", 1, http.StatusServiceUnavailable, "10", ""},
		{"server error", 1, http.StatusInternalServerError, "", ""},
		{"unauthorized", 1, http.StatusUnauthorized, "", "INVALID_AUTHENTICATION"},
		{"forbidden", 1, http.StatusForbidden, "", "MISSING_SCOPES"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEmulator(t)
			e.Seed("contacts", 1)
			e.FailNext(tc.n, tc.status, tc.retryAfter)
			for i := 0; i < tc.n; i++ {
				r := get(t, e, "/crm/v3/objects/contacts/1")
				checkError(t, r, tc.status, tc.category, "")
				if got := r.header.Get("Retry-After"); got != tc.retryAfter {
					t.Errorf("Retry-After = %q, want %q", got, tc.retryAfter)
				}
				if tc.status == http.StatusTooManyRequests {
					if r.body["errorType"] != "RATE_LIMIT" || r.body["policyName"] != "TEN_SECONDLY_ROLLING" ||
						r.body["message"] != "You have reached your ten_secondly_rolling limit." {
						t.Errorf("429 body = %s", r.raw)
					}
					if r.header.Get("X-HubSpot-RateLimit-Remaining") != "0" {
						t.Errorf("X-HubSpot-RateLimit-Remaining = %q", r.header.Get("X-HubSpot-RateLimit-Remaining"))
					}
				}
			}
			if r := get(t, e, "/crm/v3/objects/contacts/1"); r.status != http.StatusOK {
				t.Errorf("after %d failures: status %d %s", tc.n, r.status, r.raw)
			}
			if got := e.Requests(); got != int64(tc.n+1) {
				t.Errorf("Requests = %d, want %d", got, tc.n+1)
			}
		})
	}
}

func TestFailNextAppliesEvenWithoutCredentials(t *testing.T) {
	e := newEmulator(t)
	e.FailNext(1, http.StatusTooManyRequests, "1")
	r := call(t, http.MethodGet, e.URL+"/crm/v3/objects/contacts", "Bearer leaked-but-seen", "")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status = %d", r.status)
	}
	if got := e.SeenTokens(); !reflect.DeepEqual(got, []string{"leaked-but-seen"}) {
		t.Errorf("SeenTokens = %v", got)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	e := newEmulator(t)
	r1 := get(t, e, "/crm/v3/objects/contacts")
	r2 := get(t, e, "/crm/v3/objects/contacts")
	if r1.header.Get("X-HubSpot-RateLimit-Max") != "190" || r1.header.Get("X-HubSpot-RateLimit-Interval-Milliseconds") != "10000" {
		t.Errorf("headers = %v", r1.header)
	}
	if r1.header.Get("X-HubSpot-RateLimit-Remaining") != "189" || r2.header.Get("X-HubSpot-RateLimit-Remaining") != "188" {
		t.Errorf("remaining = %q then %q", r1.header.Get("X-HubSpot-RateLimit-Remaining"), r2.header.Get("X-HubSpot-RateLimit-Remaining"))
	}
	if ct := r1.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEmulator(t)
	e.Seed("contacts", 5)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := fmt.Sprintf(`{"properties":{"email":"p%d@example.com"}}`, i)
			req, _ := http.NewRequest(http.MethodPost, e.URL+"/crm/v3/objects/contacts", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+goodToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("status %d", resp.StatusCode)
			}
			_ = e.Count("contacts")
			_ = e.SeenTokens()
		}(i)
	}
	wg.Wait()
	if e.Count("contacts") != 25 || e.Requests() != 20 {
		t.Errorf("Count = %d, Requests = %d", e.Count("contacts"), e.Requests())
	}
}
