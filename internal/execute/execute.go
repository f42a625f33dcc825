// Package execute runs entity actions (list, get, create, update, delete,
// search) against a provider's API from the declarative definitions in the
// catalog: no per-source code. It takes a fresh credential from the
// connection service, injects it as the source says, retries once with a
// forced refresh on 401, and maps upstream failures to clear errors that
// never carry the token.
package execute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/retryafter"
	"github.com/valetkey/valetkey/internal/store"
)

// ErrUpstreamUnauthorized marks a provider 401 that a retry did not cure.
var ErrUpstreamUnauthorized = errors.New("the provider rejected the credential")

// Connections is what the engine needs of the connection service.
type Connections interface {
	Conn(ctx context.Context, orgID, id string) (store.SourceConnection, error)
	Source(shortName string) (*catalog.Source, error)
	FreshFor(ctx context.Context, conn store.SourceConnection, o refresh.GetOptions) (refresh.Fresh, error)
}

// Options tune the engine.
type Options struct {
	HTTPClient *http.Client  // default: 30s timeout
	MaxBody    int64         // response cap, default 10 MiB
	Timeout    time.Duration // per call, default 30s
}

// DefaultTimeout bounds one call unless Options.Timeout says otherwise.
const DefaultTimeout = 30 * time.Second

// Engine executes actions.
type Engine struct {
	conns Connections
	opt   Options
}

// New returns an Engine.
func New(conns Connections, opt Options) *Engine {
	if opt.Timeout == 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: opt.Timeout}
	}
	if opt.MaxBody == 0 {
		opt.MaxBody = 10 << 20
	}
	return &Engine{conns: conns, opt: opt}
}

// Request is one execute call.
type Request struct {
	Entity string
	Action string
	Params map[string]any
	// Token, when not zero, is used instead of the stored credential and is
	// never refreshed (a sync run's one-off override).
	Token string
}

// Result is the upstream answer reduced to records and the next cursor.
type Result struct {
	Result any
	// Cursor continues a list or search; nil on the last page.
	Cursor *string
}

// Entities lists what a connection's source supports: entity → actions.
func (e *Engine) Entities(ctx context.Context, orgID, connID string) (map[string][]string, error) {
	src, err := e.source(ctx, orgID, connID)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	if src.API != nil {
		for name, ent := range src.API.Entities {
			out[name] = sortedKeys(ent.Actions)
		}
	}
	return out, nil
}

