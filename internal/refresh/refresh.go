// Package refresh keeps OAuth access tokens fresh: one refresh per token
// across every replica (in-process single-flight plus a fenced lease on the
// credential row), rotated refresh tokens written atomically with the new
// access token, errors classified (invalid_grant → needs_reauth; outages →
// 503 with the credential untouched), and a proactive sweeper.
package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/audit"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// Store is what the engine needs from storage.
type Store interface {
	GetConnection(ctx context.Context, orgID, id string) (store.SourceConnection, error)
	GetCredentialForConnection(ctx context.Context, orgID, connectionID string) (store.Credential, error)
	GetCredential(ctx context.Context, id string) (store.Credential, error)
	TryLease(ctx context.Context, id string, version int64, owner string, now, until time.Time) (store.Credential, bool, error)
	ReleaseLease(ctx context.Context, id, owner string) error
	// SaveRefreshed also records the refresh's audit event (see store.Store).
	SaveRefreshed(ctx context.Context, c store.Credential, version int64, owner string, ev store.AuditEvent) (bool, error)
	MarkNeedsReauth(ctx context.Context, orgID, connectionID, credentialID, owner string, at time.Time) error
	ListRefreshCandidates(ctx context.Context, before, now time.Time, limit int) ([]store.RefreshCandidate, error)
}

// Clients finds the organization's OAuth client for a source.
type Clients interface {
	For(ctx context.Context, orgID, shortName string) (oauth.Client, error)
}

// ClientFunc adapts a function to Clients.
type ClientFunc func(ctx context.Context, orgID, shortName string) (oauth.Client, error)

// For implements Clients.
func (f ClientFunc) For(ctx context.Context, orgID, shortName string) (oauth.Client, error) {
	return f(ctx, orgID, shortName)
}

// Options tune the engine; zero values take the defaults.
type Options struct {
	// LeaseTTL bounds how long one replica may hold a refresh; it must
	// exceed RefreshBudget. Default 60s.
	LeaseTTL time.Duration
	// RefreshBudget bounds the token requests of one refresh, retries
	// included, and so how long a caller of Get waits for a live provider
	// (only a lease left by a replica that died makes it wait longer, until
	// the lease lapses). Default RequestTimeout: one slow request, or a few
	// quick failures. Lowered to 2/3 of LeaseTTL if it is not below it.
	RefreshBudget time.Duration
	// RequestTimeout bounds one token request. Default 10s.
	RequestTimeout time.Duration
	// Attempts is how many token requests a transient failure may take,
	// within RefreshBudget. Default 3.
	Attempts int
	// BreakerThreshold is how many refreshes in a row against one token URL
	// must fail for a transient reason before refreshes against it fail
	// at once (503, nothing sent) for BreakerCooldown. Default 5; negative
	// disables.
	BreakerThreshold int
	// BreakerCooldown is how long a failing token URL is left alone, or the
	// provider's Retry-After if longer. Default 30s.
	BreakerCooldown time.Duration
	// Backoff is the first retry delay, doubled each time, with jitter. Default 200ms.
	Backoff time.Duration
	// PollInterval is how often a waiting replica checks the row. Default 25ms.
	PollInterval time.Duration
	// HTTPClient talks to token endpoints. Default: a client with RequestTimeout.
	HTTPClient *http.Client
	// Owner names this engine in leases. Default: a random id.
	Owner string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// OnNeedsReauth, when set, hears of a connection the engine just
	// marked needs_reauth.
	OnNeedsReauth func(ctx context.Context, orgID, connectionID, reason string)
}

// DefaultRequestTimeout bounds one token request unless Options.RequestTimeout says otherwise.
const DefaultRequestTimeout = 10 * time.Second

