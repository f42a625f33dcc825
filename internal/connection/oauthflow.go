package connection

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/credential"
	"github.com/valetkey/valetkey/internal/oauth"
	"github.com/valetkey/valetkey/internal/oauthapp"
	"github.com/valetkey/valetkey/internal/store"
	"github.com/valetkey/valetkey/internal/vault"
)

// SessionTTL is how long an auth URL and its state stay valid.
const SessionTTL = 10 * time.Minute

// CallbackPath is where providers send the browser back.
const CallbackPath = "/oauth/callback"

// AuthorizePath prefixes the one-time auth URLs handed to clients.
const AuthorizePath = "/connect/oauth/"

func (s *Service) callbackURL() string { return s.opt.PublicURL() + CallbackPath }

// allowlist is the organization's redirect URL allowlist: every entry of
// every OAuth app it registered.
func (s *Service) allowlist(ctx context.Context, orgID string) ([]string, error) {
	apps, err := s.st.ListOAuthApps(ctx, orgID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range apps {
		out = append(out, a.RedirectURLAllowlist...)
	}
	return out, nil
}

// startBrowserFlow creates a pending_auth connection and the one-time auth
// URL that starts its OAuth flow.
func (s *Service) startBrowserFlow(ctx context.Context, orgID string, src *catalog.Source, m catalog.AuthMethod, in CreateInput, config map[string]any) (View, error) {
	client := in.Client
	method := MethodOAuthBYOC
	if client == nil {
		reg, err := s.opt.Apps.For(ctx, orgID, src.ShortName)
		if err != nil {
			return View{}, err
		}
		client, method = &reg.Client, MethodOAuthBrowser
	}
	if in.RedirectURL != "" && in.RedirectURL != s.WidgetDoneURL() {
		allow, err := s.allowlist(ctx, orgID)
		if err != nil {
			return View{}, err
		}
		if !oauthapp.Allowed(allow, in.RedirectURL) {
			return View{}, apperr.Invalid(apperr.Field("value_error",
				"redirect_url is not on the organization's redirect URL allowlist (PUT /oauth-apps/{short_name} sets it)", in.RedirectURLLoc...))
		}
	}
	coll, err := s.collectionFor(ctx, orgID, in)
	if err != nil {
		return View{}, err
	}
	now := s.now()
	cfg, _ := json.Marshal(config)
	conn := store.SourceConnection{
		ID: newID(), OrganizationID: orgID, CollectionID: coll.ID, CollectionRID: coll.ReadableID,
		Name: in.Name, Description: in.Description, ShortName: src.ShortName,
		Status: store.StatusPendingAuth, AuthMethod: method, Config: cfg, Schedule: in.Schedule, CreatedAt: now, ModifiedAt: now,
		WorkspaceID: in.WorkspaceID,
	}
	if err := s.st.CreateConnection(ctx, conn, nil); err != nil {
		return View{}, err
	}
	authURL, exp, err := s.newBrowserSession(ctx, conn, m, in.Client, in.RedirectURL)
	if err != nil {
		_ = s.st.DeleteConnection(context.WithoutCancel(ctx), orgID, conn.ID)
		return View{}, err
	}
	s.emit(ctx, orgID, "source_connection.created", conn)
	return View{SourceConnection: conn, AuthURL: authURL, AuthURLExpires: &exp, RedirectURL: in.RedirectURL}, nil
}

// Reauthorize starts the browser flow again for an existing OAuth
// connection (reconnect): the returned one-time auth URL leads to the
// provider, and the callback replaces the credential and makes the
// connection active. The stored credential stays usable until then.
func (s *Service) Reauthorize(ctx context.Context, orgID, id, redirectURL string) (View, error) {
	conn, err := s.st.GetConnection(ctx, orgID, id)
	if err != nil {
		return View{}, notFoundConn(err, id)
	}
	if conn.AuthProviderID != "" {
		return View{}, apperr.BadRequest("Source connection '%s' is held by an auth provider; reconnect the account there", id)
	}
	_, m, err := s.oauthMethod(conn.ShortName)
	if err != nil {
		return View{}, err
	}
	if redirectURL != "" {
		if err := s.CheckRedirect(ctx, orgID, redirectURL, "body", "redirect_url"); err != nil {
			return View{}, err
		}
	}
	if _, err := s.opt.Apps.For(ctx, orgID, conn.ShortName); err != nil {
		return View{}, err
	}
	authURL, exp, err := s.newBrowserSession(ctx, conn, m, nil, redirectURL)
	if err != nil {
		return View{}, err
	}
	v, err := s.view(ctx, conn)
	v.AuthURL, v.AuthURLExpires, v.RedirectURL = authURL, &exp, redirectURL
	return v, err
}

// newBrowserSession stores a single-use OAuth session for a connection and
// returns its one-time auth URL and expiry.
func (s *Service) newBrowserSession(ctx context.Context, conn store.SourceConnection, m catalog.AuthMethod, client *oauth.Client, redirectURL string) (string, time.Time, error) {
	orgID, now := conn.OrganizationID, s.now()
	code, state := oauth.RandomToken(32), oauth.RandomToken(32)
	sess := store.OAuthSession{ID: newID(), OrganizationID: orgID, SourceConnectionID: conn.ID, ShortName: conn.ShortName,
		CodeHash: oauth.Hash(code), StateHash: oauth.Hash(state), RedirectURL: redirectURL, CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	secrets := credential.Payload{Fields: map[string]vault.Secret{"state": vault.NewSecret(state)}}
	if m.PKCE {
		secrets.Fields["code_verifier"] = vault.NewSecret(oauth.NewVerifier())
	}
	if client != nil {
		secrets.ClientID, secrets.ClientSecret = client.ID, client.Secret
	}
	var err error
	sess.Ciphertext, sess.KeyID, err = s.sealer.SealAD(credential.ADFor(store.TableOAuthSessions, orgID, sess.ID), secrets)
	if err == nil {
		err = s.st.CreateOAuthSession(ctx, sess)
	}
	return s.opt.PublicURL() + AuthorizePath + code, sess.ExpiresAt, err
}

// WidgetDonePath is the Connect widget's page an OAuth popup lands on; it is
// Valetkey's own, so it needs no allowlist entry.
const WidgetDonePath = "/embedded-widget/done"

// CheckRedirect checks a URL the browser will be sent to after a flow: an
// absolute http(s) URL without credentials or fragment and, when the
// organization keeps an allowlist, on it. Valetkey's own widget page is
// always allowed.
func (s *Service) CheckRedirect(ctx context.Context, orgID, redirectURL string, loc ...any) error {
	if redirectURL == s.WidgetDoneURL() {
		return nil
	}
	u, perr := url.Parse(redirectURL)
	if perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" || strings.ContainsAny(redirectURL, "\r\n") {
		return apperr.Invalid(apperr.Field("url_parsing", "redirect_url must be an absolute http(s) URL", loc...))
	}
	allow, err := s.allowlist(ctx, orgID)
	if err != nil {
		return err
	}
	if len(allow) > 0 && !oauthapp.Allowed(allow, redirectURL) {
		return apperr.Invalid(apperr.Field("value_error", "redirect_url is not on the organization's redirect URL allowlist", loc...))
	}
	return nil
}

// SecretTTL is how long a server-side OAuth secret stays usable.
const SecretTTL = 15 * time.Minute

// InitiateServerSide starts the embedded API's server-side flow for a
// workspace: it returns the provider's consent URL; the callback stores the
// tokens as a single-use secret and sends the browser to redirectURL with
// secret_id appended. redirectURL must be an absolute http(s) URL and, when
// the organization keeps an allowlist, on it.
func (s *Service) InitiateServerSide(ctx context.Context, orgID, workspaceID, shortName, redirectURL string, input map[string]any) (string, error) {
	src, m, err := s.oauthMethod(shortName)
	if err != nil {
		return "", err
	}
	if err := s.CheckRedirect(ctx, orgID, redirectURL, "body", "redirect_url"); err != nil {
		return "", err
	}
	config, cerrs := checkConfig(src, input, []any{"body", "oauth_input_configuration"}, true)
	if len(cerrs) > 0 {
		return "", apperr.Invalid(cerrs...)
	}
	reg, err := s.opt.Apps.For(ctx, orgID, src.ShortName)
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindBadRequest {
			return "", apperr.BadRequest("No OAuth credentials configured for connector '%s': set them with PUT /api/v1/oauth/credentials", src.ShortName)
		}
		return "", err
	}
	now := s.now()
	state := oauth.RandomToken(32)
	sess := store.OAuthSession{ID: newID(), OrganizationID: orgID, WorkspaceID: workspaceID, ShortName: src.ShortName,
		CodeHash: oauth.Hash(oauth.RandomToken(32)), StateHash: oauth.Hash(state), RedirectURL: redirectURL, CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	secrets := credential.Payload{Fields: map[string]vault.Secret{"state": vault.NewSecret(state)}}
	if m.PKCE {
		secrets.Fields["code_verifier"] = vault.NewSecret(oauth.NewVerifier())
	}
	if len(config) > 0 {
		cfgJSON, _ := json.Marshal(config)
		secrets.Fields["input_config"] = vault.NewSecret(string(cfgJSON)) // for URL placeholders at the callback
	}
	if sess.Ciphertext, sess.KeyID, err = s.sealer.SealAD(credential.ADFor(store.TableOAuthSessions, orgID, sess.ID), secrets); err != nil {
		return "", err
	}
	if err := s.st.CreateOAuthSession(ctx, sess); err != nil {
		return "", err
	}
	scopes := reg.Scopes
	if len(scopes) == 0 {
		scopes = m.Scopes
	}
	return oauth.AuthCodeURL(oauth.EndpointFor(m, config), reg.Client, s.callbackURL(), state, secrets.Fields["code_verifier"].Reveal(), scopes), nil
}

// serverSideCallback finishes a server-side flow: the tokens become a
// sealed single-use secret bound to organization, workspace and source.
func (s *Service) serverSideCallback(ctx context.Context, sess store.OAuthSession, q url.Values) (CallbackResult, error) {
	res := CallbackResult{}
	if perr := q.Get("error"); perr != "" {
		res.Error = "access_denied"
		if perr != "access_denied" {
			res.Error = "authorization_failed"
		}
		res.RedirectURL = withQuery(sess.RedirectURL, url.Values{"error": {res.Error}})
		return res, nil
	}
	secrets, err := s.sealer.OpenAD(sess.Ciphertext, credential.ADFor(store.TableOAuthSessions, sess.OrganizationID, sess.ID))
	if err != nil {
		return res, err
	}
	_, m, err := s.oauthMethod(sess.ShortName)
	if err != nil {
		return res, err
	}
	client, _, err := s.flowClient(ctx, sess, secrets, m)
	if err != nil {
		return res, err
	}
	var config map[string]any
	_ = json.Unmarshal([]byte(secrets.Fields["input_config"].Reveal()), &config)
	sent := s.now()
	tok, err := oauth.Exchange(ctx, s.opt.HTTPClient, oauth.EndpointFor(m, config), client, q.Get("code"), s.callbackURL(), secrets.Fields["code_verifier"].Reveal())
	if err != nil {
		s.opt.Log.WarnContext(ctx, "authorization code exchange failed", "source", sess.ShortName, "error", exchangeError(err))
		res.Error = "token_exchange_failed"
		res.RedirectURL = withQuery(sess.RedirectURL, url.Values{"error": {res.Error}})
		return res, nil
	}
	p := credential.Payload{Fields: map[string]vault.Secret{"access_token": tok.AccessToken}, TokenType: tok.TokenType, Scope: tok.Scope}
	if !tok.RefreshToken.IsZero() {
		p.Fields["refresh_token"] = tok.RefreshToken
	}
	if exp := tok.ExpiresAt(sent); exp != nil {
		p.Fields["expires_at"] = vault.NewSecret(exp.Format(time.RFC3339Nano))
	}
	sec := store.OAuthSecret{ID: "sec_" + oauth.RandomToken(24), OrganizationID: sess.OrganizationID, WorkspaceID: sess.WorkspaceID,
		ShortName: sess.ShortName, CreatedAt: s.now(), ExpiresAt: s.now().Add(SecretTTL)}
	if sec.Ciphertext, sec.KeyID, err = s.sealer.SealAD(credential.ADFor(store.TableOAuthSecrets, sec.OrganizationID, sec.ID), p); err != nil {
		return res, err
	}
	if err := s.st.CreateOAuthSecret(ctx, sec); err != nil {
		return res, err
	}
	res.Success = true
	res.RedirectURL = withQuery(sess.RedirectURL, url.Values{"secret_id": {sec.ID}})
	return res, nil
}

// CreateFromSecret turns a server-side OAuth secret into a connection in the
// workspace. A secret that is unknown, used, expired, or of another
// workspace or source answers 400 Invalid secret_id.
func (s *Service) CreateFromSecret(ctx context.Context, orgID, workspaceID, shortName, name, secretID string) (View, error) {
	src, m, err := s.oauthMethod(shortName)
	if err != nil {
		return View{}, err
	}
	sec, err := s.st.UseOAuthSecret(ctx, orgID, workspaceID, src.ShortName, secretID, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return View{}, apperr.BadRequest("Invalid secret_id")
	} else if err != nil {
		return View{}, err
	}
	p, err := s.sealer.OpenAD(sec.Ciphertext, credential.ADFor(store.TableOAuthSecrets, orgID, sec.ID))
	if err != nil {
		return View{}, err
	}
	var exp *time.Time
	if v := p.Fields["expires_at"].Reveal(); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			exp = &t
		}
		delete(p.Fields, "expires_at")
	}
	if name == "" {
		name = src.Name + " " + randomSuffix(4)
	}
	coll, err := s.workspaceCollection(ctx, orgID, workspaceID)
	if err != nil {
		return View{}, err
	}
	now := s.now()
	conn := store.SourceConnection{ID: newID(), OrganizationID: orgID, CollectionID: coll.ID, CollectionRID: coll.ReadableID, Name: name,
		ShortName: src.ShortName, Status: store.StatusActive, AuthMethod: MethodOAuthBrowser, Config: json.RawMessage("{}"),
		AuthenticatedAt: &now, CreatedAt: now, ModifiedAt: now, WorkspaceID: workspaceID}
	cred, err := s.newCredential(orgID, conn.ID, m, p, exp)
	if err != nil {
		return View{}, err
	}
	if err := s.st.CreateConnection(ctx, conn, cred); err != nil {
		return View{}, err
	}
	s.emit(ctx, orgID, "source_connection.created", conn)
	s.audit(ctx, orgID, "credential.create", conn.ID)
	return View{SourceConnection: conn, Authenticated: true, ExpiresAt: exp}, nil
}