func (e *Engine) source(ctx context.Context, orgID, connID string) (*catalog.Source, error) {
	conn, err := e.conns.Conn(ctx, orgID, connID)
	if err != nil {
		return nil, err
	}
	return e.conns.Source(conn.ShortName)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Execute runs one action for a connection.
func (e *Engine) Execute(ctx context.Context, orgID, connID string, req Request) (Result, error) {
	conn, err := e.conns.Conn(ctx, orgID, connID)
	if err != nil {
		return Result{}, err
	}
	src, err := e.conns.Source(conn.ShortName)
	if err != nil {
		return Result{}, err
	}
	if src.API == nil || len(src.API.Entities) == 0 {
		return Result{}, apperr.NotFound("Source '%s' has no executable entities", src.ShortName)
	}
	ent, ok := src.API.Entities[req.Entity]
	if !ok {
		return Result{}, apperr.NotFound("Entity '%s' not found for source '%s'; available: %s", req.Entity, src.ShortName, strings.Join(sortedKeys(src.API.Entities), ", "))
	}
	act, ok := ent.Actions[req.Action]
	if !ok {
		return Result{}, apperr.NotFound("Action '%s' not found for entity '%s'; available: %s", req.Action, req.Entity, strings.Join(sortedKeys(ent.Actions), ", "))
	}
	var config map[string]any
	_ = json.Unmarshal(conn.Config, &config)
	build, err := prepare(src.API, act, req.Params, config)
	if err != nil {
		return Result{}, err
	}

	cred, token, err := e.credential(ctx, conn, req, refresh.GetOptions{})
	if err != nil {
		return Result{}, err
	}
	resp, err := e.send(ctx, src.API, build, token)
	if err != nil {
		return Result{}, err
	}
	if resp.status == http.StatusUnauthorized && req.Token == "" {
		// One forced refresh (unless someone already refreshed) and one retry.
		if _, token, err = e.credential(ctx, conn, req, refresh.GetOptions{Force: true, SeenVersion: cred.Version}); err != nil {
			return Result{}, err
		}
		if resp, err = e.send(ctx, src.API, build, token); err != nil {
			return Result{}, err
		}
	}
	if err := upstreamError(resp); err != nil {
		return Result{}, err
	}
	return extract(act, resp, build)
}

func (e *Engine) credential(ctx context.Context, conn store.SourceConnection, req Request, o refresh.GetOptions) (refresh.Fresh, string, error) {
	if req.Token != "" {
		return refresh.Fresh{}, req.Token, nil
	}
	f, err := e.conns.FreshFor(ctx, conn, o)
	if err != nil {
		return f, "", err
	}
	for _, name := range []string{"access_token", "api_key", "token"} {
		if v := f.Payload.Fields[name]; !v.IsZero() {
			return f, v.Reveal(), nil
		}
	}
	return f, "", apperr.BadRequest("The connection's credential has no token to call the API with")
}

// call is a request ready to send, minus the credential.
type call struct {
	method string
	url    *url.URL
	body   []byte
	header http.Header
	// cursorParam and cursorIn say where the cursor went, for link paging.
	cursorParam string
	page        int
	pageSize    int
}

func prepare(api *catalog.API, act *catalog.Action, params map[string]any, config map[string]any) (*call, error) {
	var errs []apperr.FieldError
	for name := range params {
		if name == "cursor" {
			continue
		}
		if _, ok := act.Params[name]; !ok {
			errs = append(errs, apperr.Field("extra_forbidden", fmt.Sprintf("Unknown param '%s'; accepted: %s", name, strings.Join(sortedKeys(act.Params), ", ")), "body", "params", name))
		}
	}
	base := api.BaseURL
	for k, v := range config {
		if s, ok := v.(string); ok {
			base = strings.ReplaceAll(base, "{"+k+"}", url.PathEscape(s))
		}
	}
	path := act.Path
	q := url.Values{}
	body := map[string]any{}
	for k, v := range act.Body {
		body[k] = v
	}
	c := &call{method: act.Method, header: http.Header{}}
	for _, name := range sortedKeys(act.Params) {
		p := act.Params[name]
		key := name
		if p.Name != "" {
			key = p.Name
		}
		v, given := params[name]
		if p.From == "cursor" {
			c.cursorParam = key
			if cv, ok := params["cursor"]; ok && cv != nil {
				v, given = cv, true
			}
		}
		if !given && p.Default != nil {
			v, given = p.Default, true
		}
		if !given || v == nil {
			if p.Required {
				errs = append(errs, apperr.Field("missing", fmt.Sprintf("Param '%s' is required", name), "body", "params", name))
			}
			continue
		}
		switch p.In {
		case "path":
			s, ok := scalar(v)
			if !ok || s == "" {
				errs = append(errs, apperr.Field("string_type", fmt.Sprintf("Param '%s' must be a non-empty string or number", name), "body", "params", name))
				continue
			}
			path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(s))
		case "query", "header":
			s, ok := scalar(v)
			if !ok {
				errs = append(errs, apperr.Field("string_type", fmt.Sprintf("Param '%s' must be a string, number or boolean", name), "body", "params", name))
				continue
			}
			if p.In == "query" {
				q.Set(key, s)
			} else {
				c.header.Set(key, s)
			}
		case "body":
			body[key] = v
		}
	}
	if len(errs) > 0 {
		return nil, apperr.Invalid(errs...)
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + path)
	if err != nil {
		return nil, apperr.BadRequest("The source's API URL is invalid")
	}
	u.RawQuery = q.Encode()
	c.url = u
	if act.PageSize != "" {
		c.pageSize, _ = strconv.Atoi(q.Get(act.PageSize))
	}
	if c.cursorParam != "" {
		c.page, _ = strconv.Atoi(q.Get(c.cursorParam))
	}
	if len(body) > 0 || act.Method == "POST" || act.Method == "PATCH" || act.Method == "PUT" {
		c.body, _ = json.Marshal(body)
	}
	return c, nil
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int:
		return strconv.Itoa(x), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

type upstream struct {
	status int
	header http.Header
	body   []byte
}

func (e *Engine) send(ctx context.Context, api *catalog.API, c *call, token string) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opt.Timeout)
	defer cancel()
	u := *c.url
	var rd io.Reader
	if c.body != nil {
		rd = bytes.NewReader(c.body)
	}
	inj := api.AuthInjection
	if strings.HasPrefix(inj, "query:") {
		q := u.Query()
		q.Set(strings.TrimPrefix(inj, "query:"), token)
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, c.method, u.String(), rd)
	if err != nil {
		return nil, apperr.BadRequest("The source's API URL is invalid")
	}
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range api.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	switch {
	case inj == "" || inj == "bearer":
		req.Header.Set("Authorization", "Bearer "+token)
	case inj == "basic":
		req.SetBasicAuth(token, "")
	case strings.HasPrefix(inj, "header:"):
		req.Header.Set(strings.TrimPrefix(inj, "header:"), token)
	}
	resp, err := e.opt.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "The provider did not answer in time"}
		}
		return nil, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "The provider could not be reached"}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, e.opt.MaxBody+1))
	if err != nil {
		return nil, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "Reading the provider's answer failed"}
	}
	if int64(len(b)) > e.opt.MaxBody {
		return nil, &apperr.Error{Kind: apperr.KindBadGateway, Msg: fmt.Sprintf("The provider's answer is larger than %d bytes", e.opt.MaxBody)}
	}
	return &upstream{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// upstreamError maps a failed answer: 429 → 429 with Retry-After; 401 after
// the retry → 401-ish 502 saying the credential was rejected; others → 502
// naming the upstream status and its message.
func upstreamError(r *upstream) error {
	if r.status < 400 {
		return nil
	}
	if r.status == http.StatusTooManyRequests || (r.status == http.StatusForbidden && r.header.Get("X-Ratelimit-Remaining") == "0") {
		retry := 60 * time.Second
		if d, ok := retryafter.Parse(r.header.Get("Retry-After")); ok {
			retry = max(d, time.Second) // the answer's Retry-After must be positive
		} else if reset, err := strconv.ParseInt(r.header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			if d := time.Until(time.Unix(reset, 0)); d > 0 {
				retry = d
			}
		}
		return &apperr.Error{Kind: apperr.KindTooManyRequests, Msg: "The provider is rate limiting this connection; retry later", RetryAfter: retry}
	}
	msg := upstreamMessage(r.body)
	if r.status == http.StatusUnauthorized {
		return &apperr.Error{Kind: apperr.KindBadGateway, Msg: "The provider rejected the connection's credential (HTTP 401)" + msg, Err: ErrUpstreamUnauthorized}
	}
	return &apperr.Error{Kind: apperr.KindBadGateway, Msg: fmt.Sprintf("The provider answered HTTP %d%s", r.status, msg)}
}

// upstreamMessage picks a short message from a provider error body.
func upstreamMessage(b []byte) string {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ""
	}
	for _, k := range []string{"message", "error_description", "error", "detail"} {
		if s, ok := m[k].(string); ok && s != "" {
			if len(s) > 300 {
				i := 300
				for i > 0 && !utf8.RuneStart(s[i]) { // not inside a character
					i--
				}
				s = s[:i]
			}
			return ": " + s
		}
	}
	return ""
}

