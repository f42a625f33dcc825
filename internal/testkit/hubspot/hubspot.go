// Package hubspot emulates the parts of the HubSpot CRM v3 objects API that
// Valetkey's declarative execute engine and sync jobs call: list, read,
// create, update, archive and search for contacts, companies and deals. It
// runs on an httptest server, keeps its records in memory, and adds the knobs
// a test needs (request counter, forced failures, the tokens it was shown).
//
// # Sources checked
//
// Stored copies, looked up while writing this package:
//
//   - https://developers.hubspot.com/docs/api/crm/contacts (create/read/update
//     guide, {"properties":{…}} bodies, idProperty=email reads)
//   - https://developers.hubspot.com/docs/api-reference/search/guide and the
//     HubSpot changelog note "increasing our API limits" (search pages of up
//     to 200, 10,000-result ceiling; cited by activepieces/activepieces#10160
//     and airbytehq/airbyte#45653)
//   - https://developers.hubspot.com/docs/api/usage-details and the HubSpot
//     community answer quoting it (429 body: status, message, errorType
//     "RATE_LIMIT", correlationId, policyName, requestId)
//   - https://developers.hubspot.com/changelog/2018-11-06-rate-limit-information-headers-will-be-included-in-http-responses
//     and …/rate-limit-headers-will-now-appear-for-oauth-authenticated-calls
//     (X-HubSpot-RateLimit-* headers; OAuth calls carry no daily headers)
//   - https://community.hubspot.com/t5/APIs-Integrations/Improvements-to-authentication-errors-for-V3-endpoints-in/m-p/325369
//     (401 category INVALID_AUTHENTICATION)
//   - api-evangelist/hubspot JSON schemas (crm-search-api-paging,
//     crm-search-api-search-response, hubspot-oauth-error): paging.next is
//     {after, link?}; search answers {total, results, paging}; the error
//     object is {status?, message, correlationId, category, subCategory?,
//     context?, links?, errors?}
//   - HubSpot/hubspot-api-nodejs#669 (a real 404 body: "Object not found.
//     objectId are usually numeric." with context.id and category
//     OBJECT_NOT_FOUND)
//   - real 400 bodies quoted in public code: "Property values were not
//     valid: [{\"isValid\":false,\"message\":…,\"error\":\"INVALID_EMAIL\"|
//     \"PROPERTY_DOESNT_EXIST\",\"name\":…}]" with category VALIDATION_ERROR,
//     and "No properties found to update, please provide at least one."
//
// # Routes
//
// objectType is contacts, companies or deals; the object type ids 0-1, 0-2
// and 0-3 are accepted as aliases. Any other type answers 400
// VALIDATION_ERROR "Unable to infer object type from: <type>".
//
//	GET    /crm/v3/objects/{objectType}            list (limit, after, properties, archived)
//	POST   /crm/v3/objects/{objectType}            create {"properties":{…}} → 201
//	POST   /crm/v3/objects/{objectType}/search     search → {"total","results","paging"}
//	GET    /crm/v3/objects/{objectType}/{id}       read (properties, idProperty)
//	PATCH  /crm/v3/objects/{objectType}/{id}       update {"properties":{…}} → 200 (idProperty)
//	DELETE /crm/v3/objects/{objectType}/{id}       archive → 204
//
// # Records
//
// A record is {"id":"12","properties":{…},"createdAt":"2024-01-01T00:12:00.000Z",
// "updatedAt":…,"archived":false}. Ids are numeric strings assigned per object
// type in sequence from 1. Every property value is a string (numbers and
// booleans sent by a client are stored as their JSON text); a property that
// is asked for but has no value is present as null; a property name that the
// object type does not define is ignored on reads. Without a properties
// parameter a read returns HubSpot's default set:
//
//	contacts:  createdate, email, firstname, hs_object_id, lastmodifieddate, lastname
//	companies: createdate, domain, hs_lastmodifieddate, hs_object_id, name
//	deals:     amount, closedate, createdate, dealname, dealstage, hs_lastmodifieddate, hs_object_id, pipeline
//
// hs_object_id, createdate and the last-modified property are kept by the
// emulator itself; hs_object_id and the last-modified property are read-only
// (writing them is a READ_ONLY_VALUE validation error). Writing a property the
// type does not define is a PROPERTY_DOESNT_EXIST validation error; [Emulator.Put]
// defines any property it is given, so a test can add custom properties.
// Contacts must have a plausible email (INVALID_EMAIL otherwise) and a
// contact's email is unique: creating a second one answers 409 CONFLICT
// "Contact already exists. Existing ID: <id>".
//
// # Paging
//
// List: limit defaults to 10 and is capped at 100. Records come in id order.
// When more remain the body carries "paging":{"next":{"after":"<last id + 1>",
// "link":"<emulator URL>/crm/v3/objects/…?…&after=<same>"}}; the last page has
// no "paging" key. after selects records whose id is >= after.
//
// Search: limit defaults to 10 and is capped at 200; after is an offset (a
// string, a number is accepted too) and "paging":{"next":{"after":"<offset>"}}
// is present only when more results remain. Paging to offset 10,000 or
// beyond answers 400 VALIDATION_ERROR as HubSpot does. filterGroups are ORed,
// the filters in a group ANDed; at most 5 groups, 6 filters per group, 18
// filters in all. Operators: EQ, NEQ, LT, LTE, GT, GTE, BETWEEN (value,
// highValue), IN, NOT_IN (values), HAS_PROPERTY, NOT_HAS_PROPERTY,
// CONTAINS_TOKEN, NOT_CONTAINS_TOKEN. String comparison is case-insensitive;
// two numbers compare as numbers, and on createdate/closedate/last-modified
// properties a value may be epoch milliseconds or ISO 8601. CONTAINS_TOKEN
// matches a whole word of the value (words split on anything that is not a
// letter or digit, so "example" matches "a@example.com"), or, when the value
// holds "*", the value as a wildcard pattern against the whole property or
// any word ("*@example.com"). "query" matches a case-insensitive substring of
// the type's default text properties. "sorts" takes
// [{"propertyName","direction":"ASCENDING"|"DESCENDING"}] (or plain property
// names); without it results come in id order.
//
// # Errors
//
// Every error body is HubSpot's envelope
// {"status":"error","message":…,"correlationId":"<uuid>",["context":{…},]"category":…}
// and the X-HubSpot-Correlation-Id header carries the same id.
//
//   - 401 (no Bearer token, or valid(token) false): category
//     INVALID_AUTHENTICATION, message "Authentication credentials not found.
//     This API supports OAuth 2.0 authentication and you can find more details
//     at https://developers.hubspot.com/docs/methods/auth/oauth-overview".
//   - 404 unknown id: "Object not found.  objectId are usually numeric.",
//     context {"id":["<id>"]}, category OBJECT_NOT_FOUND.
//   - 400: category VALIDATION_ERROR (bad JSON "Invalid input JSON …", bad
//     property values "Property values were not valid: [...]", empty update,
//     bad operator, too many filters).
//   - 409: category CONFLICT (duplicate contact email).
//   - 429 (from [Emulator.FailNext]): {"status":"error","message":"You have
//     reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT",
//     "correlationId":…,"policyName":"TEN_SECONDLY_ROLLING","groupName":…,
//     "category":"RATE_LIMITS"}, with Retry-After when given and
//     X-HubSpot-RateLimit-Remaining: 0. The documented body has errorType and
//     policyName; live responses have also been seen with category
//     RATE_LIMITS, so both are sent.
//
// Every response carries X-HubSpot-RateLimit-Interval-Milliseconds (10000),
// X-HubSpot-RateLimit-Max (190) and X-HubSpot-RateLimit-Remaining (counted
// over fixed ten-second windows), as HubSpot sends for OAuth-authenticated
// calls.
//
// The emulator is safe for concurrent use.
package hubspot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/valetkey/valetkey/internal/testkit/emulate"
)