func (o *Options) defaults() {
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 60 * time.Second
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.RefreshBudget == 0 {
		o.RefreshBudget = o.RequestTimeout
	}
	if o.RefreshBudget >= o.LeaseTTL {
		o.RefreshBudget = o.LeaseTTL * 2 / 3
	}
	if o.Attempts == 0 {
		o.Attempts = 3
	}
	if o.BreakerThreshold == 0 {
		o.BreakerThreshold = 5
	}
	if o.BreakerCooldown == 0 {
		o.BreakerCooldown = 30 * time.Second
	}
	if o.Backoff == 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.PollInterval == 0 {
		o.PollInterval = 25 * time.Millisecond
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.RequestTimeout}
	}
	if o.Owner == "" {
		o.Owner = uuid.NewString()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// ErrReauth marks a refresh the provider refused: the connection needs
// re-authorization.
var ErrReauth = errors.New("re-authorization needed")

// Engine hands out fresh credentials.
type Engine struct {
	st      Store
	catalog *catalog.Catalog
	clients Clients
	sealer  credential.Sealer
	log     *slog.Logger
	opt     Options
	sf      singleflight.Group
	breaker *breaker

	mu    sync.Mutex
	stats Stats
}

// Stats counts refresh outcomes (for metrics and tests).
type Stats struct {
	Refreshed, Failed, NeedsReauth, Waited int64
}

// New returns an Engine.
func New(st Store, cat *catalog.Catalog, clients Clients, c credential.Cipher, log *slog.Logger, opt Options) *Engine {
	opt.defaults()
	return &Engine{st: st, catalog: cat, clients: clients, sealer: credential.Sealer{C: c}, log: log, opt: opt,
		breaker: newBreaker(opt.BreakerThreshold, opt.BreakerCooldown)}
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

func (e *Engine) count(f func(*Stats)) {
	e.mu.Lock()
	f(&e.stats)
	e.mu.Unlock()
}

// Fresh is a credential ready to use.
type Fresh struct {
	Payload   credential.Payload
	Kind      string
	ExpiresAt *time.Time
	// Version identifies what was handed out; pass it back to Get with
	// Force after the provider rejected the token.
	Version int64
	// Refreshed says this call (or the in-process call it joined) refreshed
	// the token, rather than finding it fresh or refreshed by another replica.
	Refreshed bool
}

// GetOptions change how Get decides to refresh.
type GetOptions struct {
	// Force refreshes even if the token looks valid (the provider answered
	// 401), unless it changed since SeenVersion: then the newer one is used.
	Force       bool
	SeenVersion int64
	// Margin overrides the source's refresh margin (the sweeper's window).
	Margin time.Duration

	// stop, when set (by the sweeper), ends retries and waiting once closed;
	// a request already sent is still awaited and its answer stored.
	stop <-chan struct{}
}

// Get returns the connection's credential, refreshed first when it is due.
func (e *Engine) Get(ctx context.Context, orgID, connectionID string, o GetOptions) (Fresh, error) {
	conn, err := e.st.GetConnection(ctx, orgID, connectionID)
	if err != nil {
		return Fresh{}, err
	}
	return e.GetFor(ctx, conn, o)
}

// GetFor is Get for a connection the caller has just read (one read fewer).
func (e *Engine) GetFor(ctx context.Context, conn store.SourceConnection, o GetOptions) (Fresh, error) {
	orgID, connectionID := conn.OrganizationID, conn.ID
	cred, err := e.st.GetCredentialForConnection(ctx, orgID, connectionID)
	if err != nil {
		return Fresh{}, err
	}
	src, err := e.catalog.Get(conn.ShortName)
	if err != nil {
		return Fresh{}, err
	}
	method, _ := src.Method(catalog.AuthOAuth2)
	margin := method.Margin()
	if o.Margin > 0 {
		margin = o.Margin
	}
	due := cred.ExpiresAt != nil && !e.opt.Now().Add(margin).Before(*cred.ExpiresAt)
	if o.Force && o.SeenVersion > 0 && cred.Version > o.SeenVersion {
		due, o.Force = false, false // someone already refreshed after the rejected token
	}
	if cred.Kind != catalog.AuthOAuth2 || !cred.Refreshable || (!due && !o.Force) {
		return e.open(cred)
	}
	if conn.Status == store.StatusNeedsReauth {
		return Fresh{}, &apperr.Error{Kind: apperr.KindBadRequest, Msg: fmt.Sprintf("Token refresh failed: connection '%s' needs re-authorization", connectionID), Err: ErrReauth}
	}
	var config map[string]any
	_ = json.Unmarshal(conn.Config, &config)
	endpoint := oauth.EndpointFor(method, config)
	if wait := e.breaker.openFor(endpoint.TokenURL, e.opt.Now()); wait > 0 {
		return Fresh{}, &apperr.Error{Kind: apperr.KindUnavailable, Msg: "The provider's token endpoint is unavailable; retry later",
			RetryAfter: max(wait, time.Second), Err: ErrProviderDown}
	}
	v, err, shared := e.sf.Do(cred.ID, func() (any, error) {
		// Detached from the first caller: others share the outcome. A lease
		// held by a replica that died is waited out (it lapses within
		// LeaseTTL); requests to the provider take at most RefreshBudget.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opt.LeaseTTL+e.opt.RefreshBudget)
		defer cancel()
		return e.refresh(rctx, o.stop, conn, endpoint, cred)
	})
	if shared {
		e.count(func(s *Stats) { s.Waited++ })
	}
	if err != nil {
		return Fresh{}, err
	}
	return v.(Fresh), nil
}

func (e *Engine) open(c store.Credential) (Fresh, error) {
	p, err := e.sealer.Open(c)
	if err != nil {
		return Fresh{}, err
	}
	return Fresh{Payload: p, Kind: c.Kind, ExpiresAt: c.ExpiresAt, Version: c.Version}, nil
}

// refresh takes the row's lease (or waits for whoever holds it) and refreshes.
func (e *Engine) refresh(ctx context.Context, stop <-chan struct{}, conn store.SourceConnection, endpoint oauth.Endpoint, seen store.Credential) (Fresh, error) {
	for {
		now := e.opt.Now()
		leased, ok, err := e.st.TryLease(ctx, seen.ID, seen.Version, e.opt.Owner, now, now.Add(e.opt.LeaseTTL))
		if err != nil {
			return Fresh{}, err
		}
		if ok {
			return e.refreshLeased(ctx, stop, conn, endpoint, leased)
		}
		cur, err := e.st.GetCredential(ctx, seen.ID)
		if err != nil {
			return Fresh{}, err
		}
		if cur.Version != seen.Version {
			return e.open(cur) // refreshed (or replaced) by someone else
		}
		// Another replica holds the lease: wait for its result.
		select {
		case <-ctx.Done():
			return Fresh{}, &apperr.Error{Kind: apperr.KindUnavailable, Msg: "Token refresh is taking too long; retry later", RetryAfter: 5 * time.Second, Err: ctx.Err()}
		case <-stop:
			return Fresh{}, &apperr.Error{Kind: apperr.KindUnavailable, Msg: "Token refresh stopped; retry later", RetryAfter: 5 * time.Second, Err: context.Canceled}
		case <-time.After(e.opt.PollInterval/2 + rand.N(e.opt.PollInterval)):
		}
	}
}

func (e *Engine) refreshLeased(ctx context.Context, stop <-chan struct{}, conn store.SourceConnection, endpoint oauth.Endpoint, cur store.Credential) (Fresh, error) {
	release := func() { _ = e.st.ReleaseLease(context.WithoutCancel(ctx), cur.ID, e.opt.Owner) }
	p, err := e.sealer.Open(cur)
	if err != nil {
		release()
		return Fresh{}, err
	}
	client, err := e.client(ctx, conn, p)
	if err != nil {
		release()
		return Fresh{}, err
	}
	sent := e.opt.Now()
	tok, err := e.requestWithRetry(ctx, stop, endpoint, client, p.Fields["refresh_token"])
	if err != nil {
		return Fresh{}, e.fail(ctx, conn, cur, endpoint, err, release)
	}
	e.breaker.answered(endpoint.TokenURL)
	next := credential.Payload{
		Fields:    map[string]vault.Secret{"access_token": tok.AccessToken, "refresh_token": tok.RefreshToken},
		TokenType: firstNonEmpty(tok.TokenType, p.TokenType, "Bearer"), Scope: firstNonEmpty(tok.Scope, p.Scope),
		ClientID: p.ClientID, ClientSecret: p.ClientSecret,
	}
	ct, keyID, err := e.sealer.Seal(cur.OrganizationID, cur.ID, next)
	if err != nil {
		release()
		return Fresh{}, err
	}
	saved := cur
	saved.Ciphertext, saved.KeyID, saved.ExpiresAt, saved.Refreshable, saved.UpdatedAt = ct, keyID, tok.ExpiresAt(sent), true, e.opt.Now().UTC()
	ok, err := e.saveRefreshed(ctx, saved, cur.Version, audit.NewEvent(ctx, cur.OrganizationID, "credential.refresh", "source_connection", conn.ID, "refresh"))
	if ok && err != nil {
		e.log.ErrorContext(ctx, "audit record failed", "action", "credential.refresh", "error", err.Error())
		err = nil // the tokens are stored
	}
	if err != nil {
		// The provider has rotated; we could not store it. Nothing was
		// overwritten: the old refresh token stays (it may still work, or
		// the next refresh reports invalid_grant and needs_reauth).
		release()
		return Fresh{}, err
	}
	if !ok {
		// Fenced out: the lease lapsed and someone else wrote. Use theirs.
		e.log.WarnContext(ctx, "refresh result discarded: credential changed while refreshing", "credential_id", cur.ID)
		latest, err := e.st.GetCredential(ctx, cur.ID)
		if err != nil {
			return Fresh{}, err
		}
		return e.open(latest)
	}
	e.count(func(s *Stats) { s.Refreshed++ })
	e.log.InfoContext(ctx, "token refreshed", "source_connection_id", conn.ID, "source", conn.ShortName,
		"rotated", tok.RefreshToken.Reveal() != p.Fields["refresh_token"].Reveal())
	return Fresh{Payload: next, Kind: cur.Kind, ExpiresAt: saved.ExpiresAt, Version: cur.Version + 1, Refreshed: true}, nil
}

// saveRefreshed stores a refresh's result. The provider may already have
// rotated the refresh token, so losing the database for a moment must not
// lose the new one: a write that could not reach the database is retried
// for as long as a lease lasts (the version and owner fence keep a late
// write from overwriting anyone else's).
func (e *Engine) saveRefreshed(ctx context.Context, saved store.Credential, version int64, ev store.AuditEvent) (bool, error) {
	ctx = context.WithoutCancel(ctx)
	deadline := time.Now().Add(e.opt.LeaseTTL)
	wait := 50 * time.Millisecond
	for {
		ok, err := e.st.SaveRefreshed(ctx, saved, version, e.opt.Owner, ev)
		if ok || err == nil || !errors.Is(err, store.ErrUnavailable) || time.Now().Add(wait).After(deadline) {
			return ok, err
		}
		e.log.WarnContext(ctx, "storing a refreshed token failed; retrying", "credential_id", saved.ID, "error", err.Error())
		time.Sleep(wait)
		wait = min(2*wait, time.Second)
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// client is the connection's own client when it brought one, else the
// organization's app for the source.
func (e *Engine) client(ctx context.Context, conn store.SourceConnection, p credential.Payload) (oauth.Client, error) {
	if p.ClientID != "" {
		return oauth.Client{ID: p.ClientID, Secret: p.ClientSecret}, nil
	}
	c, err := e.clients.For(ctx, conn.OrganizationID, conn.ShortName)
	if err != nil {
		if ae, ok := apperr.As(err); ok {
			return c, &apperr.Error{Kind: ae.Kind, Msg: "Token refresh failed: " + ae.Msg, RetryAfter: ae.RetryAfter, Err: ae.Err}
		}
		return c, err
	}
	return c, nil
}

// requestWithRetry retries transient failures with jittered exponential
// backoff, within the refresh budget. It sends no further request once stop
// is closed, the endpoint's breaker has opened, or the budget could not
// cover the wait.
func (e *Engine) requestWithRetry(ctx context.Context, stop <-chan struct{}, ep oauth.Endpoint, c oauth.Client, rt vault.Secret) (*oauth.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, e.opt.RefreshBudget)
	defer cancel()
	delay := e.opt.Backoff
	var lastErr error
	for attempt := 1; ; attempt++ {
		rctx, rcancel := context.WithTimeout(ctx, e.opt.RequestTimeout)
		tok, err := oauth.Refresh(rctx, e.opt.HTTPClient, ep, c, rt)
		rcancel()
		if err == nil {
			return tok, nil
		}
		lastErr = err
		if oe, ok := oauth.AsError(err); ok && oe.Permanent() {
			return nil, err
		}
		if attempt >= e.opt.Attempts {
			return nil, lastErr
		}
		wait := delay/2 + rand.N(delay)
		if oe, ok := oauth.AsError(err); ok && oe.RetryAfter > wait {
			wait = oe.RetryAfter
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
			return nil, lastErr
		}
		select {
		case <-ctx.Done():
			return nil, lastErr
		case <-stop:
			return nil, lastErr
		case <-time.After(wait):
		}
		if e.breaker.openFor(ep.TokenURL, e.opt.Now()) > 0 {
			return nil, lastErr // other refreshes found the endpoint down meanwhile
		}
		delay *= 2
	}
}

// fail classifies a refresh failure. A refused grant marks the connection
// needs_reauth and keeps the credential; anything else leaves both as they
// were and answers 503.
func (e *Engine) fail(ctx context.Context, conn store.SourceConnection, cur store.Credential, endpoint oauth.Endpoint, err error, release func()) error {
	e.count(func(s *Stats) { s.Failed++ })
	oe, _ := oauth.AsError(err)
	if oe != nil && oe.Permanent() {
		e.breaker.answered(endpoint.TokenURL)
		e.count(func(s *Stats) { s.NeedsReauth++ })
		if merr := e.st.MarkNeedsReauth(context.WithoutCancel(ctx), conn.OrganizationID, conn.ID, cur.ID, e.opt.Owner, e.opt.Now().UTC()); merr != nil {
			release()
			return merr
		}
		e.log.WarnContext(ctx, "token refresh refused; connection needs re-authorization", "source_connection_id", conn.ID,
			"source", conn.ShortName, "error_code", oe.Code, "http_status", oe.Status)
		if e.opt.OnNeedsReauth != nil {
			e.opt.OnNeedsReauth(context.WithoutCancel(ctx), conn.OrganizationID, conn.ID, oe.Code)
		}
		code := oe.Code
		if code == "" {
			code = fmt.Sprintf("http_%d", oe.Status)
		}
		return &apperr.Error{Kind: apperr.KindBadRequest, Msg: fmt.Sprintf("Token refresh failed: %s: %s", code, oe.Description), Err: ErrReauth}
	}
	release()
	retry := 5 * time.Second
	if oe != nil && oe.RetryAfter > 0 {
		retry = oe.RetryAfter
	}
	if oe != nil {
		now := e.opt.Now()
		e.breaker.failed(endpoint.TokenURL, now, oe.RetryAfter)
		retry = max(retry, e.breaker.openFor(endpoint.TokenURL, now)) // no sooner than the endpoint is tried again
	}
	e.log.WarnContext(ctx, "token refresh failed; will retry later", "source_connection_id", conn.ID, "source", conn.ShortName, "error", errText(err))
	return &apperr.Error{Kind: apperr.KindUnavailable, Msg: "The provider's token endpoint is unavailable; retry later", RetryAfter: retry, Err: err}
}

// errText describes an oauth error without any value from the request.
func errText(err error) string {
	if oe, ok := oauth.AsError(err); ok {
		return oe.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	return "request failed"
}