// workspaceCollection is the collection a workspace's connections go to,
// created on first use with the readable id "ws-<workspace id>".
func (s *Service) workspaceCollection(ctx context.Context, orgID, workspaceID string) (store.Collection, error) {
	rid := "ws-" + workspaceID
	c, err := s.st.GetCollection(ctx, orgID, rid)
	if errors.Is(err, store.ErrNotFound) {
		c, err = s.CreateCollection(ctx, orgID, "Workspace "+workspaceID, rid)
		if e, ok := apperr.As(err); ok && e.Kind == apperr.KindConflict {
			return s.st.GetCollection(ctx, orgID, rid)
		}
	}
	return c, err
}

// ErrFlow is a browser-flow failure shown to the user as a page (never a
// redirect to an unchecked place).
var ErrFlow = errors.New("oauth flow")

func flowError(msg string) error {
	return &apperr.Error{Kind: apperr.KindBadRequest, Msg: msg, Err: ErrFlow}
}

// Authorize consumes a one-time auth-URL code and returns the provider's
// authorization URL to send the browser to.
func (s *Service) Authorize(ctx context.Context, code string) (string, error) {
	sess, err := s.st.UseSessionCode(ctx, oauth.Hash(code), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", flowError("This authorization link is invalid, was already used, or has expired. Start the connection again.")
	} else if err != nil {
		return "", err
	}
	secrets, err := s.sealer.OpenAD(sess.Ciphertext, credential.ADFor(store.TableOAuthSessions, sess.OrganizationID, sess.ID))
	if err != nil {
		return "", err
	}
	conn, err := s.st.GetConnection(ctx, sess.OrganizationID, sess.SourceConnectionID)
	if err != nil {
		return "", flowError("The connection for this authorization link no longer exists.")
	}
	_, m, err := s.oauthMethod(conn.ShortName)
	if err != nil {
		return "", err
	}
	client, scopes, err := s.flowClient(ctx, sess, secrets, m)
	if err != nil {
		return "", err
	}
	var config map[string]any
	_ = json.Unmarshal(conn.Config, &config)
	return oauth.AuthCodeURL(oauth.EndpointFor(m, config), client, s.callbackURL(), secrets.Fields["state"].Reveal(),
		secrets.Fields["code_verifier"].Reveal(), scopes), nil
}