// PortalID is the HubSpot account (portal) id the emulator reports in
// validation error details.
const PortalID = 12345678

const (
	listDefaultLimit   = 10
	listMaxLimit       = 100
	searchDefaultLimit = 10
	searchMaxLimit     = 200
	searchMaxResults   = 10000
	rateWindow         = 10 * time.Second
	rateMax            = 190
	timeLayout         = "2006-01-02T15:04:05.000Z"
	authMessage        = "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
	notFoundMessage    = "Object not found.  objectId are usually numeric."
)

// seedBase is the creation time of the record with id 0 made by Seed or Put;
// record k is created k minutes later, so seeded timestamps are deterministic.
var seedBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// objectDef describes one object type: the properties it defines, the ones a
// read returns by default, the ones "query" searches, and its last-modified
// property name.
type objectDef struct {
	name         string
	defined      []string
	defaults     []string
	queryable    []string
	lastModified string
}

var objectDefs = map[string]objectDef{
	"contacts": {
		name:         "contacts",
		defined:      []string{"email", "firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle", "lifecyclestage", "hs_lead_status", "city", "state", "country", "zip", "address", "hubspot_owner_id"},
		defaults:     []string{"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"},
		queryable:    []string{"firstname", "lastname", "email", "phone", "mobilephone", "company"},
		lastModified: "lastmodifieddate",
	},
	"companies": {
		name:         "companies",
		defined:      []string{"name", "domain", "website", "phone", "industry", "city", "state", "country", "numberofemployees", "annualrevenue", "description", "lifecyclestage", "hubspot_owner_id"},
		defaults:     []string{"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"},
		queryable:    []string{"name", "domain", "website", "phone"},
		lastModified: "hs_lastmodifieddate",
	},
	"deals": {
		name:         "deals",
		defined:      []string{"dealname", "amount", "dealstage", "pipeline", "closedate", "dealtype", "description", "hubspot_owner_id"},
		defaults:     []string{"amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate", "hs_object_id", "pipeline"},
		queryable:    []string{"dealname", "pipeline", "dealstage", "description", "dealtype"},
		lastModified: "hs_lastmodifieddate",
	},
}

