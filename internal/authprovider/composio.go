package authprovider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/valetkey/valetkey/internal/apperr"
	"github.com/valetkey/valetkey/internal/catalog"
	"github.com/valetkey/valetkey/internal/vault"
)

// composioClient reads connected accounts from Composio's v3 API with the
// team's API key.
type composioClient struct {
	h    *httpDoer
	base string
	key  vault.Secret
}

// caAccount is Composio's connected account.
type caAccount struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Toolkit struct {
		Slug string `json:"slug"`
	} `json:"toolkit"`
	AuthConfig struct {
		ID                string `json:"id"`
		IsComposioManaged bool   `json:"is_composio_managed"`
	} `json:"auth_config"`
	State struct {
		AuthScheme string         `json:"authScheme"`
		Val        map[string]any `json:"val"`
	} `json:"state"`
}

func (c *composioClient) get(ctx context.Context, path string, q url.Values) (*answer, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return c.h.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err == nil {
			req.Header.Set("x-api-key", c.key.Reveal())
			req.Header.Set("Accept", "application/json")
		}
		return req, err
	})
}

func (c *composioClient) check(ctx context.Context) error {
	a, err := c.get(ctx, "/api/v3/connected_accounts", url.Values{"limit": {"1"}})
	if err != nil {
		return err
	}
	switch {
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return apperr.Invalid(apperr.Field("value_error", "Invalid Composio API key", "body", "auth_fields", "api_key"))
	case a.status != http.StatusOK:
		return unavailable("Composio", a)
	}
	return nil
}

var errComposioKey = apperr.BadRequest("Failed to refresh token: Composio rejected Valetkey's Composio API key")

func (c *composioClient) fetch(ctx context.Context, src *catalog.Source, cfg map[string]string) (Account, error) {
	acID, caID := cfg["auth_config_id"], cfg["account_id"]
	slug := src.ComposioSlug
	if slug == "" {
		slug = src.ShortName
	}
	var found *caAccount
	q := url.Values{"toolkit_slugs": {slug}, "auth_config_ids": {acID}, "limit": {"100"}}
	for page := 0; page < 50 && found == nil; page++ {
		a, err := c.get(ctx, "/api/v3/connected_accounts", q)
		if err != nil {
			return Account{}, err
		}
		if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
			return Account{}, errComposioKey
		}
		if a.status != http.StatusOK {
			return Account{}, unavailable("Composio", a)
		}
		var list struct {
			Items      []caAccount `json:"items"`
			NextCursor *string     `json:"next_cursor"`
		}
		if err := json.Unmarshal(a.body, &list); err != nil {
			return Account{}, &apperr.Error{Kind: apperr.KindBadGateway, Msg: "Composio answered with a list Valetkey cannot read"}
		}
		for i := range list.Items {
			if list.Items[i].ID == caID {
				found = &list.Items[i]
			}
		}
		if list.NextCursor == nil || *list.NextCursor == "" {
			break
		}
		q.Set("cursor", *list.NextCursor)
	}
	if found == nil {
		return Account{}, c.explainMissing(ctx, src, acID, caID, slug)
	}
	if found.Status != "ACTIVE" {
		return Account{}, apperr.BadRequest("Composio account %s is %s", caID, found.Status)
	}
	out := Account{Fields: map[string]vault.Secret{}}
	for k, v := range found.State.Val {
		s, ok := v.(string)
		if !ok || s == "" || !hasCredentialField(src, k) {
			continue
		}
		if s == "REDACTED" || strings.Contains(s, "REDACTED") {
			return Account{}, apperr.BadRequest("Credentials not available: auth config %s is managed by Composio; use your own OAuth app in Composio", acID)
		}
		out.Fields[k] = vault.NewSecret(s)
	}
	return out, nil
}

// explainMissing tells "no such account" from "an account of another app or
// auth config", by reading the account itself.
func (c *composioClient) explainMissing(ctx context.Context, src *catalog.Source, acID, caID, slug string) error {
	a, err := c.get(ctx, "/api/v3/connected_accounts/"+url.PathEscape(caID), nil)
	if err != nil {
		return err
	}
	if a.status == http.StatusOK {
		var acct caAccount
		if json.Unmarshal(a.body, &acct) == nil && acct.ID == caID {
			if acct.Toolkit.Slug != slug {
				return apperr.BadRequest("Account %s is not for app '%s'", caID, src.ShortName)
			}
			if acct.AuthConfig.ID != acID {
				return apperr.BadRequest("Account %s does not belong to auth config %s", caID, acID)
			}
		}
	}
	return apperr.NotFound("Account %s not found for auth config %s", caID, acID)
}
