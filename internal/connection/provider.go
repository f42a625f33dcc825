package connection

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/authprovider"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/refresh"
	"github.com/valetkey/valetkey/internal/store"
)

// Providers reads credentials held by auth providers.
type Providers interface {
	Resolve(ctx context.Context, orgID, readableID string) (store.AuthProvider, error)
	Fetch(ctx context.Context, a store.AuthProvider, src *catalog.Source, cfg map[string]string) (authprovider.Account, error)
	Read(ctx context.Context, conn store.SourceConnection, src *catalog.Source, force bool) (authprovider.Account, error)
	Forget(connectionID string)
}

// providerMethod picks the source's auth method the provider's fields are
// for, and lists the required fields the provider did not give. For OAuth2
// sources that refresh, the refresh token is required: the provider's copy
// is all there is.
func providerMethod(src *catalog.Source, acct authprovider.Account) (catalog.AuthMethod, []string) {
	var best catalog.AuthMethod
	var bestMissing []string
	for i, m := range src.Auth {
		var missing []string
		for _, f := range m.CredentialFields() {
			required := !f.Optional || (m.Type == catalog.AuthOAuth2 && f.Name == "refresh_token" && m.OAuthType != catalog.OAuthAccessOnly)
			if _, ok := acct.Fields[f.Name]; required && !ok {
				missing = append(missing, f.Name)
			}
		}
		if len(missing) == 0 {
			return m, nil
		}
		if _, hasAccess := acct.Fields["access_token"]; i == 0 || (m.Type == catalog.AuthOAuth2 && hasAccess) {
			best, bestMissing = m, missing
		}
	}
	sort.Strings(bestMissing)
	return best, bestMissing
}

// createProviderBacked checks the provider account now (the seed's errors)
// and stores a connection that reads its credentials on demand.
func (s *Service) createProviderBacked(ctx context.Context, orgID string, src *catalog.Source, in CreateInput, config map[string]any, errs []apperr.FieldError) (View, error) {
	if s.opt.Providers == nil {
		return View{}, apperr.BadRequest("Auth providers are not configured on this server")
	}
	p, err := s.opt.Providers.Resolve(ctx, orgID, in.AuthProvider)
	if err != nil {
		return View{}, err
	}
	cfg, cerrs := authprovider.CheckConfig(p.ShortName, in.AuthProviderConfig, in.AuthProviderConfigLoc)
	errs = append(errs, cerrs...)
	if len(errs) > 0 {
		return View{}, apperr.Invalid(errs...)
	}
	acct, err := s.opt.Providers.Fetch(ctx, p, src, cfg)
	if err != nil {
		return View{}, err
	}
	if acct.Broken != "" {
		return View{}, apperr.BadRequest("%s", acct.Broken)
	}
	if _, missing := providerMethod(src, acct); len(missing) > 0 {
		return View{}, apperr.BadRequest("Missing required auth fields: %s", strings.Join(missing, ", "))
	}
	coll, err := s.collectionFor(ctx, orgID, in)
	if err != nil {
		return View{}, err
	}
	now := s.now()
	cfgJSON, _ := json.Marshal(config)
	provCfg, _ := json.Marshal(cfg)
	conn := store.SourceConnection{
		ID: newID(), OrganizationID: orgID, CollectionID: coll.ID, CollectionRID: coll.ReadableID,
		Name: in.Name, Description: in.Description, ShortName: src.ShortName, Status: store.StatusActive, AuthMethod: MethodAuthProvider,
		Config: cfgJSON, Schedule: in.Schedule, AuthenticatedAt: &now, CreatedAt: now, ModifiedAt: now,
		AuthProviderID: p.ID, AuthProviderRID: p.ReadableID, AuthProviderConfig: provCfg,
	}
	if err := s.st.CreateConnection(ctx, conn, nil); err != nil {
		return View{}, err
	}
	s.emit(ctx, orgID, "source_connection.created", conn)
	return View{SourceConnection: conn, Authenticated: true, ExpiresAt: acct.ExpiresAt}, nil
}

// freshFromProvider reads a provider-backed connection's credential. A
// broken account marks the connection needs_reauth with the reason.
func (s *Service) freshFromProvider(ctx context.Context, conn store.SourceConnection, force bool) (refresh.Fresh, error) {
	src, err := s.Source(conn.ShortName)
	if err != nil {
		return refresh.Fresh{}, err
	}
	acct, err := s.opt.Providers.Read(ctx, conn, src, force)
	if err != nil {
		return refresh.Fresh{}, err
	}
	if acct.Broken != "" {
		updated, uerr := s.st.UpdateConnection(ctx, conn.OrganizationID, conn.ID, func(c *store.SourceConnection) (*store.Credential, error) {
			c.Status, c.ModifiedAt = store.StatusNeedsReauth, s.now()
			return nil, nil
		})
		if uerr != nil {
			return refresh.Fresh{}, uerr
		}
		if conn.Status != store.StatusNeedsReauth {
			s.emit(ctx, conn.OrganizationID, "source_connection.needs_reauth", updated)
		}
		return refresh.Fresh{}, apperr.BadRequest("Token refresh failed: %s", acct.Broken)
	}
	m, missing := providerMethod(src, acct)
	if len(missing) > 0 {
		return refresh.Fresh{}, apperr.BadRequest("Missing required auth fields: %s", strings.Join(missing, ", "))
	}
	if conn.Status == store.StatusNeedsReauth {
		// The provider reports the account healthy again.
		_, _ = s.st.UpdateConnection(ctx, conn.OrganizationID, conn.ID, func(c *store.SourceConnection) (*store.Credential, error) {
			c.Status, c.ModifiedAt = store.StatusActive, s.now()
			return nil, nil
		})
	}
	p := credential.Payload{Fields: acct.Fields}
	if m.Type == catalog.AuthOAuth2 {
		p.TokenType = "Bearer"
	}
	return refresh.Fresh{Payload: p, Kind: m.Type, ExpiresAt: acct.ExpiresAt}, nil
}