func extract(act *catalog.Action, r *upstream, c *call) (Result, error) {
	var doc any
	if len(bytes.TrimSpace(r.body)) > 0 {
		if err := json.Unmarshal(r.body, &doc); err != nil {
			return Result{}, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "The provider answered with something that is not JSON"}
		}
	}
	records := doc
	if act.Records != "" {
		records = Lookup(doc, act.Records)
	}
	res := Result{Result: records}
	var next string
	switch act.Paging {
	case "link":
		next = linkCursor(r.header.Get("Link"), c.cursorParam)
	case "page":
		if list, ok := records.([]any); ok && len(list) > 0 && (c.pageSize == 0 || len(list) >= c.pageSize) {
			p := c.page
			if p == 0 {
				p = 1
			}
			next = strconv.Itoa(p + 1)
		}
	case "offset":
		if list, ok := records.([]any); ok && len(list) > 0 && (c.pageSize == 0 || len(list) >= c.pageSize) {
			next = strconv.Itoa(c.page + len(list))
		}
	case "last_id":
		if more, _ := Lookup(doc, act.HasMore).(bool); more {
			if list, ok := records.([]any); ok && len(list) > 0 {
				if m, ok := list[len(list)-1].(map[string]any); ok {
					next, _ = scalar(m["id"])
				}
			}
		}
	default:
		if act.Cursor != "" {
			next, _ = scalar(Lookup(doc, act.Cursor))
		}
	}
	if next != "" {
		res.Cursor = &next
	}
	return res, nil
}

// linkCursor reads the cursor param from the Link header's rel="next" URL.
func linkCursor(link, param string) string {
	for _, part := range strings.Split(link, ",") {
		segs := strings.Split(part, ";")
		if len(segs) < 2 {
			continue
		}
		isNext := false
		for _, s := range segs[1:] {
			if strings.TrimSpace(s) == `rel="next"` {
				isNext = true
			}
		}
		if !isNext {
			continue
		}
		u, err := url.Parse(strings.Trim(strings.TrimSpace(segs[0]), "<>"))
		if err != nil {
			return ""
		}
		if param == "" {
			return u.String()
		}
		return u.Query().Get(param)
	}
	return ""
}

// Lookup evaluates a small JSONPath subset: "$" (the document), "$.a.b",
// "$.a[0].b" and "$.a[-1]". A missing step gives nil.
func Lookup(doc any, path string) any {
	path = strings.TrimSpace(path)
	if path == "" || path == "$" {
		return doc
	}
	if !strings.HasPrefix(path, "$.") && !strings.HasPrefix(path, "$[") {
		return nil
	}
	cur := doc
	rest := path[1:]
	for rest != "" && cur != nil {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur, rest = m[rest[:end]], rest[end:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil
			}
			i, err := strconv.Atoi(rest[1:end])
			list, ok := cur.([]any)
			if err != nil || !ok {
				return nil
			}
			if i < 0 {
				i += len(list)
			}
			if i < 0 || i >= len(list) {
				return nil
			}
			cur, rest = list[i], rest[end+1:]
		default:
			return nil
		}
	}
	return cur
}