func (s *Service) oauthMethod(shortName string) (*catalog.Source, catalog.AuthMethod, error) {
	src, err := s.Source(shortName)
	if err != nil {
		return nil, catalog.AuthMethod{}, err
	}
	m, ok := src.Method(catalog.AuthOAuth2)
	if !ok {
		return nil, m, apperr.BadRequest("Source '%s' does not use OAuth2", shortName)
	}
	return src, m, nil
}

// flowClient is the session's own client when one was given at creation,
// else the organization's app; scopes are the app's, else the catalog's.
func (s *Service) flowClient(ctx context.Context, sess store.OAuthSession, secrets credential.Payload, m catalog.AuthMethod) (oauth.Client, []string, error) {
	if secrets.ClientID != "" {
		return oauth.Client{ID: secrets.ClientID, Secret: secrets.ClientSecret}, m.Scopes, nil
	}
	reg, err := s.opt.Apps.For(ctx, sess.OrganizationID, sess.ShortName)
	if err != nil {
		return oauth.Client{}, nil, err
	}
	scopes := reg.Scopes
	if len(scopes) == 0 {
		scopes = m.Scopes
	}
	return reg.Client, scopes, nil
}

// CallbackResult says where to send the browser after the callback.
type CallbackResult struct {
	// RedirectURL is the connection's redirect URL with the outcome added;
	// empty when the connection has none (show a page instead).
	RedirectURL  string
	ConnectionID string
	Success      bool
	Error        string
}