var objectTypeIDs = map[string]string{"0-1": "contacts", "0-2": "companies", "0-3": "deals"}

// Emulator is an in-memory HubSpot CRM v3 objects API on an httptest server.
type Emulator struct {
	// URL is the base URL of the emulator, e.g. "http://127.0.0.1:43567";
	// use it where a client would use https://api.hubapi.com.
	URL string

	tb    testing.TB
	valid func(token string) bool
	srv   *httptest.Server
	// Gate counts requests, records presented tokens and injects failures
	// (Requests, FailNext, LastAuthorization, SeenTokens).
	emulate.Gate

	mu          sync.Mutex
	windowStart time.Time
	windowCount int
	stores      map[string]*store
}

type store struct {
	def     objectDef
	defined map[string]bool
	nextID  int64
	recs    map[int64]*record
}

type record struct {
	id      int64
	props   map[string]string
	created time.Time
	updated time.Time
}

// New starts an emulator whose server is closed by t.Cleanup. A request is
// authorised only when it carries "Authorization: Bearer <token>" and
// valid(token) is true (a nil valid accepts every non-empty token); any other
// request answers HubSpot's 401 body.
func New(t testing.TB, valid func(token string) bool) *Emulator {
	t.Helper()
	e := &Emulator{
		tb:     t,
		valid:  valid,
		stores: map[string]*store{},
	}
	for name, def := range objectDefs {
		s := &store{def: def, defined: map[string]bool{}, nextID: 1, recs: map[int64]*record{}}
		for _, p := range def.defined {
			s.defined[p] = true
		}
		for _, p := range []string{"createdate", "hs_object_id", def.lastModified} {
			s.defined[p] = true
		}
		e.stores[name] = s
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	e.URL = e.srv.URL
	t.Cleanup(e.srv.Close)
	return e
}

// Seed creates n records of objectType with ids continuing the type's
// sequence. Record k (its id) gets deterministic properties:
//
//	contacts:  email "contact<k>@example.com", firstname "First<k>", lastname "Last<k>"
//	companies: name "Company <k>", domain "company<k>.example.com"
//	deals:     dealname "Deal <k>", amount "<k*1000>"
//
// and createdAt = updatedAt = 2024-01-01T00:00:00Z plus k minutes.
func (e *Emulator) Seed(objectType string, n int) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.storeFor(objectType)
	for i := 0; i < n; i++ {
		id := s.nextID
		s.nextID++
		props := map[string]string{}
		switch s.def.name {
		case "contacts":
			props["email"] = fmt.Sprintf("contact%d@example.com", id)
			props["firstname"] = fmt.Sprintf("First%d", id)
			props["lastname"] = fmt.Sprintf("Last%d", id)
		case "companies":
			props["name"] = fmt.Sprintf("Company %d", id)
			props["domain"] = fmt.Sprintf("company%d.example.com", id)
		case "deals":
			props["dealname"] = fmt.Sprintf("Deal %d", id)
			props["amount"] = strconv.FormatInt(id*1000, 10)
		}
		at := seedBase.Add(time.Duration(id) * time.Minute)
		s.recs[id] = &record{id: id, props: props, created: at, updated: at}
	}
}

// Put creates the record objectType/id (id must be a positive integer) or, if
// it exists, sets the given properties on it (an empty value removes one).
// Property names the type does not define yet become defined, so custom
// properties can be added this way. A new record's timestamps follow Seed's
// rule; an updated record's updatedAt is now.
func (e *Emulator) Put(objectType, id string, props map[string]string) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.storeFor(objectType)
	num, err := strconv.ParseInt(id, 10, 64)
	if err != nil || num <= 0 {
		e.tb.Fatalf("hubspot emulator: Put: id %q is not a positive integer", id)
		return
	}
	rec, ok := s.recs[num]
	if !ok {
		at := seedBase.Add(time.Duration(num) * time.Minute)
		rec = &record{id: num, props: map[string]string{}, created: at, updated: at}
		s.recs[num] = rec
		if num >= s.nextID {
			s.nextID = num + 1
		}
	} else {
		rec.updated = now()
	}
	for k, v := range props {
		s.defined[k] = true
		if v == "" {
			delete(rec.props, k)
		} else {
			rec.props[k] = v
		}
	}
}

// Delete removes objectType/id; a missing record is not an error.
func (e *Emulator) Delete(objectType, id string) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.storeFor(objectType)
	if num, err := strconv.ParseInt(id, 10, 64); err == nil {
		delete(s.recs, num)
	}
}

// Count reports how many (unarchived) records of objectType exist.
func (e *Emulator) Count(objectType string) int {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.storeFor(objectType).recs)
}

// Property returns the stored value of one property of objectType/id and
// whether the record exists with that property set (a convenience for
// asserting what a write stored).
func (e *Emulator) Property(objectType, id, name string) (string, bool) {
	e.tb.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.storeFor(objectType)
	num, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return "", false
	}
	rec, ok := s.recs[num]
	if !ok {
		return "", false
	}
	v, ok := rec.value(s.def, name)
	return v, ok
}

