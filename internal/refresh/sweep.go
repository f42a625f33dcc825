package refresh

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/store"
)

// SweepOptions tune the proactive sweeper.
type SweepOptions struct {
	// Window: credentials expiring within it are refreshed. Default 10m.
	Window time.Duration
	// Batch is how many candidates one pass takes. Default 500.
	Batch int
	// Concurrency bounds parallel refreshes. Default 16: against a real
	// provider a refresh mostly waits for its answer (tens to hundreds of
	// milliseconds), so the rate a pass reaches is about Concurrency divided
	// by that latency; against a fast one, parallel commits share the
	// database's flushes, while more than Postgres's pool (20) only queues.
	Concurrency int
	// Jitter spreads the start of each refresh over up to this long. Default 0.
	Jitter time.Duration
}

func (o *SweepOptions) defaults() {
	if o.Window == 0 {
		o.Window = 10 * time.Minute
	}
	if o.Batch == 0 {
		o.Batch = 500
	}
	if o.Concurrency == 0 {
		o.Concurrency = 16
	}
}

// SweepResult counts one pass.
type SweepResult struct {
	Candidates, Refreshed, Failed int
	// Deferred were not tried: their token endpoint's breaker was open
	// (the provider kept failing); a later pass takes them.
	Deferred int
}

// Sweep refreshes, once, the credentials that expire within the window,
// with bounded concurrency, through the same leases as on-use refreshes (so
// replicas sweeping at the same time never refresh a token twice). A
// provider that keeps failing opens its endpoint's breaker: the pass then
// sends it nothing more and counts the rest as deferred. When ctx ends, no
// refresh starts and none retries; Sweep returns once the requests already
// sent are answered (or time out) and their results stored.
func (e *Engine) Sweep(ctx context.Context, o SweepOptions) (SweepResult, error) {
	o.defaults()
	now := e.opt.Now()
	cands, err := e.st.ListRefreshCandidates(ctx, now.Add(o.Window), now, o.Batch)
	if err != nil {
		return SweepResult{}, err
	}
	res := SweepResult{Candidates: len(cands)}
	var mu sync.Mutex
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for _, c := range cands {
		select {
		case <-ctx.Done():
		case sem <- struct{}{}:
		}
		if ctx.Err() != nil {
			wg.Wait()
			return res, ctx.Err()
		}
		wg.Add(1)
		go func(c store.RefreshCandidate) {
			defer wg.Done()
			defer func() { <-sem }()
			if o.Jitter > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(rand.N(o.Jitter)):
				}
			}
			f, err := e.Get(ctx, c.OrganizationID, c.SourceConnectionID, GetOptions{Margin: o.Window, stop: ctx.Done()})
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, ErrProviderDown) {
				res.Deferred++
			} else if err != nil {
				res.Failed++
			} else if f.Refreshed {
				res.Refreshed++
			}
		}(c)
	}
	wg.Wait()
	return res, nil
}

// RunSweeper sweeps every interval until ctx ends.
func (e *Engine) RunSweeper(ctx context.Context, interval time.Duration, o SweepOptions) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			res, err := e.Sweep(ctx, o)
			if err != nil && ctx.Err() == nil {
				e.log.WarnContext(ctx, "refresh sweep failed", "error", err.Error())
			} else if res.Candidates > 0 {
				e.log.InfoContext(ctx, "refresh sweep", "candidates", res.Candidates, "refreshed", res.Refreshed, "failed", res.Failed, "deferred", res.Deferred)
			}
		}
	}
}

// Revoke asks the provider to revoke a connection's tokens (RFC 7009) when
// its source has a revocation URL; best effort: the outcome is logged and
// returned, and the caller erases the credential either way.
func (e *Engine) Revoke(ctx context.Context, conn store.SourceConnection, cred store.Credential) error {
	if cred.Kind != catalog.AuthOAuth2 {
		return nil
	}
	src, err := e.catalog.Get(conn.ShortName)
	if err != nil {
		return err
	}
	method, ok := src.Method(catalog.AuthOAuth2)
	if !ok || method.RevokeURL == "" {
		return nil
	}
	p, err := e.sealer.Open(cred)
	if err != nil {
		return err
	}
	client, err := e.client(ctx, conn, p)
	if err != nil {
		e.log.WarnContext(ctx, "token revocation skipped: no OAuth client", "source_connection_id", conn.ID)
		return err
	}
	var config map[string]any
	_ = json.Unmarshal(conn.Config, &config)
	ep := oauth.EndpointFor(method, config)
	rctx, cancel := context.WithTimeout(ctx, e.opt.RequestTimeout)
	defer cancel()
	token, hint := p.Fields["refresh_token"], "refresh_token"
	if token.IsZero() {
		token, hint = p.Fields["access_token"], "access_token"
	}
	err = oauth.Revoke(rctx, e.opt.HTTPClient, ep, client, token, hint)
	if err != nil {
		e.log.WarnContext(ctx, "token revocation failed", "source_connection_id", conn.ID, "source", conn.ShortName, "error", errText(err))
	} else {
		e.log.InfoContext(ctx, "token revoked at the provider", "source_connection_id", conn.ID, "source", conn.ShortName, "token_type_hint", hint)
	}
	return err
}