// Callback completes a flow from the provider's redirect: it checks the
// state (unknown, reused or expired → a flow error, nothing stored),
// exchanges the code, stores the tokens and activates the connection.
func (s *Service) Callback(ctx context.Context, q url.Values) (CallbackResult, error) {
	state := q.Get("state")
	if state == "" {
		return CallbackResult{}, flowError("The authorization response has no state.")
	}
	sess, err := s.st.UseSessionState(ctx, oauth.Hash(state), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return CallbackResult{}, flowError("This authorization response is invalid, was already used, or has expired. Start the connection again.")
	} else if err != nil {
		return CallbackResult{}, err
	}
	if sess.WorkspaceID != "" && sess.SourceConnectionID == "" {
		return s.serverSideCallback(ctx, sess, q)
	}
	res := CallbackResult{ConnectionID: sess.SourceConnectionID}
	finish := func(params url.Values) CallbackResult {
		res.RedirectURL = withQuery(sess.RedirectURL, params)
		return res
	}
	if perr := q.Get("error"); perr != "" {
		res.Error = perr
		if perr != "access_denied" {
			res.Error = "authorization_failed"
		}
		return finish(url.Values{"status": {"error"}, "error": {res.Error}, "source_connection_id": {sess.SourceConnectionID}}), nil
	}
	code := q.Get("code")
	if code == "" {
		return CallbackResult{}, flowError("The authorization response has no code.")
	}
	secrets, err := s.sealer.OpenAD(sess.Ciphertext, credential.ADFor(store.TableOAuthSessions, sess.OrganizationID, sess.ID))
	if err != nil {
		return CallbackResult{}, err
	}
	conn, err := s.st.GetConnection(ctx, sess.OrganizationID, sess.SourceConnectionID)
	if err != nil {
		return CallbackResult{}, flowError("The connection for this authorization no longer exists.")
	}
	_, m, err := s.oauthMethod(conn.ShortName)
	if err != nil {
		return CallbackResult{}, err
	}
	client, _, err := s.flowClient(ctx, sess, secrets, m)
	if err != nil {
		return CallbackResult{}, err
	}
	var config map[string]any
	_ = json.Unmarshal(conn.Config, &config)
	sent := s.now()
	tok, err := oauth.Exchange(ctx, s.opt.HTTPClient, oauth.EndpointFor(m, config), client, code, s.callbackURL(), secrets.Fields["code_verifier"].Reveal())
	if err != nil {
		s.opt.Log.WarnContext(ctx, "authorization code exchange failed", "source_connection_id", conn.ID, "source", conn.ShortName, "error", exchangeError(err))
		res.Error = "token_exchange_failed"
		return finish(url.Values{"status": {"error"}, "error": {res.Error}, "source_connection_id": {conn.ID}}), nil
	}
	p := credential.Payload{Fields: map[string]vault.Secret{"access_token": tok.AccessToken}, TokenType: tok.TokenType, Scope: tok.Scope,
		ClientID: secrets.ClientID, ClientSecret: secrets.ClientSecret}
	if !tok.RefreshToken.IsZero() {
		p.Fields["refresh_token"] = tok.RefreshToken
	}
	_, err = s.st.UpdateConnection(ctx, conn.OrganizationID, conn.ID, func(c *store.SourceConnection) (*store.Credential, error) {
		cred, err := s.newCredential(c.OrganizationID, c.ID, m, p, tok.ExpiresAt(sent))
		if err != nil {
			return nil, err
		}
		now := s.now()
		c.Status, c.AuthenticatedAt, c.ModifiedAt = store.StatusActive, &now, now
		return cred, nil
	})
	if err != nil {
		return CallbackResult{}, notFoundConn(err, conn.ID)
	}
	s.audit(ctx, conn.OrganizationID, "credential.create", conn.ID)
	res.Success = true
	return finish(url.Values{"status": {"success"}, "source_connection_id": {conn.ID}}), nil
}

func exchangeError(err error) string {
	if oe, ok := oauth.AsError(err); ok {
		return oe.Error()
	}
	return "request failed"
}

// withQuery appends params to u's own query; empty u stays empty.
func withQuery(u string, params url.Values) string {
	if u == "" {
		return ""
	}
	parsed, err := url.Parse(u)
	if err != nil {
		return ""
	}
	q := parsed.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// WidgetDoneURL is where the Connect widget's OAuth popups land.
func (s *Service) WidgetDoneURL() string { return s.opt.PublicURL() + WidgetDonePath }