// storeFor resolves a helper's objectType; the caller holds e.mu.
func (e *Emulator) storeFor(objectType string) *store {
	s := e.lookupStore(objectType)
	if s == nil {
		e.tb.Fatalf("hubspot emulator: unknown object type %q (want contacts, companies or deals)", objectType)
	}
	return s
}

func (e *Emulator) lookupStore(objectType string) *store {
	if alias, ok := objectTypeIDs[objectType]; ok {
		objectType = alias
	}
	return e.stores[objectType]
}

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// value returns a property including the emulator-kept system ones.
func (r *record) value(def objectDef, name string) (string, bool) {
	switch name {
	case "hs_object_id":
		return strconv.FormatInt(r.id, 10), true
	case def.lastModified:
		return r.updated.Format(timeLayout), true
	case "createdate":
		if v, ok := r.props[name]; ok {
			return v, true
		}
		return r.created.Format(timeLayout), true
	}
	v, ok := r.props[name]
	return v, ok
}

// ---------------------------------------------------------------------------
// HTTP

type errorBody struct {
	Status        string              `json:"status"`
	Message       string              `json:"message"`
	ErrorType     string              `json:"errorType,omitempty"`
	CorrelationID string              `json:"correlationId"`
	PolicyName    string              `json:"policyName,omitempty"`
	GroupName     string              `json:"groupName,omitempty"`
	Context       map[string][]string `json:"context,omitempty"`
	Category      string              `json:"category,omitempty"`
}

type objectJSON struct {
	ID         string             `json:"id"`
	Properties map[string]*string `json:"properties"`
	CreatedAt  string             `json:"createdAt"`
	UpdatedAt  string             `json:"updatedAt"`
	Archived   bool               `json:"archived"`
}

type nextPage struct {
	After string `json:"after"`
	Link  string `json:"link,omitempty"`
}

type paging struct {
	Next nextPage `json:"next"`
}

type listBody struct {
	Results []objectJSON `json:"results"`
	Paging  *paging      `json:"paging,omitempty"`
}

type searchBody struct {
	Total   int          `json:"total"`
	Results []objectJSON `json:"results"`
	Paging  *paging      `json:"paging,omitempty"`
}

func (e *Emulator) serve(w http.ResponseWriter, r *http.Request) {
	scheme, token, failStatus, failRetryAfter := e.Admit(r)

	e.mu.Lock()
	remaining := e.countRate()
	e.mu.Unlock()

	h := w.Header()
	h.Set("X-HubSpot-RateLimit-Interval-Milliseconds", strconv.Itoa(int(rateWindow/time.Millisecond)))
	h.Set("X-HubSpot-RateLimit-Max", strconv.Itoa(rateMax))
	h.Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(remaining))

	if failStatus != 0 {
		writeForcedFailure(w, failStatus, failRetryAfter)
		return
	}
	if !strings.EqualFold(scheme, "Bearer") || token == "" || (e.valid != nil && !e.valid(token)) {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTHENTICATION", authMessage, nil)
		return
	}
	e.route(w, r)
}

// countRate counts the request in the current ten-second window and returns
// what remains of it; the caller holds e.mu.
func (e *Emulator) countRate() int {
	t := time.Now()
	if t.Sub(e.windowStart) >= rateWindow {
		e.windowStart, e.windowCount = t, 0
	}
	e.windowCount++
	return max(rateMax-e.windowCount, 0)
}

func (e *Emulator) route(w http.ResponseWriter, r *http.Request) {
	const prefix = "/crm/v3/objects/"
	if !strings.HasPrefix(r.URL.Path, prefix) {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Resource not found", nil)
		return
	}
	segs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, prefix), "/"), "/")
	if segs[0] == "" || len(segs) > 2 {
		writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", "Resource not found", nil)
		return
	}
	e.mu.Lock()
	s := e.lookupStore(segs[0])
	e.mu.Unlock()
	if s == nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Unable to infer object type from: "+segs[0], nil)
		return
	}
	switch {
	case len(segs) == 1 && r.Method == http.MethodGet:
		e.list(w, r, s)
	case len(segs) == 1 && r.Method == http.MethodPost:
		e.create(w, r, s)
	case len(segs) == 2 && segs[1] == "search" && r.Method == http.MethodPost:
		e.search(w, r, s)
	case len(segs) == 2 && r.Method == http.MethodGet:
		e.read(w, r, s, segs[1])
	case len(segs) == 2 && r.Method == http.MethodPatch:
		e.update(w, r, s, segs[1])
	case len(segs) == 2 && r.Method == http.MethodDelete:
		e.archive(w, r, s, segs[1])
	default:
		writeError(w, http.StatusMethodNotAllowed, "", "HTTP 405 Method Not Allowed", nil)
	}
}

// requestedProperties reads the properties parameter, which may be repeated
// and/or comma-separated.
func requestedProperties(q url.Values) []string {
	var out []string
	for _, v := range q["properties"] {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// render builds a record's JSON; the caller holds e.mu. Requested names the
// type does not define are ignored; defined ones without a value are null.
func (s *store) render(rec *record, props []string) objectJSON {
	if len(props) == 0 {
		props = s.def.defaults
	}
	out := objectJSON{
		ID:         strconv.FormatInt(rec.id, 10),
		Properties: map[string]*string{},
		CreatedAt:  rec.created.Format(timeLayout),
		UpdatedAt:  rec.updated.Format(timeLayout),
	}
	for _, p := range props {
		if !s.defined[p] {
			continue
		}
		if v, ok := rec.value(s.def, p); ok {
			out.Properties[p] = &v
		} else {
			out.Properties[p] = nil
		}
	}
	return out
}

func (s *store) sortedIDs() []int64 {
	ids := make([]int64, 0, len(s.recs))
	for id := range s.recs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func (e *Emulator) list(w http.ResponseWriter, r *http.Request, s *store) {
	q := r.URL.Query()
	limit := listDefaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Unable to parse limit: %q is not an integer", v), nil)
			return
		}
		if n > 0 {
			limit = min(n, listMaxLimit)
		}
	}
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Unable to parse after: %q is not a valid paging cursor", v), nil)
			return
		}
		after = n
	}
	props := requestedProperties(q)
	archived := q.Get("archived") == "true"

	e.mu.Lock()
	body := listBody{Results: []objectJSON{}}
	if !archived { // archived records are dropped, so an archived listing is empty
		ids := s.sortedIDs()
		var page []int64
		for _, id := range ids {
			if id >= after {
				page = append(page, id)
			}
		}
		more := len(page) > limit
		if more {
			page = page[:limit]
		}
		for _, id := range page {
			body.Results = append(body.Results, s.render(s.recs[id], props))
		}
		if more {
			next := strconv.FormatInt(page[len(page)-1]+1, 10)
			body.Paging = &paging{Next: nextPage{After: next, Link: e.URL + r.URL.Path + "?" + withParam(r.URL.RawQuery, "after", next)}}
		}
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// withParam returns rawQuery with every name=… pair dropped and name=value
// appended, keeping the other pairs in their original order.
func withParam(rawQuery, name, value string) string {
	var parts []string
	for _, p := range strings.Split(rawQuery, "&") {
		if p == "" {
			continue
		}
		k, _, _ := strings.Cut(p, "=")
		if uk, err := url.QueryUnescape(k); err == nil && uk == name {
			continue
		}
		parts = append(parts, p)
	}
	parts = append(parts, url.QueryEscape(name)+"="+url.QueryEscape(value))
	return strings.Join(parts, "&")
}

// find resolves an id path segment, honouring idProperty; the caller holds
// e.mu.
func (s *store) find(id, idProperty string) *record {
	if idProperty == "" || idProperty == "hs_object_id" {
		num, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil
		}
		return s.recs[num]
	}
	for _, rid := range s.sortedIDs() {
		rec := s.recs[rid]
		if v, ok := rec.value(s.def, idProperty); ok && strings.EqualFold(v, id) {
			return rec
		}
	}
	return nil
}

func notFound(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, "OBJECT_NOT_FOUND", notFoundMessage, map[string][]string{"id": {id}})
}

func (e *Emulator) read(w http.ResponseWriter, r *http.Request, s *store, id string) {
	q := r.URL.Query()
	e.mu.Lock()
	rec := s.find(id, q.Get("idProperty"))
	var body objectJSON
	if rec != nil {
		body = s.render(rec, requestedProperties(q))
	}
	e.mu.Unlock()
	if rec == nil {
		notFound(w, id)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

func (e *Emulator) archive(w http.ResponseWriter, r *http.Request, s *store, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	// HubSpot answers 204 for an id it does not know as well.
	if rec := s.find(id, ""); rec != nil {
		delete(s.recs, rec.id)
	}
	w.WriteHeader(http.StatusNoContent)
}

type propertyError struct {
	IsValid               bool   `json:"isValid"`
	Message               string `json:"message"`
	Error                 string `json:"error"`
	Name                  string `json:"name"`
	LocalizedErrorMessage string `json:"localizedErrorMessage"`
	PortalID              int    `json:"portalId"`
}

// readProperties decodes {"properties":{…}} into strings. It writes the 400
// itself and returns ok=false on bad input.
func readProperties(w http.ResponseWriter, r *http.Request) (props map[string]*string, present bool, ok bool) {
	var body struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if !decodeBody(w, r, &body) {
		return nil, false, false
	}
	props = map[string]*string{}
	for k, raw := range body.Properties {
		raw = bytes.TrimSpace(raw)
		switch {
		case string(raw) == "null":
			props[k] = nil
		case len(raw) > 0 && raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
				return nil, false, false
			}
			props[k] = &s
		case len(raw) > 0 && (raw[0] == '{' || raw[0] == '['):
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON: property %q must be a string, number or boolean", k), nil)
			return nil, false, false
		default:
			s := string(raw)
			props[k] = &s
		}
	}
	return props, body.Properties != nil, true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: "+err.Error(), nil)
		return false
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON on line 1, column 1: No content to map due to end-of-input", nil)
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		line, col := 1, 1
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		offset := int64(-1)
		switch {
		case errors.As(err, &se):
			offset = se.Offset
		case errors.As(err, &te):
			offset = te.Offset
		}
		if offset >= 0 {
			for _, b := range raw[:min(int(offset), len(raw))] {
				if b == '\n' {
					line, col = line+1, 1
				} else {
					col++
				}
			}
		}
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON on line %d, column %d: %v", line, col, err), nil)
		return false
	}
	return true
}

// validate checks written properties; the caller holds e.mu.
func (s *store) validate(props map[string]*string) []propertyError {
	names := make([]string, 0, len(props))
	for k := range props {
		names = append(names, k)
	}
	sort.Strings(names)
	var errs []propertyError
	add := func(name, code, msg string) {
		errs = append(errs, propertyError{Message: msg, Error: code, Name: name, LocalizedErrorMessage: msg, PortalID: PortalID})
	}
	for _, k := range names {
		switch {
		case !s.defined[k]:
			add(k, "PROPERTY_DOESNT_EXIST", fmt.Sprintf("Property %q does not exist", k))
		case k == "hs_object_id" || k == s.def.lastModified:
			add(k, "READ_ONLY_VALUE", fmt.Sprintf("%s is a read only property; its value cannot be set.", k))
		case k == "email" && s.def.name == "contacts" && props[k] != nil && *props[k] != "" && !plausibleEmail(*props[k]):
			add(k, "INVALID_EMAIL", fmt.Sprintf("Email address %s is invalid", *props[k]))
		}
	}
	return errs
}

func plausibleEmail(v string) bool {
	local, domain, ok := strings.Cut(v, "@")
	return ok && local != "" && !strings.ContainsAny(v, " \t") && strings.Contains(domain, ".") &&
		!strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".") && !strings.Contains(domain, "@")
}

func writeValidation(w http.ResponseWriter, errs []propertyError) {
	raw, _ := json.Marshal(errs)
	writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Property values were not valid: "+string(raw), nil)
}

// emailOwner returns the id of another contact with this email; the caller
// holds e.mu.
func (s *store) emailOwner(email string, except int64) (int64, bool) {
	if s.def.name != "contacts" || email == "" {
		return 0, false
	}
	for id, rec := range s.recs {
		if id != except && strings.EqualFold(rec.props["email"], email) {
			return id, true
		}
	}
	return 0, false
}

func apply(rec *record, props map[string]*string) {
	for k, v := range props {
		if v == nil || *v == "" {
			delete(rec.props, k)
		} else {
			rec.props[k] = *v
		}
	}
}

func writtenNames(def objectDef, props map[string]*string) []string {
	names := append([]string(nil), def.defaults...)
	for k := range props {
		names = append(names, k)
	}
	return names
}

func (e *Emulator) create(w http.ResponseWriter, r *http.Request, s *store) {
	props, _, ok := readProperties(w, r)
	if !ok {
		return
	}
	e.mu.Lock()
	if errs := s.validate(props); len(errs) > 0 {
		e.mu.Unlock()
		writeValidation(w, errs)
		return
	}
	if v := props["email"]; v != nil {
		if id, dup := s.emailOwner(*v, 0); dup {
			e.mu.Unlock()
			writeError(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("Contact already exists. Existing ID: %d", id), nil)
			return
		}
	}
	t := now()
	rec := &record{id: s.nextID, props: map[string]string{}, created: t, updated: t}
	s.nextID++
	apply(rec, props)
	s.recs[rec.id] = rec
	body := s.render(rec, writtenNames(s.def, props))
	e.mu.Unlock()
	writeJSON(w, http.StatusCreated, body)
}

func (e *Emulator) update(w http.ResponseWriter, r *http.Request, s *store, id string) {
	props, _, ok := readProperties(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	e.mu.Lock()
	rec := s.find(id, q.Get("idProperty"))
	if rec == nil {
		e.mu.Unlock()
		notFound(w, id)
		return
	}
	if len(props) == 0 {
		e.mu.Unlock()
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "No properties found to update, please provide at least one.", nil)
		return
	}
	if errs := s.validate(props); len(errs) > 0 {
		e.mu.Unlock()
		writeValidation(w, errs)
		return
	}
	if v := props["email"]; v != nil {
		if other, dup := s.emailOwner(*v, rec.id); dup {
			e.mu.Unlock()
			writeError(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("Contact already exists. Existing ID: %d", other), nil)
			return
		}
	}
	apply(rec, props)
	rec.updated = now()
	if !rec.updated.After(rec.created) {
		rec.updated = rec.created.Add(time.Millisecond)
	}
	body := s.render(rec, writtenNames(s.def, props))
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// ---------------------------------------------------------------------------
// Search

type searchFilter struct {
	PropertyName string   `json:"propertyName"`
	Operator     string   `json:"operator"`
	Value        any      `json:"value"`
	HighValue    any      `json:"highValue"`
	Values       []any    `json:"values"`
	values       []string // normalised
}

type searchRequest struct {
	FilterGroups []struct {
		Filters []searchFilter `json:"filters"`
	} `json:"filterGroups"`
	Sorts      []json.RawMessage `json:"sorts"`
	Query      string            `json:"query"`
	Properties []string          `json:"properties"`
	Limit      *int              `json:"limit"`
	After      any               `json:"after"`
}

var operators = map[string]bool{
	"EQ": true, "NEQ": true, "LT": true, "LTE": true, "GT": true, "GTE": true, "BETWEEN": true,
	"IN": true, "NOT_IN": true, "HAS_PROPERTY": true, "NOT_HAS_PROPERTY": true,
	"CONTAINS_TOKEN": true, "NOT_CONTAINS_TOKEN": true,
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", false
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	default:
		return fmt.Sprint(x), true
	}
}

func (e *Emulator) search(w http.ResponseWriter, r *http.Request, s *store) {
	var req searchRequest
	if !decodeBody(w, r, &req) {
		return
	}
	limit := searchDefaultLimit
	if req.Limit != nil && *req.Limit > 0 {
		limit = min(*req.Limit, searchMaxLimit)
	}
	offset := 0
	if v, ok := scalarString(req.After); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON: after %q is not a valid paging cursor", v), nil)
			return
		}
		offset = n
	}
	if offset >= searchMaxResults {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Search results are limited to %d; after %d is beyond that.", searchMaxResults, offset), nil)
		return
	}
	if len(req.FilterGroups) > 5 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Too many filter groups: %d, the maximum is 5.", len(req.FilterGroups)), nil)
		return
	}
	total := 0
	for gi, g := range req.FilterGroups {
		if len(g.Filters) > 6 {
			writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Too many filters in filter group %d: %d, the maximum is 6.", gi, len(g.Filters)), nil)
			return
		}
		total += len(g.Filters)
		for fi := range g.Filters {
			f := &req.FilterGroups[gi].Filters[fi]
			if !operators[f.Operator] {
				writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON on line 1, column 1: Cannot deserialize value of type `FilterOperator` from String %q: not one of the values accepted for Enum class: [EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN]", f.Operator), nil)
				return
			}
			if f.PropertyName == "" {
				writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", "Invalid input JSON: filter propertyName is required", nil)
				return
			}
			for _, v := range f.Values {
				if sv, ok := scalarString(v); ok {
					f.values = append(f.values, sv)
				}
			}
		}
	}
	if total > 18 {
		writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Too many filters: %d, the maximum is 18.", total), nil)
		return
	}
	sortProp, desc := "", false
	if len(req.Sorts) > 0 {
		var obj struct {
			PropertyName string `json:"propertyName"`
			Direction    string `json:"direction"`
		}
		var name string
		if err := json.Unmarshal(req.Sorts[0], &name); err == nil {
			sortProp = strings.TrimPrefix(name, "-")
			desc = strings.HasPrefix(name, "-")
		} else if err := json.Unmarshal(req.Sorts[0], &obj); err == nil {
			sortProp = obj.PropertyName
			switch obj.Direction {
			case "", "ASCENDING":
			case "DESCENDING":
				desc = true
			default:
				writeError(w, http.StatusBadRequest, "VALIDATION_ERROR", fmt.Sprintf("Invalid input JSON: sort direction %q is not ASCENDING or DESCENDING", obj.Direction), nil)
				return
			}
		}
	}

	e.mu.Lock()
	var hits []*record
	for _, id := range s.sortedIDs() {
		rec := s.recs[id]
		if s.matches(rec, &req) {
			hits = append(hits, rec)
		}
	}
	if sortProp != "" {
		sort.SliceStable(hits, func(i, j int) bool {
			a, aok := hits[i].value(s.def, sortProp)
			b, bok := hits[j].value(s.def, sortProp)
			if aok != bok {
				return aok // records without the property go last
			}
			c := compareValues(s.def, sortProp, a, b)
			if desc {
				return c > 0
			}
			return c < 0
		})
	}
	body := searchBody{Total: len(hits), Results: []objectJSON{}}
	end := min(offset+limit, len(hits))
	for i := offset; i < end; i++ {
		body.Results = append(body.Results, s.render(hits[i], req.Properties))
	}
	if end < len(hits) {
		body.Paging = &paging{Next: nextPage{After: strconv.Itoa(end)}}
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// matches applies query and filterGroups; the caller holds e.mu.
func (s *store) matches(rec *record, req *searchRequest) bool {
	if q := strings.TrimSpace(req.Query); q != "" {
		found := false
		for _, p := range s.def.queryable {
			if v, ok := rec.value(s.def, p); ok && strings.Contains(strings.ToLower(v), strings.ToLower(q)) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if len(req.FilterGroups) == 0 {
		return true
	}
	for _, g := range req.FilterGroups {
		all := true
		for i := range g.Filters {
			if !s.filterMatches(rec, &g.Filters[i]) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (s *store) filterMatches(rec *record, f *searchFilter) bool {
	v, has := rec.value(s.def, f.PropertyName)
	has = has && v != ""
	want, _ := scalarString(f.Value)
	switch f.Operator {
	case "HAS_PROPERTY":
		return has
	case "NOT_HAS_PROPERTY":
		return !has
	case "NEQ":
		return !has || compareValues(s.def, f.PropertyName, v, want) != 0
	case "NOT_IN":
		for _, x := range f.values {
			if has && compareValues(s.def, f.PropertyName, v, x) == 0 {
				return false
			}
		}
		return true
	case "NOT_CONTAINS_TOKEN":
		return !has || !containsToken(v, want)
	}
	if !has {
		return false
	}
	switch f.Operator {
	case "EQ":
		return compareValues(s.def, f.PropertyName, v, want) == 0
	case "LT":
		return compareValues(s.def, f.PropertyName, v, want) < 0
	case "LTE":
		return compareValues(s.def, f.PropertyName, v, want) <= 0
	case "GT":
		return compareValues(s.def, f.PropertyName, v, want) > 0
	case "GTE":
		return compareValues(s.def, f.PropertyName, v, want) >= 0
	case "BETWEEN":
		high, _ := scalarString(f.HighValue)
		return compareValues(s.def, f.PropertyName, v, want) >= 0 && compareValues(s.def, f.PropertyName, v, high) <= 0
	case "IN":
		for _, x := range f.values {
			if compareValues(s.def, f.PropertyName, v, x) == 0 {
				return true
			}
		}
		return false
	case "CONTAINS_TOKEN":
		return containsToken(v, want)
	}
	return false
}

func isDateProperty(def objectDef, name string) bool {
	return name == "createdate" || name == "closedate" || name == def.lastModified
}

// parseTime accepts epoch milliseconds, RFC 3339 and a bare date.
func parseTime(v string) (time.Time, bool) {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// compareValues orders two property values: as times on date properties, as
// numbers when both are numbers, else as case-insensitive strings.
func compareValues(def objectDef, name, a, b string) int {
	if isDateProperty(def, name) {
		ta, aok := parseTime(a)
		tb, bok := parseTime(b)
		if aok && bok {
			return ta.Compare(tb)
		}
	}
	fa, aerr := strconv.ParseFloat(a, 64)
	fb, berr := strconv.ParseFloat(b, 64)
	if aerr == nil && berr == nil {
		switch {
		case fa < fb:
			return -1
		case fa > fb:
			return 1
		}
		return 0
	}
	return strings.Compare(strings.ToLower(a), strings.ToLower(b))
}

func tokens(v string) []string {
	return strings.FieldsFunc(strings.ToLower(v), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

func containsToken(value, want string) bool {
	want = strings.ToLower(strings.TrimSpace(want))
	if want == "" {
		return false
	}
	if strings.Contains(want, "*") {
		candidates := append([]string{strings.ToLower(value)}, tokens(value)...)
		for _, c := range candidates {
			if ok, _ := path.Match(want, c); ok {
				return true
			}
		}
		return false
	}
	// A multi-word value must appear as consecutive tokens.
	wt := tokens(want)
	vt := tokens(value)
	if len(wt) == 0 {
		return false
	}
	for i := 0; i+len(wt) <= len(vt); i++ {
		match := true
		for j := range wt {
			if vt[i+j] != wt[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// Writing

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
}

func writeError(w http.ResponseWriter, status int, category, message string, ctx map[string][]string) {
	id := uuid.NewString()
	w.Header().Set("X-HubSpot-Correlation-Id", id)
	writeJSON(w, status, errorBody{Status: "error", Message: message, CorrelationID: id, Context: ctx, Category: category})
}

// writeForcedFailure answers a FailNext failure with the body HubSpot uses for
// that status.
func writeForcedFailure(w http.ResponseWriter, status int, retryAfter string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	switch status {
	case http.StatusTooManyRequests:
		id := uuid.NewString()
		w.Header().Set("X-HubSpot-Correlation-Id", id)
		w.Header().Set("X-HubSpot-RateLimit-Remaining", "0")
		writeJSON(w, status, errorBody{
			Status:        "error",
			Message:       "You have reached your ten_secondly_rolling limit.",
			ErrorType:     "RATE_LIMIT",
			CorrelationID: id,
			PolicyName:    "TEN_SECONDLY_ROLLING",
			GroupName:     fmt.Sprintf("publicapi:oauth:%d", PortalID),
			Category:      "RATE_LIMITS",
		})
	case http.StatusUnauthorized:
		writeError(w, status, "INVALID_AUTHENTICATION", authMessage, nil)
	case http.StatusForbidden:
		writeError(w, status, "MISSING_SCOPES", "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.", nil)
	case http.StatusNotFound:
		writeError(w, status, "OBJECT_NOT_FOUND", "Resource not found", nil)
	case http.StatusBadRequest:
		writeError(w, status, "VALIDATION_ERROR", "There was a problem with the request.", nil)
	case http.StatusConflict:
		writeError(w, status, "CONFLICT", "Conflict", nil)
	default:
		msg := "internal error"
		if status < 500 {
			msg = http.StatusText(status)
		}
		writeError(w, status, "", msg, nil)
	}
}
